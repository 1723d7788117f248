"""visualize_attr: SAM/WSAM maps render through Captum's visualize_image_attr, all-zero maps included."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch
from captum.attr import visualization as captum_visualization

from captum_wsam.attr import SAM, WSAM, has_signal, visualize_attr
from captum_wsam.models import SmallCNN
from tests.attr.style_stand_in import ColourStyles


def test_renders_sam_and_wsam_over_the_image() -> None:
    torch.manual_seed(0)
    model, x = SmallCNN(width=4, depth=3).eval(), torch.rand(1, 3, 32, 32)
    maps = [SAM(model, model.block3, ColourStyles()).attribute(x, 0, alpha=0.5, style=1),
            WSAM(model, model.block3, ColourStyles(), alphas=(0.5,), styles=2).attribute(x, 0)]
    for attribution in maps:
        if not has_signal(attribution):
            continue
        fig, ax = visualize_attr(attribution[0], x[0], method="blended_heat_map", use_pyplot=False)
        assert ax.images and ax.images[-1].get_array().shape[:2] == (32, 32)
        plt.close(fig)


def test_all_zero_map_gives_a_clear_warning_not_an_assertion() -> None:
    zero, image = torch.zeros(1, 4, 4), torch.rand(3, 16, 16)
    with pytest.raises(AssertionError):  # what users hit without the helper
        captum_visualization.visualize_image_attr(zero.permute(1, 2, 0).numpy(), image.permute(1, 2, 0).numpy(),
                                                  method="blended_heat_map", sign="positive", use_pyplot=False)
    with pytest.warns(UserWarning, match="all-zero"):
        _, ax = visualize_attr(zero, image, use_pyplot=False)
    assert ax.get_title() == "all-zero attribution"
    with pytest.warns(UserWarning, match="no negative value"):
        visualize_attr(torch.rand(4, 4), sign="negative", use_pyplot=False)
    plt.close("all")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="attr"):
        visualize_attr(torch.rand(2, 2, 4, 4))
    with pytest.raises(ValueError, match="sign"):
        visualize_attr(torch.rand(4, 4), sign="both")
    with pytest.raises(TypeError, match="attr"):
        visualize_attr([[0.0]])
