"""Every registered class passes its host kind's contract; every exported class of a host kind is registered."""

from __future__ import annotations

import inspect

import captum.attr
import kornia.augmentation
import pytest
import torch
from torchattacks.attack import Attack

import captum_wsam.attacks
import captum_wsam.attr
import captum_wsam.augment
from captum_wsam.models import SmallCNN
from tests.contracts.checkers import check_attack, check_augmentation
from tests.contracts.registry import ATTACKS, ATTRIBUTIONS, AUGMENTATIONS, class_of
from tests.helpers import assert_attribution_contract

HOSTS = [
    (captum_wsam.augment, kornia.augmentation.AugmentationBase2D, AUGMENTATIONS),
    (captum_wsam.attacks, Attack, ATTACKS),
    (captum_wsam.attr, captum.attr.Attribution, ATTRIBUTIONS),
]


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def model() -> SmallCNN:
    torch.manual_seed(0)
    return SmallCNN(width=4, depth=2)


@pytest.mark.parametrize(("package", "base", "registry"), HOSTS, ids=["augment", "attacks", "attr"])
def test_every_exported_class_of_a_host_kind_is_registered(package, base, registry):
    exported = {name for name in package.__all__
                if inspect.isclass(getattr(package, name)) and issubclass(getattr(package, name), base)}
    registered = {class_of(name) for name in registry}
    assert exported, f"no {base.__name__} found in {package.__name__}: the check would pass vacuously"
    assert exported <= registered, f"register these in tests/contracts/registry.py: {sorted(exported - registered)}"


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_augmentation_contract(name, images):
    make, has_same_on_batch = AUGMENTATIONS[name]
    check_augmentation(make, images, same_on_batch=False if has_same_on_batch else None)


@pytest.mark.parametrize("name", sorted(ATTACKS))
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_attack_contract(name, mode, model, images):
    model.train(mode == "train")
    labels = torch.tensor([0, 1, 2])
    check_attack(ATTACKS[name], model, images, labels)
    model.eval()


@pytest.mark.parametrize("name", sorted(ATTRIBUTIONS))
def test_attribution_contract(name, model, images):
    model.eval()
    out = assert_attribution_contract(ATTRIBUTIONS[name](model), images, torch.tensor([0, 1, 2]))
    assert torch.isfinite(out).all()
