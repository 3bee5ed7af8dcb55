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
    outside_interior, below, above, _ = _outside_weights(filters, radius, height, width)
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


def _outside_weights(filters: torch.Tensor, radius: int, height: int, width: int):
    """Per pixel, the summed weight of the taps that fall outside the volume and so read the
    centre: ``(interior, first, last)``, each ``(N, 1, H, W)``; ``interior`` holds for every
    level, the first (last) level adds ``first`` (``last``) for the taps reading d-1 (d+1)."""
    n = filters.shape[0]
    size = 2 * radius + 1
    taps = filters.view(n, 3, size, size, height, width)
    ys = torch.arange(height, device=filters.device)
    xs = torch.arange(width, device=filters.device)
    offsets = torch.arange(size, device=filters.device) - radius
    rows_in = (ys[None, :] + offsets[:, None] >= 0) & (ys[None, :] + offsets[:, None] < height)
    cols_in = (xs[None, :] + offsets[:, None] >= 0) & (xs[None, :] + offsets[:, None] < width)
    spatial_in = (rows_in[:, None, :, None] & cols_in[None, :, None, :]).to(filters.dtype)
    inside = (taps * spatial_in).sum(dim=(2, 3))
    interior = taps.sum(dim=(1, 2, 3)).unsqueeze(1) - inside.sum(dim=1, keepdim=True)
    return interior, inside[:, 0:1], inside[:, 2:3], spatial_in


def _lga_backward_torch(volume, filters, grad, radius: int):
    """LGA's backward, vectorised: one multiply-add per tap for each of the two gradients
    (the volume's is the transposed filter, scattered into a zero-padded buffer), plus the
    centre terms of the taps that fall outside. ``(volume grad, filters grad)``."""
    n, levels, height, width = volume.shape
    size = 2 * radius + 1
    padded = F.pad(volume, (radius, radius, radius, radius, 1, 1))
    taps = filters.view(n, 3, size, size, height, width)
    grad_padded = torch.zeros_like(padded)
    grad_taps = torch.empty_like(taps)
    for e in range(3):
        for i in range(size):
            for j in range(size):
                window = (slice(None), slice(e, e + levels), slice(i, i + height), slice(j, j + width))
                tap = taps[:, e, i, j].unsqueeze(1)
                grad_padded[window].addcmul_(grad, tap)
                grad_taps[:, e, i, j] = (grad * padded[window]).sum(dim=1)
    interior, first, last, spatial_in = _outside_weights(filters, radius, height, width)
    grad_volume = grad_padded[:, 1:1 + levels, radius:radius + height, radius:radius + width]
    grad_volume = grad_volume.addcmul(grad, interior)
    grad_volume[:, :1].addcmul_(grad[:, :1], first)
    grad_volume[:, -1:].addcmul_(grad[:, -1:], last)
    # A tap outside reads the centre V(d, y, x) at every level; one inside spatially but
    # off the first (last) level reads the centre only there.
    centre = (grad * volume).sum(dim=1)[:, None, None, None]            # (N, 1, 1, 1, H, W)
    grad_taps += (1 - spatial_in) * centre
    grad_taps[:, 0] += spatial_in * (grad[:, 0] * volume[:, 0])[:, None, None]
    grad_taps[:, 2] += spatial_in * (grad[:, -1] * volume[:, -1])[:, None, None]
    return grad_volume, grad_taps.view_as(filters)


class _LGAFunction(torch.autograd.Function):
    """One LGA pass with a hand-written backward (vectorised torch, or the Triton kernels)."""

    @staticmethod
    def forward(ctx, use_triton, radius, volume, filters):
        volume, filters = volume.contiguous(), filters.contiguous()
        ctx.use_triton, ctx.radius = use_triton, radius
        ctx.save_for_backward(volume, filters)
        if use_triton:
            from . import triton_kernels

            return triton_kernels.lga(volume, filters, radius)
        return lga_torch(volume, filters, radius)

    @staticmethod
    def backward(ctx, grad_out):
        volume, filters = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        if ctx.use_triton:
            from . import triton_kernels

            grad_volume, grad_filters = triton_kernels.lga_backward(volume, filters, grad_out, ctx.radius)
        else:
            grad_volume, grad_filters = _lga_backward_torch(volume, filters, grad_out, ctx.radius)
        return None, None, grad_volume, grad_filters


def lga2(volume: torch.Tensor, filters: torch.Tensor, radius: int = 2,
         implementation: str = "auto") -> torch.Tensor:
    """GA-Net's ``LGA2``: the same filters applied twice."""
    return lga(lga(volume, filters, radius, implementation), filters, radius, implementation)


def lga(volume: torch.Tensor, filters: torch.Tensor, radius: int = 2,
        implementation: str = "auto") -> torch.Tensor:
    """One LGA pass with the fastest implementation that fits (Triton on CUDA, forward and
    backward; torch otherwise). ``implementation`` forces ``torch`` (hand-written backward),
    ``triton``, or ``reference`` (autograd through :func:`lga_torch`)."""
    if implementation not in ("auto", "torch", "triton", "reference"):
        raise ValueError(f"implementation must be auto, torch, triton or reference, got {implementation!r}")
    from . import triton_kernels

    use_triton = implementation == "triton" or (implementation == "auto" and volume.is_cuda
                                                and triton_kernels.AVAILABLE)
    grad = torch.is_grad_enabled() and (volume.requires_grad or filters.requires_grad)
    if implementation == "reference" or tracing():
        return lga_torch(volume, filters, radius)
    _check(volume, filters, radius)
    if grad:
        return _LGAFunction.apply(use_triton, radius, volume, filters)
    return triton_kernels.lga(volume, filters, radius) if use_triton else lga_torch(volume, filters, radius)
