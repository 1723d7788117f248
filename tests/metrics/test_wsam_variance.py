"""WSAM variance: equals a direct per-sample computation of the paper's formula, and 2 gloo processes equal 1."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from captum.attr import LayerGradCam
from torch.utils.data import DataLoader, TensorDataset

from captum_wsam.attr import WSAM
from captum_wsam.data import ShapesTextures
from captum_wsam.metrics import WSAMVarianceResult, plot_wsam_variance, wsam_variance
from captum_wsam.models import SmallCNN
from tests.attr.style_stand_in import ColourStyles


def _setup() -> tuple[WSAM, ShapesTextures]:
    torch.manual_seed(0)
    model = SmallCNN(width=4, depth=2).eval()
    data = ShapesTextures(n=11, size=32, seed=5)
    return WSAM(model, model.block2, ColourStyles(num_styles=4), alphas=(0.3, 0.7), styles=2), data


def direct_variance(wsam: WSAM, data: ShapesTextures) -> tuple[torch.Tensor, torch.Tensor]:
    """1/(Z m) Σ_i ||WSAM_i - y_i I_i||² per class, one sample at a time, float64 accumulation."""
    model, layer = wsam.forward_func, wsam.layer
    images, labels = data.tensors()
    totals, counts = torch.zeros(6, dtype=torch.float64), torch.zeros(6, dtype=torch.float64)
    for x, c in zip(images, labels.tolist()):
        x = x[None]
        w = wsam.attribute(x, target=c)
        i_map = LayerGradCam(model, layer).attribute(x, c, relu_attributions=True)
        y = torch.softmax(model(x), dim=1)[0, c]
        z = w.shape[-1] * w.shape[-2]
        totals[c] += ((w - y * i_map) ** 2).sum().double() / z
        counts[c] += 1
    return totals / counts, counts


def test_equals_direct_computation() -> None:
    wsam, data = _setup()
    result = wsam_variance(wsam, DataLoader(data, batch_size=4), progress=False)
    expected, counts = direct_variance(wsam, data)
    assert result.classes == data.classes
    assert torch.equal(result.counts, counts.long())
    present = counts > 0
    torch.testing.assert_close(result.variance[present], expected[present], atol=1e-10, rtol=1e-5)
    assert torch.isnan(result.variance[~present]).all()
    assert (result.variance[present] > 0).all()


def test_without_class_names_and_plot() -> None:
    wsam, data = _setup()
    images, labels = data.tensors()
    loader = DataLoader(TensorDataset(images[:6], labels[:6]), batch_size=3)
    result = wsam_variance(wsam, loader, progress=False)
    assert result.classes is None and result.variance.shape == (6,) and int(result.counts.sum()) == 6
    assert set(result.as_dict()) == {str(i) for i in range(6)}
    with_names = WSAMVarianceResult(result.variance, result.counts, tuple("abcdef"))
    ax = plot_wsam_variance(with_names, title="t")
    assert ax.get_title() == "t" and len(ax.patches) == 6


def test_data_argument_and_the_old_name_loader_with_a_deprecation_warning() -> None:
    wsam, data = _setup()
    images, labels = data.tensors()
    batches = DataLoader(TensorDataset(images[:4], labels[:4]), batch_size=2)
    new = wsam_variance(wsam, data=batches, progress=False)
    with pytest.warns(DeprecationWarning, match="loader=.*deprecated; pass data="):
        old = wsam_variance(wsam, loader=batches, progress=False)
    assert torch.equal(new.counts, old.counts) and torch.equal(new.variance.nan_to_num(-1), old.variance.nan_to_num(-1))
    with pytest.raises(TypeError, match="both 'data' and its old name 'loader'"):
        wsam_variance(wsam, data=batches, loader=batches)


def test_bad_arguments() -> None:
    wsam, data = _setup()
    with pytest.raises(TypeError, match="wsam"):
        wsam_variance(object(), DataLoader(data, batch_size=4))
    with pytest.raises(ValueError, match="num_classes"):
        wsam_variance(wsam, DataLoader(data, batch_size=4), num_classes=0)
    with pytest.raises(ValueError, match="labels"):
        wsam_variance(wsam, DataLoader(data, batch_size=4), num_classes=3, progress=False)


def _ddp_worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        torch.set_num_threads(1)
        wsam, data = _setup()
        result = wsam_variance(wsam, DataLoader(data, batch_size=3), progress=False)
        torch.save({"variance": result.variance, "counts": result.counts}, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_equal_one(tmp_path: Path) -> None:
    wsam, data = _setup()
    single = wsam_variance(wsam, DataLoader(data, batch_size=3), progress=False)
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        shared = torch.load(tmp_path / f"rank{rank}.pt")
        assert torch.equal(shared["counts"], single.counts)
        present = ~torch.isnan(single.variance)
        torch.testing.assert_close(shared["variance"][present], single.variance[present], atol=1e-12, rtol=1e-9)
        assert math.isclose(float(shared["counts"].sum()), len(data))


def test_non_finite_images_rejected() -> None:
    wsam, data = _setup()
    images, labels = data.tensors()
    images = images[:4].clone()
    images[2, 0, 5, 5] = float("nan")
    with pytest.raises(ValueError, match="images of batch 0 must be finite"):
        wsam_variance(wsam, DataLoader(TensorDataset(images, labels[:4]), batch_size=4), progress=False)
