"""PSMNet (Chang & Chen, CVPR 2018), stacked-hourglass variant, written to load the authors'
checkpoint unchanged: module names and nesting reproduce the official state-dict keys
(``feature_extraction.layer2.0.conv1.0.0.weight`` ...), layer by layer.

Behaviour that changes the output and is kept on purpose:
  * every interpolation uses ``align_corners=True`` (the PyTorch < 0.4 behaviour the released
    weights were trained under);
  * residual blocks add without a final ReLU, as in the official code;
  * the cost volume holds zeros where ``x < d`` (no right pixel), as the official slice writes do.
It is built here with a masked write and row copies, which give the official tensor bit for bit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import winograd


def _convbn(in_planes: int, out_planes: int, kernel: int, stride: int, pad: int, dilation: int) -> nn.Sequential:
    padding = dilation if dilation > 1 else pad
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, kernel, stride, padding, dilation, bias=False),
                         nn.BatchNorm2d(out_planes))


def _convbn_3d(in_planes: int, out_planes: int, kernel: int, stride: int, pad: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(in_planes, out_planes, kernel, stride, pad, bias=False),
                         nn.BatchNorm3d(out_planes))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, downsample, pad: int, dilation: int):
        super().__init__()
        self.conv1 = nn.Sequential(_convbn(in_planes, planes, 3, stride, pad, dilation), nn.ReLU(inplace=True))
        self.conv2 = _convbn(planes, planes, 3, 1, pad, dilation)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        if self.downsample is not None:
            x = self.downsample(x)
        return out + x


class FeatureExtraction(nn.Module):
    """``(B, 3, H, W)`` normalised images -> ``(B, 32, H/4, W/4)`` features (SPP module)."""

    def __init__(self):
        super().__init__()
        self._in_planes = 32
        self.firstconv = nn.Sequential(_convbn(3, 32, 3, 2, 1, 1), nn.ReLU(inplace=True),
                                       _convbn(32, 32, 3, 1, 1, 1), nn.ReLU(inplace=True),
                                       _convbn(32, 32, 3, 1, 1, 1), nn.ReLU(inplace=True))
        self.layer1 = self._make_layer(32, 3, 1, 1, 1)
        self.layer2 = self._make_layer(64, 16, 2, 1, 1)
        self.layer3 = self._make_layer(128, 3, 1, 1, 1)
        self.layer4 = self._make_layer(128, 3, 1, 1, 2)
        self.branch1 = self._pool_branch(64)
        self.branch2 = self._pool_branch(32)
        self.branch3 = self._pool_branch(16)
        self.branch4 = self._pool_branch(8)
        self.lastconv = nn.Sequential(_convbn(320, 128, 3, 1, 1, 1), nn.ReLU(inplace=True),
                                      nn.Conv2d(128, 32, kernel_size=1, padding=0, stride=1, bias=False))

    @staticmethod
    def _pool_branch(size: int) -> nn.Sequential:
        return nn.Sequential(nn.AvgPool2d((size, size), stride=(size, size)),
                             _convbn(128, 32, 1, 1, 0, 1), nn.ReLU(inplace=True))

    def _make_layer(self, planes: int, blocks: int, stride: int, pad: int, dilation: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._in_planes != planes:
            downsample = nn.Sequential(nn.Conv2d(self._in_planes, planes, kernel_size=1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes))
        layers = [BasicBlock(self._in_planes, planes, stride, downsample, pad, dilation)]
        self._in_planes = planes
        layers += [BasicBlock(planes, planes, 1, None, pad, dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output = self.layer1(self.firstconv(x))
        output_raw = self.layer2(output)
        output_skip = self.layer4(self.layer3(output_raw))
        size = output_skip.shape[2:]
        pooled = [F.interpolate(branch(output_skip), size, mode="bilinear", align_corners=True)
                  for branch in (self.branch4, self.branch3, self.branch2, self.branch1)]
        return self.lastconv(torch.cat([output_raw, output_skip] + pooled, 1))


class Hourglass(nn.Module):
    def __init__(self, planes: int):
        super().__init__()
        self.conv1 = nn.Sequential(_convbn_3d(planes, planes * 2, 3, 2, 1), nn.ReLU(inplace=True))
        self.conv2 = _convbn_3d(planes * 2, planes * 2, 3, 1, 1)
        self.conv3 = nn.Sequential(_convbn_3d(planes * 2, planes * 2, 3, 2, 1), nn.ReLU(inplace=True))
        self.conv4 = nn.Sequential(_convbn_3d(planes * 2, planes * 2, 3, 1, 1), nn.ReLU(inplace=True))
        self.conv5 = nn.Sequential(nn.ConvTranspose3d(planes * 2, planes * 2, 3, padding=1, output_padding=1,
                                                      stride=2, bias=False),
                                   nn.BatchNorm3d(planes * 2))
        self.conv6 = nn.Sequential(nn.ConvTranspose3d(planes * 2, planes, 3, padding=1, output_padding=1,
                                                      stride=2, bias=False),
                                   nn.BatchNorm3d(planes))

    def forward(self, x, presqu, postsqu):
        # The sums are written into the fresh convolution outputs: a new full-size tensor per
        # sum is memory to fault in (autograd allows it: nothing saves those outputs).
        out = self.conv1(x)
        pre = self.conv2(out)
        if postsqu is not None:
            pre += postsqu
        pre = F.relu(pre, inplace=True)
        out = self.conv4(self.conv3(pre))
        post = self.conv5(out)
        post += presqu if presqu is not None else pre
        post = F.relu(post, inplace=True)
        return self.conv6(post), pre, post


def _classifier() -> nn.Sequential:
    return nn.Sequential(_convbn_3d(32, 32, 3, 1, 1), nn.ReLU(inplace=True),
                         nn.Conv3d(32, 1, kernel_size=3, padding=1, stride=1, bias=False))


def concat_cost_volume(left: torch.Tensor, right: torch.Tensor, levels: int) -> torch.Tensor:
    """The concatenation volume: ``(B, C, H, W)`` x2 -> ``(B, 2C, levels, H, W)``.

    Level ``d`` holds ``left[..., x]`` and ``right[..., x - d]`` for ``x >= d`` and zeros
    elsewhere: the official tensor bit for bit. The left half is one masked write; each level of
    the right half is one copy of whole rows out of the right features padded by ``levels - 1``
    zero columns. Measured against the official zero-fill-then-slice-writes and against
    padding and stacking the levels in ``benchmarks/bench_psmnet.py``. (The inference form
    never builds it: see :func:`concat_volume_conv3d`.)
    """
    batch, channels, height, width = left.shape
    volume = left.new_empty(batch, 2 * channels, levels, height, width)
    keep = torch.arange(width, device=left.device) >= torch.arange(levels, device=left.device)[:, None]
    torch.where(keep[:, None, :], left.unsqueeze(2), left.new_zeros(()), out=volume[:, :channels])
    padded = F.pad(right, (levels - 1, 0))
    for d in range(levels):
        volume[:, channels:, d] = padded[..., levels - 1 - d: levels - 1 - d + width]
    return volume


def concat_cost_volume_stacked(left: torch.Tensor, right: torch.Tensor, levels: int) -> torch.Tensor:
    """Pad-and-stack construction of :func:`concat_cost_volume` (same output; kept for the
    benchmark that compares the constructions)."""
    width = left.shape[-1]
    lefts = [left] + [F.pad(left[..., d:], (d, 0)) for d in range(1, levels)]
    rights = [right] + [F.pad(right[..., : width - d], (d, 0)) for d in range(1, levels)]
    return torch.cat((torch.stack(lefts, 2), torch.stack(rights, 2)), 1)


def concat_cost_volume_official(left: torch.Tensor, right: torch.Tensor, levels: int) -> torch.Tensor:
    """The official construction (zero fill, then slice writes), as the reference."""
    batch, channels, height, width = left.shape
    volume = left.new_zeros(batch, 2 * channels, levels, height, width)
    for d in range(levels):
        volume[:, :channels, d, :, d:] = left[..., d:]
        volume[:, channels:, d, :, d:] = right[..., : width - d]
    return volume


def concat_volume_conv3d(left: torch.Tensor, right: torch.Tensor, levels: int, weight: torch.Tensor,
                         bias: torch.Tensor | None = None,
                         memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """``conv3d(concat_cost_volume(left, right, levels), weight, bias, padding=1)`` without the
    volume: ``(B, C, H, W)`` x2 and a ``(O, 2C, 3, 3, 3)`` weight -> ``(B, O, levels, H, W)``,
    the same values within float rounding.

    The volume repeats the left features at every level and shifts the right ones by the level,
    so the 3-D convolution over it collapses into 2-D convolutions of the two feature maps:

    * left half: level ``d`` holds ``left[x]`` where ``x >= d``; tap ``(dz, dy, dx)`` reads it
      where ``x + dx >= d + dz``. Which taps count depends only on ``m = x - d`` (all of them
      from ``m = 2``, none below ``m = -2``), so the left half is one of five 3x3 convolutions
      of ``left`` (its depth taps summed under that condition), picked by ``m``;
    * right half: tap ``(dz, dy, dx)`` at ``(d, x)`` reads ``right[x + dx - d - dz]`` (zero left
      of column 0, which is the volume's ``x < d`` zeros), so it is one 3x5 convolution of
      ``right`` (taps grouped by ``dx - dz``) read at column ``x - d``, except in the last
      column, where the ``dx = 1`` taps fall on the volume's zero padding instead;
    * the first and last levels have no level before or after them: their own kernels leave
      out those depth taps.

    The 2-D convolutions take a few per cent of the 3-D one's arithmetic; what remains is
    writing the output, one addition per level (PSMNet's first 3-D layer at Motorcycle size:
    0.77 s for the 296 MB volume and its convolution before, 0.09 s after).
    """
    batch, channels, height, width = left.shape
    out_channels = weight.shape[0]
    weight_left, weight_right = weight[:, :channels], weight[:, channels:]
    depth_taps = [tuple(dz for dz in (-1, 0, 1) if 0 <= d + dz < levels) for d in range(levels)]
    tap_sets = sorted(set(depth_taps))
    dz = torch.arange(-1, 2, device=weight.device)
    left_kernels = {m: [] for m in range(-2, 3)}
    right_kernels = {False: [], True: []}
    for taps in tap_sets:
        used = torch.isin(dz, torch.tensor(taps, device=weight.device))  # (3,) over dz
        for m in left_kernels:  # tap (dz, dx) counts where dz - dx <= m
            counts = used[:, None] & (dz[:, None] - dz[None, :] <= m)  # (dz, dx)
            left_kernels[m].append((weight_left * counts[:, None, :]).sum(2))
        for last_column in right_kernels:  # the last column's dx = 1 taps read the zero padding
            kernel = weight_right.new_zeros(out_channels, channels, 3, 5)
            for z in taps:
                for dx in ((-1, 0) if last_column else (-1, 0, 1)):
                    kernel[:, :, :, dx - z + 2] += weight_right[:, :, z + 1, :, dx + 1]
            right_kernels[last_column].append(kernel)
    sets = len(tap_sets)

    def convolve(image, kernels, padding, with_bias):
        out = F.conv2d(image, torch.cat(kernels), bias.repeat(len(kernels)) if with_bias and bias is not None
                       else None, padding=padding)
        return out.view(batch, len(kernels) // sets, sets, out_channels, height, out.shape[-1])

    # Left half, (B, kinds, sets, O, H, columns): m >= 2 everywhere; m = -2..1 only at x <= d + 1,
    # i.e. in the first levels + 1 columns (one more keeps the padding of the crop out of them).
    left_full = convolve(left, left_kernels[2], 1, True)[:, 0]
    left_edge = convolve(left[..., :levels + 3], [k for m in range(-2, 2) for k in left_kernels[m]], 1, True)
    # Right half at column j <-> x - d = j - 2; the last-column kernels only at x = W - 1, where
    # j = W + 1 - d lies in the last `levels` columns.
    padded = F.pad(right, (4, 2))
    right_full = convolve(padded, right_kernels[False], (1, 0), False)[:, 0]
    last_start = max(0, width + 2 - levels)
    right_last = convolve(padded[..., last_start:], right_kernels[True], (1, 0), False)[:, 0]

    out = torch.empty(batch, out_channels, levels, height, width, dtype=left_full.dtype, device=left.device,
                      memory_format=memory_format)
    for d in range(levels):
        index = tap_sets.index(depth_taps[d])
        target = out[:, :, d]
        first = max(0, d - 2)  # columns left of it read only zeros
        if bias is None:
            target[..., :first] = 0
        else:
            target[..., :first] = bias[:, None, None]
        interior = slice(min(d + 2, width - 1), width - 1)
        torch.add(left_full[:, index, ..., interior], right_full[:, index, ..., interior.start - d + 2: width + 1 - d],
                  out=target[..., interior])
        for x in range(first, min(d + 2, width - 1)):
            torch.add(left_edge[:, x - d + 2, index, ..., x], right_full[:, index, ..., x - d + 2], out=target[..., x])
        x = width - 1
        if x >= first:
            lefts = left_full[:, index] if x - d >= 2 else left_edge[:, x - d + 2, index]
            torch.add(lefts[..., x], right_last[:, index, ..., x - d + 2 - last_start], out=target[..., x])
    return out


def _full_resolution_cost(cost: torch.Tensor, max_disp: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, 1, D/4, H/4, W/4)`` cost -> trilinear ``(B, D, H, W)`` float32 cost and the
    disparity levels ``(1, D, 1, 1)``."""
    height, width = cost.shape[-2] * 4, cost.shape[-1] * 4
    cost = F.interpolate(cost.float(), [max_disp, height, width], mode="trilinear", align_corners=True)
    levels = torch.arange(max_disp, dtype=cost.dtype, device=cost.device).view(1, max_disp, 1, 1)
    return cost.squeeze(1), levels


def disparity_regression(cost: torch.Tensor, max_disp: int) -> torch.Tensor:
    """Soft argmin: ``(B, 1, D/4, H/4, W/4)`` cost -> ``(B, H, W)`` expected disparity (float32)."""
    cost, levels = _full_resolution_cost(cost, max_disp)
    return torch.sum(F.softmax(cost, dim=1) * levels, 1)


def disparity_regression_chunked(cost: torch.Tensor, max_disp: int, pixels_per_chunk: int = 8192) -> torch.Tensor:
    """:func:`disparity_regression` without its three ``(B, D, H, W)`` float32 volumes (1.1 GB at
    Motorcycle size): the trilinear upsampling is split into the bilinear one in ``(H, W)`` at
    ``D/4`` levels and a linear one along disparity, written as a ``(D, D/4)`` matrix applied to
    a block of pixels at a time; softmax and expectation follow in the same block, in cache.
    Same values within float rounding (the softmax subtracts each pixel's maximum over the
    upsampled levels, as the official one does; the coarse maximum, an upper bound, let every
    term underflow to 0 and gave 0/0 where the cost has a spike between fine levels, as an
    untrained network's does). ``(B, 1, D/4, H/4, W/4)`` -> ``(B, H, W)`` float32. Few
    large operations on purpose: on a loaded machine every parallel region waits for both
    threads. At Motorcycle size about 0.28 s of CPU against 1.0 s (blocks of 8192 pixels; 2048
    took as much CPU and twice the wall time under load, 16384 a little more)."""
    batch, _, levels, height, width = cost.shape
    height, width = height * 4, width * 4
    planes = F.interpolate(cost[:, 0].float(), (height, width), mode="bilinear", align_corners=True)
    planes = planes.reshape(batch, levels, height * width)
    upsample = _linear_upsampling_matrix(levels, max_disp).to(planes.device)
    # One matrix product gives the numerator and denominator of the expectation.
    moments = torch.stack((torch.arange(max_disp, dtype=torch.float32, device=planes.device),
                           torch.ones(max_disp, device=planes.device)))
    sums = planes.new_empty(batch, 2, height * width)
    for image in range(batch):
        for start in range(0, height * width, pixels_per_chunk):
            end = start + pixels_per_chunk
            fine = torch.mm(upsample, planes[image, :, start:end])
            weights = fine.sub_(fine.amax(0, keepdim=True)).exp_()
            torch.mm(moments, weights, out=sums[image, :, start:end])
    return (sums[:, 0] / sums[:, 1]).view(batch, height, width)


def _linear_upsampling_matrix(levels: int, max_disp: int) -> torch.Tensor:
    """``(max_disp, levels)`` float32: linear interpolation with ``align_corners=True``."""
    source = torch.arange(max_disp, dtype=torch.float64) * ((levels - 1) / (max_disp - 1))
    lower = source.floor().long().clamp(max=levels - 2)
    fraction = source - lower
    matrix = torch.zeros(max_disp, levels, dtype=torch.float64)
    rows = torch.arange(max_disp)
    matrix[rows, lower] = 1.0 - fraction
    matrix[rows, lower + 1] += fraction
    return matrix.float()


def single_output_conv3d(volume: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``conv3d(volume, weight, padding=1)`` for a ``(1, C, 3, 3, 3)`` weight: ``(B, C, D, H, W)``
    -> ``(B, 1, D, H, W)``, same values within float rounding. oneDNN runs a convolution with one
    output channel at a small fraction of its usual rate (310 ms of CPU for each of PSMNet's
    three classifier heads at Motorcycle size); here one matrix product gives every voxel's 27
    tap contributions, and 27 shifted slice additions gather them (67-120 ms). Per depth slice it
    took as long, in 100x more operations, which a loaded machine punishes."""
    batch, channels, depth, height, width = volume.shape
    taps = weight[0].reshape(channels, 27).t()  # row dz * 9 + dy * 3 + dx
    # Sums in float32 at least: under autocast the taps arrive in half precision.
    out = volume.new_empty(batch, 1, depth, height, width, dtype=torch.promote_types(volume.dtype, torch.float32))
    offsets = [(dz, dy, dx) for dz in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    sizes = (depth, height, width)
    for image in range(batch):
        voxels = volume[image].permute(1, 2, 3, 0).reshape(-1, channels)  # a view when channels-last
        contributions = torch.mm(taps, voxels.t()).view(27, depth, height, width)
        total = out[image, 0]
        total.copy_(contributions[13])  # the centre tap reaches every voxel
        for tap, offset in enumerate(offsets):
            if tap != 13:
                target = tuple(slice(max(0, -o), n - max(0, o)) for o, n in zip(offset, sizes))
                source = tuple(slice(max(0, o), n - max(0, -o)) for o, n in zip(offset, sizes))
                total[target] += contributions[tap][source]
    return out


def disparity_regression_explicit(cost: torch.Tensor, max_disp: int) -> torch.Tensor:
    """:func:`disparity_regression` with the softmax written out (max, exp, two sums): the same
    values within float rounding. Exporters then emit element-wise ops and reductions, which
    onnxruntime runs far faster than its Softmax over a non-last axis (that one op took 3.6 s of
    14 s for PSMNet at 741x500 on 2 CPU cores)."""
    cost, levels = _full_resolution_cost(cost, max_disp)
    weights = torch.exp(cost - cost.amax(dim=1, keepdim=True))
    return torch.sum(weights * levels, 1) / torch.sum(weights, 1)


class PSMNet(nn.Module):
    """Stacked-hourglass PSMNet in inference form.

    ``forward(left, right)``: ``(B, 3, H, W)`` ImageNet-normalised images with H and W
    multiples of 16 (and at least 256: the widest SPP pooling is 64x64 at 1/4 size) ->
    ``(B, H, W)`` float32 disparity in ``[0, max_disp - 1]``.
    """

    def __init__(self, max_disp: int = 192):
        super().__init__()
        if max_disp % 16:
            raise ValueError(f"PSMNet needs max_disp to be a multiple of 16, got {max_disp}")
        self.max_disp = max_disp
        self.feature_extraction = FeatureExtraction()
        self.dres0 = nn.Sequential(_convbn_3d(64, 32, 3, 1, 1), nn.ReLU(inplace=True),
                                   _convbn_3d(32, 32, 3, 1, 1), nn.ReLU(inplace=True))
        self.dres1 = nn.Sequential(_convbn_3d(32, 32, 3, 1, 1), nn.ReLU(inplace=True),
                                   _convbn_3d(32, 32, 3, 1, 1))
        self.dres2 = Hourglass(32)
        self.dres3 = Hourglass(32)
        self.dres4 = Hourglass(32)
        self.classif1 = _classifier()
        self.classif2 = _classifier()
        self.classif3 = _classifier()
        self.cost_volume = concat_cost_volume
        self.regression = disparity_regression
        self.inference_form = False

    def features(self, left: torch.Tensor, right: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.feature_extraction(left), self.feature_extraction(right)

    def volume(self, left_features: torch.Tensor, right_features: torch.Tensor) -> torch.Tensor:
        """What :meth:`aggregate` takes: the concatenation cost volume ``(B, 64, D/4, H/4, W/4)``;
        in inference form, the output of the first 3-D layer (convolution and ReLU, ``(B, 32,
        D/4, H/4, W/4)``, channels-last) computed from the features by :func:`concat_volume_conv3d`,
        without the volume."""
        if not self.inference_form:
            return self.cost_volume(left_features, right_features, self.max_disp // 4)
        first = self.dres0[0][0]
        return F.relu(concat_volume_conv3d(left_features, right_features, self.max_disp // 4, first.weight,
                                           first.bias, memory_format=torch.channels_last_3d), inplace=True)

    def aggregate(self, volume: torch.Tensor) -> torch.Tensor:
        """:meth:`volume` -> ``(B, 1, D/4, H/4, W/4)`` matching cost (final head)."""
        if not self.inference_form:
            return self.aggregate_heads(volume)[-1]
        # The official sum of the three heads, each head computed as soon as its hourglass
        # output exists (so that output can be freed early), the last convolution of each
        # head by single_output_conv3d.
        def head(classifier: nn.Sequential, volume: torch.Tensor) -> torch.Tensor:
            return single_output_conv3d(classifier[:-1](volume), classifier[-1].weight)

        cost0 = self.dres0[2:](volume)  # the first layer made the volume
        del volume
        cost0 = self.dres1(cost0).add_(cost0)
        out1, pre1, post1 = self.dres2(cost0, None, None)
        out1 += cost0
        total = head(self.classif1, out1)
        out2, _, post2 = self.dres3(out1, pre1, post1)
        del out1, post1
        out2 += cost0
        total += head(self.classif2, out2)
        out3, _, _ = self.dres4(out2, pre1, post2)
        del out2, post2, pre1
        out3 += cost0
        del cost0
        total += head(self.classif3, out3)
        return total

    def aggregate_heads(self, cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The three stacked-hourglass outputs (training supervises all three; inference uses the last)."""
        cost0 = self.dres0(cost)
        cost0 = self.dres1(cost0) + cost0
        out1, pre1, post1 = self.dres2(cost0, None, None)
        out1 = out1 + cost0
        out2, _, post2 = self.dres3(out1, pre1, post1)
        out2 = out2 + cost0
        out3, _, _ = self.dres4(out2, pre1, post2)
        out3 = out3 + cost0
        cost1 = self.classif1(out1)
        cost2 = self.classif2(out2) + cost1
        return cost1, cost2, self.classif3(out3) + cost2

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        return self.regression(self.aggregate(self.volume(*self.features(left, right))), self.max_disp)


def to_inference_form(model: PSMNet) -> PSMNet:
    """The fast form of an eval-mode model, in place; its output equals the official one up to
    float rounding. Each BatchNorm is folded into the convolution before it (a bias), the
    convolution weights are stored channels-last (NHWC / NDHWC: with inputs in the same layout
    oneDNN's kernels take 1.2-1.8x less CPU time), and ``forward`` switches to the first layer
    computed from the features (:meth:`PSMNet.volume`), the early classifier heads of
    :meth:`PSMNet.aggregate` and :func:`disparity_regression_chunked`. Not
    for training: BatchNorm is gone. (Left and right features as one batch of two took as long
    as two batches of one, so the official two calls stay.)"""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for sequence in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for index in range(len(sequence) - 1):
            conv, norm = sequence[index], sequence[index + 1]
            if isinstance(conv, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose3d)) and \
                    isinstance(norm, (nn.BatchNorm2d, nn.BatchNorm3d)):
                sequence[index] = fuse_conv_bn_eval(conv, norm, transpose=isinstance(conv, nn.ConvTranspose3d))
                sequence[index + 1] = nn.Identity()
    for module in model.modules():
        if isinstance(module, (nn.Conv3d, nn.ConvTranspose3d)):
            module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last_3d)
        elif isinstance(module, nn.Conv2d):
            module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last)
    if winograd.available():
        # The stride-1 3x3x3 convolutions (and the ReLU after them) by Winograd's F(2x2x2, 3x3x3):
        # 0.58x oneDNN's time at 32 channels, 0.47x at 64.
        sequences = [m for m in model.modules() if isinstance(m, nn.Sequential)]
        for sequence in sequences:  # (convolution, folded BatchNorm)
            if winograd.eligible(sequence[0]):
                sequence[0] = winograd.WinogradConv3d(sequence[0])
        for sequence in sequences:  # ((convolution, folded BatchNorm), ReLU)
            for index in range(len(sequence) - 1):
                layer = sequence[index]
                if isinstance(layer, nn.Sequential) and isinstance(layer[0], winograd.WinogradConv3d) \
                        and isinstance(sequence[index + 1], nn.ReLU):
                    layer[0].relu = True
                    sequence[index + 1] = nn.Identity()
    model.regression = disparity_regression_chunked
    model.inference_form = True
    return model


def load_official_state_dict(model: PSMNet, state_dict: dict, source: str) -> None:
    """Load an official checkpoint: strips the ``module.`` prefix of ``nn.DataParallel`` and
    accepts the missing ``num_batches_tracked`` counters of pre-0.4 PyTorch. Any other
    mismatch raises ValueError naming the keys."""
    if "state_dict" in state_dict and isinstance(state_dict["state_dict"], dict):
        state_dict = state_dict["state_dict"]
    state_dict = {(key[len("module."):] if key.startswith("module.") else key): value
                  for key, value in state_dict.items()}
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in expected]
    wrong_shape = [f"{k} {tuple(state_dict[k].shape)} (model {tuple(expected[k].shape)})"
                   for k in expected if k in state_dict and state_dict[k].shape != expected[k].shape]
    if missing or unexpected or wrong_shape:
        problems = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)):
            if keys:
                problems.append(f"{len(keys)} {label} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})")
        raise ValueError(f"{source}: not a stacked-hourglass PSMNet checkpoint: {'; '.join(problems)}")
    model.load_state_dict(state_dict, strict=False)
