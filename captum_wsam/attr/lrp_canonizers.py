r"""Canonizers for LRP: BatchNorm folded into the preceding Conv/Linear, in-place ReLUs made out-of-place, and the
residual additions of torchvision ResNets split in proportion to their branches.

Paper: F. Motzkus, L. Weber, S. Lapuschkin (2022), "Measurably Stronger Explanation Reliability via Model
Canonization", IEEE ICIP 2022, arXiv:2202.06621. A BatchNorm in evaluation mode following a linear layer is merged
into it,

.. math::

    w'_{k} = \frac{\gamma_k}{\sqrt{\sigma_k^2 + \varepsilon}}\, w_{k}, \qquad
    b'_k = \frac{\gamma_k}{\sqrt{\sigma_k^2 + \varepsilon}} (b_k - \mu_k) + \beta_k ,

so that the αβ rule sees one affine layer whose outputs are exactly the BatchNorm's outputs.

Nothing here writes to the model: the folded parameters are new tensors computed per call, and the canonized
forwards are instance-level ``forward`` patches (:class:`ForwardPatch`, now in :mod:`captum_wsam.attr.lrp_patching`)
that the caller removes in ``finally`` (they go into :func:`captum_wsam._state.hook_handles`). A model therefore comes
out bit-for-bit as it went in, even when the call raises.

Residual additions (``out += identity`` in ``BasicBlock`` and ``Bottleneck``) need no rewrite: the LRP engine carries
:math:`g = R / z` as its gradient, so the ordinary gradient of :math:`z = a + b` hands the branches
:math:`R_a = a\,g = \frac{a}{a + b} R_z` and :math:`R_b = \frac{b}{a + b} R_z`, the proportional split (zennit's
``Norm`` rule on its ``Sum`` module, without a stabilizer). Their BatchNorms (``bn1``…``bn3`` and ``downsample.1``)
are folded like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from .._state import hook_handles
from .lrp_patching import ForwardPatch, own_forward, shared_eval_mode
from .lrp_relevance import LayerFn

LINEAR_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
BATCH_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def fold_batch_norm(weight: Tensor, bias: Tensor | None, batch_norm: nn.Module) -> tuple[Tensor, Tensor]:
    r"""Parameters of ``batch_norm(layer(x))`` as one layer (BatchNorm in evaluation mode, running statistics).

    .. math:: w' = \frac{\gamma}{\sqrt{\sigma^2 + \varepsilon}} w, \quad
              b' = \frac{\gamma}{\sqrt{\sigma^2 + \varepsilon}} (b - \mu) + \beta

    Args:
        weight: weight of the Conv/Linear layer, output channels first.
        bias: its bias or ``None``.
        batch_norm: a ``BatchNorm1d/2d/3d`` with running statistics.

    Returns:
        ``(weight, bias)``: new tensors, shapes of ``weight`` and :math:`(C_{out},)`.

    Examples:
        >>> conv, bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4).eval()
        >>> w, b = fold_batch_norm(conv.weight, conv.bias, bn)
        >>> x = torch.rand(1, 3, 8, 8)
        >>> torch.allclose(bn(conv(x)), nn.functional.conv2d(x, w, b), atol=1e-6)
        True
    """
    if batch_norm.running_mean is None or batch_norm.running_var is None:
        raise ValueError(f"batch_norm must track running statistics to be folded, got {batch_norm}")
    with torch.no_grad():
        scale = torch.rsqrt(batch_norm.running_var + batch_norm.eps)
        if batch_norm.weight is not None:
            scale = scale * batch_norm.weight
        shift = -batch_norm.running_mean if bias is None else bias - batch_norm.running_mean
        folded_bias = shift * scale
        if batch_norm.bias is not None:
            folded_bias = folded_bias + batch_norm.bias
        folded_weight = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    return folded_weight.detach(), folded_bias.detach()


def find_batch_norm_pairs(model: nn.Module) -> tuple[dict[nn.Module, nn.Module], list[str]]:
    """Pair every BatchNorm with the Conv/Linear leaf registered just before it (torchvision order: VGG, ResNet).

    A pair also needs matching channels and running statistics. The pairing is checked again during the forward
    pass (:class:`Canonizer` raises when a BatchNorm does not receive its layer's output).

    Args:
        model: any module.

    Returns:
        ``(pairs, unpaired)``: ``pairs`` maps each foldable BatchNorm to its Conv/Linear; ``unpaired`` lists the paths
        of BatchNorms that cannot be folded.

    Examples:
        >>> model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.BatchNorm2d(4))
        >>> pairs, unpaired = find_batch_norm_pairs(model)
        >>> [pairs[model[1]] is model[0]], unpaired
        ([True], ['3'])
    """
    pairs: dict[nn.Module, nn.Module] = {}
    unpaired: list[str] = []
    previous: nn.Module | None = None
    for name, module in model.named_modules():
        if list(module.children()):
            continue
        if isinstance(module, BATCH_NORM_TYPES):
            channels = getattr(previous, "out_channels", getattr(previous, "out_features", None))
            if (
                isinstance(previous, LINEAR_TYPES)
                and channels == module.num_features
                and module.running_mean is not None
                and previous not in pairs.values()
            ):
                pairs[module] = previous
            else:
                unpaired.append(name)
        previous = module
    return pairs, unpaired


def layer_function(module: nn.Module) -> LayerFn:
    """``layer_fn(inputs, weight, bias)`` computing ``module`` with other parameters (stride, padding… kept).

    Args:
        module: a ``Linear`` or ``Conv1d/2d/3d``.

    Returns:
        The layer function.

    Examples:
        >>> conv = nn.Conv2d(3, 4, 3, padding=1)
        >>> x = torch.rand(1, 3, 5, 5)
        >>> torch.equal(layer_function(conv)(x, conv.weight, conv.bias), conv(x))
        True
    """
    if isinstance(module, nn.Linear):
        return nn.functional.linear
    if isinstance(module, LINEAR_TYPES):
        return module._conv_forward
    raise TypeError(f"module must be a Linear or Conv1d/2d/3d, got {type(module).__name__}")


def normalization_of(module: nn.Module) -> tuple[Tensor, Tensor] | None:
    """``(mean, std)`` of a normalizing module (``torchvision.transforms.Normalize`` v1/v2, or a parameter-free module
    with ``mean`` and ``std`` attributes), else ``None``.

    Args:
        module: any module.

    Returns:
        The statistics as 1-D float64 tensors, or ``None``.

    Examples:
        >>> from torchvision.transforms import Normalize
        >>> [t.tolist() for t in normalization_of(Normalize((0.5, 0.4), (0.2, 0.1)))]
        [[0.5, 0.4], [0.2, 0.1]]
        >>> normalization_of(nn.ReLU()) is None
        True
    """
    if list(module.children()) or list(module.parameters(recurse=False)):
        return None
    mean, std = getattr(module, "mean", None), getattr(module, "std", None)
    if mean is None or std is None or callable(mean) or callable(std):
        return None
    try:
        mean_t = torch.as_tensor(mean, dtype=torch.float64).detach().reshape(-1)
        std_t = torch.as_tensor(std, dtype=torch.float64).detach().reshape(-1)
    except (TypeError, ValueError, RuntimeError):
        return None
    if mean_t.numel() == 0 or std_t.numel() == 0 or not bool(torch.isfinite(mean_t).all()):
        return None
    if not bool(torch.isfinite(std_t).all()) or bool((std_t <= 0).any()):
        raise ValueError(f"normalization std of {type(module).__name__} must be finite and > 0, got {std_t.tolist()}")
    return mean_t, std_t


def same_tensor(a: Tensor, b: Tensor) -> bool:
    """Whether ``a`` holds exactly the elements of ``b`` (the same storage, as seen through a reshaping view or the
    no-op wrapper that a full backward hook puts around module inputs and outputs), unmodified since.

    Examples:
        >>> x = torch.rand(2, 3)
        >>> same_tensor(x.reshape(6), x), same_tensor(x.clone(), x)
        (True, False)
    """
    return a.data_ptr() == b.data_ptr() and a.numel() == b.numel() and a.dtype == b.dtype and a.device == b.device


class Canonizer:
    """Folded parameters of one model, and the patched forwards that compute the canonized model.

    Built per call from the model as it is at that moment; the forward pass records each folding layer's output so
    that its BatchNorm can check that it receives exactly that tensor (same object, not modified in place).

    Args:
        model: the model to canonize.
        names: module → path, for error messages (default: ``model.named_modules()``).

    Raises:
        TypeError: a BatchNorm cannot be folded (it does not follow a Conv/Linear, or has no running statistics).

    Examples:
        >>> model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True))
        >>> canonizer = Canonizer(model)
        >>> canonizer.folds(model[0]), canonizer.folds(model[2])
        (True, False)
    """

    def __init__(self, model: nn.Module, names: dict[nn.Module, str] | None = None) -> None:
        self.names = names if names is not None else {m: n for n, m in model.named_modules()}
        pairs, unpaired = find_batch_norm_pairs(model)
        if unpaired:
            raise TypeError(
                f"BatchNorm at {unpaired[0]!r} cannot be folded: it must directly follow a Conv/Linear with the same "
                "number of channels and track running statistics (use canonize=False to treat it by its gradient)"
            )
        self.batch_norm_of = {layer: bn for bn, layer in pairs.items()}
        self.layer_of = pairs
        self._parameters: dict[nn.Module, tuple[Tensor, Tensor | None]] = {}
        self._outputs: dict[nn.Module, tuple[Tensor, int]] = {}

    def folds(self, layer: nn.Module) -> bool:
        """Whether a BatchNorm is folded into ``layer``."""
        return layer in self.batch_norm_of

    def parameters(self, layer: nn.Module) -> tuple[Tensor, Tensor | None]:
        """``(weight, bias)`` of ``layer`` with its BatchNorm folded in (its own detached parameters otherwise)."""
        if layer not in self._parameters:
            weight, bias = layer.weight.detach(), None if layer.bias is None else layer.bias.detach()
            if layer in self.batch_norm_of:
                weight, bias = fold_batch_norm(weight, bias, self.batch_norm_of[layer])
            self._parameters[layer] = (weight, bias)
        return self._parameters[layer]

    def record(self, layer: nn.Module, output: Tensor) -> None:
        """Remember ``layer``'s output so that its BatchNorm can check what it receives."""
        if layer in self.batch_norm_of:
            self._outputs[layer] = (output, output._version)

    def batch_norm_forward(self, batch_norm: nn.Module) -> Callable[[Tensor], Tensor]:
        """Forward of a folded BatchNorm: the identity, after checking it receives its layer's output unchanged."""
        layer = self.layer_of[batch_norm]

        def forward(inputs: Tensor) -> Tensor:
            recorded = self._outputs.pop(layer, None)
            if recorded is None or not same_tensor(inputs, recorded[0]):
                raise RuntimeError(
                    f"BatchNorm {self.names.get(batch_norm, '?')!r} was folded into "
                    f"{self.names.get(layer, '?')!r} but does not receive that layer's output directly (another "
                    "operation runs between them); use canonize=False for this model"
                )
            if recorded[1] != inputs._version:
                raise RuntimeError(
                    f"BatchNorm {self.names.get(batch_norm, '?')!r} receives the output of "
                    f"{self.names.get(layer, '?')!r} modified in place (e.g. by a forward hook); LRP needs it "
                    "unchanged"
                )
            return inputs

        return forward

    def linear_forward(self, layer: nn.Module) -> Callable[[Tensor], Tensor]:
        """Forward of a Conv/Linear with its BatchNorm folded in."""
        layer_fn = layer_function(layer)

        def forward(inputs: Tensor) -> Tensor:
            output = layer_fn(inputs, *self.parameters(layer))
            self.record(layer, output)
            return output

        return forward


def out_of_place_relu(inputs: Tensor) -> Tensor:
    """Forward of an ``nn.ReLU(inplace=True)`` made out-of-place (a canonized ReLU).

    .. math:: \\operatorname{relu}(x) = \\max(x, 0)

    Args:
        inputs: any tensor.

    Returns:
        A new tensor; ``inputs`` is not modified.

    Examples:
        >>> x = torch.tensor([-1.0, 2.0])
        >>> out_of_place_relu(x).tolist(), x.tolist()
        ([0.0, 2.0], [-1.0, 2.0])
    """
    return torch.relu(inputs)


@contextmanager
def canonized(model: nn.Module) -> Iterator[Canonizer]:
    """The model computing with BatchNorms folded and ReLUs out-of-place, for the duration of the block.

    The outputs equal the original model's (in evaluation mode) up to floating-point rounding; the model is restored
    bit-for-bit on exit.

    Args:
        model: the model to canonize (in evaluation mode: folding uses running statistics).

    Yields:
        The :class:`Canonizer` in use.

    Examples:
        >>> model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True)).eval()
        >>> x = torch.rand(2, 3, 8, 8)
        >>> with canonized(model):
        ...     out = model(x)
        >>> torch.allclose(out, model(x), atol=1e-6), "forward" in vars(model[0])
        (True, False)
    """
    canonizer = Canonizer(model)
    with hook_handles() as handles:
        for module in model.modules():
            if isinstance(module, LINEAR_TYPES) and canonizer.folds(module):
                handles.append(ForwardPatch(module, canonizer.linear_forward(module)))
            elif isinstance(module, BATCH_NORM_TYPES):
                handles.append(ForwardPatch(module, canonizer.batch_norm_forward(module)))
            elif isinstance(module, nn.ReLU):
                handles.append(ForwardPatch(module, out_of_place_relu))
        yield canonizer


__all__ = [
    "BATCH_NORM_TYPES",
    "LINEAR_TYPES",
    "Canonizer",
    "ForwardPatch",
    "canonized",
    "find_batch_norm_pairs",
    "fold_batch_norm",
    "layer_function",
    "normalization_of",
    "out_of_place_relu",
    "own_forward",
    "same_tensor",
    "shared_eval_mode",
]
