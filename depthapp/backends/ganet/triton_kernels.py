"""Triton kernels for GA-Net's SGA and LGA (the CUDA fast path).

Importing this module never fails: without Triton, ``AVAILABLE`` is False and callers use the
pure-torch implementations. With ``TRITON_INTERPRET=1`` set before Triton is imported, the
same kernels run on CPU tensors (slowly), which is how the CPU test suite checks them.
"""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # Triton ships with CUDA builds of torch only
    triton = None
    tl = None

AVAILABLE = triton is not None and tl is not None and hasattr(tl, "gather")


if AVAILABLE:

    @triton.jit
    def _sga_scan_kernel(cost_ptr, weight_ptr, out_ptr,
                         channels, levels, scan_len, across_len,
                         c_n, c_k, c_d, c_scan, c_across,
                         w_n, w_k, w_i, w_scan, w_across,
                         REVERSE: tl.constexpr, ACCUMULATE: tl.constexpr,
                         BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr):
        """One program: one (n, k) and BLOCK_M scan lines, all D levels in a register tile.
        ``out`` has the layout (strides) of ``cost``."""
        pid_nk = tl.program_id(0)
        pid_m = tl.program_id(1)
        n = pid_nk // channels
        k = pid_nk % channels
        d = tl.arange(0, BLOCK_D)[:, None]
        m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)[None, :]
        d_ok = d < levels
        mask = d_ok & (m < across_len)
        m_ok = m < across_len
        cost_base = cost_ptr + n * c_n + k * c_k + d * c_d + m * c_across
        out_base = out_ptr + n * c_n + k * c_k + d * c_d + m * c_across
        weight_base = weight_ptr + n * w_n + k * w_k + m * w_across
        # Register shuffles for A(p-r, d-1) and A(p-r, d+1); edges are replaced below.
        below_index = tl.maximum(d - 1, 0) + tl.zeros([BLOCK_D, BLOCK_M], tl.int32)
        above_index = tl.minimum(d + 1, BLOCK_D - 1) + tl.zeros([BLOCK_D, BLOCK_M], tl.int32)

        pos = scan_len - 1 if REVERSE else 0
        cost = tl.load(cost_base + pos * c_scan, mask=mask, other=0.0)
        w_sum = tl.load(weight_base + pos * w_scan, mask=m_ok, other=0.0)
        for i in tl.static_range(1, 5):
            w_sum += tl.load(weight_base + i * w_i + pos * w_scan, mask=m_ok, other=0.0)
        prev = cost * w_sum
        if ACCUMULATE:
            best = tl.load(out_base + pos * c_scan, mask=mask, other=0.0)
            tl.store(out_base + pos * c_scan, tl.maximum(best, prev), mask=mask)
        else:
            tl.store(out_base + pos * c_scan, prev, mask=mask)

        for step in range(1, scan_len):
            pos = scan_len - 1 - step if REVERSE else step
            cost = tl.load(cost_base + pos * c_scan, mask=mask, other=0.0)
            w0 = tl.load(weight_base + pos * w_scan, mask=m_ok, other=0.0)
            w1 = tl.load(weight_base + w_i + pos * w_scan, mask=m_ok, other=0.0)
            w2 = tl.load(weight_base + 2 * w_i + pos * w_scan, mask=m_ok, other=0.0)
            w3 = tl.load(weight_base + 3 * w_i + pos * w_scan, mask=m_ok, other=0.0)
            w4 = tl.load(weight_base + 4 * w_i + pos * w_scan, mask=m_ok, other=0.0)
            below = tl.where(d >= 1, tl.gather(prev, below_index, 0), cost)
            above = tl.where(d + 1 < levels, tl.gather(prev, above_index, 0), cost)
            peak = tl.max(tl.where(d_ok, prev, float("-inf")), axis=0)[None, :]
            agg = cost * w0
            agg += prev * w1
            agg += below * w2
            agg += above * w3
            agg += peak * w4
            if ACCUMULATE:
                best = tl.load(out_base + pos * c_scan, mask=mask, other=0.0)
                tl.store(out_base + pos * c_scan, tl.maximum(best, agg), mask=mask)
            else:
                tl.store(out_base + pos * c_scan, agg, mask=mask)
            prev = agg

    @triton.jit
    def _lga_kernel(x_ptr, f_ptr, out_ptr, levels, height, width,
                    x_n, x_d, x_h, x_w, f_n, f_k, f_h, f_w,
                    RADIUS: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_P: tl.constexpr):
        """One program: BLOCK_D levels x BLOCK_P pixels of one batch item; ``out`` contiguous
        like ``x``. The per-pixel filter is loaded once per tap and reused across levels."""
        pid_p = tl.program_id(0)
        pid_d = tl.program_id(1)
        n = tl.program_id(2)
        p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)[None, :]
        d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)[:, None]
        h = p // width
        w = p % width
        p_ok = p < height * width
        mask = p_ok & (d < levels)
        x_base = x_ptr + n * x_n
        centre = tl.load(x_base + d * x_d + h * x_h + w * x_w, mask=mask, other=0.0)
        acc = tl.zeros([BLOCK_D, BLOCK_P], tl.float32)
        size: tl.constexpr = 2 * RADIUS + 1
        for dd in tl.static_range(3):
            for r in tl.static_range(size):
                for c in tl.static_range(size):
                    tap = dd * size * size + r * size + c
                    f = tl.load(f_ptr + n * f_n + tap * f_k + h * f_h + w * f_w, mask=p_ok, other=0.0)
                    d2 = d + (dd - 1)
                    h2 = h + (r - RADIUS)
                    w2 = w + (c - RADIUS)
                    inside = (mask & (d2 >= 0) & (d2 < levels) & (h2 >= 0) & (h2 < height)
                              & (w2 >= 0) & (w2 < width))
                    value = tl.load(x_base + d2 * x_d + h2 * x_h + w2 * x_w, mask=inside, other=0.0)
                    acc += tl.where(inside, value, centre) * f
        tl.store(out_ptr + n * x_n + d * x_d + h * x_h + w * x_w, acc, mask=mask)


def interpreted() -> bool:
    """Whether Triton runs kernels in its CPU interpreter (TRITON_INTERPRET=1)."""
    import os

    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _require() -> None:
    if not AVAILABLE:
        raise RuntimeError("Triton (with tl.gather, Triton >= 3.2) is not installed")


def sga_scan(cost: torch.Tensor, weight: torch.Tensor, out: torch.Tensor, axis: int,
             reverse: bool, accumulate: bool, block_m: int = 16) -> None:
    """Aggregate ``cost`` ``(N, K, D, H, W)`` along ``axis`` (3: H, 4: W) into ``out`` (same
    layout), or into ``max(out, .)`` when ``accumulate``; ``weight`` ``(N, K, 5, H, W)``."""
    _require()
    n, k, levels, height, width = cost.shape
    across = 4 if axis == 3 else 3
    block_d = max(16, triton.next_power_of_2(levels))
    grid = (n * k, triton.cdiv(cost.shape[across], block_m))
    cs, ws = cost.stride(), weight.stride()
    if out.stride() != cs:
        raise ValueError("out must have the layout of cost")
    _sga_scan_kernel[grid](
        cost, weight, out, k, levels, cost.shape[axis], cost.shape[across],
        cs[0], cs[1], cs[2], cs[axis], cs[across],
        ws[0], ws[1], ws[2], ws[axis], ws[across],
        REVERSE=reverse, ACCUMULATE=accumulate, BLOCK_D=block_d, BLOCK_M=block_m,
        num_warps=4)


def lga(x: torch.Tensor, filters: torch.Tensor, radius: int = 2,
        block_d: int = 8, block_p: int = 64) -> torch.Tensor:
    """One LGA pass: ``x`` ``(N, D, H, W)``, ``filters`` ``(N, 3(2r+1)^2, H, W)`` -> ``(N, D, H, W)``."""
    _require()
    x = x.contiguous()
    filters = filters.contiguous()
    n, levels, height, width = x.shape
    out = torch.empty_like(x)
    grid = (triton.cdiv(height * width, block_p), triton.cdiv(levels, block_d), n)
    xs, fs = x.stride(), filters.stride()
    _lga_kernel[grid](x, filters, out, levels, height, width,
                      xs[0], xs[1], xs[2], xs[3], fs[0], fs[1], fs[2], fs[3],
                      RADIUS=radius, BLOCK_D=block_d, BLOCK_P=block_p, num_warps=4)
    return out
