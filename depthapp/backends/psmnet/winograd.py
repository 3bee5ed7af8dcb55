"""PSMNet's stride-1 3x3x3 convolutions on the CPU by Winograd's F(2x2x2, 3x3x3) (``_winograd.cpp``):
3.4x fewer multiplications than oneDNN's direct convolution, the same values within float
rounding. Used by the inference form where :func:`applies`; oneDNN does the rest, and all of it
when the extension is not built.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

try:
    from . import _winograd
except ImportError:  # not built (no compiler at install time): oneDNN convolutions instead
    _winograd = None

# Winograd F(2, 3): the weights' transform G (4 x 3).
_G = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]], dtype=torch.float64)


def available() -> bool:
    """The extension is built and this CPU runs it (AVX-512)."""
    return _winograd is not None and _winograd.supported()


def transformed_weights(weight: torch.Tensor) -> torch.Tensor:
    """``(Cout, Cin, 3, 3, 3)`` -> ``(64, Cin, Cout)`` float32: ``G g G^T`` along each dimension,
    position ``16 i + 4 j + k`` for (depth, row, column)."""
    g = weight.detach().to(torch.float64, copy=True).cpu()
    u = torch.einsum("ip,jq,kr,ocpqr->ijkco", _G, _G, _G, g)
    return u.reshape(64, weight.shape[1], weight.shape[0]).float().contiguous()


def applies(volume: torch.Tensor) -> bool:
    """Whether :func:`conv3d` can take ``volume`` (for an :func:`eligible` convolution)."""
    return (available() and volume.device.type == "cpu" and volume.dtype == torch.float32
            and not torch.is_grad_enabled() and not torch.is_autocast_enabled("cpu") and volume.shape[0] == 1
            and volume.is_contiguous(memory_format=torch.channels_last_3d))


def eligible(conv: nn.Conv3d) -> bool:
    """A convolution the kernel computes: 3x3x3, stride 1, padding 1, Cin 16-64 in steps of 16,
    Cout 16, 32 or 64."""
    return (isinstance(conv, nn.Conv3d) and conv.kernel_size == (3, 3, 3) and conv.stride == (1, 1, 1)
            and conv.padding == (1, 1, 1) and conv.dilation == (1, 1, 1) and conv.groups == 1
            and conv.in_channels in (16, 32, 48, 64) and conv.out_channels in (16, 32, 64))


class WinogradConv3d(nn.Module):
    """An :func:`eligible` :class:`~torch.nn.Conv3d`, optionally followed by a ReLU, computed by
    :func:`conv3d` where it :func:`applies` (the CPU, float32, batch 1, channels-last, no
    autograd, no autocast) and by ``F.conv3d`` elsewhere (CUDA, the opt-in bf16...)."""

    def __init__(self, conv: nn.Conv3d, relu: bool = False):
        super().__init__()
        self.weight = conv.weight
        self.bias = conv.bias if conv.bias is not None else nn.Parameter(torch.zeros(conv.out_channels))
        self.relu = relu
        self.register_buffer("transformed", transformed_weights(conv.weight), persistent=False)

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        if applies(volume) and self.weight.dtype == torch.float32:
            return conv3d(volume, self.transformed, self.bias, relu=self.relu)
        out = F.conv3d(volume, self.weight, self.bias, padding=1)
        return F.relu(out, inplace=True) if self.relu else out


def conv3d(volume: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor, relu: bool = False) -> torch.Tensor:
    """``conv3d(volume, w, bias, padding=1)`` (then a ReLU if ``relu``) for a channels-last
    ``(1, Cin, D, H, W)`` float32 volume and ``weights = transformed_weights(w)``; channels-last
    output."""
    _, channels, depth, height, width = volume.shape
    out_channels = weights.shape[2]
    out = torch.empty(1, out_channels, depth, height, width, memory_format=torch.channels_last_3d)
    as_rows = lambda t: t.permute(0, 2, 3, 4, 1).numpy()  # the channels-last memory, C-contiguous  # noqa: E731
    bias = bias.detach().float().contiguous()
    _winograd.conv3d(as_rows(volume), weights.numpy(), bias.numpy(), as_rows(out),
                     (depth, height, width, channels, out_channels), relu, torch.get_num_threads())
    return out
