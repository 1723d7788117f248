"""SmallCNN: the package's reference classifier for ShapesTextures (and any small RGB image task).

A plain VGG-style network (Simonyan & Zisserman 2015, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", arXiv:1409.1556) shrunk to run on a CPU: ``depth`` blocks of conv 3×3 → BatchNorm → ReLU → max-pool 2×2,
global average pooling and a linear head. Every layer is a named attribute so that users can pick a Grad-CAM/SAM layer
(``model.block3``, ``model.block4.conv``), and it only uses layers that LRP αβ supports.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from .._checks import check_positive_int


class ConvBlock(nn.Sequential):
    """conv 3×3 (no bias) → BatchNorm → ReLU → max-pool 2×2; children named ``conv``, ``bn``, ``relu``, ``pool``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            OrderedDict(
                conv=nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                bn=nn.BatchNorm2d(out_channels),
                relu=nn.ReLU(),
                pool=nn.MaxPool2d(2),
            )
        )


class SmallCNN(nn.Module):
    """A small VGG-style CNN: ``block1 … block{depth}`` → ``pool`` (global average) → ``flatten`` → ``classifier``.

    Block ``i`` has ``width · 2^(i-1)`` channels (capped at ``8 · width``) and halves the resolution.

    Args:
        num_classes: number of outputs (logits).
        in_channels: input channels.
        width: channels of the first block.
        depth: number of conv blocks (each halves the resolution, flooring odd sizes).

    Shape:
        - Input: :math:`(B, C_{in}, H, W)`, with :math:`H, W \\geq 2^{depth}`.
        - Output: :math:`(B, \\text{num\\_classes})` logits.

    Examples:
        >>> import torch
        >>> model = SmallCNN(num_classes=6)
        >>> model(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 6])
        >>> [name for name, _ in model.named_children()]
        ['block1', 'block2', 'block3', 'block4', 'pool', 'flatten', 'classifier']
    """

    def __init__(self, num_classes: int = 6, in_channels: int = 3, width: int = 16, depth: int = 4) -> None:
        super().__init__()
        for value, name in ((num_classes, "num_classes"), (in_channels, "in_channels"), (width, "width"),
                            (depth, "depth")):
            check_positive_int(value, name)
        channels = in_channels
        for i in range(depth):
            out = width * min(2**i, 8)
            self.add_module(f"block{i + 1}", ConvBlock(channels, out))
            channels = out
        self.depth = depth
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(channels, num_classes)

    @property
    def blocks(self) -> list[ConvBlock]:
        """The conv blocks, first to last."""
        return [getattr(self, f"block{i + 1}") for i in range(self.depth)]

    @property
    def last_conv_block(self) -> ConvBlock:
        """The default Grad-CAM/SAM layer: the last conv block."""
        return self.blocks[-1]

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return self.classifier(self.flatten(self.pool(x)))


def small_cnn(num_classes: int = 6, **kwargs: int) -> SmallCNN:
    """Build a :class:`SmallCNN` (registry entry ``"small_cnn"``)."""
    return SmallCNN(num_classes=num_classes, **kwargs)


__all__ = ["ConvBlock", "SmallCNN", "small_cnn"]
