r"""The two networks of Jackson et al.'s style augmentation: Ghiasi's style transformer and the style predictor.

Jackson, Abarghouei, Bonner, Breckon and Obara (2019), "Style Augmentation: Data Augmentation via Style
Randomization", CVPR Workshops, arXiv:1809.05375 (code: github.com/philipjackson/style-augmentation, MIT), use the
arbitrary-style network of Ghiasi, Lee, Kudlur, Dumoulin and Shlens (2017), "Exploring the structure of a real-time,
arbitrary neural artistic stylization network", BMVC, arXiv:1705.06830:

- **transformer** :math:`o = \sigma\big(\mathrm{Dec}_z(\mathrm{Res}_z^{5}(\mathrm{Enc}(x)))\big)`: three
  conv–InstanceNorm–ReLU layers (9×9/1, 3×3/2, 3×3/2), five residual blocks and three conv layers (two after a
  nearest ×2 upsampling, the last 9×9 without activation), every one after the first three with *conditional*
  instance norm

  .. math:: \mathrm{CIN}(h; z) = \gamma(z)\,\frac{h - \mu(h)}{\sigma(h)} + \beta(z), \qquad
            \gamma(z) = W_\gamma z + b_\gamma,\quad \beta(z) = W_\beta z + b_\beta

  on a 100-d style embedding :math:`z`; sigmoid output;
- **style predictor** :math:`z = W\,\overline{\mathrm{Inception}_{\le \mathrm{Mixed\_6e}}(x)} + b`: Inception-v3
  (Szegedy, Vanhoucke, Ioffe, Shlens and Wojna 2016, "Rethinking the Inception Architecture for Computer Vision",
  CVPR, arXiv:1512.00567) truncated after ``Mixed_6e``, mean-pooled, linear :math:`768 \to 100`.

Parameter names follow the original checkpoints (:mod:`captum_wsam.augment.jackson_checkpoints` loads them); the
backend that mixes the embeddings is :class:`~captum_wsam.augment.JacksonStyleNet`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.inception import BasicConv2d, InceptionA, InceptionB, InceptionC

#: Length of a style embedding :math:`z`.
EMBEDDING_DIM = 100
_MIN_PREDICTOR_SIDE = 75  # Inception-v3 up to Mixed_6e needs at least 75×75 inputs


# --------------------------------------------------------------------------------------------- transformer
class _ConvInstanceReLU(nn.Module):
    """Reflection pad, convolution, instance norm, ReLU (the three unconditioned input layers)."""

    def __init__(self, channels_in: int, channels_out: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv = nn.Conv2d(channels_in, channels_out, kernel_size, stride)
        self.instancenorm = nn.InstanceNorm2d(channels_out)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.instancenorm(self.conv(self.reflection_pad(x))))


def _conditional(norm: Tensor, gamma: nn.Linear, beta: nn.Linear, embedding: Tensor) -> Tensor:
    return gamma(embedding)[:, :, None, None] * norm + beta(embedding)[:, :, None, None]


class _ConditionalUpsampleConv(nn.Module):
    """Optional nearest ×2 upsampling, reflection pad, convolution, conditional instance norm, optional ReLU."""

    def __init__(self, channels_in: int, channels_out: int, kernel_size: int, upsample: bool, activation: bool) -> None:
        super().__init__()
        self.upsample_layer = nn.Upsample(scale_factor=2) if upsample else None
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv = nn.Conv2d(channels_in, channels_out, kernel_size)
        self.instancenorm = nn.InstanceNorm2d(channels_out)
        self.fc_beta = nn.Linear(EMBEDDING_DIM, channels_out)
        self.fc_gamma = nn.Linear(EMBEDDING_DIM, channels_out)
        self.activation = nn.ReLU() if activation else None

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        if self.upsample_layer is not None:
            x = self.upsample_layer(x)
        x = _conditional(self.instancenorm(self.conv(self.reflection_pad(x))), self.fc_gamma, self.fc_beta, embedding)
        return x if self.activation is None else self.activation(x)


class _ConditionalResidualBlock(nn.Module):
    """Two 3×3 convolutions with conditional instance norm (ReLU between them) and an identity skip."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(channels, channels, 3)
        self.conv2 = nn.Conv2d(channels, channels, 3)
        self.instancenorm = nn.InstanceNorm2d(channels)
        self.fc_beta1 = nn.Linear(EMBEDDING_DIM, channels)
        self.fc_gamma1 = nn.Linear(EMBEDDING_DIM, channels)
        self.fc_beta2 = nn.Linear(EMBEDDING_DIM, channels)
        self.fc_gamma2 = nn.Linear(EMBEDDING_DIM, channels)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        y = self.instancenorm(self.conv1(self.reflection_pad(x)))
        y = self.relu(_conditional(y, self.fc_gamma1, self.fc_beta1, embedding))
        y = self.instancenorm(self.conv2(self.reflection_pad(y)))
        return x + _conditional(y, self.fc_gamma2, self.fc_beta2, embedding)


class GhiasiTransformer(nn.Module):
    r"""Ghiasi et al. (2017) style transformer with conditional instance norm, in Jackson et al.'s layout.

    .. math:: o = \sigma\big(\mathrm{Dec}_z(\mathrm{Res}_z^{5}(\mathrm{Enc}(x)))\big)

    Parameter names match ``state_dict_ghiasi`` of the original checkpoint (``layers.0.conv.weight``, ...).
    Inputs whose sides are not multiples of 4 are reflection-padded and the output cropped back.

    Examples:
        >>> net = GhiasiTransformer()
        >>> net(torch.rand(2, 3, 30, 33), torch.randn(2, 100)).shape
        torch.Size([2, 3, 30, 33])
    """

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([
            _ConvInstanceReLU(3, 32, 9),
            _ConvInstanceReLU(32, 64, 3, stride=2),
            _ConvInstanceReLU(64, 128, 3, stride=2),
            *(_ConditionalResidualBlock(128) for _ in range(5)),
            _ConditionalUpsampleConv(128, 64, 3, upsample=True, activation=True),
            _ConditionalUpsampleConv(64, 32, 3, upsample=True, activation=True),
            _ConditionalUpsampleConv(32, 3, 9, upsample=False, activation=False),
        ])

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        pad_h, pad_w = (-height) % 4, (-width) % 4
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if min(height, width) > 4 else "replicate")
        for index, layer in enumerate(self.layers):
            x = layer(x) if index < 3 else layer(x, embedding)
        return torch.sigmoid(x[..., :height, :width])


# --------------------------------------------------------------------------------------------- style predictor
class JacksonStylePredictor(nn.Module):
    r"""Inception-v3 truncated after ``Mixed_6e``, mean-pooled, then linear :math:`768 \to 100`.

    The input in [0, 1] is preprocessed exactly as in the original code (ImageNet normalization followed by the
    conversion to Inception's :math:`[-1, 1]` scaling, including the original's 0.255 for the blue channel's first
    step, which the pretrained weights were trained with). Images smaller than 75×75 are upsampled bilinearly first.
    Parameter names match ``state_dict_stylepredictor`` (``Conv2d_1a_3x3.conv.weight``, ..., ``fc.weight``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.fc = nn.Linear(768, EMBEDDING_DIM)
        mean = torch.tensor([0.485, 0.456, 0.406])
        first_std = torch.tensor([0.229, 0.224, 0.255])
        second_std = torch.tensor([0.229, 0.224, 0.225])
        # x -> (x - mean) / first_std * (second_std / 0.5) + (mean - 0.5) / 0.5, as one affine map per channel
        self.register_buffer("_scale", (second_std / 0.5 / first_std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_shift", (-mean / first_std * (second_std / 0.5) + (mean - 0.5) / 0.5).view(1, 3, 1, 1),
                             persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        side = min(x.shape[-2:])
        if side < _MIN_PREDICTOR_SIDE:
            scale = _MIN_PREDICTOR_SIDE / side
            size = (round(x.shape[-2] * scale), round(x.shape[-1] * scale))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        x = x * self._scale.to(x.dtype) + self._shift.to(x.dtype)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e):
            x = block(x)
        return self.fc(x.mean(dim=(2, 3)))


__all__ = ["EMBEDDING_DIM", "GhiasiTransformer", "JacksonStylePredictor"]
