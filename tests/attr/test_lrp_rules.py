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
