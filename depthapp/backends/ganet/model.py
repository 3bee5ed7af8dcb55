"""GA-Net: F. Zhang, V. Prisacariu, R. Yang, P. Torr, GA-Net: Guided Aggregation Net for
End-to-end Stereo Matching, CVPR 2019. GA-Net-11 and GA-Net-deep.

    left, right (N, 3, H, W), H and W multiples of 48
      -> feature hourglasses (shared weights):          (N, 32, H/3, W/3) each
      -> concatenation cost volume, D/3 + 1 levels:      (N, 64, D/3+1, H/3, W/3)
      -> guidance subnet (left image + features):        SGA weights at 1/3 and 1/6, LGA filters at 1/1
      -> 3-D aggregation with SGA blocks (GA layers):   (N, 32, D/3+1, H/3, W/3)
      -> 1 channel, trilinear upsampling to (D+1, H, W), LGA, softmin, LGA, L1 normalisation
      -> disparity regression over 0..D:                 (N, H, W)

Module and parameter names are those of the authors' models/GANet11.py and
models/GANet_deep.py (github.com/feihuzhang/GANet), so their released checkpoints load
directly (``module.`` prefix and ``state_dict`` wrapper stripped by the backend). The code is
ours; channel widths come from :class:`GANetConfig` so tests can build a tiny model with the
same structure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..gcnet.learned import disparity_expectation, no_stages
from ..gcnet.model import concatenation_volume  # the same volume as the authors' GetCostVolume
from .lga import filter_size, lga2
from .sga import sga

INPUT_MULTIPLE = 48
DISPARITY_MULTIPLE = 12
LGA_RADIUS = 2


@dataclass(frozen=True)
class GANetConfig:
    """Architecture of one GA-Net size.

    Attributes:
        deep: GA-Net-deep (7 SGA blocks, second 3-D hourglass) or GA-Net-11 (4 SGA blocks).
        stem: widths of the full-resolution guidance stem (``conv_start``).
        features: widths of the feature hourglass levels, 1/3 .. 1/48.
        guidance: widths of the guidance subnet at 1/1, 1/3 and 1/6.
        volume: widths of the 3-D aggregation at 1/3, 1/6 and 1/12.
        unused_deconv: width of GANet_deep's ``deconv0b``, defined but never called in the
            authors' model; kept so their checkpoints load.
    """

    deep: bool = True
    stem: tuple[int, int] = (16, 32)
    features: tuple[int, int, int, int, int] = (32, 48, 64, 96, 128)
    guidance: tuple[int, int, int] = (16, 32, 48)
    volume: tuple[int, int, int] = (32, 48, 64)
    unused_deconv: int = 8

    @property
    def name(self) -> str:
        return "GA-Net-deep" if self.deep else "GA-Net-11"


GANET_DEEP = GANetConfig(deep=True)
GANET_11 = GANetConfig(deep=False)
VARIANTS = {"deep": GANET_DEEP, "11": GANET_11}


def tiny_config(deep: bool) -> GANetConfig:
    """A narrow model of the same structure (for tests that train on the CPU)."""
    return replace(GANET_DEEP if deep else GANET_11, stem=(8, 8), features=(8, 8, 8, 8, 8),
                   guidance=(8, 8, 8), volume=(8, 8, 8))


class BasicConv(nn.Module):
    """Convolution (2-D or 3-D, plain or transposed, no bias) + BatchNorm + optional ReLU.
    Parameters: ``conv.weight``, ``bn.{weight,bias,running_mean,running_var}``."""

    def __init__(self, in_channels: int, out_channels: int, deconv: bool = False, is_3d: bool = False,
                 bn: bool = True, relu: bool = True, **conv_args):
        super().__init__()
        if is_3d:
            conv = nn.ConvTranspose3d if deconv else nn.Conv3d
            norm = nn.BatchNorm3d
        else:
            conv = nn.ConvTranspose2d if deconv else nn.Conv2d
            norm = nn.BatchNorm2d
        self.conv = conv(in_channels, out_channels, bias=False, **conv_args)
        # The authors' BasicConv always owns a BatchNorm, even when bn=False skips it.
        self.bn = norm(out_channels)
        self.use_bn = bn
        self.relu = relu

    def forward(self, x):
        x = self.conv(x)
        if self.use_bn:
            x = self.bn(x)
        if self.relu:
            x = F.relu(x, inplace=True)
        return x


class Conv2x(nn.Module):
    """Stride-2 down (3x3) or up (4x4 / 3x4x4 transposed) convolution, then concatenation with
    the skip of the new resolution and a 3x3 convolution back to ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int, deconv: bool = False, is_3d: bool = False,
                 bn: bool = True, relu: bool = True):
        super().__init__()
        if deconv and is_3d:
            kernel = (3, 4, 4)
        elif deconv:
            kernel = 4
        else:
            kernel = 3
        self.conv1 = BasicConv(in_channels, out_channels, deconv, is_3d, bn=True, relu=True,
                               kernel_size=kernel, stride=2, padding=1)
        self.conv2 = BasicConv(out_channels * 2, out_channels, False, is_3d, bn, relu,
                               kernel_size=3, stride=1, padding=1)

    def forward(self, x, skip):
        x = self.conv1(x)
        if x.shape != skip.shape:
            raise ValueError(f"GA-Net: {tuple(x.shape)} does not meet its skip {tuple(skip.shape)}; "
                             f"inputs must be multiples of {INPUT_MULTIPLE} and max_disp of {DISPARITY_MULTIPLE}")
        return self.conv2(torch.cat((x, skip), 1))


class Feature(nn.Module):
    """Two stacked 2-D hourglasses: ``(N, 3, H, W)`` -> ``(N, features[0], H/3, W/3)``."""

    def __init__(self, config: GANetConfig):
        super().__init__()
        c0, c1, c2, c3, c4 = config.features
        self.conv_start = nn.Sequential(
            BasicConv(3, c0, kernel_size=3, padding=1),
            BasicConv(c0, c0, kernel_size=5, stride=3, padding=2),
            BasicConv(c0, c0, kernel_size=3, padding=1))
        self.conv1a = BasicConv(c0, c1, kernel_size=3, stride=2, padding=1)
        self.conv2a = BasicConv(c1, c2, kernel_size=3, stride=2, padding=1)
        self.conv3a = BasicConv(c2, c3, kernel_size=3, stride=2, padding=1)
        self.conv4a = BasicConv(c3, c4, kernel_size=3, stride=2, padding=1)
        self.deconv4a = Conv2x(c4, c3, deconv=True)
        self.deconv3a = Conv2x(c3, c2, deconv=True)
        self.deconv2a = Conv2x(c2, c1, deconv=True)
        self.deconv1a = Conv2x(c1, c0, deconv=True)
        self.conv1b = Conv2x(c0, c1)
        self.conv2b = Conv2x(c1, c2)
        self.conv3b = Conv2x(c2, c3)
        self.conv4b = Conv2x(c3, c4)
        self.deconv4b = Conv2x(c4, c3, deconv=True)
        self.deconv3b = Conv2x(c3, c2, deconv=True)
        self.deconv2b = Conv2x(c2, c1, deconv=True)
        self.deconv1b = Conv2x(c1, c0, deconv=True)

    def forward(self, x):
        x = rem0 = self.conv_start(x)
        x = rem1 = self.conv1a(x)
        x = rem2 = self.conv2a(x)
        x = rem3 = self.conv3a(x)
        x = rem4 = self.conv4a(x)
        x = rem3 = self.deconv4a(x, rem3)
        x = rem2 = self.deconv3a(x, rem2)
        x = rem1 = self.deconv2a(x, rem1)
        x = rem0 = self.deconv1a(x, rem0)
        x = rem1 = self.conv1b(x, rem1)
        x = rem2 = self.conv2b(x, rem2)
        x = rem3 = self.conv3b(x, rem3)
        x = self.conv4b(x, rem4)
        x = self.deconv4b(x, rem3)
        x = self.deconv3b(x, rem2)
        x = self.deconv2b(x, rem1)
        return self.deconv1b(x, rem0)


class Guidance(nn.Module):
    """Guidance subnet: ``(N, stem[1] + features[0], H, W)`` -> SGA weights for every SGA block
    (``sg*``: ``(N, 20 K, H/3, W/3)`` or at 1/6, K the block's volume width) and the two LGA
    filters (``lg1``, ``lg2``: ``(N, 75, H, W)``)."""

    def __init__(self, config: GANetConfig):
        super().__init__()
        g0, g1, g2 = config.guidance
        v0, v1, _ = config.volume
        self.deep = config.deep
        self.conv0 = BasicConv(config.stem[1] + config.features[0], g0, kernel_size=3, padding=1)
        self.conv1 = nn.Sequential(
            BasicConv(g0, g1, kernel_size=5, stride=3, padding=2),
            BasicConv(g1, g1, kernel_size=3, padding=1))
        self.conv2 = BasicConv(g1, g1, kernel_size=3, padding=1)
        if self.deep:
            self.conv3 = BasicConv(g1, g1, kernel_size=3, padding=1)
        self.conv11 = nn.Sequential(
            BasicConv(g1, g2, kernel_size=3, stride=2, padding=1),
            BasicConv(g2, g2, kernel_size=3, padding=1))
        self.conv12 = BasicConv(g2, g2, kernel_size=3, padding=1)
        if self.deep:
            self.conv13 = BasicConv(g2, g2, kernel_size=3, padding=1)
            self.conv14 = BasicConv(g2, g2, kernel_size=3, padding=1)
        full_names = ("sg1", "sg2", "sg3") if self.deep else ("sg1", "sg2")
        half_names = ("sg11", "sg12", "sg13", "sg14") if self.deep else ("sg11", "sg12")
        for name in full_names:
            setattr(self, f"weight_{name}", nn.Conv2d(g1, 20 * v0, 3, 1, 1, bias=False))
        for name in half_names:
            setattr(self, f"weight_{name}", nn.Conv2d(g2, 20 * v1, 3, 1, 1, bias=False))
        taps = filter_size(LGA_RADIUS)
        self.weight_lg1 = nn.Sequential(BasicConv(g0, g0, kernel_size=3, padding=1),
                                        nn.Conv2d(g0, taps, 3, 1, 1, bias=False))
        self.weight_lg2 = nn.Sequential(BasicConv(g0, g0, kernel_size=3, padding=1),
                                        nn.Conv2d(g0, taps, 3, 1, 1, bias=False))

    def forward(self, x) -> dict[str, torch.Tensor]:
        guide = {}
        x = rem = self.conv0(x)
        x = self.conv1(x)
        guide["sg1"] = self.weight_sg1(x)
        x = self.conv2(x)
        guide["sg2"] = self.weight_sg2(x)
        if self.deep:
            x = self.conv3(x)
            guide["sg3"] = self.weight_sg3(x)
        x = self.conv11(x)
        guide["sg11"] = self.weight_sg11(x)
        x = self.conv12(x)
        guide["sg12"] = self.weight_sg12(x)
        if self.deep:
            x = self.conv13(x)
            guide["sg13"] = self.weight_sg13(x)
            x = self.conv14(x)
            guide["sg14"] = self.weight_sg14(x)
        guide["lg1"] = self.weight_lg1(rem)
        guide["lg2"] = self.weight_lg2(rem)
        return guide


def upsampled_cost(conv32x1: nn.Conv3d, x, max_disp: int):
    """1-channel cost, trilinearly upsampled from ``(N, K, D/3+1, H/3, W/3)`` to ``(N, D+1, H, W)``."""
    size = [max_disp + 1, x.shape[3] * 3, x.shape[4] * 3]
    return F.interpolate(conv32x1(x), size, mode="trilinear", align_corners=False).squeeze(1)


class Disp(nn.Module):
    """Intermediate output (training only): cost -> softmin -> disparity regression."""

    def __init__(self, channels: int, max_disp: int):
        super().__init__()
        self.max_disp = max_disp
        self.conv32x1 = nn.Conv3d(channels, 1, 3, 1, 1, bias=False)

    def forward(self, x):
        probability = F.softmin(upsampled_cost(self.conv32x1, x, self.max_disp), dim=1)
        return disparity_expectation(probability)


class DispAgg(nn.Module):
    """Final output: cost -> LGA -> softmin -> LGA -> L1 normalisation -> regression."""

    def __init__(self, channels: int, max_disp: int):
        super().__init__()
        self.max_disp = max_disp
        self.conv32x1 = nn.Conv3d(channels, 1, 3, 1, 1, bias=False)
        self.implementation = "auto"

    def lga(self, x, filters):
        return lga2(x, F.normalize(filters, p=1, dim=1), LGA_RADIUS, self.implementation)

    def probability(self, x, lg1, lg2):
        """``(N, D+1, H, W)`` probability of each disparity level."""
        x = upsampled_cost(self.conv32x1, x, self.max_disp)
        x = self.lga(x, lg1)
        x = F.softmin(x, dim=1)
        x = self.lga(x, lg2)
        return F.normalize(x, p=1, dim=1)

    def forward(self, x, lg1, lg2):
        return disparity_expectation(self.probability(x, lg1, lg2))


class SGABlock(nn.Module):
    """SGA over the 4 directions, BN + ReLU, a 3x3x3 convolution, residual + ReLU.

    ``weights`` ``(N, 20 K, H, W)`` splits into 4 directions (down, up, right, left) of
    ``(N, K, 5, H, W)``, each L1-normalised over its 5 weights (the paper's constraint)."""

    def __init__(self, channels: int = 32):
        super().__init__()
        self.bn_relu = nn.Sequential(nn.BatchNorm3d(channels), nn.ReLU(inplace=True))
        self.conv_refine = BasicConv(channels, channels, is_3d=True, kernel_size=3, padding=1, relu=False)
        self.implementation = "auto"

    def forward(self, x, weights):
        n, k, _, h, w = x.shape
        directions = [F.normalize(g.reshape(n, k, 5, h, w), p=1, dim=2)
                      for g in torch.split(weights, k * 5, dim=1)]
        y = sga(x, *directions, implementation=self.implementation)
        y = self.conv_refine(self.bn_relu(y))
        return F.relu(y + x, inplace=True)


class CostAggregation(nn.Module):
    """3-D aggregation: ``(N, 2 features[0], D/3+1, H/3, W/3)`` and the guidance -> disparity
    (``(N, H, W)``; in training mode the intermediate outputs first, as the authors' code)."""

    def __init__(self, config: GANetConfig, max_disp: int):
        super().__init__()
        v0, v1, v2 = config.volume
        self.deep = config.deep
        self.conv_start = BasicConv(2 * config.features[0], v0, is_3d=True, kernel_size=3, padding=1, relu=False)
        self.conv1a = BasicConv(v0, v1, is_3d=True, kernel_size=3, stride=2, padding=1)
        self.conv2a = BasicConv(v1, v2, is_3d=True, kernel_size=3, stride=2, padding=1)
        self.deconv1a = Conv2x(v1, v0, deconv=True, is_3d=True, relu=False)
        self.deconv2a = Conv2x(v2, v1, deconv=True, is_3d=True)
        if self.deep:
            self.conv1b = Conv2x(v0, v1, is_3d=True)
            self.conv2b = Conv2x(v1, v2, is_3d=True)
            self.deconv1b = Conv2x(v1, v0, deconv=True, is_3d=True, relu=False)
            self.deconv2b = Conv2x(v2, v1, deconv=True, is_3d=True)
            self.deconv0b = Conv2x(config.unused_deconv, config.unused_deconv, deconv=True, is_3d=True)
        self.sga1 = SGABlock(v0)
        self.sga2 = SGABlock(v0)
        if self.deep:
            self.sga3 = SGABlock(v0)
        self.sga11 = SGABlock(v1)
        self.sga12 = SGABlock(v1)
        if self.deep:
            self.sga13 = SGABlock(v1)
            self.sga14 = SGABlock(v1)
        self.disp0 = Disp(v0, max_disp)
        if self.deep:
            self.disp1 = Disp(v0, max_disp)
            self.disp2 = DispAgg(v0, max_disp)
        else:
            self.disp1 = DispAgg(v0, max_disp)

    @property
    def final(self) -> DispAgg:
        return self.disp2 if self.deep else self.disp1

    def aggregate(self, x, g):
        """The aggregated volume ``(N, volume[0], D/3+1, H/3, W/3)`` and, in training mode,
        the intermediate disparities."""
        intermediate = []
        x = self.conv_start(x)
        x = rem0 = self.sga1(x, g["sg1"])
        if self.training:
            intermediate.append(self.disp0(x))
        x = self.conv1a(x)
        x = rem1 = self.sga11(x, g["sg11"])
        x = rem2 = self.conv2a(x)
        x = self.deconv2a(x, rem1)
        x = rem1 = self.sga12(x, g["sg12"])
        x = self.deconv1a(x, rem0)
        x = rem0 = self.sga2(x, g["sg2"])
        if not self.deep:
            return x, intermediate
        if self.training:
            intermediate.append(self.disp1(x))
        x = self.conv1b(x, rem1)
        x = rem1 = self.sga13(x, g["sg13"])
        x = self.conv2b(x, rem2)
        x = self.deconv2b(x, rem1)
        x = self.sga14(x, g["sg14"])
        x = self.deconv1b(x, rem0)
        x = self.sga3(x, g["sg3"])
        return x, intermediate

    def forward(self, x, g):
        x, intermediate = self.aggregate(x, g)
        final = self.final(x, g["lg1"], g["lg2"])
        return (*intermediate, final) if self.training else final


class GANet(nn.Module):
    """GA-Net for disparities ``0 .. max_disp`` (``max_disp + 1`` levels, as the authors').

    Args:
        max_disp: a multiple of 12 (192 for the released checkpoints).
        config: :data:`GANET_DEEP`, :data:`GANET_11` or a custom width set.
    """

    def __init__(self, max_disp: int = 192, config: GANetConfig = GANET_DEEP):
        super().__init__()
        if max_disp % DISPARITY_MULTIPLE:
            raise ValueError(f"GA-Net needs max_disp a multiple of {DISPARITY_MULTIPLE}, got {max_disp}")
        self.max_disp = max_disp
        self.config = config
        s0, s1 = config.stem
        c0 = config.features[0]
        self.conv_start = nn.Sequential(BasicConv(3, s0, kernel_size=3, padding=1),
                                        BasicConv(s0, s1, kernel_size=3, padding=1))
        self.conv_x = BasicConv(c0, c0, kernel_size=3, padding=1)
        self.conv_y = BasicConv(c0, c0, kernel_size=3, padding=1)
        self.conv_refine = nn.Conv2d(c0, c0, 3, 1, 1, bias=False)
        self.bn_relu = nn.Sequential(nn.BatchNorm2d(c0), nn.ReLU(inplace=True))
        self.feature = Feature(config)
        self.guidance = Guidance(config)
        self.cost_agg = CostAggregation(config, max_disp)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm3d)):
                nn.init.constant_(module.weight, 1)
                nn.init.constant_(module.bias, 0)

    def set_implementation(self, implementation: str) -> None:
        """Force the SGA/LGA implementation: ``auto``, ``torch``, ``triton`` or ``reference``
        (autograd through the pure-torch scan, for checks and benchmarks)."""
        for module in self.modules():
            if isinstance(module, (SGABlock, DispAgg)):
                module.implementation = implementation

    def volume_and_guidance(self, left, right, stage=no_stages):
        height, width = left.shape[-2:]
        if height % INPUT_MULTIPLE or width % INPUT_MULTIPLE:
            raise ValueError(f"GA-Net input must be a multiple of {INPUT_MULTIPLE}, got {width}x{height}")
        with stage("features"):
            # One view at a time, as the authors: in training, BatchNorm sees each view's statistics.
            left_features = self.feature(left)
            right_features = self.feature(right)
        with stage("cost volume"):
            volume = concatenation_volume(self.conv_x(left_features), self.conv_y(right_features),
                                          self.max_disp // 3 + 1)
        with stage("guidance"):
            stem = self.conv_start(left)
            refined = self.conv_refine(left_features)
            refined = F.interpolate(refined, [refined.shape[2] * 3, refined.shape[3] * 3],
                                    mode="bilinear", align_corners=False)
            guide = self.guidance(torch.cat((stem, self.bn_relu(refined)), 1))
        return volume, guide

    def forward(self, left, right):
        """Disparity ``(N, H, W)``; in training mode a tuple, intermediate outputs first."""
        volume, guide = self.volume_and_guidance(left, right)
        return self.cost_agg(volume, guide)

    def infer(self, left, right, stage=no_stages):
        """Disparity and confidence (probability of the most likely level), both ``(N, H, W)``.
        ``stage(name)`` (e.g. a :class:`~depthapp.timing.StageTimer`) brackets each part."""
        volume, guide = self.volume_and_guidance(left, right, stage)
        with stage("aggregation (SGA)"):
            aggregated, _ = self.cost_agg.aggregate(volume, guide)
            del volume
        with stage("refinement (LGA)"):
            probability = self.cost_agg.final.probability(aggregated, guide["lg1"], guide["lg2"])
            return disparity_expectation(probability), probability.amax(dim=1)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
