"""GC-Net: A. Kendall et al., End-to-End Learning of Geometry and Context for Deep Stereo
Regression, ICCV 2017. Layer for layer as the paper's Table 1.

    left, right (N, 3, H, W)
      -> unary features, shared weights (layers 1-18): (N, F, H/2, W/2)
      -> concatenation cost volume over D/2 levels:     (N, 2F, D/2, H/2, W/2)
      -> 3-D encoder-decoder with skips (layers 19-36): (N, F, D/2, H/2, W/2)
      -> 3-D transposed convolution (layer 37):         (N, 1, D, H, W)  matching cost
      -> soft argmin over D:                            (N, H, W) disparity

The encoder halves D, H and W four times below the half-resolution volume, so H and W must be
multiples of 32 and ``max_disp`` (D) a multiple of 32. The authors released no code; module
names here follow the table's layer numbers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .learned import no_stages, soft_argmin, tracing

INPUT_MULTIPLE = 32
DISPARITY_MULTIPLE = 32


def conv2d_bn_relu(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def conv3d_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm3d(out_channels), nn.ReLU(inplace=True))


def deconv3d_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3x3 transposed convolution, stride 2, exactly doubling D, H and W."""
    return nn.Sequential(
        nn.ConvTranspose3d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1, bias=False),
        nn.BatchNorm3d(out_channels), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """Two 3x3 conv+BN+ReLU layers whose output is added to their input (Table 1, 2-3)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = conv2d_bn_relu(channels, channels, 3)
        self.conv2 = conv2d_bn_relu(channels, channels, 3)

    def forward(self, x):
        return x + self.conv2(self.conv1(x))


class UnaryFeatures(nn.Module):
    """Layers 1-18: ``(N, 3, H, W)`` -> ``(N, F, H/2, W/2)``."""

    def __init__(self, features: int = 32, residual_blocks: int = 8):
        super().__init__()
        self.layer1 = conv2d_bn_relu(3, features, 5, stride=2)
        self.blocks = nn.Sequential(*(ResidualBlock(features) for _ in range(residual_blocks)))
        # Layer 18 has neither BN nor ReLU: the cost volume sees signed features.
        self.layer18 = nn.Conv2d(features, features, 3, padding=1, bias=True)

    def forward(self, image):
        return self.layer18(self.blocks(self.layer1(image)))


def concatenation_volume(left_features, right_features, levels: int, channels_last: bool = False):
    """``(N, F, H, W)`` x2 -> ``(N, 2F, levels, H, W)``: left features beside the right features
    shifted by each disparity (left ``x`` meets right ``x - d``); zero where ``x - d < 0``.
    ``channels_last``: the volume in ``torch.channels_last_3d`` layout (same values)."""
    n, channels, height, width = left_features.shape
    if tracing():  # exporters want no writes into slices: pad-and-stack, same values
        slices = [torch.cat([F.pad(left_features[..., d:], (d, 0)),
                             F.pad(right_features[..., :width - d], (d, 0))], dim=1)
                  if d < width else left_features.new_zeros(n, 2 * channels, height, width)
                  for d in range(levels)]
        return torch.stack(slices, dim=2)
    if channels_last:
        # Written as (N, D, H, W, 2F), whose (0, 4, 1, 2, 3) permutation is exactly the
        # channels-last layout: each copy moves whole pixels' feature vectors.
        left_pixels = left_features.permute(0, 2, 3, 1)
        right_pixels = right_features.permute(0, 2, 3, 1)
        pixels = left_features.new_zeros(n, levels, height, width, 2 * channels)
        for d in range(min(levels, width)):
            pixels[:, d, :, d:, :channels] = left_pixels[:, :, d:]
            pixels[:, d, :, d:, channels:] = right_pixels[:, :, :width - d]
        return pixels.permute(0, 4, 1, 2, 3)
    volume = left_features.new_zeros(n, 2 * channels, levels, height, width)
    for d in range(min(levels, width)):
        volume[:, :channels, d, :, d:] = left_features[:, :, :, d:]
        volume[:, channels:, d, :, d:] = right_features[:, :, :, :width - d]
    return volume


def add_skip(x, skip):
    """``x + skip``, in place when no gradient is recorded (saves a full-size volume)."""
    if tracing() or (torch.is_grad_enabled() and (x.requires_grad or skip.requires_grad)):
        return x + skip
    return x.add_(skip)


class CostRegularization(nn.Module):
    """Layers 19-37: ``(N, 2F, D/2, H/2, W/2)`` -> matching cost ``(N, 1, D, H, W)``."""

    def __init__(self, features: int = 32):
        super().__init__()
        f, f2, f4 = features, 2 * features, 4 * features
        self.layer19 = conv3d_bn_relu(f2, f)
        self.layer20 = conv3d_bn_relu(f, f)
        self.layer21 = conv3d_bn_relu(f2, f2, stride=2)
        self.layer22 = conv3d_bn_relu(f2, f2)
        self.layer23 = conv3d_bn_relu(f2, f2)
        self.layer24 = conv3d_bn_relu(f2, f2, stride=2)
        self.layer25 = conv3d_bn_relu(f2, f2)
        self.layer26 = conv3d_bn_relu(f2, f2)
        self.layer27 = conv3d_bn_relu(f2, f2, stride=2)
        self.layer28 = conv3d_bn_relu(f2, f2)
        self.layer29 = conv3d_bn_relu(f2, f2)
        self.layer30 = conv3d_bn_relu(f2, f4, stride=2)
        self.layer31 = conv3d_bn_relu(f4, f4)
        self.layer32 = conv3d_bn_relu(f4, f4)
        self.layer33 = deconv3d_bn_relu(f4, f2)
        self.layer34 = deconv3d_bn_relu(f2, f2)
        self.layer35 = deconv3d_bn_relu(f2, f2)
        self.layer36 = deconv3d_bn_relu(f2, f)
        # Layer 37 has neither BN nor ReLU: its output is the (signed) matching cost.
        self.layer37 = nn.ConvTranspose3d(f, 1, 3, stride=2, padding=1, output_padding=1, bias=True)

    def forward(self, volume):
        # Layer 21 reads the cost volume too; running it first lets the volume be freed right
        # after layer 19, which lowers the peak memory of inference by a third.
        down1 = self.layer21(volume)
        x = self.layer19(volume)
        del volume
        skip1 = self.layer20(x)
        del x
        skip2 = self.layer23(self.layer22(down1))
        down2 = self.layer24(down1)
        del down1
        skip3 = self.layer26(self.layer25(down2))
        down3 = self.layer27(down2)
        del down2
        skip4 = self.layer29(self.layer28(down3))
        bottom = self.layer32(self.layer31(self.layer30(down3)))
        del down3
        x = add_skip(self.layer33(bottom), skip4)
        x = add_skip(self.layer34(x), skip3)
        x = add_skip(self.layer35(x), skip2)
        x = add_skip(self.layer36(x), skip1)
        del skip1
        return self.layer37(x)


class GCNet(nn.Module):
    """GC-Net for disparities ``0 .. max_disp - 1``.

    Args:
        max_disp: disparity levels D, a multiple of 32.
        features: F, the unary feature width (32 in the paper).
        residual_blocks: residual blocks in the unary tower (8 in the paper).
    """

    def __init__(self, max_disp: int = 192, features: int = 32, residual_blocks: int = 8):
        super().__init__()
        if max_disp % DISPARITY_MULTIPLE:
            raise ValueError(f"GC-Net needs max_disp a multiple of {DISPARITY_MULTIPLE}, got {max_disp}")
        self.max_disp = max_disp
        self.unary = UnaryFeatures(features, residual_blocks)
        self.regularization = CostRegularization(features)

    def matching_cost(self, left, right, stage=no_stages):
        """``(N, 3, H, W)`` x2 -> cost ``(N, D, H, W)``; H and W multiples of 32. ``stage(name)``
        (e.g. a :class:`~depthapp.timing.StageTimer`) brackets each part."""
        height, width = left.shape[-2:]
        if height % INPUT_MULTIPLE or width % INPUT_MULTIPLE:
            raise ValueError(f"GC-Net input must be a multiple of {INPUT_MULTIPLE}, got {width}x{height}")
        with stage("features"):
            # Both views through the shared tower in one batch.
            features = self.unary(torch.cat([left, right], dim=0))
            left_features, right_features = features.chunk(2, dim=0)
        with stage("cost volume"):
            # oneDNN's 3-D convolutions run faster and without reordering copies on
            # channels-last volumes (the CPU backend makes the weights channels-last too).
            volume = concatenation_volume(left_features, right_features, self.max_disp // 2,
                                          channels_last=left.device.type == "cpu")
            del features, left_features, right_features
        with stage("regularization"):
            return self.regularization(volume).squeeze(1)

    def forward(self, left, right):
        """Disparity ``(N, H, W)``; differentiable (training and export)."""
        disparity, _ = soft_argmin(self.matching_cost(left, right))
        return disparity

    def infer(self, left, right, stage=no_stages):
        """Disparity and confidence (probability of the most likely level), both ``(N, H, W)``."""
        cost = self.matching_cost(left, right, stage)
        with stage("soft argmin"):
            disparity, probability = soft_argmin(cost)
            return disparity, probability.amax(dim=1)


def table1_parameter_count(features: int = 32, residual_blocks: int = 8) -> int:
    """Weights + biases + BatchNorm scale/shift of Table 1, counted layer by layer from the
    paper's kernel sizes and widths (independent of the module code above)."""
    f, f2, f4 = features, 2 * features, 4 * features

    def conv(kernel_volume, c_in, c_out, bn=True, bias=False):
        return kernel_volume * c_in * c_out + (2 * c_out if bn else 0) + (c_out if bias else 0)

    count = conv(25, 3, f)                                   # layer 1
    count += 2 * residual_blocks * conv(9, f, f)             # layers 2-17
    count += conv(9, f, f, bn=False, bias=True)              # layer 18
    count += conv(27, f2, f) + conv(27, f, f)                # 19, 20
    count += 9 * conv(27, f2, f2)                            # 21-29
    count += conv(27, f2, f4) + 2 * conv(27, f4, f4)         # 30-32
    count += conv(27, f4, f2) + 2 * conv(27, f2, f2)         # 33-35
    count += conv(27, f2, f)                                 # 36
    count += conv(27, f, 1, bn=False, bias=True)             # 37
    return count


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

