"""Every public host-kind class of the package, with how to build it for its contract check (timm-style registry).

A new public augmentation, attack or attribution is tested by adding one entry here; ``test_contracts.py`` fails
while an exported class of a host kind is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from captum_wsam.attacks import LPA3, PGDSAT, SAT, TRADESSAT
from captum_wsam.attr import LRP, SAM, WSAM, LayerLRP, LRPAlphaBeta, ParameterSaliency
from captum_wsam.augment import RandomPatchShuffle, RandomSaturation, Saturation, StyleAugment
from captum_wsam.models import SmallCNN
from tests.attr.style_stand_in import ColourStyles


def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


#: name -> (factory taking same_on_batch when supported, whether it has same_on_batch); p = 1 so that every sample
#: is changed
AUGMENTATIONS: dict[str, tuple[Callable[..., nn.Module], bool]] = {
    "StyleAugment": (lambda **kw: StyleAugment(p=1.0, **kw), True),
    "RandomSaturation": (lambda **kw: RandomSaturation(p=1.0, **kw), True),
    "Saturation": (lambda **kw: Saturation(level=4.0, **kw), False),
    "RandomPatchShuffle": (lambda **kw: RandomPatchShuffle(grid=(2, 2), p=1.0, **kw), True),
}

#: name -> factory on a model (several entries may test one class in different settings)
ATTACKS: dict[str, Callable[[nn.Module], Any]] = {
    "LPA3": lambda model: LPA3(model, steps=2, feasible=False, generator=generator()),
    "LPA3 feasible eps": lambda model: LPA3(model, steps=2, eps=8 / 255, generator=generator()),
    "SAT": lambda model: SAT(model, eps=8 / 255, epoch=20, generator=generator()),
    "PGDSAT": lambda model: PGDSAT(model, eps=8 / 255, steps=2, sat_prob=0.5, generator=generator()),
    "TRADESSAT": lambda model: TRADESSAT(model, eps=8 / 255, steps=2, sat_prob=0.5, generator=generator()),
}

#: name -> factory on a SmallCNN returning ``attribute(inputs, target) -> Tensor`` for ``assert_attribution_contract``
ATTRIBUTIONS: dict[str, Callable[[SmallCNN], Callable[[Tensor, Tensor], Tensor]]] = {
    "SAM": lambda m: lambda x, t: SAM(m, m.block2, ColourStyles(5)).attribute(x, t, alpha=0.4, style=2),
    "WSAM": lambda m: lambda x, t: WSAM(m, m.block2, ColourStyles(5), alphas=(0.2, 0.8), styles=2).attribute(x, t),
    "LRPAlphaBeta": lambda m: lambda x, t: LRPAlphaBeta(m).attribute(x, target=t),
    "LRP": lambda m: lambda x, t: LRP(m).attribute(x, target=t),
    "LayerLRP": lambda m: lambda x, t: LayerLRP(m, m.block2).attribute(x, target=t),
    "ParameterSaliency": lambda m: lambda x, t: ParameterSaliency(m, mode="raw").attribute(x, target=t),
}

#: the class each entry tests (entries named "<Class> <setting>" test <Class>)
def class_of(name: str) -> str:
    return name.split(" ")[0]
