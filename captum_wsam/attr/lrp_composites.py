r"""LRP composites: which rule each layer of a model gets, by module path, by module type and for the first layer.

Paper: G. Montavon, A. Binder, S. Lapuschkin, W. Samek, K.-R. Müller (2019), "Layer-Wise Relevance Propagation: An
Overview", in *Explainable AI*, LNCS 11700, DOI 10.1007/978-3-030-28954-6_10 (the recommended choice: LRP-ε for
dense layers, LRP-γ or z⁺/αβ for convolutions, a box rule for pixels); the composites follow zennit's
(``EpsilonPlus``, ``EpsilonAlpha2Beta1``, ``EpsilonGammaBox``: C. J. Anders et al. 2021, "Software for Dataset-wide
XAI: From Local Explanations to Global Insights with Zennit, CoRelAy, and ViRelAy", arXiv:2106.13200):

.. math::

    \text{rule}(\ell) = \begin{cases}
        \text{name\_map}[\text{path}(\ell)] & \text{if the path is mapped} \\
        \text{first\_layer} & \text{if } \ell \text{ is the first Conv/Linear called} \\
        \text{layer\_map}[\text{type}(\ell)] & \text{first matching type, in order}
    \end{cases}

Element-wise activations (ReLU6, SiLU, Hardswish, GELU, …) and BatchNorms that cannot be folded into a preceding
layer get :class:`~captum_wsam.attr.lrp_rules.Pass` unless mapped otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from .._checks import check_type
from .lrp_rules import AlphaBeta, Epsilon, Gamma, Pass, Rule, ZBox, ZPlus

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
BATCH_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
#: Element-wise activations (the ``Pass`` rule by default).
ACTIVATION_TYPES = (
    nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.LeakyReLU, nn.ELU,
    nn.SELU, nn.CELU, nn.Mish, nn.Softplus, nn.Hardtanh, nn.PReLU, nn.LogSigmoid, nn.Softsign, nn.Tanhshrink,
)

LayerMap = Sequence[tuple["type | tuple[type, ...]", Rule]] | Mapping["type | tuple[type, ...]", Rule]


def _pairs(layer_map: LayerMap | None, name: str) -> list[tuple[type | tuple[type, ...], Rule]]:
    if layer_map is None:
        return []
    items = list(layer_map.items()) if isinstance(layer_map, Mapping) else list(layer_map)
    for index, item in enumerate(items):
        if not isinstance(item, tuple) or len(item) != 2:
            raise TypeError(f"{name}[{index}] must be a (module type(s), rule) pair, got {item!r}")
        types, rule = item
        kinds = types if isinstance(types, tuple) else (types,)
        if not kinds or not all(isinstance(t, type) for t in kinds):
            raise TypeError(f"{name}[{index}] must map module types, got {types!r}")
        check_type(rule, f"{name}[{index}] rule", Rule)
    return items


class Composite:
    r"""A mapping from the layers of a model to :class:`~captum_wsam.attr.lrp_rules.Rule` objects.

    .. math:: \ell \mapsto \text{name\_map} \succ \text{first\_layer} \succ \text{layer\_map} \succ \text{defaults}

    Args:
        layer_map: ``(module type(s), rule)`` pairs (or a dict), the first matching type wins.
        name_map: module path (``"features.0"``) → rule; paths win over everything else.
        first_layer: the rule of the first Conv/Linear called (the one receiving the input), or ``None`` for its
            type's rule.
        stabilizer: the stabilizer of the proportional rule of average pooling (zennit's ``Norm``), ``>= 0``.

    Examples:
        >>> composite = Composite([(nn.Linear, Epsilon(0.1))], first_layer=ZBox(0.0, 1.0))
        >>> composite.rule("fc", nn.Linear(2, 2), first=False)
        Epsilon(epsilon=0.1)
        >>> type(composite.rule("fc", nn.Linear(2, 2), first=True)).__name__
        'ZBox'
    """

    def __init__(
        self,
        layer_map: LayerMap | None = None,
        name_map: Mapping[str, Rule] | None = None,
        first_layer: Rule | None = None,
        stabilizer: float = 1e-6,
    ) -> None:
        self.layer_map = _pairs(layer_map, "layer_map")
        if name_map is not None and not isinstance(name_map, Mapping):
            raise TypeError(f"name_map must be a mapping of module paths to rules, got {type(name_map).__name__}")
        self.name_map = dict(name_map or {})
        for key, rule in self.name_map.items():
            check_type(key, "name_map key", str)
            check_type(rule, f"name_map[{key!r}]", Rule)
        if first_layer is not None:
            check_type(first_layer, "first_layer", Rule)
        self.first_layer = first_layer
        Epsilon(stabilizer)  # validates: a finite number >= 0
        self.stabilizer = float(stabilizer)
        self.defaults: list[tuple[type | tuple[type, ...], Rule]] = [(ACTIVATION_TYPES, Pass()),
                                                                    (BATCH_NORM_TYPES, Pass())]

    def rule(self, name: str, module: nn.Module | type, first: bool) -> Rule | None:
        """The rule of the module at path ``name`` (``first``: it is the first Conv/Linear called), or ``None``."""
        if name in self.name_map:
            return self.name_map[name]
        if first and self.first_layer is not None:
            return self.first_layer
        kind = module if isinstance(module, type) else type(module)
        for types, rule in (*self.layer_map, *self.defaults):
            if issubclass(kind, types):
                return rule
        return None

    def check_names(self, model: nn.Module) -> None:
        """Raise ``ValueError`` for a ``name_map`` path that is not a module of ``model``."""
        names = {name for name, _ in model.named_modules()}
        for key in self.name_map:
            if key not in names and key.rsplit(".", 1)[0] not in names:
                raise ValueError(f"name_map names no module of the model: {key!r}")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(layer_map={self.layer_map!r}, name_map={self.name_map!r}, "
                f"first_layer={self.first_layer!r})")


def _preset(first_layer: Rule | None, conv_rule: Rule, epsilon: float, stabilizer: float,
            layer_map: LayerMap | None, name_map: Mapping[str, Rule] | None) -> dict[str, Any]:
    pairs = [*_pairs(layer_map, "layer_map"), (CONV_TYPES, conv_rule), (nn.Linear, Epsilon(epsilon))]
    return {"layer_map": pairs, "name_map": name_map, "first_layer": first_layer, "stabilizer": stabilizer}


class EpsilonPlus(Composite):
    r"""z⁺ for convolutions, ε for dense layers (zennit's ``EpsilonPlus``), the first layer's rule a parameter.

    .. math:: \text{Conv} \mapsto \text{z}^+, \quad \text{Linear} \mapsto \varepsilon

    Args:
        first_layer: rule of the first Conv/Linear (e.g. ``ZBox(0.0, 1.0)`` for pixels), ``None`` for its type's.
        epsilon: ε of the dense layers.
        stabilizer: stabilizer of the other rules.
        layer_map: extra ``(type, rule)`` pairs, matched before the preset's.
        name_map: module path → rule.

    Examples:
        >>> type(EpsilonPlus().rule("0", nn.Conv2d(3, 4, 3), first=False)).__name__
        'ZPlus'
    """

    def __init__(self, first_layer: Rule | None = None, epsilon: float = 1e-6, stabilizer: float = 1e-6,
                 layer_map: LayerMap | None = None, name_map: Mapping[str, Rule] | None = None) -> None:
        super().__init__(**_preset(first_layer, ZPlus(stabilizer), epsilon, stabilizer, layer_map, name_map))


class EpsilonAlpha2Beta1(Composite):
    r"""α2β1 for convolutions, ε for dense layers (zennit's ``EpsilonAlpha2Beta1``).

    .. math:: \text{Conv} \mapsto \alpha\beta\ (\alpha = 2, \beta = 1), \quad \text{Linear} \mapsto \varepsilon

    Args:
        first_layer: rule of the first Conv/Linear, ``None`` for its type's.
        epsilon: ε of the dense layers.
        stabilizer: stabilizer of the other rules.
        layer_map: extra ``(type, rule)`` pairs, matched before the preset's.
        name_map: module path → rule.

    Examples:
        >>> EpsilonAlpha2Beta1().rule("0", nn.Conv2d(3, 4, 3), first=False)
        AlphaBeta(alpha=2.0, beta=1.0, stabilizer=1e-06)
    """

    def __init__(self, first_layer: Rule | None = None, epsilon: float = 1e-6, stabilizer: float = 1e-6,
                 layer_map: LayerMap | None = None, name_map: Mapping[str, Rule] | None = None) -> None:
        conv_rule = AlphaBeta(2.0, 1.0, stabilizer)
        super().__init__(**_preset(first_layer, conv_rule, epsilon, stabilizer, layer_map, name_map))


class EpsilonGammaBox(Composite):
    r"""z^B for the first layer, γ for the other convolutions, ε for dense layers (zennit's ``EpsilonGammaBox``).

    .. math:: \text{first} \mapsto z^B, \quad \text{Conv} \mapsto \gamma, \quad \text{Linear} \mapsto \varepsilon

    Args:
        first_layer: rule of the first Conv/Linear (default ``ZBox(0.0, 1.0)``).
        gamma: γ of the convolutions.
        epsilon: ε of the dense layers.
        stabilizer: stabilizer of the other rules.
        layer_map: extra ``(type, rule)`` pairs, matched before the preset's.
        name_map: module path → rule.

    Examples:
        >>> EpsilonGammaBox(gamma=0.5).rule("3", nn.Conv2d(3, 4, 3), first=False)
        Gamma(gamma=0.5, stabilizer=1e-06)
    """

    def __init__(self, first_layer: Rule | None = None, gamma: float = 0.25, epsilon: float = 1e-6,
                 stabilizer: float = 1e-6, layer_map: LayerMap | None = None,
                 name_map: Mapping[str, Rule] | None = None) -> None:
        first = ZBox(0.0, 1.0, stabilizer=stabilizer) if first_layer is None else first_layer
        super().__init__(**_preset(first, Gamma(gamma, stabilizer), epsilon, stabilizer, layer_map, name_map))


__all__ = [
    "ACTIVATION_TYPES",
    "BATCH_NORM_TYPES",
    "CONV_TYPES",
    "Composite",
    "EpsilonAlpha2Beta1",
    "EpsilonGammaBox",
    "EpsilonPlus",
]
