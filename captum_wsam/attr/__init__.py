"""Captum attributions: SAM, WSAM, LRP αβ and parameter saliency (each a true ``captum.attr.Attribution``)."""
