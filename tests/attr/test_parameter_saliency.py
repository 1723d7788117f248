"""ParameterSaliency (Levin et al. 2021) against a paper-literal float64 reference: one sample at a time, autograd on
the conv weights, mean of absolute values per filter, two-pass statistics, finite differences for the input map."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from captum_wsam.attr import ParameterSaliency, ParameterSaliencyResult
from captum_wsam.attr.parameter_saliency_functional import (
    conv2d_filter_saliency,
    conv2d_per_sample_weight_grad,
    tap_positions,
    welford_std,
)
from captum_wsam.models import SmallCNN
from tests.helpers import assert_model_untouched


class ConvZoo(nn.Module):
    """Every conv setting the fast path must handle: stride, padding (int, 'same' with an even kernel, reflect,
    circular), dilation, groups, depthwise, bias, a 1×1 conv, an in-place ReLU right after a conv and a conv layer used
    twice in one forward."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.strided = nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        self.grouped = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2, padding_mode="reflect")
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8, padding_mode="circular")
        self.same = nn.Conv2d(8, 6, 4, padding="same", bias=False)
        self.pointwise = nn.Conv2d(6, 6, 1)
        self.head = nn.Linear(6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.bn(self.stem(x)))
        x = self.relu(self.strided(x))
        x = torch.tanh(self.depthwise(torch.tanh(self.grouped(x))))
        x = torch.tanh(self.pointwise(torch.tanh(self.pointwise(self.same(x)))))
        return self.head(x.mean((2, 3)))


def reference_filter_saliency(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Paper-literal :math:`(B, F)`: per sample, s = |dL/dW| of every conv weight, averaged over each filter."""
    model = copy.deepcopy(model).eval()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    rows = []
    for x, y in zip(inputs, target):
        loss = F.cross_entropy(model(x[None]), y[None])
        grads = torch.autograd.grad(loss, [c.weight for c in convs])
        rows.append(torch.cat([g.abs().mean((1, 2, 3)) for g in grads]))
    return torch.stack(rows)


def _zoo(dtype: torch.dtype) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    model = ConvZoo().to(dtype)
    model.bn.running_mean.uniform_(-0.2, 0.2)
    model.bn.running_var.uniform_(0.5, 1.5)
    return model.train(), torch.randn(5, 3, 16, 16, dtype=dtype), torch.tensor([0, 1, 2, 3, 4])


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_matches_per_sample_loop_float64() -> None:
    model, x, y = _zoo(torch.float64)
    result = ParameterSaliency(model, mode="raw").attribute_detailed(x, y)
    expected = reference_filter_saliency(model, x, y)
    torch.testing.assert_close(result.raw, expected, rtol=1e-10, atol=1e-14)
    assert torch.equal(result.flat, result.raw)
    assert len(result.filter_index) == expected.shape[1] and result.filter_index[8] == ("strided", 0)


def test_matches_per_sample_loop_float32_and_small_cnn() -> None:
    model = SmallCNN(width=8, depth=3)
    x, y = torch.rand(6, 3, 32, 32), torch.randint(0, 6, (6,))
    result = ParameterSaliency(model, mode="raw").attribute_detailed(x, y)
    expected = reference_filter_saliency(model.double(), x.double(), y).float()
    assert ((result.raw - expected).abs() / expected.abs().clamp_min(1e-6)).max() <= 3e-3
    assert result.raw.dtype == torch.float32


@pytest.mark.parametrize(
    "settings",
    [
        {"kernel_size": 3, "padding": 1},
        {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 0), "dilation": (1, 2)},
        {"kernel_size": 3, "padding": 2, "dilation": 2, "groups": 2, "padding_mode": "reflect"},
        {"kernel_size": 3, "padding": 1, "groups": 4, "padding_mode": "circular"},
        {"kernel_size": 4, "padding": "same", "padding_mode": "replicate"},
    ],
)
def test_fast_contractions_equal_the_definition(settings: dict) -> None:
    conv = nn.Conv2d(4, 8, **settings).double()
    x = torch.randn(3, 4, 12, 12, dtype=torch.float64)
    out = conv(x)
    grad_out = torch.randn_like(out)
    # Definition: the weight gradient of sample b alone.
    expected = torch.stack([torch.autograd.grad(conv(x[b : b + 1]), conv.weight, grad_out[b : b + 1])[0]
                            for b in range(len(x))])
    kwargs = dict(settings)
    torch.testing.assert_close(conv2d_per_sample_weight_grad(x, grad_out, **kwargs), expected)
    for method in ("unfold", "grouped"):
        for block in (7, 2**20):  # tiny blocks exercise the blocking loops
            fast = conv2d_filter_saliency(x, grad_out, **kwargs, method=method, block_elements=block)
            torch.testing.assert_close(fast, expected.abs().mean((2, 3, 4)), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("size", "settings"),
    [
        ((2, 2), {"kernel_size": 3, "padding": 1}),  # resnet18's layer4 at 64x64: corner taps see one position
        ((4, 4), {"kernel_size": 3, "stride": 2, "padding": 1}),
        ((1, 1), {"kernel_size": 3, "padding": 1}),  # all but the centre tap read only padding
        ((2, 3), {"kernel_size": 3, "padding": 2, "dilation": 2, "groups": 2}),
        ((3, 2), {"kernel_size": (3, 1), "padding": (1, 0)}),
        ((2, 2), {"kernel_size": 3, "padding": 1, "padding_mode": "reflect"}),  # padding is data: no factoring
    ],
)
@pytest.mark.parametrize("sparse", [False, True])
def test_small_maps_factored_taps_equal_the_definition(size: tuple, settings: dict, sparse: bool) -> None:
    conv = nn.Conv2d(4, 8, **settings).double()
    x = torch.randn(5, 4, *size, dtype=torch.float64)
    grad_out = torch.randn_like(conv(x))
    if sparse:  # exact zeros (ReLU inputs, dead units) and ties: the angle sort of two-position taps must cope
        x = x.relu() * (torch.rand_like(x) < 0.7)
        grad_out = grad_out * (torch.rand_like(grad_out) < 0.6)
        grad_out[0] = 0.0
        x[1] = 1.0
    expected = torch.stack([torch.autograd.grad(conv(x[b : b + 1]), conv.weight, grad_out[b : b + 1])[0]
                            for b in range(len(x))]).abs().mean((2, 3, 4))
    for block in (7, 2**20):
        fast = conv2d_filter_saliency(x, grad_out, **settings, method="unfold", block_elements=block)
        torch.testing.assert_close(fast, expected, rtol=1e-12, atol=1e-14)


def test_tap_positions_counts_real_pixels() -> None:
    assert tap_positions((2, 2), 3, padding=1).view(3, 3).tolist() == [[1, 2, 1], [2, 4, 2], [1, 2, 1]]
    assert tap_positions((4, 4), 3, stride=2, padding=1).view(3, 3).tolist() == [[1, 2, 2], [2, 4, 4], [2, 4, 4]]
    assert tap_positions((1, 1), 3, padding=1).view(3, 3).tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]


def test_fit_equals_two_pass_statistics_and_round_trips(tmp_path) -> None:
    model = SmallCNN(width=4, depth=3).double().train()
    x, y = torch.rand(11, 3, 32, 32, dtype=torch.float64), torch.randint(0, 6, (11,))
    saliency = ParameterSaliency(model).fit(DataLoader(TensorDataset(x, y), batch_size=4), progress=False)
    raw = reference_filter_saliency(model, x, y)
    std = raw.std(0, correction=1)
    std = torch.where(std <= 1e-14, torch.ones_like(std), std)
    assert saliency.count == 11
    torch.testing.assert_close(saliency.mean, raw.mean(0), rtol=1e-10, atol=0)
    torch.testing.assert_close(saliency.std, std, rtol=1e-8, atol=0)
    result = saliency.attribute_detailed(x[:3], y[:3])
    torch.testing.assert_close(result.flat, (raw[:3] - raw.mean(0)) / std, rtol=1e-7, atol=1e-9)
    norm = ParameterSaliency(model, mode="norm")
    norm.mean, norm.std = saliency.mean, saliency.std
    mean = raw.mean(0)
    # Dead filters (ReLU never active) have mean 0: "norm" divides them by 1, not 0.
    torch.testing.assert_close(norm.attribute_detailed(x[:3], y[:3]).flat, raw[:3] / torch.where(mean == 0, 1.0, mean))

    path = tmp_path / "stats.pt"
    saliency.save(path)
    loaded = ParameterSaliency(model).load(path)
    assert loaded.count == 11 and torch.equal(loaded.mean, saliency.mean) and torch.equal(loaded.std, saliency.std)
    assert torch.equal(loaded.attribute_detailed(x[:3], y[:3]).flat, result.flat)
    with pytest.raises(ValueError, match="layers"):
        ParameterSaliency(model, layers=["block1.conv"]).load(path)


def test_tiny_std_becomes_one() -> None:
    assert torch.equal(welford_std(4, torch.tensor([0.0, 3e-28, 3.0])), torch.tensor([1.0, 1.0, 1.0]))


class Smooth(nn.Module):
    """Tiny smooth network (tanh, average pooling) for finite differences of a second-order quantity."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 4, 3, stride=2, groups=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.conv2(torch.tanh(self.conv1(x))))
        return self.head(x.mean((2, 3)))


def test_input_saliency_matches_finite_differences() -> None:
    model = Smooth().double()
    x, y = torch.randn(2, 2, 7, 7, dtype=torch.float64), torch.tensor([0, 2])
    saliency = ParameterSaliency(model)
    saliency.fit([(torch.randn(6, 2, 7, 7, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2]))], progress=False)
    k, boost = 3, 100.0
    grad = saliency.input_saliency(x, y, k=k, boost=boost)
    assert grad.shape == x.shape and grad.dtype == x.dtype

    def standardized(inputs: torch.Tensor) -> torch.Tensor:
        return (reference_filter_saliency(model, inputs, y) - saliency.mean) / saliency.std

    base = standardized(x)
    boosted = base.clone()
    top = base.topk(k, dim=1).indices
    boosted.scatter_(1, top, base.gather(1, top) * boost)

    def similarity(inputs: torch.Tensor) -> torch.Tensor:
        return F.cosine_similarity(standardized(inputs), boosted, dim=1)

    step = 1e-6
    for _ in range(3):
        direction = torch.randn_like(x)
        numeric = (similarity(x + step * direction) - similarity(x - step * direction)) / (2 * step)
        analytic = (grad * direction).flatten(1).sum(1)
        torch.testing.assert_close(analytic, numeric, rtol=1e-5, atol=1e-8)


def test_top_filters_and_pruning_agree_with_explicit_zeroing() -> None:
    model = SmallCNN(width=4, depth=3).double()
    x, y = torch.rand(8, 3, 32, 32, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 4, 5, 0, 1])
    saliency = ParameterSaliency(model, mode="raw")
    result = saliency.attribute_detailed(x, y)
    top = saliency.top_filters(x, y, k=4)
    for b in range(len(x)):
        values, indices = result.flat[b].topk(4)
        assert [(*result.filter_index[j], v) for j, v in zip(indices.tolist(), values.tolist())] == top[b]
    report = saliency.prune_top_filters(x, y, k=4, trials=3, seed=7)
    assert torch.equal(report.misclassified, (result.prediction != y).nonzero().flatten())
    assert report.num_misclassified > 0 and len(report.fixed_random) == 3
    assert report.fixed_random == saliency.prune_top_filters(x, y, k=4, trials=3, seed=7).fixed_random
    for i, b in enumerate(report.misclassified.tolist()):
        pruned = copy.deepcopy(model).eval()
        with torch.no_grad():
            for name, f, _ in top[b]:
                pruned.get_submodule(name).weight[f] = 0
        assert pruned(x[b : b + 1]).argmax(1).item() == report.salient_prediction[i].item()
    assert report.fixed_salient == int((report.salient_prediction == y[report.misclassified]).sum())


def test_plot_profile_draws_both_groups() -> None:
    saliency = ParameterSaliency(SmallCNN(width=4, depth=2), mode="raw")
    result = saliency.attribute_detailed(torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]))
    figure = saliency.plot_profile(result, correct=torch.tensor([True, False, True, False]), title="t")
    assert len(figure.axes) == 3 and len(figure.axes[0].lines) == 1 and len(figure.axes[1].lines) == 1
    assert isinstance(result, ParameterSaliencyResult) and result.layer_means().shape == (4, 2)


def test_model_left_untouched_in_train_mode() -> None:
    model = SmallCNN(width=4, depth=3).train()
    model.block2.bn.eval()  # a frozen BatchNorm inside a model in train mode stays frozen
    model.classifier.weight.grad = torch.randn_like(model.classifier.weight)
    model.block1.conv.weight.requires_grad_(False)
    x, y = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    saliency = ParameterSaliency(model)
    saliency.fit([(x, y)], progress=False)
    calls = {
        "attribute": lambda t: saliency.attribute_detailed(x, t),
        "fit": lambda t: saliency.fit([(x, torch.as_tensor(t).expand(4))], progress=False),
        "top_filters": lambda t: saliency.top_filters(x, t, k=3),
        "input_saliency": lambda t: saliency.input_saliency(x, t, k=3),
        "prune_top_filters": lambda t: saliency.prune_top_filters(x, t, k=2, trials=1),
    }
    for name, call in calls.items():
        out = assert_model_untouched(model, call, y, inputs=[x])
        assert out is not None, name
    eval_result = ParameterSaliency(copy.deepcopy(model).eval(), mode="raw").attribute_detailed(x, y)
    torch.testing.assert_close(ParameterSaliency(model, mode="raw").attribute_detailed(x, y).raw, eval_result.raw)


def test_bad_input_gives_clear_errors() -> None:
    model = SmallCNN(width=4, depth=2)
    x = torch.rand(2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"target must lie in \[0, 5\].*got 6"):
        ParameterSaliency(model, mode="raw").attribute_detailed(x, torch.tensor([0, 6]))
    with pytest.raises(ValueError, match="no nn.Conv2d layer"):
        ParameterSaliency(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)))
    with pytest.raises(RuntimeError, match=r"call fit\(loader\)"):
        ParameterSaliency(model).attribute_detailed(x, 0)
    with pytest.raises(RuntimeError, match=r"call fit\(loader\)"):
        ParameterSaliency(model, mode="norm").input_saliency(x, 0)
    with pytest.raises(ValueError, match="mode must be one of"):
        ParameterSaliency(model, mode="zscore")
    with pytest.raises(TypeError, match="layers must be nn.Conv2d.*block1.bn"):
        ParameterSaliency(model, layers=["block1.bn"])
    with pytest.raises(ValueError, match="one loss per sample"):
        ParameterSaliency(model, loss_fn=F.cross_entropy, mode="raw").attribute_detailed(x, 0)
    with pytest.raises(ValueError, match="k must be at most the number of filters"):
        ParameterSaliency(model, mode="raw").top_filters(x, 0, k=13)
    with pytest.raises(TypeError, match="inputs must have a floating-point dtype"):
        ParameterSaliency(model, mode="raw").attribute_detailed(x.long(), 0)
    with pytest.raises(ValueError, match="at least 2 samples"):
        ParameterSaliency(model).fit([(x[:1], torch.tensor([0]))], progress=False)


def _saved_statistics(tmp_path: Path) -> tuple[ParameterSaliency, Path, dict]:
    torch.manual_seed(0)
    saliency = ParameterSaliency(SmallCNN(width=4, depth=2))
    saliency.mean, saliency.std, saliency.count = torch.rand(12) + 0.1, torch.rand(12) + 0.5, 10
    path = tmp_path / "stats.pt"
    saliency.save(path)
    return saliency, path, torch.load(path, weights_only=True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update(mean=torch.zeros(11)), r"'mean' must be a float tensor of shape \(12,\)"),
        (lambda s: s.update(std=torch.ones(12, 1)), r"'std' must be a float tensor of shape \(12,\)"),
        (lambda s: s.pop("layers"), r"lack the keys \['layers'\]"),
        (lambda s: [s.pop(k) for k in ("mean", "count")], r"lack the keys \['count', 'mean'\]"),
        (lambda s: s.update(layers=["block1.conv", "head.conv"]), r"not layers of this model: \['head.conv'\]"),
        (lambda s: s.update(sizes=[4, 9]), "are for layers"),
        (lambda s: s["mean"].__setitem__(3, float("nan")), "'mean' holds 1 non-finite"),
        (lambda s: s["std"].__setitem__(0, float("inf")), "'std' holds 1 non-finite"),
        (lambda s: s["std"].__setitem__(0, 0.0), "'std' must be > 0"),
        (lambda s: s.update(count=1), "'count' must be an int >= 2"),
        (lambda s: s.update(format=2), "does not hold ParameterSaliency statistics"),
    ],
    ids=["short_mean", "std_shape", "no_layers", "no_mean_count", "unknown_layer", "sizes", "nan_mean", "inf_std",
         "zero_std", "count", "format"],
)
def test_load_validates_and_names_the_file(tmp_path: Path, change, message: str) -> None:
    _, _, state = _saved_statistics(tmp_path)
    change(state)
    bad = tmp_path / "bad_stats.pt"
    torch.save(state, bad)
    fresh = ParameterSaliency(SmallCNN(width=4, depth=2))
    with pytest.raises(ValueError, match=message) as info:
        fresh.load(bad)
    assert "bad_stats.pt" in str(info.value)
    assert fresh.mean is None and fresh.std is None and fresh.count == 0  # nothing half-loaded


@pytest.mark.parametrize("content", [b"", b"not a torch file"], ids=["empty", "garbage"])
def test_load_unreadable_file_names_it(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "broken.pt"
    bad.write_bytes(content)
    with pytest.raises(ValueError, match=r"statistics in '.*broken\.pt' could not be read"):
        ParameterSaliency(SmallCNN(width=4, depth=2)).load(bad)
    with pytest.raises(FileNotFoundError):
        ParameterSaliency(SmallCNN(width=4, depth=2)).load(tmp_path / "missing.pt")


def test_load_round_trip(tmp_path: Path) -> None:
    saliency, path, _ = _saved_statistics(tmp_path)
    loaded = ParameterSaliency(SmallCNN(width=4, depth=2)).load(path)
    assert torch.equal(loaded.mean, saliency.mean) and torch.equal(loaded.std, saliency.std) and loaded.count == 10


def test_fit_takes_data_and_the_old_name_loader_with_a_deprecation_warning() -> None:
    model = SmallCNN(width=4, depth=2).double()
    x, y = torch.rand(5, 3, 32, 32, dtype=torch.float64), torch.randint(0, 6, (5,))
    batches = DataLoader(TensorDataset(x, y), batch_size=2)
    new = ParameterSaliency(model).fit(data=batches, progress=False)
    with pytest.warns(DeprecationWarning, match="loader=.*deprecated; pass data="):
        old = ParameterSaliency(model).fit(loader=batches, progress=False)
    assert new.count == old.count == 5
    assert torch.equal(new.mean, old.mean) and torch.equal(new.std, old.std)
    with pytest.raises(TypeError, match="both 'data' and its old name 'loader'"):
        ParameterSaliency(model).fit(data=batches, loader=batches, progress=False)
    with pytest.raises(TypeError, match="data must be an iterable"):
        ParameterSaliency(model).fit(3, progress=False)


def test_split_modules_are_re_exported() -> None:
    from captum_wsam.attr import parameter_saliency, parameter_saliency_attribution

    assert issubclass(ParameterSaliency, parameter_saliency_attribution.ParameterSaliencyAttribution)
    assert parameter_saliency.cross_entropy_per_sample is parameter_saliency_attribution.cross_entropy_per_sample
    for name in parameter_saliency.__all__:
        assert getattr(__import__("captum_wsam.attr", fromlist=[name]), name, None) in (
            None, getattr(parameter_saliency, name))
