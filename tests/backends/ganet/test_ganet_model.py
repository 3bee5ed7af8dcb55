"""GA-Net: the authors' parameter names and shapes, parameter counts, shapes, loading
checkpoints in the authors' format, padding, the memory guard, and a tiny GA-Net-11
overfitting one synthetic pair on the CPU."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from depthapp.backends import create_backend
from depthapp.backends.ganet.model import GANET_11, GANET_DEEP, VARIANTS, GANet, parameter_count, tiny_config
from depthapp.backends.gcnet.learned import STANDARDISED_RGB, standardize
from depthapp.data import StereoPair
from depthapp.errors import InputError, WeightsError


def pad_top_left(image, multiple):
    """The backends' padding rule (top and left) at ``multiple``."""
    return dataclasses.replace(STANDARDISED_RGB, pad_multiple=multiple).pad(image)


def crop_top_left(array, padding):
    return padding.unpad(array)

OFFICIAL = json.loads((Path(__file__).parent / "official_ganet_state_dict.json").read_text())


@pytest.fixture(autouse=True)
def one_thread():
    """Small networks run faster on one thread, and the CPU is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def official_checkpoint(variant: str, seed: int = 0) -> dict:
    """A checkpoint as the authors' train.py writes it (nn.DataParallel keys in a dict with
    the epoch and optimiser), random values with the official names and shapes."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in OFFICIAL["variants"][variant].items():
        if key.endswith("num_batches_tracked"):
            state["module." + key] = torch.tensor(100)
        elif key.endswith("running_var"):
            state["module." + key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state["module." + key] = torch.randn(shape, generator=generator) * 0.1
    return {"epoch": 10, "state_dict": state, "optimizer": {"state": {}, "param_groups": [{"lr": 0.001}]}}


@pytest.mark.parametrize("variant", ["11", "deep"])
def test_parameter_names_and_shapes_are_the_authors(variant):
    ours = {key: list(value.shape) for key, value in GANet(192, VARIANTS[variant]).state_dict().items()}
    official = OFFICIAL["variants"][variant]
    assert list(ours) == list(official)  # same names, same order
    assert ours == official


def test_parameter_counts_are_the_authors():
    """4,483,728 (GA-Net-11) and 6,580,112 (GA-Net-deep), counted on the official classes;
    the paper's 6.58 M for GA-Net-deep agrees."""
    assert parameter_count(GANet(192, GANET_11)) == OFFICIAL["parameters"]["11"] == 4_483_728
    assert parameter_count(GANet(192, GANET_DEEP)) == OFFICIAL["parameters"]["deep"] == 6_580_112


@pytest.mark.parametrize("variant", ["11", "deep"])
def test_a_checkpoint_in_the_authors_format_loads(tmp_path, variant):
    checkpoint = official_checkpoint(variant)
    path = tmp_path / f"kitti2015_{variant}.pth"
    torch.save(checkpoint, path)
    backend = create_backend("ganet", max_disp=192, weights=str(path))  # variant detected
    assert backend.params["variant"] == variant
    key = "cost_agg.sga12.conv_refine.conv.weight"
    assert torch.equal(backend.model.state_dict()[key], checkpoint["state_dict"]["module." + key])
    # Old checkpoints lack BatchNorm's counters; they are not needed for inference.
    checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items()
                                if not k.endswith("num_batches_tracked")}
    torch.save(checkpoint, path)
    create_backend("ganet", max_disp=192, weights=str(path), variant=variant)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_triton_kernels_are_refused_on_the_cpu(tmp_path, monkeypatch):
    from depthapp.errors import BackendUnavailableError

    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    path = tmp_path / "ganet11.pth"
    torch.save(official_checkpoint("11"), path)
    with pytest.raises(BackendUnavailableError, match="ganet kernels triton") as caught:
        create_backend("ganet", weights=str(path), device="cpu", kernels="triton")
    assert caught.value.with_flags().startswith("ganet --kernels triton")


def test_a_checkpoint_of_the_other_size_is_a_weights_error(tmp_path):
    path = tmp_path / "ganet11.pth"
    torch.save(official_checkpoint("11"), path)
    with pytest.raises(WeightsError, match=r"ganet11.pth: does not fit GANet \(96 missing: guidance.conv3"):
        create_backend("ganet", max_disp=192, weights=str(path), variant="deep")


def test_no_weights_says_how_to_get_them():
    with pytest.raises(WeightsError, match=r"train it \(depthapp train\) or pass weights ") as caught:
        create_backend("ganet")
    assert "or pass --weights (a state dict file)" in caught.value.with_flags()


@pytest.mark.parametrize("deep", [False, True])
def test_output_shapes_in_inference_and_training(deep):
    torch.manual_seed(0)
    model = GANet(24, tiny_config(deep))
    left, right = torch.randn(1, 3, 48, 96), torch.randn(1, 3, 48, 96)
    model.eval()
    with torch.inference_mode():
        disparity, confidence = model.infer(left, right)
        forward = model(left, right)
    assert disparity.shape == confidence.shape == forward.shape == (1, 48, 96)
    torch.testing.assert_close(forward, disparity)
    model.train()
    outputs = model(left, right)
    assert isinstance(outputs, tuple) and len(outputs) == (3 if deep else 2)
    assert all(o.shape == (1, 48, 96) for o in outputs)


def test_sizes_the_downsampling_cannot_take_are_refused():
    with pytest.raises(ValueError, match="multiple of 12"):
        GANet(100, tiny_config(False))
    with pytest.raises(ValueError, match="multiple of 48"):
        GANet(24, tiny_config(False)).infer(torch.zeros(1, 3, 50, 96), torch.zeros(1, 3, 50, 96))


def test_backend_output_is_the_network_output_cropped(tmp_path, rng):
    torch.manual_seed(0)
    model = GANet(24, GANET_11)
    path = tmp_path / "ganet11.pth"
    torch.save(model.state_dict(), path)
    backend = create_backend("ganet", max_disp=20, device="cpu", weights=str(path))
    assert backend.max_disp == 24 and backend.params["variant"] == "11"
    left = rng.integers(0, 256, (40, 70, 3), dtype=np.uint8)
    right = np.roll(left, -3, axis=1)
    result = backend.compute(StereoPair(left, right))
    assert result.disparity.shape == result.confidence.shape == (40, 70)
    assert list(result.timings) == ["prepare", "features", "cost volume", "guidance", "aggregation (SGA)",
                                    "refinement (LGA)", "finish"]
    model.eval()
    with torch.inference_mode():
        l, padding = pad_top_left(standardize(left), 48)
        r, _ = pad_top_left(standardize(right), 48)
        expected = crop_top_left(model.infer(l, r)[0], padding)[0].numpy()
    np.testing.assert_allclose(result.disparity, expected, rtol=1e-3, atol=1e-3)


def test_export_module_computes_what_the_backend_computes(tmp_path, rng):
    """Raw RGB padded at the top and right in, the backend's disparity out (standardisation,
    top-left padding and the torch SGA/LGA inside the graph)."""
    torch.manual_seed(0)
    path = tmp_path / "ganet11.pth"
    torch.save(GANet(24, GANET_11).state_dict(), path)
    backend = create_backend("ganet", max_disp=24, weights=str(path))
    left = rng.integers(0, 256, (40, 70, 3), dtype=np.uint8)
    right = np.roll(left, -3, axis=1)
    spec = backend.export_spec(40, 70)
    (left_input, padding), (right_input, _) = (spec.preprocessing.prepare(image) for image in (left, right))
    with torch.inference_mode():
        out = spec.module(torch.from_numpy(left_input), torch.from_numpy(right_input)).numpy()
    exported = padding.unpad(out)[0]
    np.testing.assert_allclose(exported, backend.compute(StereoPair(left, right)).disparity, rtol=1e-3, atol=1e-3)


def test_a_pair_too_large_for_the_memory_limit_is_refused_before_work(tmp_path):
    path = tmp_path / "ganet11.pth"
    torch.save(official_checkpoint("11"), path)
    backend = create_backend("ganet", weights=str(path), memory_limit_gb=2.0)
    big = np.zeros((1000, 1500, 3), np.uint8)
    with pytest.raises(InputError, match=r"GA-Net needs about .* GiB .*1500x1000"):
        backend.compute(StereoPair(big, big, name="big"))


@pytest.mark.slow
def test_tiny_ganet11_overfits_one_synthetic_pair(rng):
    """A narrow GA-Net-11 (same structure, 8 channels) learns one pair to below 1 px EPE,
    through the pure-torch SGA and LGA (autograd), with the authors' loss weights. BatchNorm
    stays in eval mode while training: the feature hourglass sees each view separately (as
    the authors'), so batch statistics differ per view and running averages would not give
    eval mode what training fitted."""
    torch.manual_seed(0)
    height, width = 48, 96
    texture = rng.random((height, width + 12, 3)).astype(np.float32)
    left = texture[:, :width].copy()
    right = np.empty_like(left)
    gt = np.empty((height, width), np.float32)
    for d, rows in zip([3, 9, 6, 12], np.array_split(np.arange(height), 4)):
        gt[rows] = d
        right[rows] = texture[rows, d:d + width]  # left x matches right x - d
    left_t, right_t = standardize(left), standardize(right)
    target = torch.from_numpy(gt)[None]
    matched = torch.arange(width)[None, None, :] >= target
    model = GANet(24, tiny_config(deep=False))
    model.set_implementation("torch")
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    initial = None
    for _ in range(100):
        model.train()
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
        intermediate, final = model(left_t, right_t)
        epe = (final.detach() - target)[matched].abs().mean().item()
        initial = initial if initial is not None else epe
        if epe < 0.6:
            break
        loss = 0.4 * F.smooth_l1_loss(intermediate[matched], target[matched]) \
            + 1.2 * F.smooth_l1_loss(final[matched], target[matched])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    with torch.inference_mode():
        predicted, _ = model.infer(left_t, right_t)
    assert initial > 3.0
    assert (predicted - target)[matched].abs().mean().item() < 1.0



@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("variant", ["11", "deep"])
def test_cuda_backend_equals_the_cpu_and_triton_equals_torch(tmp_path, rng, no_tf32, variant):
    """The same checkpoint on the GPU (Triton SGA/LGA when installed, then forced pure torch)
    and on the CPU."""
    path = tmp_path / f"ganet_{variant}.pth"
    torch.save(official_checkpoint(variant, seed=5), path)
    left = rng.integers(0, 256, (250, 370, 3), dtype=np.uint8)
    small = StereoPair(left, np.roll(left, -12, axis=1), name="synthetic")
    cpu = create_backend("ganet", max_disp=96, device="cpu", weights=str(path)).compute(small)
    gpu = create_backend("ganet", max_disp=96, device="cuda", weights=str(path)).compute(small)
    gpu_torch = create_backend("ganet", max_disp=96, device="cuda", weights=str(path),
                               kernels="torch").compute(small)
    assert gpu.device.startswith("cuda")
    np.testing.assert_allclose(gpu.disparity, gpu_torch.disparity, rtol=1e-3, atol=2e-3)
    np.testing.assert_allclose(gpu.disparity, cpu.disparity, rtol=1e-3, atol=2e-3)
