"""SGA and LGA: the pure-torch implementations and the Triton kernels against direct loops
over pixels written from the authors' CUDA kernels (ganet_pixel_loops.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from depthapp.backends.ganet import triton_kernels
from depthapp.backends.ganet.lga import lga, lga2, lga_torch
from depthapp.backends.ganet.sga import sga, sga_torch
from ganet_pixel_loops import lga_loops, sga_loops

HERE = Path(__file__).parent
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
TRITON = pytest.mark.skipif(not triton_kernels.AVAILABLE, reason="needs Triton >= 3.2 (pip install triton)")


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors are faster on one thread, and the CPU is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_sga_inputs(rng, shape, normalise=True):
    n, k, d, h, w = shape
    cost = rng.normal(size=shape)
    weights = [rng.normal(size=(n, k, 5, h, w)) for _ in range(4)]
    if normalise:
        weights = [g / np.abs(g).sum(axis=2, keepdims=True) for g in weights]
    return cost, weights


@pytest.mark.parametrize("shape", [(2, 3, 5, 4, 6), (1, 2, 1, 3, 2), (1, 1, 7, 1, 5), (1, 1, 2, 6, 1)])
def test_sga_matches_the_pixel_loop(rng, shape):
    cost, weights = random_sga_inputs(rng, shape)
    expected = sga_loops(cost, *weights)
    tensors = [torch.tensor(a) for a in (cost, *weights)]
    with torch.inference_mode():
        np.testing.assert_allclose(sga_torch(*tensors).numpy(), expected, rtol=1e-12, atol=1e-12)
    # The autograd path (lists of lines, no buffers) gives the same values.
    grad_tensors = [t.clone().requires_grad_(True) for t in tensors]
    np.testing.assert_allclose(sga_torch(*grad_tensors).detach().numpy(), expected, rtol=1e-12, atol=1e-12)


def test_sga_float32_matches_the_pixel_loop(rng):
    cost, weights = random_sga_inputs(rng, (1, 4, 9, 7, 8))
    expected = sga_loops(cost, *weights)
    with torch.inference_mode():
        out = sga(*[torch.tensor(a, dtype=torch.float32) for a in (cost, *weights)])
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_sga_keeps_a_constant_volume_under_positive_normalised_weights(rng):
    """With w_i >= 0 and sum w_i = 1 every term is the constant: the aggregation is a convex
    combination (the paper's reason for the normalisation)."""
    weights = [torch.tensor(rng.random((1, 2, 5, 6, 7))) for _ in range(4)]
    weights = [F.normalize(g, p=1, dim=2) for g in weights]
    cost = torch.full((1, 2, 4, 6, 7), 3.25, dtype=torch.float64)
    assert torch.allclose(sga_torch(cost, *weights), cost)


def test_sga_is_differentiable(rng):
    cost, weights = random_sga_inputs(rng, (1, 2, 3, 3, 4))
    tensors = [torch.tensor(a, requires_grad=True) for a in (cost, *weights)]
    assert torch.autograd.gradcheck(sga_torch, tensors)


def test_sga_checks_shapes():
    with pytest.raises(ValueError, match="down weights"):
        sga_torch(torch.zeros(1, 2, 3, 4, 5), *[torch.zeros(1, 2, 4, 4, 5)] * 4)


@pytest.mark.parametrize("radius, shape", [(2, (2, 4, 5, 6)), (1, (1, 1, 2, 3)), (2, (1, 3, 2, 1)), (1, (1, 6, 4, 4))])
def test_lga_matches_the_pixel_loop(rng, radius, shape):
    volume = rng.normal(size=shape)
    filters = rng.normal(size=(shape[0], 3 * (2 * radius + 1) ** 2, shape[2], shape[3]))
    expected = lga_loops(volume, filters, radius)
    with torch.inference_mode():
        out = lga_torch(torch.tensor(volume), torch.tensor(filters), radius)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_lga_in_bands_of_rows_matches_the_pixel_loop(rng, monkeypatch):
    """The CPU works through cache-sized bands of rows; force one-row bands on a tiny volume."""
    from depthapp.backends.ganet import lga as lga_module

    monkeypatch.setattr(lga_module, "CPU_BAND_FLOATS", 8)
    volume = rng.normal(size=(1, 4, 5, 6))
    filters = rng.normal(size=(1, 75, 5, 6))
    with torch.inference_mode():
        out = lga_torch(torch.tensor(volume), torch.tensor(filters), 2)
    np.testing.assert_allclose(out.numpy(), lga_loops(volume, filters, 2), rtol=1e-12, atol=1e-12)
    inputs = (torch.tensor(volume[:, :2, :3, :4], requires_grad=True),
              torch.tensor(filters[:, :27, :3, :4], requires_grad=True))
    assert torch.autograd.gradcheck(lambda v, f: lga_torch(v, f, 1), inputs)


def test_lga2_is_two_passes_of_the_same_filter(rng):
    volume = rng.normal(size=(1, 3, 4, 5))
    filters = rng.normal(size=(1, 75, 4, 5))
    expected = lga_loops(lga_loops(volume, filters, 2), filters, 2)
    out = lga2(torch.tensor(volume), torch.tensor(filters), 2)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_lga_keeps_a_constant_volume_under_positive_normalised_filters(rng):
    filters = F.normalize(torch.tensor(rng.random((1, 75, 6, 5))), p=1, dim=1)
    volume = torch.full((1, 4, 6, 5), -2.5, dtype=torch.float64)
    assert torch.allclose(lga_torch(volume, filters, 2), volume)


def test_lga_is_differentiable(rng):
    volume = torch.tensor(rng.normal(size=(1, 3, 3, 4)), requires_grad=True)
    filters = torch.tensor(rng.normal(size=(1, 27, 3, 4)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, f: lga_torch(v, f, 1), (volume, filters))


def test_the_functional_paths_exporters_trace_give_the_same_values(rng):
    """Under tracing (ONNX, TorchScript, torch.export) SGA and LGA avoid in-place writes;
    torch.jit.trace takes that path, and the traced function must still match the loops."""
    cost, weights = random_sga_inputs(rng, (1, 2, 4, 3, 5))
    tensors = tuple(torch.tensor(a) for a in (cost, *weights))
    traced = torch.jit.trace(sga_torch, tensors, check_trace=False)
    np.testing.assert_allclose(traced(*tensors).numpy(), sga_loops(cost, *weights), rtol=1e-12, atol=1e-12)
    for levels in (1, 4):
        volume = rng.normal(size=(1, levels, 4, 5))
        filters = rng.normal(size=(1, 75, 4, 5))
        inputs = (torch.tensor(volume), torch.tensor(filters))
        traced = torch.jit.trace(lambda v, f: lga_torch(v, f, 2), inputs, check_trace=False)
        np.testing.assert_allclose(traced(*inputs).numpy(), lga_loops(volume, filters, 2), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- backward

def _sga_grad_inputs(rng, shape):
    cost, weights = random_sga_inputs(rng, shape)
    return [torch.tensor(a, requires_grad=True) for a in (cost, *weights)]


def _lga_grad_inputs(rng, radius, shape):
    volume = torch.tensor(rng.normal(size=shape), requires_grad=True)
    filters = torch.tensor(rng.normal(size=(shape[0], 3 * (2 * radius + 1) ** 2, *shape[2:])),
                           requires_grad=True)
    return volume, filters


def _same_gradients(function, reference, inputs, rng):
    """``function`` and autograd through ``reference`` give the same values and gradients."""
    out, expected = function(*inputs), reference(*inputs)
    upstream = torch.tensor(rng.normal(size=tuple(out.shape)), dtype=out.dtype, device=out.device)
    tolerance = dict(rtol=1e-10, atol=1e-12) if out.dtype == torch.float64 else dict(rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out, expected, **tolerance)
    for got, want in zip(torch.autograd.grad(out, inputs, upstream),
                         torch.autograd.grad(expected, inputs, upstream)):
        torch.testing.assert_close(got, want, **tolerance)


@pytest.mark.parametrize("shape", [(1, 2, 4, 3, 4), (1, 1, 1, 2, 3), (2, 1, 3, 1, 3)])
def test_sga_hand_written_backward_passes_gradcheck_and_equals_autograd_of_the_reference(rng, shape):
    inputs = _sga_grad_inputs(rng, shape)
    assert torch.autograd.gradcheck(lambda *t: sga(*t, implementation="torch"), inputs)
    _same_gradients(lambda *t: sga(*t, implementation="torch"), sga_torch, inputs, rng)


@pytest.mark.parametrize("radius, shape", [(1, (1, 3, 3, 4)), (2, (2, 1, 2, 3)), (1, (1, 4, 5, 2))])
def test_lga_hand_written_backward_passes_gradcheck_and_equals_autograd_of_the_reference(rng, radius, shape):
    inputs = _lga_grad_inputs(rng, radius, shape)
    assert torch.autograd.gradcheck(lambda v, f: lga(v, f, radius, "torch"), inputs)
    _same_gradients(lambda v, f: lga(v, f, radius, "torch"), lambda v, f: lga_torch(v, f, radius), inputs, rng)


def test_sga_backward_shares_the_gradient_of_tied_directions_like_torch_maximum():
    """A constant volume under equal weights ties all four directions everywhere."""
    weights = [torch.full((1, 1, 5, 3, 3), 0.2, dtype=torch.float64, requires_grad=True) for _ in range(4)]
    volume = torch.ones(1, 1, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    got = torch.autograd.grad(sga(volume, *weights, implementation="torch").sum(), (volume, *weights))
    want = torch.autograd.grad(sga_torch(volume, *weights).sum(), (volume, *weights))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


# --------------------------------------------------------------------------- Triton

INTERPRETER_CHECK = r"""
import numpy as np, torch
from depthapp.backends.ganet import triton_kernels
from depthapp.backends.ganet.sga import sga_triton
from ganet_pixel_loops import lga_loops, sga_loops
assert triton_kernels.interpreted() and triton_kernels.AVAILABLE
rng = np.random.default_rng(7)
for shape in [(2, 1, 5, 4, 6), (1, 1, 20, 3, 19), (1, 1, 1, 2, 3)]:
    n, k, d, h, w = shape
    cost = rng.normal(size=shape)
    weights = [rng.normal(size=(n, k, 5, h, w)) for _ in range(4)]
    weights = [g / np.abs(g).sum(axis=2, keepdims=True) for g in weights]
    out = sga_triton(*[torch.tensor(a, dtype=torch.float32) for a in (cost, *weights)])
    np.testing.assert_allclose(out.numpy(), sga_loops(cost, *weights), rtol=1e-5, atol=1e-5)
for radius, shape in [(2, (1, 5, 6, 7)), (1, (1, 9, 3, 4)), (2, (1, 1, 2, 3))]:
    volume = rng.normal(size=shape)
    filters = rng.normal(size=(shape[0], 3 * (2 * radius + 1) ** 2, shape[2], shape[3]))
    # 9 levels in blocks of 4 and 42 pixels in blocks of 16: the block edges are exercised.
    out = triton_kernels.lga(torch.tensor(volume, dtype=torch.float32),
                             torch.tensor(filters, dtype=torch.float32), radius,
                             block_d=4 if shape[1] == 9 else 8, block_p=16 if radius == 2 else 64)
    np.testing.assert_allclose(out.numpy(), lga_loops(volume, filters, radius), rtol=1e-4, atol=1e-4)
# The backward kernels against autograd through the torch reference, in float64.
from depthapp.backends.ganet.lga import lga, lga_torch
from depthapp.backends.ganet.sga import sga, sga_torch
def same_gradients(function, reference, inputs):
    out, expected = function(*inputs), reference(*inputs)
    upstream = torch.tensor(rng.normal(size=tuple(out.shape)))
    for got, want in zip(torch.autograd.grad(out, inputs, upstream), torch.autograd.grad(expected, inputs, upstream)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-12)
for shape in [(1, 2, 5, 3, 4), (1, 1, 1, 2, 3), (1, 1, 20, 2, 3)]:
    n, k, d, h, w = shape
    weights = [rng.normal(size=(n, k, 5, h, w)) for _ in range(4)]
    inputs = [torch.tensor(a, requires_grad=True) for a in
              (rng.normal(size=shape), *[g / np.abs(g).sum(axis=2, keepdims=True) for g in weights])]
    same_gradients(lambda *t: sga(*t, implementation="triton"), sga_torch, inputs)
for radius, shape in [(1, (1, 3, 3, 4)), (2, (2, 1, 2, 3)), (1, (1, 9, 5, 2))]:
    inputs = [torch.tensor(rng.normal(size=shape), requires_grad=True),
              torch.tensor(rng.normal(size=(shape[0], 3 * (2 * radius + 1) ** 2, *shape[2:])), requires_grad=True)]
    same_gradients(lambda v, f: lga(v, f, radius, "triton"), lambda v, f: lga_torch(v, f, radius), inputs)
print("ok")
"""


@TRITON
def test_triton_kernels_match_the_pixel_loops_in_the_interpreter():
    """The Triton kernels themselves (not the torch fallback), run by Triton's CPU interpreter."""
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=os.pathsep.join(
        [str(HERE), str(HERE.parents[2]), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", INTERPRETER_CHECK], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")


AOT_CHECK = r"""
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from depthapp.backends.ganet import triton_kernels as tk
target = GPUTarget("cuda", 90, 32)
ints = lambda names: {name: "i32" for name in names}
sga = {"cost_ptr": "*fp32", "weight_ptr": "*fp32", "out_ptr": "*fp32",
       **ints(["channels", "levels", "scan_len", "across_len", "c_n", "c_k", "c_d", "c_scan",
               "c_across", "w_n", "w_k", "w_i", "w_scan", "w_across"])}
for reverse in (False, True):
    for accumulate in (False, True):
        constants = {"REVERSE": reverse, "ACCUMULATE": accumulate, "BLOCK_D": 128, "BLOCK_M": 16}
        signature = dict(sga, **{name: "constexpr" for name in constants})
        triton.compile(ASTSource(tk._sga_scan_kernel, signature, constexprs=constants), target=target,
                       options={"num_warps": 4})
lga = {"x_ptr": "*fp32", "f_ptr": "*fp32", "out_ptr": "*fp32",
       **ints(["levels", "height", "width", "x_n", "x_d", "x_h", "x_w", "f_n", "f_k", "f_h", "f_w"])}
constants = {"RADIUS": 2, "BLOCK_D": 8, "BLOCK_P": 64}
triton.compile(ASTSource(tk._lga_kernel, dict(lga, **{name: "constexpr" for name in constants}),
                         constexprs=constants), target=target, options={"num_warps": 4})
adjoint = {"line_ptr": "*fp32", "weight_ptr": "*fp32", "grad_ptr": "*fp32", "total_ptr": "*fp32",
           **{k: v for k, v in sga.items() if not k.endswith("_ptr")}}
for reverse in (False, True):
    constants = {"REVERSE": reverse, "BLOCK_D": 128, "BLOCK_M": 16}
    triton.compile(ASTSource(tk._sga_adjoint_kernel, dict(adjoint, **{name: "constexpr" for name in constants}),
                             constexprs=constants), target=target, options={"num_warps": 4})
constants = {"RADIUS": 2, "BLOCK_D": 8, "BLOCK_P": 64}
ints_lga = ints(["levels", "height", "width", "x_n", "x_d", "x_h", "x_w", "f_n", "f_k", "f_h", "f_w"])
for kernel, pointers in ((tk._lga_grad_volume_kernel, ["g_ptr", "f_ptr", "out_ptr"]),
                         (tk._lga_grad_filters_kernel, ["g_ptr", "x_ptr", "out_ptr"])):
    signature = dict({name: "*fp32" for name in pointers}, **ints_lga, **{name: "constexpr" for name in constants})
    triton.compile(ASTSource(kernel, signature, constexprs=constants), target=target, options={"num_warps": 4})
print("ok")
"""


@TRITON
@pytest.mark.slow
def test_triton_kernels_compile_for_an_h100_without_one():
    """Ahead-of-time compilation for sm_90 (Triton's bundled ptxas): catches kernels that the
    interpreter accepts but the compiler does not."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parents[2]), os.environ.get("PYTHONPATH", "")]))
    env.pop("TRITON_INTERPRET", None)
    done = subprocess.run([sys.executable, "-c", AOT_CHECK], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


@CUDA
@TRITON
def test_cuda_triton_sga_and_lga_equal_the_torch_reference():
    generator = torch.Generator(device="cpu").manual_seed(3)
    for shape in [(2, 3, 5, 4, 6), (1, 32, 65, 40, 56), (1, 48, 33, 21, 29)]:
        n, k, d, h, w = shape
        volume = torch.randn(shape, generator=generator)
        weights = [F.normalize(torch.randn(n, k, 5, h, w, generator=generator), p=1, dim=2) for _ in range(4)]
        expected = sga_torch(volume.double(), *[g.double() for g in weights]).float()
        with torch.inference_mode():
            out = sga(volume.cuda(), *[g.cuda() for g in weights], implementation="triton").cpu()
            auto = sga(volume.cuda(), *[g.cuda() for g in weights]).cpu()
        torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(auto, out)
    for shape in [(1, 5, 6, 7), (2, 49, 96, 144), (1, 193, 37, 61)]:
        volume = torch.randn(shape, generator=generator)
        filters = F.normalize(torch.randn(shape[0], 75, *shape[2:], generator=generator), p=1, dim=1)
        expected = lga_torch(volume.double(), filters.double(), 2).float()
        with torch.inference_mode():
            out = lga(volume.cuda(), filters.cuda(), 2, implementation="triton").cpu()
        torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


@CUDA
@TRITON
def test_cuda_triton_backward_equals_autograd_of_the_reference(rng):
    inputs = [t.detach().cuda().requires_grad_(True) for t in _sga_grad_inputs(rng, (1, 8, 33, 21, 29))]
    _same_gradients(lambda *t: sga(*t, implementation="triton"), sga_torch, inputs, rng)
    volume, filters = (t.detach().cuda().requires_grad_(True) for t in _lga_grad_inputs(rng, 2, (2, 49, 24, 36)))
    _same_gradients(lambda v, f: lga(v, f, 2, "triton"), lambda v, f: lga_torch(v, f, 2), (volume, filters), rng)


@CUDA
def test_cuda_torch_sga_and_lga_equal_the_cpu(rng):
    cost, weights = random_sga_inputs(rng, (1, 4, 9, 7, 8))
    tensors = [torch.tensor(a, dtype=torch.float32) for a in (cost, *weights)]
    with torch.inference_mode():
        out = sga_torch(*[t.cuda() for t in tensors]).cpu()
    torch.testing.assert_close(out, sga_torch(*tensors), rtol=1e-5, atol=1e-5)
    volume = torch.randn(1, 9, 10, 11)
    filters = torch.randn(1, 75, 10, 11)
    with torch.inference_mode():
        out = lga_torch(volume.cuda(), filters.cuda(), 2).cpu()
    torch.testing.assert_close(out, lga_torch(volume, filters, 2), rtol=1e-4, atol=1e-4)


NO_TRITON_CHECK = r"""
import sys
sys.modules["triton"] = None  # as on a machine without Triton: `import triton` raises ImportError
import torch
from depthapp.backends.ganet import GANetBackend, triton_kernels
from depthapp.backends.ganet.lga import lga
from depthapp.backends.ganet.sga import sga
assert not triton_kernels.AVAILABLE
out = sga(torch.randn(1, 2, 3, 4, 5), *[torch.rand(1, 2, 5, 4, 5) for _ in range(4)])
assert out.shape == (1, 2, 3, 4, 5)
assert lga(torch.randn(1, 3, 4, 5), torch.rand(1, 75, 4, 5)).shape == (1, 3, 4, 5)
print("ok")
"""


def test_everything_imports_and_runs_without_triton():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parents[2]), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", NO_TRITON_CHECK], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
