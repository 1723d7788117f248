"""Nearest neighbours in feature space (Krizhevsky et al. 2012) vs a float64 brute-force reference."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from captum_wsam.data import ShapesTextures
from captum_wsam.visualize.neighbors import dataset_image, feature_neighbors, plot_feature_neighbors
from tests.helpers import assert_model_untouched


def test_query_in_dataset_comes_first_and_matches_brute_force(trained_cnn: nn.Module) -> None:
    data = ShapesTextures(n=60, size=32, seed=5)
    images, _ = data.tensors()
    query = images[[7, 21, 42]]
    result = feature_neighbors(trained_cnn, trained_cnn.block3, query, data, k=4, batch_size=16, progress=False)
    assert result.indices[:, 0].tolist() == [7, 21, 42]
    assert (result.distances[:, 0] == 0).all()
    features = {}
    handle = trained_cnn.block3.register_forward_hook(lambda _m, _i, out: features.setdefault("x", out))
    try:
        with torch.no_grad():
            trained_cnn(images)
    finally:
        handle.remove()
    flat = features["x"].flatten(1).double()
    for row, q in enumerate([7, 21, 42]):
        distances = [((flat[q] - flat[i]) ** 2).sum().sqrt().item() for i in range(len(flat))]
        order = sorted(range(len(flat)), key=lambda i: distances[i])[:4]
        assert result.indices[row].tolist() == order
        torch.testing.assert_close(result.distances[row].double(), torch.tensor([distances[i] for i in order],
                                   dtype=torch.float64), atol=1e-4, rtol=1e-4)
    tensor_result = feature_neighbors(trained_cnn, trained_cnn.block3, query, images, k=4, progress=False)
    assert torch.equal(tensor_result.indices, result.indices)


def test_untouched_plot_and_bad_inputs(trained_cnn: nn.Module, images: Tensor) -> None:
    import matplotlib.pyplot as plt

    dataset = torch.cat([images, images.flip(-1)])

    def call(k: int) -> object:
        return feature_neighbors(trained_cnn, None, images[:2], dataset, k=k, progress=False)

    result = assert_model_untouched(trained_cnn, call, 3, invalid_target=9, inputs=[images])
    assert result.indices[:, 0].tolist() == [0, 1]
    assert len(plot_feature_neighbors(images[:2], dataset, result).axes) == 8
    plt.close("all")
    with pytest.raises(ValueError, match="layer must be a submodule"):
        feature_neighbors(trained_cnn, nn.ReLU(), images, dataset)
    with pytest.raises(TypeError, match="data must be"):
        feature_neighbors(trained_cnn, None, images, [1, 2])
    with pytest.raises(ValueError, match="query must be a 4-D"):
        feature_neighbors(trained_cnn, None, images[0], dataset)


def test_old_argument_name_dataset_still_works_with_a_warning(trained_cnn: nn.Module, images: Tensor) -> None:
    import matplotlib.pyplot as plt
    from torch.utils.data import TensorDataset

    data = TensorDataset(images, torch.zeros(len(images), dtype=torch.long))
    expected = feature_neighbors(trained_cnn, None, images[:2], data=data, k=2, batch_size=3, progress=False)
    with pytest.warns(DeprecationWarning, match=r"feature_neighbors\(dataset=...\) is deprecated"):
        old = feature_neighbors(trained_cnn, None, images[:2], dataset=data, k=2, batch_size=3, progress=False)
    assert torch.equal(old.indices, expected.indices) and expected.indices[:, 0].tolist() == [0, 1]
    with pytest.warns(DeprecationWarning):
        assert torch.equal(dataset_image(dataset=data, index=1), images[1])
    with pytest.warns(DeprecationWarning):
        assert len(plot_feature_neighbors(images[:2], dataset=data, result=expected).axes) == 6
    plt.close("all")
    with pytest.raises(TypeError, match="got both 'data' and its old name 'dataset'"):
        feature_neighbors(trained_cnn, None, images[:2], data=data, dataset=data)
