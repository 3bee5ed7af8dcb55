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
  image axis) at once, in place in inference.
- :func:`sga_triton`: a Triton kernel for CUDA (inference), one program per (n, k, column
  block) holding a ``(D, columns)`` tile in registers while it walks the scan line.
:func:`sga` picks the fast one when it can. For training, both have a hand-written backward
(:class:`_SGAFunction`): the gradient runs back along each scan once (a torch loop over lines,
or the Triton adjoint kernel) and the rest is whole-volume arithmetic; autograd through
:func:`sga_torch` (``implementation="reference"``) is what they are checked against.
Importing this module never needs CUDA or Triton.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Optional, Sequence

import torch

from ..gcnet.learned import tracing

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


def _scan(volume: torch.Tensor, weights: torch.Tensor, reverse: bool, out: Optional[torch.Tensor],
          accumulate: bool):
    """Run the recurrence along dim 3 of ``volume`` ``(N, K, D, L, M)`` with ``weights``
    ``(N, K, 5, L, M)``, from ``L-1`` down to 0 when ``reverse``.

    With ``out`` given (inference), each aggregated line goes straight into ``out`` (or into
    ``max(out, .)`` when ``accumulate``) and nothing else of full size is allocated. Without it
    (autograd), the lines are returned stacked ``(N, K, D, L, M)``.
    """
    length = volume.shape[3]
    lines = []
    prev = None
    if out is not None:  # two line buffers used in turn: no allocation inside the loop
        n, k, levels, _, m = volume.shape
        buffers = [volume.new_empty(n, k, levels, m) for _ in range(2)]
        peak = volume.new_empty(n, k, 1, m)
    for step, pos in enumerate(range(length - 1, -1, -1) if reverse else range(length)):
        cost = volume[:, :, :, pos]                   # (N, K, D, M)
        w = weights[:, :, :, pos].unsqueeze(3)        # (N, K, 5, 1, M): broadcast over D
        if prev is None:
            agg = cost * w.sum(dim=2)
        else:
            w0, w1, w2, w3, w4 = w.unbind(dim=2)
            if out is None:
                agg = torch.mul(cost, w0)
                max_prev = prev.amax(dim=2, keepdim=True)
            else:
                agg = torch.mul(cost, w0, out=buffers[step % 2])
                max_prev = torch.amax(prev, dim=2, keepdim=True, out=peak)
            agg.addcmul_(prev, w1)
            # A(p-r, d-1), and C(p, d) where d-1 is outside (the kernel's edge rule); same for d+1.
            agg[:, :, 1:].addcmul_(prev[:, :, :-1], w2)
            agg[:, :, :1].addcmul_(cost[:, :, :1], w2)
            agg[:, :, :-1].addcmul_(prev[:, :, 1:], w3)
            agg[:, :, -1:].addcmul_(cost[:, :, -1:], w3)
            agg.addcmul_(max_prev, w4)
        if out is None:
            lines.append(agg)
        elif accumulate:
            target = out[:, :, :, pos]
            torch.maximum(target, agg, out=target)
        else:
            out[:, :, :, pos].copy_(agg)
        prev = agg
    if out is None:
        if reverse:
            lines.reverse()
        return torch.stack(lines, dim=3)
    return out


@contextmanager
def _cpu_threads(volume: torch.Tensor, count: int):
    """Run the scan's many small steps on ``count`` CPU threads: each step is a few hundred
    thousand elements, too little to pay for waking OpenMP threads, and on a loaded machine
    their barriers cost 4-25x the work (measured: 0.58 s on 1 thread, 2.2-14.5 s on 2 for one
    1/3-resolution SGA layer of GA-Net at 240x336 with other jobs running)."""
    before = torch.get_num_threads()
    switch = volume.device.type == "cpu" and before != count and not tracing()
    if switch:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if switch:
            torch.set_num_threads(before)


def sga_torch(volume: torch.Tensor, down: torch.Tensor, up: torch.Tensor, right: torch.Tensor,
              left: torch.Tensor) -> torch.Tensor:
    """SGA in pure torch: ``(N, K, D, H, W)`` volume and four ``(N, K, 5, H, W)`` normalised
    weights (propagating down, up, right, left) -> ``(N, K, D, H, W)``."""
    _check(volume, (down, up, right, left))
    with _cpu_threads(volume, 1):
        return _sga_torch(volume, down, up, right, left)


def _sga_torch(volume, down, up, right, left):
    # Horizontal scans walk W: a transposed copy keeps each step's line contiguous.
    volume_t = volume.transpose(3, 4).contiguous()
    right_t = right.transpose(3, 4).contiguous()
    left_t = left.transpose(3, 4).contiguous()
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (volume, down, up, right, left))
    if grad or tracing():
        vertical = torch.maximum(_scan(volume, down, False, None, False), _scan(volume, up, True, None, False))
        horizontal = torch.maximum(_scan(volume_t, right_t, False, None, False),
                                   _scan(volume_t, left_t, True, None, False))
        return torch.maximum(vertical, horizontal.transpose(3, 4))
    out = torch.empty_like(volume)
    _scan(volume, down, False, out, accumulate=False)
    _scan(volume, up, True, out, accumulate=True)
    out_t = torch.empty_like(volume_t)
    _scan(volume_t, right_t, False, out_t, accumulate=False)
    _scan(volume_t, left_t, True, out_t, accumulate=True)
    del volume_t
    return torch.maximum(out, out_t.transpose(3, 4), out=out)


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
    for index, (weight, (axis, reverse)) in enumerate(zip((down, up, right, left), _SCANS)):
        sga_scan(volume, weight.contiguous(), out, axis=axis, reverse=reverse, accumulate=index > 0)
    return out


# (scan axis of the (N, K, D, H, W) volume, reverse?) for down, up, right, left.
_SCANS = ((3, False), (3, True), (4, False), (4, True))


def _direction_lines(volume, weights, use_triton: bool) -> list[torch.Tensor]:
    """The aggregation of each direction on its own, ``(N, K, D, H, W)`` each (the backward
    needs every line, not only their maximum)."""
    lines = []
    for weight, (axis, reverse) in zip(weights, _SCANS):
        if use_triton:
            from .triton_kernels import sga_scan

            line = torch.empty_like(volume)
            sga_scan(volume, weight.contiguous(), line, axis=axis, reverse=reverse, accumulate=False)
        elif axis == 3:
            line = _scan(volume, weight, reverse, torch.empty_like(volume), accumulate=False)
        else:
            volume_t = volume.transpose(3, 4).contiguous()
            line = _scan(volume_t, weight.transpose(3, 4).contiguous(), reverse,
                         torch.empty_like(volume_t), accumulate=False).transpose(3, 4)
        lines.append(line)
    return lines


def _adjoint_scan_torch(lines, weights, grad, reverse: bool) -> torch.Tensor:
    """The sequential half of SGA's backward, along dim 3 of ``(N, K, D, L, M)``: the total
    gradient of every aggregated line, ``grad`` (from the output) plus what flows back from
    the later lines of the scan. It walks the scan in the opposite order, a line at a time."""
    length = lines.shape[3]
    total = torch.empty_like(grad)
    carry = None
    for pos in (range(length) if reverse else range(length - 1, -1, -1)):
        g = grad[:, :, :, pos] if carry is None else grad[:, :, :, pos] + carry
        total[:, :, :, pos] = g
        previous = pos + 1 if reverse else pos - 1
        if not 0 <= previous < length:
            break
        _, w1, w2, w3, w4 = weights[:, :, :, pos].unsqueeze(3).unbind(dim=2)  # (N, K, 1, M)
        carry = g * w1
        carry[:, :, :-1].addcmul_(g[:, :, 1:], w2)   # A(p, d) read A(p-r, d-1)
        carry[:, :, 1:].addcmul_(g[:, :, :-1], w3)   # A(p, d) read A(p-r, d+1)
        prev = lines[:, :, :, previous]
        winners = (prev == prev.amax(dim=2, keepdim=True)).to(g.dtype)
        share = g.sum(dim=2, keepdim=True) * w4 / winners.sum(dim=2, keepdim=True)
        carry.addcmul_(winners, share)  # amax's rule: ties share the gradient equally
    return total


def _direction_gradients(volume, weight, line, total, reverse: bool):
    """The vectorised half of SGA's backward for one direction, along dim 3 of
    ``(N, K, D, L, M)`` (views in any layout): gradients of the volume and of the five
    weights from the lines and their total gradients."""
    first = volume.shape[3] - 1 if reverse else 0
    steps, prevs = (slice(None, -1), slice(1, None)) if reverse else (slice(1, None), slice(None, -1))
    g, cost, prev, w = total[:, :, :, steps], volume[:, :, :, steps], line[:, :, :, prevs], weight[:, :, :, steps]
    grad_volume = torch.empty_like(total)
    grad_volume[:, :, :, steps] = g * w[:, :, 0:1]
    grad_volume[:, :, 0, steps] += g[:, :, 0] * w[:, :, 2]
    grad_volume[:, :, -1, steps] += g[:, :, -1] * w[:, :, 3]
    g_first, cost_first = total[:, :, :, first], volume[:, :, :, first]
    grad_volume[:, :, :, first] = g_first * weight[:, :, :, first].sum(dim=2, keepdim=True)
    grad_weight = torch.empty_like(weight)
    grad_weight[:, :, :, first] = (g_first * cost_first).sum(dim=2, keepdim=True)
    grad_weight[:, :, 0, steps] = (g * cost).sum(dim=2)
    grad_weight[:, :, 1, steps] = (g * prev).sum(dim=2)
    grad_weight[:, :, 2, steps] = (g[:, :, 1:] * prev[:, :, :-1]).sum(dim=2) + g[:, :, 0] * cost[:, :, 0]
    grad_weight[:, :, 3, steps] = (g[:, :, :-1] * prev[:, :, 1:]).sum(dim=2) + g[:, :, -1] * cost[:, :, -1]
    grad_weight[:, :, 4, steps] = g.sum(dim=2) * prev.amax(dim=2)
    return grad_volume, grad_weight


class _SGAFunction(torch.autograd.Function):
    """SGA with a hand-written backward: the lines of each direction are kept from the
    forward, the gradient runs back along each scan once (torch line by line, or the Triton
    adjoint kernel), and everything else is a few whole-volume operations."""

    @staticmethod
    def forward(ctx, use_triton, volume, down, up, right, left):
        volume = volume.contiguous()
        weights = [w.contiguous() for w in (down, up, right, left)]
        with _cpu_threads(volume, 1):
            lines = _direction_lines(volume, weights, use_triton)
        out = torch.maximum(torch.maximum(lines[0], lines[1]), torch.maximum(lines[2], lines[3]))
        ctx.use_triton = use_triton
        ctx.save_for_backward(volume, *weights, *lines, out)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        volume, *saved = ctx.saved_tensors
        weights, lines, out = saved[:4], saved[4:8], saved[8]
        winners = [(line == out) for line in lines]
        count = sum(w.to(grad_out.dtype) for w in winners)  # ties share, as torch.maximum's do
        grad_share = grad_out / count
        grad_volume = torch.zeros_like(volume)
        grad_weights = []
        for weight, line, winner, (axis, reverse) in zip(weights, lines, winners, _SCANS):
            grad = torch.where(winner, grad_share, 0).contiguous()
            if ctx.use_triton:
                from .triton_kernels import sga_adjoint_scan

                total = sga_adjoint_scan(line.contiguous(), weight, grad, axis=axis, reverse=reverse)
            elif axis == 3:
                with _cpu_threads(volume, 1):
                    total = _adjoint_scan_torch(line, weight, grad, reverse)
            else:
                with _cpu_threads(volume, 1):
                    total = _adjoint_scan_torch(line.transpose(3, 4).contiguous(),
                                                weight.transpose(3, 4).contiguous(),
                                                grad.transpose(3, 4).contiguous(), reverse).transpose(3, 4)
            views = (volume, weight, line, total)
            if axis == 4:
                views = tuple(t.transpose(3, 4) for t in views)
            grad_v, grad_w = _direction_gradients(*views, reverse)
            if axis == 4:
                grad_v, grad_w = grad_v.transpose(3, 4), grad_w.transpose(3, 4)
            grad_volume += grad_v
            grad_weights.append(grad_w)
        return (None, grad_volume, *grad_weights)


def sga(volume: torch.Tensor, down: torch.Tensor, up: torch.Tensor, right: torch.Tensor,
        left: torch.Tensor, implementation: str = "auto") -> torch.Tensor:
    """SGA with the fastest implementation that fits: Triton on CUDA (forward and backward),
    torch otherwise. ``implementation`` forces ``torch`` (hand-written backward), ``triton``,
    or ``reference`` (autograd through :func:`sga_torch`, the slow one the others are checked
    against)."""
    if implementation not in ("auto", "torch", "triton", "reference"):
        raise ValueError(f"implementation must be auto, torch, triton or reference, got {implementation!r}")
    tensors = (volume, down, up, right, left)
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    use_triton = implementation == "triton" or (implementation == "auto" and volume.is_cuda
                                                and triton_available())
    if implementation == "reference" or tracing():
        return sga_torch(*tensors)
    if not grad:
        return sga_triton(*tensors) if use_triton else sga_torch(*tensors)
    _check(volume, (down, up, right, left))
    return _SGAFunction.apply(use_triton, *tensors)
