"""Model registry: the package's small models and torchvision classifiers under one ``create_model`` call.

Tests are parametrized over :func:`list_models`, so a new entry is tested automatically (the timm pattern).
"""

from __future__ import annotations

from collections.abc import Callable

import torchvision
from torch import nn

from .._checks import check_choice
from .small_cnn import small_cnn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "small_cnn": small_cnn,
    "resnet18": lambda num_classes=1000: torchvision.models.resnet18(weights=None, num_classes=num_classes),
    "vgg11_bn": lambda num_classes=1000: torchvision.models.vgg11_bn(weights=None, num_classes=num_classes),
}


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`.

    >>> list_models()
    ['resnet18', 'small_cnn', 'vgg11_bn']
    """
    return sorted(_REGISTRY)


def create_model(name: str, num_classes: int = 6) -> nn.Module:
    """Build a randomly initialized model by name (no download).

    >>> create_model("small_cnn").classifier.out_features
    6
    """
    check_choice(name, "name", list_models())
    return _REGISTRY[name](num_classes=num_classes)


__all__ = ["create_model", "list_models"]
