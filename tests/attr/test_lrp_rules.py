"""The LRP rules against float64 closed forms written from the papers' formulas (Linear and Conv2d, with and without
bias, mixed-sign inputs and weights)."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from captum_wsam.attr.lrp_rules import (
    alpha_beta_forward,
    alpha_beta_relevance,
    flat_relevance,
    proportional_pool_forward,
    relevance_as_gradient,
    stabilize,
    wsquare_relevance,
    zbox_relevance,
)

EPS = 1e-9


def oracle_matrix(x: Tensor, w: Tensor, b: Tensor | None, r: Tensor, rule: str, alpha: float = 2.0,
                  beta: float = 1.0, low: Tensor | None = None, high: Tensor | None = None) -> Tensor:
    """Paper-literal LRP for ``z_k = Σ_j x_j w_jk + b_k`` (x: (B, J), w: (K, J), r: (B, K)), one neuron at a time."""
    out = torch.zeros_like(x)
    for n in range(x.shape[0]):
        for k in range(w.shape[0]):
            c = x[n] * w[k]
            if rule == "alphabeta":
                bias = 0.0 if b is None else b[k]
                z_pos = c.clamp(min=0).sum() + (bias.clamp(min=0) if b is not None else 0.0)
                z_neg = c.clamp(max=0).sum() + (bias.clamp(max=0) if b is not None else 0.0)
                z_pos = z_pos + EPS if z_pos >= 0 else z_pos - EPS
                z_neg = z_neg + EPS if z_neg >= 0 else z_neg - EPS
                share = alpha * c.clamp(min=0) / z_pos - beta * c.clamp(max=0) / z_neg
            else:
                if rule == "zbox":
                    num = c - low[n] * w[k].clamp(min=0) - high[n] * w[k].clamp(max=0)
                elif rule == "flat":
                    num = torch.ones_like(c)  # every input of the receptive field counts once
                else:
                    num = w[k] ** 2
                den = num.sum()
                share = num / (den + EPS if den >= 0 else den - EPS)
            out[n] += share * r[n, k]
    return out


def oracle_conv2d(x: Tensor, w: Tensor, b: Tensor | None, r: Tensor, rule: str, stride: int, padding: int,
                  **kwargs: object) -> Tensor:
    """Conv2d as one matrix per patch (unfold), the rule per output position, then fold back (sums overlaps)."""
    kernel = w.shape[-2:]
    patches = F.unfold(x, kernel, padding=padding, stride=stride)  # (B, J, L)
    bsz, _, positions = patches.shape
    flat_x = patches.permute(0, 2, 1).reshape(bsz * positions, -1)
    flat_r = r.reshape(bsz, r.shape[1], -1).permute(0, 2, 1).reshape(bsz * positions, -1)
    bounds = {}
    for key in ("low", "high"):
        if kwargs.get(key) is not None:
            unf = F.unfold(kwargs[key].expand_as(x), kernel, padding=padding, stride=stride)
            bounds[key] = unf.permute(0, 2, 1).reshape(bsz * positions, -1)
    if rule == "flat":
        # padded positions are not part of the receptive field: weight them 0 via unfolded ones
        ones = F.unfold(torch.ones_like(x), kernel, padding=padding, stride=stride)
        mask = ones.permute(0, 2, 1).reshape(bsz * positions, -1)
        rel = torch.zeros_like(flat_x)
        for n in range(flat_x.shape[0]):
            rel[n] = mask[n] / mask[n].sum() * flat_r[n].sum()
    elif rule == "wsquare":
        ones = F.unfold(torch.ones_like(x), kernel, padding=padding, stride=stride)
        mask = ones.permute(0, 2, 1).reshape(bsz * positions, -1)
        w2 = w.reshape(w.shape[0], -1) ** 2
        rel = torch.einsum("nj,kj,nk->nj", mask, w2, flat_r / (mask @ w2.T + EPS))
    else:
        alpha_beta = {k: v for k, v in kwargs.items() if k in ("alpha", "beta")}
        rel = oracle_matrix(flat_x, w.reshape(w.shape[0], -1), b, flat_r, rule, low=bounds.get("low"),
                            high=bounds.get("high"), **alpha_beta)
    rel = rel.reshape(bsz, positions, -1).permute(0, 2, 1)
    return F.fold(rel, x.shape[-2:], kernel, padding=padding, stride=stride)


def _mixed(*shape: int) -> Tensor:
    return torch.randn(*shape, dtype=torch.float64)


@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (2.0, 1.0), (3.0, 2.0)])
@pytest.mark.parametrize("with_bias", [False, True])
def test_alpha_beta_linear_matches_closed_form(alpha: float, beta: float, with_bias: bool) -> None:
    x, w, r = _mixed(3, 7), _mixed(4, 7), _mixed(3, 4)
    b = _mixed(4) if with_bias else None
    expected = oracle_matrix(x, w, b, r, "alphabeta", alpha, beta)
    got = alpha_beta_relevance(x, r, w, b, alpha=alpha, beta=beta, epsilon=EPS)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    # the modified-gradient form gives the same relevance: R_in = x ⊙ ∂/∂x with upstream gradient R / z
    leaf = x.clone().requires_grad_(True)
    out = alpha_beta_forward(leaf, w, b, alpha=alpha, beta=beta, epsilon=EPS)
    torch.testing.assert_close(out, F.linear(x, w, b), rtol=1e-12, atol=1e-12)
    (grad,) = torch.autograd.grad(out, leaf, r / out.detach())
    torch.testing.assert_close(x * grad, expected, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (2.0, 1.0)])
@pytest.mark.parametrize("with_bias", [False, True])
def test_alpha_beta_conv2d_matches_closed_form(alpha: float, beta: float, with_bias: bool) -> None:
    x, w, b = _mixed(2, 3, 6, 6), _mixed(4, 3, 3, 3), _mixed(4) if with_bias else None
    layer_fn = functools.partial(F.conv2d, stride=2, padding=1)
    z = layer_fn(x, w, b)
    r = _mixed(*z.shape)
    expected = oracle_conv2d(x, w, b, r, "alphabeta", stride=2, padding=1, alpha=alpha, beta=beta)
    got = alpha_beta_relevance(x, r, w, b, layer_fn=layer_fn, alpha=alpha, beta=beta, epsilon=EPS)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-11)
    leaf = x.clone().requires_grad_(True)
    out = alpha_beta_forward(leaf, w, b, layer_fn=layer_fn, alpha=alpha, beta=beta, epsilon=EPS)
    (grad,) = torch.autograd.grad(out, leaf, r / out.detach())
    torch.testing.assert_close(x * grad, expected, rtol=1e-7, atol=1e-9)


def test_alpha_beta_forward_on_non_negative_inputs_matches_closed_form() -> None:
    x, w, b = _mixed(2, 3, 5, 5).relu(), _mixed(4, 3, 3, 3), _mixed(4)
    layer_fn = functools.partial(F.conv2d, padding=1)
    leaf = x.clone().requires_grad_(True)
    out = alpha_beta_forward(leaf, w, b, layer_fn=layer_fn)
    r = _mixed(*out.shape)
    (grad,) = torch.autograd.grad(out, leaf, r / out.detach())
    expected = oracle_conv2d(x, w, b, r, "alphabeta", stride=1, padding=1, alpha=2.0, beta=1.0)
    torch.testing.assert_close(x * grad, expected, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("tensor_bounds", [False, True])
def test_zbox_matches_closed_form(tensor_bounds: bool) -> None:
    low = torch.tensor([-1.0, -0.5, 0.0], dtype=torch.float64).reshape(1, 3, 1, 1) if tensor_bounds else 0.0
    high = torch.tensor([1.0, 1.5, 2.0], dtype=torch.float64).reshape(1, 3, 1, 1) if tensor_bounds else 1.0
    lo, hi = torch.as_tensor(low, dtype=torch.float64), torch.as_tensor(high, dtype=torch.float64)
    x = lo + (hi - lo) * torch.rand(2, 3, 5, 5, dtype=torch.float64)
    w = _mixed(4, 3, 3, 3)
    layer_fn = functools.partial(F.conv2d, padding=1)
    r = _mixed(2, 4, 5, 5)
    expected = oracle_conv2d(x, w, None, r, "zbox", stride=1, padding=1, low=lo.expand_as(x), high=hi.expand_as(x))
    got = zbox_relevance(x, r, w, layer_fn=layer_fn, low=low, high=high, epsilon=EPS)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-11)
    # Linear: same rule, bias irrelevant
    xl, wl, rl = torch.rand(3, 6, dtype=torch.float64), _mixed(2, 6), _mixed(3, 2)
    lo_l, hi_l = torch.zeros_like(xl), torch.ones_like(xl)
    torch.testing.assert_close(zbox_relevance(xl, rl, wl, epsilon=EPS),
                               oracle_matrix(xl, wl, None, rl, "zbox", low=lo_l, high=hi_l), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("rule,fn", [("flat", flat_relevance), ("wsquare", wsquare_relevance)])
def test_flat_and_wsquare_match_closed_form(rule: str, fn: object) -> None:
    x, w = _mixed(2, 3, 5, 5), _mixed(4, 3, 3, 3)
    layer_fn = functools.partial(F.conv2d, padding=1, stride=2)
    r = _mixed(*layer_fn(x, w, None).shape)
    expected = oracle_conv2d(x, w, None, r, rule, stride=2, padding=1)
    torch.testing.assert_close(fn(x, r, w, layer_fn=layer_fn, epsilon=EPS), expected, rtol=1e-9, atol=1e-11)
    xl, wl, rl = _mixed(3, 6), _mixed(2, 6), _mixed(3, 2)
    torch.testing.assert_close(fn(xl, rl, wl, epsilon=EPS), oracle_matrix(xl, wl, None, rl, rule), rtol=1e-10,
                               atol=1e-12)


def test_relevance_as_gradient_hands_back_the_rule() -> None:
    x, w = torch.rand(2, 5, dtype=torch.float64), _mixed(3, 5)
    leaf = x.clone().requires_grad_(True)
    out = relevance_as_gradient(leaf, w, None, F.linear, functools.partial(zbox_relevance, weight=w, epsilon=EPS))
    g = _mixed(2, 3)
    (grad,) = torch.autograd.grad(out, leaf, g)
    torch.testing.assert_close(grad, zbox_relevance(x, F.linear(x, w) * g, w, epsilon=EPS))


def test_proportional_pool_spreads_by_activation() -> None:
    x = torch.rand(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    pooled = F.max_pool2d(x.detach(), 2)
    out = proportional_pool_forward(x, pooled, functools.partial(F.avg_pool2d, kernel_size=2), EPS)
    assert torch.equal(out, pooled)
    (grad,) = torch.autograd.grad(out, x, torch.ones_like(out))
    relevance = x.detach() * grad
    windows = x.detach().reshape(1, 2, 2, 2, 2, 2).permute(0, 1, 2, 4, 3, 5)
    expected = windows / windows.sum((-1, -2), keepdim=True) * pooled[..., None, None]
    torch.testing.assert_close(relevance, expected.permute(0, 1, 2, 4, 3, 5).reshape(1, 2, 4, 4))


def test_stabilize_keeps_sign_and_never_returns_zero() -> None:
    z = torch.tensor([-1.0, 0.0, 1e-12, 2.0], dtype=torch.float64)
    out = stabilize(z, 1e-6)
    assert (out != 0).all() and (torch.sign(out[[0, 2, 3]]) == torch.sign(z[[0, 2, 3]])).all()


# ---- the rule objects of the LRP engine (ε, z⁺, γ, αβ as modified gradients) -----------------------------------


def oracle_rule(x: Tensor, w: Tensor, b: Tensor | None, r: Tensor, rule: str, eps: float = 1e-6,
                gamma: float = 0.25) -> Tensor:
    """Paper-literal ε (Bach et al. 2015), z⁺ (Montavon et al. 2017) and generalized γ (Montavon et al. 2019,
    Andéol et al. 2021) for ``z_k = Σ_j x_j w_jk + b_k``, one neuron at a time, float64."""

    def stab(value: Tensor) -> Tensor:
        return value + eps if value >= 0 else value - eps

    out = torch.zeros_like(x)
    for n in range(x.shape[0]):
        for k in range(w.shape[0]):
            bias = torch.zeros((), dtype=x.dtype) if b is None else b[k]
            c = x[n] * w[k]
            c_pos = x[n].clamp(min=0) * w[k].clamp(min=0) + x[n].clamp(max=0) * w[k].clamp(max=0)
            c_neg = c - c_pos
            z = c.sum() + bias
            if rule == "epsilon":
                share = c / stab(z)
            elif rule == "zplus":
                share = c_pos / stab(c_pos.sum() + bias.clamp(min=0))
            elif z > 0:  # gamma: an output is explained by the contributions of its own sign, weighted up by γ
                share = (c + gamma * c_pos) / stab(z + gamma * (c_pos.sum() + bias.clamp(min=0)))
            elif z < 0:
                share = (c + gamma * c_neg) / stab(z + gamma * (c_neg.sum() + bias.clamp(max=0)))
            else:
                share = torch.zeros_like(c)
            out[n] += share * r[n, k]
    return out


def _relevance_through(rule: object, x: Tensor, w: Tensor, b: Tensor | None, g: Tensor,
                       layer_fn: object = F.linear) -> tuple[Tensor, Tensor]:
    leaf = x.clone().requires_grad_(True)
    out = rule.forward(leaf, w, b, layer_fn)
    (grad,) = torch.autograd.grad(out, leaf, g)
    return out.detach(), x * grad


@pytest.mark.parametrize("name", ["epsilon", "zplus", "gamma"])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("non_negative", [False, True])
def test_rule_objects_match_the_paper_formulas(name: str, with_bias: bool, non_negative: bool) -> None:
    from captum_wsam.attr import Epsilon, Gamma, ZPlus

    torch.manual_seed(1)
    x = _mixed(3, 7).abs() if non_negative else _mixed(3, 7)
    w, b = _mixed(5, 7), (_mixed(5) if with_bias else None)
    rule = {"epsilon": Epsilon(0.01), "zplus": ZPlus(0.01), "gamma": Gamma(0.5, 0.01)}[name]
    g = _mixed(3, 5)
    out, got = _relevance_through(rule, x, w, b, g)
    torch.testing.assert_close(out, F.linear(x, w, b), rtol=1e-12, atol=1e-12)
    expected = oracle_rule(x, w, b, out * g, name, eps=0.01, gamma=0.5)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["epsilon", "zplus", "gamma", "alphabeta"])
def test_rule_objects_on_conv2d_equal_zennit(name: str) -> None:
    """A single Conv2d with bias and mixed-sign inputs: our rule object against zennit's rule of the same name."""
    import zennit.rules as zr
    from zennit.composites import LayerMapComposite

    from captum_wsam.attr import AlphaBeta, Epsilon, Gamma, ZPlus

    torch.manual_seed(2)
    conv = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1).double()
    x = _mixed(2, 3, 7, 7)
    ours = {"epsilon": Epsilon(1e-3), "zplus": ZPlus(1e-3), "gamma": Gamma(0.25, 1e-3),
            "alphabeta": AlphaBeta(2.0, 1.0, 1e-3)}[name]
    theirs = {"epsilon": zr.Epsilon(1e-3), "zplus": zr.ZPlus(1e-3), "gamma": zr.Gamma(0.25, 1e-3),
              "alphabeta": zr.AlphaBeta(2.0, 1.0, 1e-3)}[name]
    r = torch.randn(2, 4, 4, 4, dtype=torch.float64)
    leaf = x.clone().requires_grad_(True)
    with LayerMapComposite([(torch.nn.Conv2d, theirs)]).context(conv) as modified:
        out = modified(leaf)
        expected = torch.autograd.grad(out, leaf, r)[0]
    out, got = _relevance_through(ours, x, conv.weight.detach(), conv.bias.detach(), r / conv(x).detach(),
                                  conv._conv_forward)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)


def test_pass_hands_relevance_through_unchanged() -> None:
    from captum_wsam.attr import Pass

    x = _mixed(4, 6).requires_grad_(True)
    for fn in (F.silu, F.gelu, F.hardswish, F.relu6, torch.relu):
        y = fn(x.detach())
        g = _mixed(4, 6)
        out = Pass().elementwise(x, y)
        torch.testing.assert_close(out, y)
        torch.testing.assert_close(x.detach() * torch.autograd.grad(out, x, g)[0], y * g)


@pytest.mark.parametrize(
    "make,error",
    [(lambda R: R.Epsilon(-1.0), ValueError), (lambda R: R.Gamma(float("nan")), ValueError),
     (lambda R: R.AlphaBeta(2.0, 0.5), ValueError), (lambda R: R.ZBox(1.0, 0.0), ValueError),
     (lambda R: R.ZBox(float("nan"), 1.0), ValueError), (lambda R: R.ZBox(torch.tensor([0.0, float("nan")]), 1.0),
                                                         ValueError),
     (lambda R: R.ZBox(0.0, 1.0, normalization=((0.5,), (0.0,))), ValueError), (lambda R: R.ZPlus("1"), TypeError)],
)
def test_rule_objects_reject_bad_arguments(make: object, error: type[Exception]) -> None:
    import captum_wsam.attr as R

    with pytest.raises(error):
        make(R)


def test_rules_refuse_the_wrong_kind_of_layer() -> None:
    from captum_wsam.attr import Epsilon, Pass, ZBox

    with pytest.raises(TypeError, match="element-wise"):
        Epsilon().elementwise(torch.ones(1), torch.ones(1))
    with pytest.raises(TypeError, match="Conv/Linear"):
        Pass().forward(torch.ones(1, 2), torch.ones(2, 2), None, F.linear)
    assert ZBox().explicit and not Epsilon().explicit
