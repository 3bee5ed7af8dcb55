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
    def _scan_tile(channels, levels, across_len, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr):
        """The (levels x lines) tile of an SGA program on grid (N * K, line blocks): batch item,
        channel, level and line indices, and the in-range masks."""
        pid_nk = tl.program_id(0)
        d = tl.arange(0, BLOCK_D)[:, None]
        m = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)[None, :]
        d_ok = d < levels
        m_ok = m < across_len
        return pid_nk // channels, pid_nk % channels, d, m, d_ok, m_ok, d_ok & m_ok

    @triton.jit
    def _sga_scan_kernel(cost_ptr, weight_ptr, out_ptr,
                         channels, levels, scan_len, across_len,
                         c_n, c_k, c_d, c_scan, c_across,
                         w_n, w_k, w_i, w_scan, w_across,
                         REVERSE: tl.constexpr, ACCUMULATE: tl.constexpr,
                         BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr):
        """One program: one (n, k) and BLOCK_M scan lines, all D levels in a register tile.
        ``out`` has the layout (strides) of ``cost``."""
        n, k, d, m, d_ok, m_ok, mask = _scan_tile(channels, levels, across_len, BLOCK_D, BLOCK_M)
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
    def _sga_adjoint_kernel(line_ptr, weight_ptr, grad_ptr, total_ptr,
                            channels, levels, scan_len, across_len,
                            c_n, c_k, c_d, c_scan, c_across,
                            w_n, w_k, w_i, w_scan, w_across,
                            REVERSE: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr):
        """SGA's backward along one scan: ``total`` = ``grad`` plus the gradient flowing back
        from the later lines, walking opposite to :func:`_sga_scan_kernel`. ``line``, ``grad``
        and ``total`` share one layout (strides ``c_*``); ``line`` holds the forward's lines."""
        n, k, d, m, d_ok, m_ok, mask = _scan_tile(channels, levels, across_len, BLOCK_D, BLOCK_M)
        offset = n * c_n + k * c_k + d * c_d + m * c_across
        weight_base = weight_ptr + n * w_n + k * w_k + m * w_across
        below_index = tl.maximum(d - 1, 0) + tl.zeros([BLOCK_D, BLOCK_M], tl.int32)
        above_index = tl.minimum(d + 1, BLOCK_D - 1) + tl.zeros([BLOCK_D, BLOCK_M], tl.int32)
        carry = tl.zeros([BLOCK_D, BLOCK_M], total_ptr.dtype.element_ty)
        for step in range(0, scan_len):
            pos = step if REVERSE else scan_len - 1 - step
            g = tl.load(grad_ptr + offset + pos * c_scan, mask=mask, other=0.0) + carry
            tl.store(total_ptr + offset + pos * c_scan, g, mask=mask)
            # The line this one read (clamped at the scan's end, where the carry goes unused).
            previous = tl.minimum(pos + 1, scan_len - 1) if REVERSE else tl.maximum(pos - 1, 0)
            w1 = tl.load(weight_base + w_i + pos * w_scan, mask=m_ok, other=0.0)
            w2 = tl.load(weight_base + 2 * w_i + pos * w_scan, mask=m_ok, other=0.0)
            w3 = tl.load(weight_base + 3 * w_i + pos * w_scan, mask=m_ok, other=0.0)
            w4 = tl.load(weight_base + 4 * w_i + pos * w_scan, mask=m_ok, other=0.0)
            # A(p, d) read A(p-r, d-1) with w2 and A(p-r, d+1) with w3: send those back.
            from_above = tl.where(d + 1 < levels, tl.gather(g, above_index, 0), 0.0)
            from_below = tl.where(d >= 1, tl.gather(g, below_index, 0), 0.0)
            prev = tl.load(line_ptr + offset + previous * c_scan, mask=mask, other=float("-inf"))
            peak = tl.max(prev, axis=0)[None, :]
            winners = tl.where(mask & (prev == peak), 1.0, 0.0)
            g_sum = tl.sum(tl.where(d_ok, g, 0.0), axis=0)[None, :]
            share = g_sum * w4 / tl.maximum(tl.sum(winners, axis=0)[None, :], 1.0)
            carry = tl.where(d_ok, g * w1 + from_above * w2 + from_below * w3 + winners * share, 0.0)

    @triton.jit
    def _pixel_tile(levels, height, width, BLOCK_D: tl.constexpr, BLOCK_P: tl.constexpr):
        """The (levels x pixels) tile of an LGA program on grid (pixel blocks, level blocks, N):
        batch item, level and pixel coordinates, and the in-range masks."""
        n = tl.program_id(2)
        p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)[None, :]
        d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)[:, None]
        p_ok = p < height * width
        return n, d, p // width, p % width, p_ok, p_ok & (d < levels)

    @triton.jit
    def _lga_kernel(x_ptr, f_ptr, out_ptr, levels, height, width,
                    x_n, x_d, x_h, x_w, f_n, f_k, f_h, f_w,
                    RADIUS: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_P: tl.constexpr):
        """One program: BLOCK_D levels x BLOCK_P pixels of one batch item; ``out`` contiguous
        like ``x``. The per-pixel filter is loaded once per tap and reused across levels."""
        n, d, h, w, p_ok, mask = _pixel_tile(levels, height, width, BLOCK_D, BLOCK_P)
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


    @triton.jit
    def _lga_grad_volume_kernel(g_ptr, f_ptr, out_ptr, levels, height, width,
                                x_n, x_d, x_h, x_w, f_n, f_k, f_h, f_w,
                                RADIUS: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_P: tl.constexpr):
        """The volume's gradient of one LGA pass, gathered (no atomics): each tap of each
        pixel that read V(d, y, x) sends back its filter weight times that pixel's gradient;
        taps of (d, y, x) itself that fell outside read the centre, so they send back here.
        ``g`` and ``out`` have the volume's strides ``x_*``."""
        n, d, h, w, p_ok, mask = _pixel_tile(levels, height, width, BLOCK_D, BLOCK_P)
        g_base = g_ptr + n * x_n
        f_base = f_ptr + n * f_n
        centre = tl.load(g_base + d * x_d + h * x_h + w * x_w, mask=mask, other=0.0)
        acc = tl.zeros([BLOCK_D, BLOCK_P], g_ptr.dtype.element_ty)
        size: tl.constexpr = 2 * RADIUS + 1
        for dd in tl.static_range(3):
            for r in tl.static_range(size):
                for c in tl.static_range(size):
                    tap = dd * size * size + r * size + c
                    # Forward: (d, h, w) read (d + dd - 1, h + r - R, w + c - R).
                    d_to = d + (dd - 1)
                    h_to = h + (r - RADIUS)
                    w_to = w + (c - RADIUS)
                    reads_inside = ((d_to >= 0) & (d_to < levels) & (h_to >= 0) & (h_to < height)
                                    & (w_to >= 0) & (w_to < width))
                    own = tl.load(f_base + tap * f_k + h * f_h + w * f_w, mask=p_ok, other=0.0)
                    acc += tl.where(reads_inside, 0.0, own * centre)
                    # Who read (d, h, w) through this tap: (d - dd + 1, h - r + R, w - c + R).
                    d_from = d - (dd - 1)
                    h_from = h - (r - RADIUS)
                    w_from = w - (c - RADIUS)
                    source = (mask & (d_from >= 0) & (d_from < levels) & (h_from >= 0) & (h_from < height)
                              & (w_from >= 0) & (w_from < width))
                    f = tl.load(f_base + tap * f_k + h_from * f_h + w_from * f_w, mask=source, other=0.0)
                    g = tl.load(g_base + d_from * x_d + h_from * x_h + w_from * x_w, mask=source, other=0.0)
                    acc += f * g
        tl.store(out_ptr + n * x_n + d * x_d + h * x_h + w * x_w, acc, mask=mask)

    @triton.jit
    def _lga_grad_filters_kernel(g_ptr, x_ptr, out_ptr, levels, height, width,
                                 x_n, x_d, x_h, x_w, f_n, f_k, f_h, f_w,
                                 RADIUS: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_P: tl.constexpr):
        """The filters' gradient of one LGA pass: one program per (pixel block, tap, n) sums
        the gradient times what the tap read over all levels. ``out`` is laid out like the
        filters (strides ``f_*``)."""
        pid_p = tl.program_id(0)
        tap = tl.program_id(1)
        n = tl.program_id(2)
        size: tl.constexpr = 2 * RADIUS + 1
        dd = tap // (size * size)
        r = (tap // size) % size
        c = tap % size
        p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)[None, :]
        h = p // width
        w = p % width
        p_ok = p < height * width
        h_to = h + (r - RADIUS)
        w_to = w + (c - RADIUS)
        x_base = x_ptr + n * x_n
        g_base = g_ptr + n * x_n
        acc = tl.zeros([BLOCK_D, BLOCK_P], g_ptr.dtype.element_ty)
        for start in range(0, levels, BLOCK_D):
            d = start + tl.arange(0, BLOCK_D)[:, None]
            mask = p_ok & (d < levels)
            d_to = d + (dd - 1)
            inside = (mask & (d_to >= 0) & (d_to < levels) & (h_to >= 0) & (h_to < height)
                      & (w_to >= 0) & (w_to < width))
            centre = tl.load(x_base + d * x_d + h * x_h + w * x_w, mask=mask, other=0.0)
            value = tl.load(x_base + d_to * x_d + h_to * x_h + w_to * x_w, mask=inside, other=0.0)
            g = tl.load(g_base + d * x_d + h * x_h + w * x_w, mask=mask, other=0.0)
            acc += g * tl.where(inside, value, centre)
        tl.store(out_ptr + n * f_n + tap * f_k + h * f_h + w * f_w, tl.sum(acc, axis=0)[None, :], mask=p_ok)


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


def sga_adjoint_scan(line: torch.Tensor, weight: torch.Tensor, grad: torch.Tensor, axis: int,
                     reverse: bool, block_m: int = 16) -> torch.Tensor:
    """SGA's backward along ``axis`` (3: H, 4: W): the total gradient of each line of one
    direction, from the forward's ``line`` ``(N, K, D, H, W)``, its ``weight``
    ``(N, K, 5, H, W)`` and ``grad`` (the output's gradient that reached this direction)."""
    _require()
    line, weight, grad = line.contiguous(), weight.contiguous(), grad.contiguous()
    n, k, levels, height, width = line.shape
    across = 4 if axis == 3 else 3
    total = torch.empty_like(grad)
    block_d = max(16, triton.next_power_of_2(levels))
    grid = (n * k, triton.cdiv(line.shape[across], block_m))
    cs, ws = line.stride(), weight.stride()
    _sga_adjoint_kernel[grid](
        line, weight, grad, total, k, levels, line.shape[axis], line.shape[across],
        cs[0], cs[1], cs[2], cs[axis], cs[across],
        ws[0], ws[1], ws[2], ws[axis], ws[across],
        REVERSE=reverse, BLOCK_D=block_d, BLOCK_M=block_m, num_warps=4)
    return total


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


def lga_backward(x: torch.Tensor, filters: torch.Tensor, grad: torch.Tensor, radius: int = 2,
                 block_d: int = 8, block_p: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of one LGA pass: ``(grad of x, grad of filters)`` for the output's ``grad``."""
    _require()
    x, filters, grad = x.contiguous(), filters.contiguous(), grad.contiguous()
    n, levels, height, width = x.shape
    grad_x = torch.empty_like(x)
    grad_filters = torch.empty_like(filters)
    xs, fs = x.stride(), filters.stride()
    strides = (xs[0], xs[1], xs[2], xs[3], fs[0], fs[1], fs[2], fs[3])
    pixels = triton.cdiv(height * width, block_p)
    _lga_grad_volume_kernel[(pixels, triton.cdiv(levels, block_d), n)](
        grad, filters, grad_x, levels, height, width, *strides,
        RADIUS=radius, BLOCK_D=block_d, BLOCK_P=block_p, num_warps=4)
    _lga_grad_filters_kernel[(pixels, filters.shape[1], n)](
        grad, x, grad_filters, levels, height, width, *strides,
        RADIUS=radius, BLOCK_D=block_d, BLOCK_P=block_p, num_warps=4)
    return grad_x, grad_filters
