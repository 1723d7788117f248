"""StyleAugment on normalized inputs (torchattacks' ``set_normalization_used`` convention, issue #22).

The reference is the computation a user would write by hand: stylize the [0, 1] pixels with a plain StyleAugment and
normalize afterwards with ``torchvision.transforms.Normalize``, or feed pixels to ``nn.Sequential(Normalize, model)``.
"""

from __future__ import annotations

import kornia.augmentation as K
import pytest
import torch
import torchvision
from torch import nn
from torchvision.transforms import Normalize

from captum_wsam.attr import SAM, WSAM
from captum_wsam.augment import LinearStyleTransfer, StyleAugment

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
normalize = Normalize(*IMAGENET)


@pytest.fixture
def pixels() -> torch.Tensor:
    return torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("transfer", [None, LinearStyleTransfer()], ids=["texture", "linear"])
@pytest.mark.parametrize("p", [1.0, 0.5])
def test_forward_equals_stylizing_pixels_then_normalizing(pixels: torch.Tensor, transfer: nn.Module | None,
                                                          p: float) -> None:
    torch.manual_seed(1)
    aug = StyleAugment(p=p, transfer=transfer, normalization=IMAGENET)
    normalized = normalize(pixels)
    assert normalized.min() < -1.5 and normalized.max() > 2.0  # what a torchvision pipeline feeds
    out = aug(normalized)
    reference = normalize(StyleAugment(p=p, transfer=transfer)(pixels, params=aug._params))
    torch.testing.assert_close(out, reference, atol=1e-4, rtol=1e-4)
    skipped = aug._params["batch_prob"] < 0.5
    assert torch.equal(out[skipped], normalized[skipped])  # samples not drawn come back untouched


def test_stylize_and_grid_work_in_the_normalized_space(pixels: torch.Tensor) -> None:
    aug, plain = StyleAugment(normalization=IMAGENET), StyleAugment()
    normalized = normalize(pixels)
    torch.testing.assert_close(aug.stylize(normalized, 3, 0.3), normalize(plain.stylize(pixels, 3, 0.3)),
                               atol=1e-4, rtol=1e-4)
    assert torch.equal(aug.stylize(normalized, 3, 1.0), normalized)  # α = 1 is still the exact identity
    grid = aug.stylize_grid(normalized, [0, 2], [0.2, 1.0])
    expected = plain.stylize_grid(pixels, [0, 2], [0.2, 1.0])
    torch.testing.assert_close(grid, normalize(expected.flatten(0, 2)).view_as(expected), atol=1e-4, rtol=1e-4)


def test_a_normalizing_model_sees_the_same_batch_and_gradients_flow(pixels: torch.Tensor) -> None:
    """``model(aug(normalize(x)))`` equals ``nn.Sequential(Normalize, model)(plain_aug(x))``, gradients included."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    normalizing = nn.Sequential(normalize, model).eval()
    aug = StyleAugment(p=1.0, normalization=IMAGENET)
    normalized = normalize(pixels).requires_grad_(True)
    ours = model(aug(normalized))
    source = pixels.clone().requires_grad_(True)
    reference = normalizing(StyleAugment(p=1.0)(source, params=aug._params))
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)
    ours.sum().backward()
    reference.sum().backward()
    # d/dx of f(x * s + mu) is s * d/dp: the gradient with respect to the pixels, scaled by the std
    std = torch.tensor(IMAGENET[1]).view(1, 3, 1, 1)
    torch.testing.assert_close(normalized.grad / std, source.grad, atol=1e-4, rtol=1e-3)


def test_in_a_kornia_pipeline_after_normalize(pixels: torch.Tensor) -> None:
    """Kornia's own Normalize first, then StyleAugment, in an AugmentationSequential with params replay."""
    torch.manual_seed(2)
    pipeline = K.AugmentationSequential(K.Normalize(torch.tensor(IMAGENET[0]), torch.tensor(IMAGENET[1])),
                                        StyleAugment(p=1.0, normalization=IMAGENET))
    out = pipeline(pixels)
    assert torch.equal(pipeline(pixels, params=pipeline._params), out)
    replayed = StyleAugment(p=1.0)(pixels, params=pipeline._params[1].data)
    torch.testing.assert_close(out, normalize(replayed), atol=1e-4, rtol=1e-4)


def test_per_sample_transform_with_keepdim(pixels: torch.Tensor) -> None:
    aug = StyleAugment(p=1.0, keepdim=True, normalization=IMAGENET)
    one = normalize(pixels[0])
    assert aug(one).shape == one.shape


def test_normalized_inputs_without_normalization_are_refused_with_advice(pixels: torch.Tensor) -> None:
    aug = StyleAugment(p=1.0)
    for call in (lambda x: aug(x), lambda x: aug.stylize(x, 0, 0.5), lambda x: aug.stylize_grid(x, [0], [0.5])):
        with pytest.raises(ValueError, match=r"must be images in \[0, 1\].*normalization=\(mean, std\)"):
            call(normalize(pixels))
    with pytest.raises(ValueError, match=r"^input must be"):
        aug(normalize(pixels))


def test_pixels_outside_the_unit_range_after_unnormalizing_are_refused(pixels: torch.Tensor) -> None:
    aug = StyleAugment(p=1.0, normalization=IMAGENET)
    with pytest.raises(ValueError, match=r"input must be normalized images whose pixels .* lie in \[0, 1\]"):
        aug(pixels * 10)  # normalized with other statistics than declared


@pytest.mark.parametrize(("normalization", "error", "match"), [
    ((0.5,), TypeError, "normalization must be a \\(mean, std\\) pair"),
    (((0.5, 0.5, 0.5), (0.2, 0.0, 0.2)), ValueError, "normalization std must be finite and > 0"),
    ("imagenet", TypeError, "normalization"),
])
def test_bad_normalization_is_named(normalization: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        StyleAugment(normalization=normalization)


def test_wrong_number_of_channel_statistics_is_named(pixels: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="normalization must hold 1 or 3 values"):
        StyleAugment(p=1.0, normalization=((0.5, 0.5), (0.2, 0.2)))(pixels)


# --------------------------------------------------------------------------- SAM and WSAM with a normalized augment
@pytest.fixture(scope="module")
def resnet() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    return model, nn.Sequential(normalize, model).eval()


def test_sam_and_wsam_take_the_augments_normalization(resnet: tuple[nn.Module, nn.Module],
                                                      pixels: torch.Tensor) -> None:
    model, normalizing = resnet
    x, target = pixels[:2], torch.tensor([1, 7])
    aug = StyleAugment(normalization=IMAGENET)
    sam = SAM(model, model.layer3, aug)
    assert sam.normalization == IMAGENET
    ours = sam.attribute(normalize(x), target, alpha=0.3, style=2)
    reference = SAM(normalizing, model.layer3, StyleAugment()).attribute(x, target, alpha=0.3, style=2)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-4)
    wsam = WSAM(model, model.layer3, aug, alphas=(0.3, 0.7), styles=[0, 2], normalization=IMAGENET)
    reference = WSAM(normalizing, model.layer3, StyleAugment(), alphas=(0.3, 0.7), styles=[0, 2]).attribute(x)
    torch.testing.assert_close(wsam.attribute(normalize(x)), reference, atol=1e-5, rtol=1e-4)


def test_sam_refuses_a_normalization_that_contradicts_the_augments(resnet: tuple[nn.Module, nn.Module]) -> None:
    model, _ = resnet
    with pytest.raises(ValueError, match="differs from the augment's normalization"):
        SAM(model, model.layer3, StyleAugment(normalization=IMAGENET), normalization=((0.5,) * 3, (0.5,) * 3))
