"""Local guided aggregation (LGA), GA-Net (Zhang et al., CVPR 2019, eq. 6).

A per-pixel filter of ``3 x (2r+1) x (2r+1)`` weights (disparity x rows x columns; 75 for the
paper's radius 2), predicted by the guidance subnet and L1-normalised, is applied to a
``(N, D, H, W)`` volume:

    out(d, y, x) = sum_{e, i, j} f(e, i, j; y, x) * V(d + e - 1, y + i - r, x + j - r)

The filter belongs to the pixel ``(y, x)`` and is shared by every disparity ``d``. As in the
authors' CUDA kernel (``lga_filtering_forward``), a tap that falls outside the volume reads
the centre value ``V(d, y, x)``, not zero. GA-Net applies each filter twice in a row
(``LGA2``), see :func:`lga2`.

:func:`lga_torch` is pure torch on any device (differentiable): one multiply-add per tap over
the whole volume (in cache-sized bands of rows on the CPU), against a zero-padded copy, plus
one correction term for the taps outside the volume. :func:`lga` uses the Triton kernel for
CUDA inference when it can.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..gcnet.learned import tracing


CPU_BAND_FLOATS = 1 << 19  # 2 MiB of float32: the L2 cache of one core


def filter_size(radius: int) -> int:
    return 3 * (2 * radius + 1) ** 2


def _check(volume: torch.Tensor, filters: torch.Tensor, radius: int) -> None:
    if volume.dim() != 4:
        raise ValueError(f"LGA volume must be (N, D, H, W), got {tuple(volume.shape)}")
    n, _, h, w = volume.shape
    expected = (n, filter_size(radius), h, w)
    if tuple(filters.shape) != expected:
        raise ValueError(f"LGA filters must be {expected} for radius {radius}, got {tuple(filters.shape)}")


def lga_torch(volume: torch.Tensor, filters: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """One LGA pass in pure torch: ``(N, D, H, W)``, ``(N, 3(2r+1)^2, H, W)`` -> ``(N, D, H, W)``."""
    _check(volume, filters, radius)
    n, levels, height, width = volume.shape
    size = 2 * radius + 1
    padded = F.pad(volume, (radius, radius, radius, radius, 1, 1))
    taps = filters.view(n, 3, size, size, height, width)
    out = torch.zeros_like(volume)
    functional = tracing()
    # On the CPU, bands of a few rows keep each band's output in cache through its 75
    # multiply-adds instead of streaming the whole volume 75 times (measured 1.8x faster on
    # a 193 x 528 x 768 volume); one band is the whole volume elsewhere.
    band = height
    if volume.device.type == "cpu" and not functional:
        band = max(1, CPU_BAND_FLOATS // max(1, levels * width))
    for top in range(0, height, band):
        bottom = min(height, top + band)
        rows = out[:, :, top:bottom]
        for e in range(3):
            for i in range(size):
                for j in range(size):
                    neighbour = padded[:, e:e + levels, top + i:bottom + i, j:j + width]
                    tap = taps[:, e, i, j, top:bottom].unsqueeze(1)
                    if functional:
                        out = out.addcmul(neighbour, tap)
                    else:
                        rows.addcmul_(neighbour, tap)
    # Taps outside the volume read zeros above; the kernel reads the centre there instead:
    # add centre * (sum of all taps - sum of the taps that were inside). Inside-ness is
    # separable: rows x columns for each disparity offset e, and offset e = -1 (+1) is outside
    # only at the first (last) level, so interior levels share one correction map.
    ys = torch.arange(height, device=volume.device)
    xs = torch.arange(width, device=volume.device)
    offsets = torch.arange(size, device=volume.device) - radius
    rows_in = (ys[None, :] + offsets[:, None] >= 0) & (ys[None, :] + offsets[:, None] < height)
    cols_in = (xs[None, :] + offsets[:, None] >= 0) & (xs[None, :] + offsets[:, None] < width)
    spatial_in = (rows_in[:, None, :, None] & cols_in[None, :, None, :]).to(volume.dtype)  # (i, j, H, W)
    inside = (taps * spatial_in).sum(dim=(2, 3))  # (N, 3, H, W): per disparity offset e
    outside_interior = taps.sum(dim=(1, 2, 3)).unsqueeze(1) - inside.sum(dim=1, keepdim=True)  # (N, 1, H, W)
    below, above = inside[:, 0:1], inside[:, 2:3]  # taps reading level d-1 / d+1, inside spatially
    if functional:
        first = volume[:, :1] * (outside_interior + below)
        last = volume[:, -1:] * (outside_interior + above)
        correction = volume * outside_interior
        if levels == 1:
            return out + volume * (outside_interior + below + above)
        return out + torch.cat([first, correction[:, 1:-1], last], dim=1)
    out.addcmul_(volume, outside_interior)
    out[:, :1].addcmul_(volume[:, :1], below)
    out[:, -1:].addcmul_(volume[:, -1:], above)  # the same level as above when D == 1
    return out


def lga2(volume: torch.Tensor, filters: torch.Tensor, radius: int = 2,
         implementation: str = "auto") -> torch.Tensor:
    """GA-Net's ``LGA2``: the same filters applied twice."""
    return lga(lga(volume, filters, radius, implementation), filters, radius, implementation)


def lga(volume: torch.Tensor, filters: torch.Tensor, radius: int = 2,
        implementation: str = "auto") -> torch.Tensor:
    """One LGA pass with the fastest implementation that fits (Triton for CUDA inference,
    torch otherwise); ``implementation`` forces ``torch`` or ``triton``."""
    if implementation not in ("auto", "torch", "triton"):
        raise ValueError(f"implementation must be auto, torch or triton, got {implementation!r}")
    grad = torch.is_grad_enabled() and (volume.requires_grad or filters.requires_grad)
    if implementation == "triton" or (implementation == "auto" and volume.is_cuda and not grad):
        from . import triton_kernels

        if implementation == "triton" or triton_kernels.AVAILABLE:
            _check(volume, filters, radius)
            return triton_kernels.lga(volume, filters, radius)
    return lga_torch(volume, filters, radius)
