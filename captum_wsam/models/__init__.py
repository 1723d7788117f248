"""Small reference models (trainable on a CPU in seconds) and a registry that also serves torchvision models."""

from .registry import create_model, list_models
from .small_cnn import ConvBlock, SmallCNN, small_cnn

__all__ = ["ConvBlock", "SmallCNN", "create_model", "list_models", "small_cnn"]
