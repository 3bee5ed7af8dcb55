"""Semi-global guided aggregation (SGA), GA-Net (Zhang et al., CVPR 2019, eq. 4).

For a cost volume ``C`` ``(N, K, D, H, W)`` and, per scan direction ``r``, five per-pixel weights
``w0..w4`` ``(N, K, 5, H, W)`` (normalised so ``sum |w_i| = 1``), the aggregation along ``r``
runs pixel to pixel:

    A_r(p, d) = w0 C(p, d) + w1 A_r(p-r, d) + w2 A_r(p-r, d-1) + w3 A_r(p-r, d+1)
                + w4 max_i A_r(p-r, i)

and the result is the element-wise maximum over the four directions (down, up, right, left).
Edges follow the authors' CUDA kernel (GANet/libs/GANet/src/GANet_kernel.cu): where ``p - r``
or ``d -/+ 1`` falls outside the volume, that term uses ``C(p, d)`` instead, so the first pixel
of each scan line is ``C(p, d) * sum_i w_i``.

Two implementations with one contract:
- :func:`sga_torch`: pure torch on any device, differentiable. The recurrence is sequential
  along the scan; each step handles a whole line (batch, channels, disparities, the other
  image axis) at once, and opposite directions share one loop.
- :func:`sga_triton`: a Triton kernel for CUDA (inference), one program per (n, k, column
  block) holding a ``(D, columns)`` tile in registers while it walks the scan line.
:func:`sga` picks the fast one when it can. Importing this module never needs CUDA or Triton.
"""

from __future__ import annotations

from typing import Sequence

import torch

DIRECTIONS = ("down", "up", "right", "left")


def _check(volume: torch.Tensor, weights: Sequence[torch.Tensor]) -> None:
    if volume.dim() != 5:
        raise ValueError(f"SGA volume must be (N, K, D, H, W), got {tuple(volume.shape)}")
    n, k, _, h, w = volume.shape
    if len(weights) != 4:
        raise ValueError(f"SGA needs weights for 4 directions, got {len(weights)}")
    for name, weight in zip(DIRECTIONS, weights):
        if tuple(weight.shape) != (n, k, 5, h, w):
            raise ValueError(f"SGA {name} weights must be {(n, k, 5, h, w)}, got {tuple(weight.shape)}")


def _scan_lines(lines: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Run the recurrence along dim 0.

    Args:
        lines: ``(L, B, K, D, M)`` cost, scanned from index 0 to L-1.
        weights: ``(L, B, K, 5, M)``.
    Returns:
        ``(L, B, K, D, M)`` aggregated cost.
    """
    w = weights.unsqueeze(4)  # (L, B, K, 5, 1, M): broadcast over D
    first = lines[0] * w[0].sum(dim=2)
    out = [first]
    prev = first
    for step in range(1, lines.shape[0]):
        cost = lines[step]
        w0, w1, w2, w3, w4 = w[step].unbind(dim=2)
        agg = cost * w0
        agg = agg + prev * w1
        # A(p-r, d-1): shift up one level; level 0 takes C(p, 0) (the kernel's edge rule).
        below = torch.cat([cost[:, :, :1], prev[:, :, :-1]], dim=2)
        agg = agg + below * w2
        above = torch.cat([prev[:, :, 1:], cost[:, :, -1:]], dim=2)
        agg = agg + above * w3
        agg = agg + prev.amax(dim=2, keepdim=True) * w4
        out.append(agg)
        prev = agg
    return torch.stack(out)


def sga_torch(volume: torch.Tensor, down: torch.Tensor, up: torch.Tensor, right: torch.Tensor,
              left: torch.Tensor) -> torch.Tensor:
    """SGA in pure torch: ``(N, K, D, H, W)`` volume and four ``(N, K, 5, H, W)`` normalised
    weights (propagating down, up, right, left) -> ``(N, K, D, H, W)``."""
    _check(volume, (down, up, right, left))
    n = volume.shape[0]
    # Vertical: lines run along H. Both directions in one loop: 'up' is 'down' on the flipped volume.
    vertical = torch.cat([volume, volume.flip(3)], dim=0).permute(3, 0, 1, 2, 4)
    vertical_w = torch.cat([down, up.flip(3)], dim=0).permute(3, 0, 1, 2, 4)
    agg = _scan_lines(vertical, vertical_w).permute(1, 2, 3, 0, 4)  # (2N, K, D, H, W)
    result = torch.maximum(agg[:n], agg[n:].flip(3))
    del agg, vertical, vertical_w
    horizontal = torch.cat([volume, volume.flip(4)], dim=0).permute(4, 0, 1, 2, 3)
    horizontal_w = torch.cat([right, left.flip(4)], dim=0).permute(4, 0, 1, 2, 3)
    agg = _scan_lines(horizontal, horizontal_w).permute(1, 2, 3, 4, 0)
    return torch.maximum(result, torch.maximum(agg[:n], agg[n:].flip(4)))


def triton_available() -> bool:
    from . import triton_kernels

    return triton_kernels.AVAILABLE


def sga_triton(volume: torch.Tensor, down: torch.Tensor, up: torch.Tensor, right: torch.Tensor,
               left: torch.Tensor) -> torch.Tensor:
    """SGA through the Triton kernel (CUDA tensors, or CPU tensors under TRITON_INTERPRET=1);
    same contract as :func:`sga_torch`, no autograd."""
    from .triton_kernels import sga_scan

    _check(volume, (down, up, right, left))
    volume = volume.contiguous()
    out = torch.empty_like(volume)
    # (scan axis of the volume, reverse?) for down, up, right, left; the first writes, the
    # others keep the running maximum in the same buffer.
    for index, (weight, axis, reverse) in enumerate(
            ((down, 3, False), (up, 3, True), (right, 4, False), (left, 4, True))):
        sga_scan(volume, weight.contiguous(), out, axis=axis, reverse=reverse, accumulate=index > 0)
    return out


def sga(volume: torch.Tensor, down: torch.Tensor, up: torch.Tensor, right: torch.Tensor,
        left: torch.Tensor, implementation: str = "auto") -> torch.Tensor:
    """SGA with the fastest implementation that fits: Triton for CUDA inference, torch
    otherwise. ``implementation`` forces ``torch`` or ``triton``."""
    if implementation not in ("auto", "torch", "triton"):
        raise ValueError(f"implementation must be auto, torch or triton, got {implementation!r}")
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (volume, down, up, right, left))
    if implementation == "triton" or (implementation == "auto" and volume.is_cuda and not grad
                                      and triton_available()):
        return sga_triton(volume, down, up, right, left)
    return sga_torch(volume, down, up, right, left)
