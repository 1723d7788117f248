"""Training loops: plain supervised training; adversarial, saliency-based and style-augmented trainers build on it."""

from .classifier import accuracy, predict, split_batch, train_classifier

__all__ = ["accuracy", "predict", "split_batch", "train_classifier"]
