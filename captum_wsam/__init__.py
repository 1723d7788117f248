"""captum_wsam: style activation maps, StyleAugment, LRP αβ, parameter saliency and saliency-based adversarial training
for Captum, Kornia and torchattacks.

Sub-packages mirror the host ecosystems: :mod:`captum_wsam.attr` (Captum attributions), :mod:`captum_wsam.augment`
(Kornia augmentations), :mod:`captum_wsam.attacks` (torchattacks attacks), :mod:`captum_wsam.train`,
:mod:`captum_wsam.metrics`, :mod:`captum_wsam.data` (embedded data) and :mod:`captum_wsam.models`.
"""

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
