r"""Which propagation each module of a model gets in the LRP engine (:class:`~captum_wsam.attr.LRP`): the module
kinds, the supported-module check and the walk over a model's modules in call order.

Paper: S. Bach, A. Binder, G. Montavon, F. Klauschen, K.-R. Müller, W. Samek (2015), "On Pixel-Wise Explanations
for Non-Linear Classifier Decisions by Layer-Wise Relevance Propagation", PLoS ONE 10(7): e0130140,
DOI 10.1371/journal.pone.0130140; transformer blocks as in A. Ali et al. (2022), "XAI for Transformers: Better
Explanations through Conservative Propagation", arXiv:2202.07304. A module's kind decides how the relevance

.. math:: R_j = \sum_k \frac{z_{jk}}{\sum_{j'} z_{j'k}} R_k

is split over its inputs: by a rule (Conv/Linear, affine BatchNorm, activations), by its ordinary gradient
(max-pooling, dropout, reshapes: :data:`GRADIENT_TYPES`), proportionally (average pooling), or with constant
non-linear factors (LayerNorm, attention, Squeeze-Excitation). Anything else is reported by
:func:`unsupported_modules`. Re-exported by :mod:`captum_wsam.attr.lrp_engine` (their former home).
"""

from __future__ import annotations

from torch import nn

from .._compat import BatchNorm
from .lrp_canonizers import (
    LINEAR_TYPES,
    normalization_of,
)
from .lrp_composites import ACTIVATION_TYPES, BATCH_NORM_TYPES
from .lrp_transformers import (
    hf_attention_forward,
    maxvit_attention_forward,
    swin_attention_forward,
    timm_attention_forward,
)

MAX_POOL_TYPES = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
                  nn.AdaptiveMaxPool3d)
AVG_POOL_TYPES = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
                  nn.AdaptiveAvgPool3d)
#: Linear or identity-like leaves whose ordinary gradient is the LRP rule.
GRADIENT_TYPES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Flatten, nn.Unflatten,
                  nn.Identity, nn.Sequential, nn.ModuleList)
#: The same, by qualified class name (modules of torchvision and timm, imported only when used).
GRADIENT_NAMES = frozenset({
    "torchvision.ops.stochastic_depth.StochasticDepth", "torchvision.ops.misc.Permute",
    "torchvision.models.maxvit.SwapAxes", "torchvision.models.maxvit.WindowPartition",
    "torchvision.models.maxvit.WindowDepartition", "timm.layers.drop.DropPath", "timm.layers.layer_scale.LayerScale",
    "timm.layers.layer_scale.LayerScale2d", "timm.models.vision_transformer.LayerScale",
})
#: Containers whose own parameters are additive or multiplicative constants (class tokens, position embeddings,
#: layer scales): their forward is linear in the input.
CONSTANT_PARAMETER_CONTAINERS = frozenset({
    "torchvision.models.vision_transformer.VisionTransformer", "torchvision.models.vision_transformer.Encoder",
    "torchvision.models.convnext.CNBlock", "timm.models.vision_transformer.VisionTransformer",
    "transformers.models.vit.modeling_vit.ViTEmbeddings", "timm.models.convnext.ConvNeXtBlock",
})
#: Element-wise activations of other libraries (the ``Pass`` rule unless the composite maps them).
ACTIVATION_NAMES = frozenset({
    "transformers.activations.GELUActivation", "transformers.activations.NewGELUActivation",
    "transformers.activations.QuickGELUActivation", "transformers.activations.FastGELUActivation",
    "timm.layers.activations.GELU", "timm.layers.activations.GELUTanh", "timm.layers.activations.Swish",
    "timm.layers.activations.HardSwish", "timm.layers.activations.HardSigmoid",
})
#: Containers whose name suggests attention but whose forward only combines handled children linearly.
KNOWN_CONTAINERS = frozenset({"torchvision.models.maxvit.PartitionAttentionLayer",
                              "timm.models.vision_transformer.Block"})
LAYER_NORM_CHANNELS_FIRST = frozenset({"torchvision.models.convnext.LayerNorm2d", "timm.layers.norm.LayerNorm2d"})
ATTENTION_NAMES = {
    "torchvision.models.swin_transformer.ShiftedWindowAttention": swin_attention_forward,
    "torchvision.models.swin_transformer.ShiftedWindowAttentionV2": swin_attention_forward,
    "torchvision.models.maxvit.RelativePositionalMultiHeadAttention": maxvit_attention_forward,
    "timm.layers.attention.Attention": timm_attention_forward,
    "transformers.models.vit.modeling_vit.ViTAttention": hf_attention_forward,
    "transformers.models.deit.modeling_deit.DeiTAttention": hf_attention_forward,
}
#: timm's BatchNorm followed by its own activation (``drop``, ``act`` children): an affine layer, then the activation.
BATCH_NORM_ACT_NAMES = frozenset({"timm.layers.norm_act.BatchNormAct2d"})
#: Blocks computing ``x * gate(x)`` with a per-channel gate: the gate is a constant of the explanation (relevance
#: passes unchanged from the output to ``x``, :func:`~captum_wsam.attr.lrp_rules.pass_forward`).
SQUEEZE_EXCITATION_NAMES = frozenset({
    "torchvision.ops.misc.SqueezeExcitation", "timm.models._efficientnet_blocks.SqueezeExcite",
    "timm.layers.squeeze_excite.SEModule", "timm.layers.squeeze_excite.EffectiveSEModule",
})


def qualified_name(module: nn.Module | type) -> str:
    """``"package.module.Class"`` of a module or class.

    Examples:
        >>> qualified_name(nn.ReLU())
        'torch.nn.modules.activation.ReLU'
    """
    kind = module if isinstance(module, type) else type(module)
    return f"{kind.__module__}.{kind.__qualname__}"


def _is_layer_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.LayerNorm) and (
        type(module).forward is nn.LayerNorm.forward or qualified_name(module) in LAYER_NORM_CHANNELS_FIRST
        or qualified_name(module) == "timm.layers.norm.LayerNorm"
    )


def kind_of(module: nn.Module) -> str | None:
    """How the engine handles ``module``: ``"linear"``, ``"batch_norm"``, ``"activation"``, ``"avg_pool"``,
    ``"gradient"``, ``"layer_norm"``, ``"attention"``, ``"squeeze_excitation"``, ``"normalize"``, ``"container"``,
    or ``None`` (not supported).

    Args:
        module: any module.

    Returns:
        The kind, or ``None``.

    Examples:
        >>> kind_of(nn.Conv2d(3, 4, 3)), kind_of(nn.GELU()), kind_of(nn.Softmax(dim=1))
        ('linear', 'activation', None)
    """
    name = qualified_name(module)
    if isinstance(module, LINEAR_TYPES):
        return "linear"
    if name in BATCH_NORM_ACT_NAMES:
        return "batch_norm_act" if module.running_mean is not None else None
    if isinstance(module, BATCH_NORM_TYPES):
        plain = type(module).forward is BatchNorm.forward
        return "batch_norm" if plain and module.running_mean is not None else None
    if isinstance(module, ACTIVATION_TYPES) or name in ACTIVATION_NAMES:
        return "activation"
    if isinstance(module, MAX_POOL_TYPES):
        return None if getattr(module, "return_indices", False) else "gradient"
    if isinstance(module, AVG_POOL_TYPES):
        return "avg_pool"
    if isinstance(module, nn.MultiheadAttention) or name in ATTENTION_NAMES:
        return "attention"
    if name in SQUEEZE_EXCITATION_NAMES:
        return "squeeze_excitation"
    if _is_layer_norm(module):
        return "layer_norm"
    if name in GRADIENT_NAMES or (isinstance(module, GRADIENT_TYPES) and not list(module.children())):
        return "gradient"
    if normalization_of(module) is not None:
        return "normalize"
    if list(module.children()):
        if list(module.parameters(recurse=False)) and name not in CONSTANT_PARAMETER_CONTAINERS:
            return None
        lowered = type(module).__name__.lower()
        if name not in KNOWN_CONTAINERS and ("attention" in lowered or "excit" in lowered):
            return None
        return "container"
    return None


def unsupported_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules of ``model`` the engine has no propagation for, as ``(path, module)`` (empty when supported).

    Children of modules handled as a whole (attention, Squeeze-Excitation) are not visited.

    Args:
        model: any module.

    Returns:
        The offending ``(path, module)`` pairs, outermost first.

    Examples:
        >>> model = nn.Sequential(nn.Linear(4, 4), nn.Softmax(dim=1))
        >>> [(path, type(m).__name__) for path, m in unsupported_modules(model)]
        [('1', 'Softmax')]
    """
    found: list[tuple[str, nn.Module]] = []
    for path, module in walk(model):
        if kind_of(module) is None:
            found.append((path, module))
    return found


def walk(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """``(path, module)`` of every module the engine visits: all of them, except inside attention and
    Squeeze-Excitation blocks and unsupported modules (handled, or rejected, as a whole); shared modules once.

    Examples:
        >>> [path for path, _ in walk(nn.Sequential(nn.Linear(2, 2), nn.MultiheadAttention(4, 2)))]
        ['', '0', '1']
    """
    seen: set[int] = set()
    order: list[tuple[str, nn.Module]] = []

    def visit(path: str, module: nn.Module) -> None:
        if id(module) in seen:
            return
        seen.add(id(module))
        order.append((path, module))
        if kind_of(module) == "container":
            for child_name, child in module.named_children():
                visit(f"{path}.{child_name}" if path else child_name, child)

    visit(prefix, model)
    return order


__all__ = [
    "ACTIVATION_NAMES",
    "ATTENTION_NAMES",
    "AVG_POOL_TYPES",
    "GRADIENT_TYPES",
    "LAYER_NORM_CHANNELS_FIRST",
    "MAX_POOL_TYPES",
    "kind_of",
    "qualified_name",
    "unsupported_modules",
    "walk",
]
