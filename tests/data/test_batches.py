"""data.batches: one split_batch, one as_loader, and the renamed ``data`` argument with its deprecation path."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from captum_wsam.data import IndexedDataset, ShapesTextures
from captum_wsam.data.batches import as_loader, renamed_data_argument, split_batch


def test_split_batch_two_and_three_items():
    images, labels = torch.zeros(2, 3, 4, 4), torch.tensor([0, 1])
    assert split_batch((images, labels))[2] == {}
    info = {"index": torch.tensor([3, 4])}
    out = split_batch([images, labels, info])
    assert out[0] is images and out[1] is labels and out[2] is info
    for bad in (images, (images,), (images, labels, info, info)):
        with pytest.raises(TypeError, match="batch must be"):
            split_batch(bad)


def test_as_loader_passes_loaders_and_seeds_shuffling():
    data = ShapesTextures(n=10, size=32)
    loader = DataLoader(data, batch_size=4)
    assert as_loader(loader) is loader
    plain = [split_batch(b)[2]["index"].tolist() for b in as_loader(data, 4)]
    assert plain == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    first = [split_batch(b)[2]["index"].tolist() for b in as_loader(data, 4, shuffle=True, seed=1)]
    again = [split_batch(b)[2]["index"].tolist() for b in as_loader(data, 4, shuffle=True, seed=1)]
    assert first == again and first != plain and sorted(i for batch in first for i in batch) == list(range(10))
    with pytest.raises(TypeError, match="loader must be a torch Dataset or DataLoader, got list"):
        as_loader([1, 2], name="loader")
    with pytest.raises(ValueError, match="batch_size"):
        as_loader(TensorDataset(torch.zeros(3)), 0)


def test_renamed_data_argument():
    @renamed_data_argument("loader", "dataset")
    def count(model: str, data: list, batch_size: int = 2) -> int:
        return len(data)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert count("m", [1, 2, 3]) == 3 and count("m", data=[1]) == 1  # the new name: no warning
    for old in ("loader", "dataset"):
        with pytest.warns(DeprecationWarning, match=rf"count\({old}=\.\.\.\) is deprecated; pass data="):
            assert count("m", **{old: [1, 2]}) == 2
    with pytest.raises(TypeError, match="both 'data' and its old name 'loader'"):
        count("m", data=[1], loader=[2])
    with pytest.raises(TypeError, match="no parameter 'data'"):
        renamed_data_argument("loader")(lambda loader: loader)


def test_indexed_dataset_adds_the_position_and_keeps_the_info():
    plain = IndexedDataset(TensorDataset(torch.zeros(4, 3, 2, 2), torch.arange(4)))
    batch = next(iter(DataLoader(plain, batch_size=4)))
    images, labels, info = split_batch(batch)
    assert images.shape == (4, 3, 2, 2) and torch.equal(labels, torch.arange(4))
    assert torch.equal(info["index"], torch.arange(4))
    shapes = ShapesTextures(n=6, size=32, seed=0)
    wrapped = IndexedDataset(torch.utils.data.Subset(shapes, [5, 2]))
    image, label, info = wrapped[1]
    assert torch.equal(image, shapes[2][0]) and label == shapes[2][1]
    assert info["index"] == 1 and info["shape"] == shapes[2][2]["shape"]  # own position, other info kept
    assert shapes[2][2]["index"] == 2  # the wrapped item's own info is not modified


@pytest.mark.parametrize(("dataset", "error", "match"), [
    ([1, 2, 3], TypeError, "dataset must be a map-style torch Dataset"),
    (TensorDataset(torch.zeros(3)), TypeError, r"dataset items must be \(image, label\)"),
])
def test_indexed_dataset_bad_input(dataset, error, match):
    with pytest.raises(error, match=match):
        IndexedDataset(dataset)[0]
