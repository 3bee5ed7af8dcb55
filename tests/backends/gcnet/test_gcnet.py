"""GC-Net: soft argmin, cost volume, shapes, Table 1 parameter count, padding, weights,
memory guard, and a tiny model overfitting one synthetic pair on the CPU."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from depthapp.backends import create_backend
from depthapp.backends.gcnet.learned import STANDARDISED_RGB, soft_argmin, standardize, strip_checkpoint
from depthapp.backends.gcnet.model import (GCNet, concatenation_volume, parameter_count,
                                           table1_parameter_count)
from depthapp.data import StereoPair
from depthapp.errors import InputError, WeightsError


def pad_top_left(image, multiple):
    """The backends' padding rule (top and left) at ``multiple``."""
    return dataclasses.replace(STANDARDISED_RGB, pad_multiple=multiple).pad(image)


def crop_top_left(array, padding):
    return padding.unpad(array)


@pytest.fixture(autouse=True)
def one_thread():
    """Small networks run faster on one thread, and the CPU is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def synthetic_pair(height, width, disparities, rng):
    """Random texture seen by a right camera; disparity constant along horizontal bands of
    rows (left x matches right x - d), so the ground truth is exact. Returns float images in
    [0, 1] and the (H, W) disparity."""
    texture = rng.random((height, width + max(disparities), 3)).astype(np.float32)
    left = texture[:, :width].copy()
    right = np.empty_like(left)
    disparity = np.empty((height, width), np.float32)
    for d, rows in zip(disparities, np.array_split(np.arange(height), len(disparities))):
        disparity[rows] = d
        right[rows] = texture[rows, d:d + width]
    return left, right, disparity


def recalibrate_batchnorm(model, *inputs):
    """Set BatchNorm running statistics to the statistics of ``inputs`` (the one training
    pair), so eval mode computes what training fitted."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        model(*inputs)
    model.eval()


def save_untrained(tmp_path, model, name="gcnet.pth", wrap=False):
    state = model.state_dict()
    if wrap:
        state = {"epoch": 3, "state_dict": {"module." + k: v for k, v in state.items()}}
    path = tmp_path / name
    torch.save(state, path)
    return str(path)


# --------------------------------------------------------------------------- soft argmin

def test_soft_argmin_of_a_sharp_minimum_is_its_level():
    cost = torch.full((1, 32, 2, 3), 50.0)
    cost[:, 7] = 0.0
    disparity, probability = soft_argmin(cost)
    assert torch.allclose(disparity, torch.full((1, 2, 3), 7.0), atol=1e-4)
    assert torch.allclose(probability.sum(dim=1), torch.ones(1, 2, 3))


def test_soft_argmin_of_a_flat_cost_is_the_middle_level():
    disparity, _ = soft_argmin(torch.zeros(2, 10, 4, 5))
    assert torch.allclose(disparity, torch.full((2, 4, 5), 4.5))


def test_soft_argmin_interpolates_between_two_equal_minima():
    cost = torch.full((1, 16, 1, 1), 30.0)
    cost[:, 3] = cost[:, 5] = 0.0
    disparity, _ = soft_argmin(cost)
    assert disparity.item() == pytest.approx(4.0, abs=1e-4)


def test_soft_argmin_follows_the_softmax_weights():
    """sum_d d * softmax(-c)_d with c = (0, 1, 2): weights e^0, e^-1, e^-2."""
    cost = torch.tensor([0.0, 1.0, 2.0]).view(1, 3, 1, 1)
    weights = np.exp([0.0, -1.0, -2.0])
    expected = float((weights * np.arange(3)).sum() / weights.sum())
    assert soft_argmin(cost)[0].item() == pytest.approx(expected, rel=1e-6)


def test_soft_argmin_is_differentiable():
    cost = torch.randn(1, 6, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c: soft_argmin(c)[0], (cost,))


# --------------------------------------------------------------------------- architecture

def test_concatenation_volume_pairs_left_x_with_right_x_minus_d():
    left = torch.arange(2 * 3 * 7, dtype=torch.float32).view(1, 2, 3, 7)
    right = -torch.arange(2 * 3 * 7, dtype=torch.float32).view(1, 2, 3, 7) - 1
    volume = concatenation_volume(left, right, 4)
    assert volume.shape == (1, 4, 4, 3, 7)
    channels_last = concatenation_volume(left, right, 4, channels_last=True)
    assert channels_last.is_contiguous(memory_format=torch.channels_last_3d)
    assert torch.equal(channels_last, volume)
    for d in range(4):
        for x in range(7):
            if x < d:
                assert torch.all(volume[0, :, d, :, x] == 0)
            else:
                assert torch.equal(volume[0, :2, d, :, x], left[0, :, :, x])
                assert torch.equal(volume[0, 2:, d, :, x], right[0, :, :, x - d])


def test_output_shapes_follow_the_input():
    model = GCNet(64, features=8, residual_blocks=1).eval()
    left, right = torch.randn(2, 3, 64, 96), torch.randn(2, 3, 64, 96)
    with torch.inference_mode():
        cost = model.matching_cost(left, right)
        disparity, confidence = model.infer(left, right)
    assert cost.shape == (2, 64, 64, 96)  # D levels at full resolution
    assert disparity.shape == confidence.shape == (2, 64, 96)
    assert torch.all((disparity >= 0) & (disparity <= 63))
    assert torch.all((confidence > 0) & (confidence <= 1))


def test_sizes_the_downsampling_cannot_take_are_refused():
    with pytest.raises(ValueError, match="multiple of 32"):
        GCNet(100)
    with pytest.raises(ValueError, match="multiple of 32"):
        GCNet(32, features=4, residual_blocks=1).matching_cost(torch.zeros(1, 3, 48, 64),
                                                                torch.zeros(1, 3, 48, 64))


def test_parameter_count_is_that_of_table_1():
    """Table 1 layer by layer gives 2,845,409 parameters. The paper's text says 3.5 M, which
    its own table does not give; an independent TensorFlow implementation counted 2,850,785
    (github.com/feihuzhang/GANet issue 91) = ours + a bias on each BN-followed convolution
    (1,792) + BatchNorm's two moving statistics (2 x 1,792)."""
    model = GCNet(192)
    assert parameter_count(model) == table1_parameter_count() == 2_845_409
    bn_channels = sum(m.num_features for m in model.modules() if isinstance(m, torch.nn.BatchNorm3d)) \
        + sum(m.num_features for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert parameter_count(model) + 3 * bn_channels == 2_850_785
    assert parameter_count(model) / 3.5e6 == pytest.approx(0.81, abs=0.01)


def test_layer_widths_follow_table_1():
    model = GCNet(192)
    reg = model.regularization
    assert model.unary.layer1[0].kernel_size == (5, 5) and model.unary.layer1[0].stride == (2, 2)
    assert len(model.unary.blocks) == 8
    assert reg.layer19[0].in_channels == 64 and reg.layer19[0].out_channels == 32
    assert reg.layer21[0].in_channels == 64 and reg.layer21[0].stride == (2, 2, 2)  # from the volume
    assert reg.layer30[0].out_channels == 128
    assert reg.layer37.out_channels == 1 and reg.layer37.stride == (2, 2, 2)


# --------------------------------------------------------------------------- padding

def test_padding_is_undone_exactly():
    image = torch.randn(1, 3, 50, 70)
    padded, padding = pad_top_left(image, 32)
    assert padded.shape == (1, 3, 64, 96) and (padding.top, padding.left) == (14, 26)
    assert torch.equal(crop_top_left(padded, padding), image)
    assert torch.all(padded[..., :14, :] == 0) and torch.all(padded[..., :, :26] == 0)


def test_standardize_makes_each_channel_zero_mean_unit_std(rng):
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    image[..., 2] = 77  # a flat channel stays finite
    out = standardize(image)
    assert out.shape == (1, 3, 20, 30)
    assert torch.allclose(out[0, :2].mean(dim=(1, 2)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(out[0, :2].std(dim=(1, 2)), torch.ones(2), atol=1e-5)
    assert torch.all(out[0, 2] == 0)


def test_backend_output_is_the_network_output_cropped(tmp_path, rng):
    torch.manual_seed(0)
    model = GCNet(32)
    backend = create_backend("gcnet", max_disp=20, device="cpu", weights=save_untrained(tmp_path, model))
    assert backend.max_disp == 32  # rounded up to the multiple the downsampling needs
    left = rng.integers(0, 256, (45, 70, 3), dtype=np.uint8)
    right = np.roll(left, -4, axis=1)
    result = backend.compute(StereoPair(left, right))
    assert result.disparity.shape == result.confidence.shape == (45, 70)
    assert list(result.timings) == ["prepare", "features", "cost volume", "regularization",
                                    "soft argmin", "finish"]
    model.eval()
    with torch.inference_mode():
        l, padding = pad_top_left(standardize(left), 32)
        r, _ = pad_top_left(standardize(right), 32)
        expected = crop_top_left(model.infer(l, r)[0], padding)[0].numpy()
    np.testing.assert_allclose(result.disparity, expected, atol=1e-3)


def test_scale_runs_the_network_smaller_and_rescales_disparities(tmp_path, rng):
    import torch.nn.functional as F

    torch.manual_seed(0)
    backend = create_backend("gcnet", max_disp=64, weights=save_untrained(tmp_path, GCNet(32)), scale=0.5)
    assert backend.network_max_disp == 32  # the same range in half-size pixels
    left = rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)
    right = np.roll(left, -6, axis=1)
    result = backend.compute(StereoPair(left, right))
    assert result.disparity.shape == (60, 90)
    model = backend.model
    with torch.inference_mode():
        views = [pad_top_left(F.interpolate(standardize(v), (30, 45), mode="bilinear", align_corners=False), 32)
                 for v in (left, right)]
        small = crop_top_left(model.infer(views[0][0], views[1][0])[0], views[0][1])
        expected = F.interpolate(small[:, None], (60, 90), mode="bilinear", align_corners=False)[0, 0] * 2
    np.testing.assert_allclose(result.disparity, expected.numpy(), atol=1e-3)


def test_cancelling_stops_inside_the_network(tmp_path, rng):
    from depthapp.errors import Cancelled
    from depthapp.jobs import CancelToken

    backend = create_backend("gcnet", max_disp=32, weights=save_untrained(tmp_path, GCNet(32)))
    token = CancelToken()
    reached = []
    backend.inference_model.regularization.layer19.register_forward_hook(lambda *_: token.cancel())
    backend.inference_model.regularization.layer37.register_forward_hook(lambda *_: reached.append(37))
    image = rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)
    with pytest.raises(Cancelled):
        backend.compute(StereoPair(image, image), cancel=token)
    assert not reached


# --------------------------------------------------------------------------- weights

def test_without_weights_the_best_shipped_record_loads_and_says_how_good_it_is():
    from depthapp.weights.registry import default_record, quality_note

    shipped = default_record("gcnet")
    backend = create_backend("gcnet", max_disp=shipped.max_disp, scale=0.2)
    assert backend.weights_label == shipped.id
    assert backend.weights_notes == [f"default {quality_note(shipped)}"]


def test_no_weights_says_how_to_get_them():
    """GA-Net ships no record yet: the hint names train and the weights parameter."""
    with pytest.raises(WeightsError, match=r"train it \(depthapp train\) or pass weights "):
        create_backend("ganet")


def test_cli_run_without_weights_exits_non_zero_with_the_hint(tmp_path, capsys):
    pytest.importorskip("skimage", reason="--sample reads the Motorcycle pair from scikit-image")
    from depthapp.cli import main

    code = main(["run", "--sample", "--backend", "ganet", "--out", str(tmp_path / "out")])
    assert code != 0
    assert "train it (depthapp train) or pass --weights" in capsys.readouterr().err
    assert not (tmp_path / "out" / "disparity.pfm").exists()


def test_wrapped_and_prefixed_checkpoints_load(tmp_path):
    torch.manual_seed(1)
    model = GCNet(32)
    path = save_untrained(tmp_path, model, wrap=True)
    backend = create_backend("gcnet", max_disp=32, weights=path)
    assert torch.equal(backend.model.unary.layer18.weight, model.unary.layer18.weight)
    assert strip_checkpoint({"state_dict": {"module.a": 1}}) == {"a": 1}


def test_a_checkpoint_of_another_shape_is_a_weights_error(tmp_path):
    # The unary widths follow the checkpoint (train's tiny/small variants); the 3-D part of a
    # narrower network grafted on does not fit them.
    state = GCNet(32, features=32).state_dict()
    state.update({k: v for k, v in GCNet(32, features=8).state_dict().items() if k.startswith("regularization")})
    path = tmp_path / "grafted.pth"
    torch.save(state, path)
    path = str(path)
    with pytest.raises(WeightsError, match="wrong shape"):
        create_backend("gcnet", max_disp=32, weights=path)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="junk.pth"):
        create_backend("gcnet", max_disp=32, weights=str(tmp_path / "junk.pth"))


def test_a_pair_too_large_for_the_memory_limit_is_refused_before_work(tmp_path):
    backend = create_backend("gcnet", max_disp=192, weights=save_untrained(tmp_path, GCNet(192)),
                             memory_limit_gb=1.0)
    big = np.zeros((1000, 1500, 3), np.uint8)
    with pytest.raises(InputError, match=r"GiB.*1500x1000.*192 disparity levels.*pass scale 0\.\d") as caught:
        backend.compute(StereoPair(big, big, name="big"))
    assert "pass --scale 0." in caught.value.with_flags() and "--memory-limit-gb" in caught.value.with_flags()
    assert backend.estimate_bytes(1024, 1536) > 4 * backend.estimate_bytes(512, 768) * 0.9


# --------------------------------------------------------------------------- export

def exporter_inputs(spec, left, right):
    (left, padding), (right, _) = (spec.preprocessing.prepare(image) for image in (left, right))
    return [torch.from_numpy(left), torch.from_numpy(right)], padding


def test_export_module_computes_what_the_backend_computes(tmp_path, rng):
    """The exported graph gets raw RGB padded at the top and right (the exporter's rule) and
    must reproduce the backend: standardisation and top-left padding happen inside it."""
    torch.manual_seed(0)
    backend = create_backend("gcnet", max_disp=32, weights=save_untrained(tmp_path, GCNet(32)))
    left = rng.integers(0, 256, (45, 70, 3), dtype=np.uint8)
    right = np.roll(left, -4, axis=1)
    spec = backend.export_spec(45, 70)
    inputs, padding = exporter_inputs(spec, left, right)
    padded_h, padded_w = inputs[0].shape[-2:]
    with torch.inference_mode():
        out = spec.module(*inputs).numpy()
    assert out.shape == (1, padded_h, padded_w)
    exported = padding.unpad(out)[0]
    np.testing.assert_allclose(exported, backend.compute(StereoPair(left, right)).disparity, atol=1e-3)


@pytest.mark.slow
def test_onnx_export_matches_torch(tmp_path):
    for module in ("onnx", "onnxruntime", "cv2"):
        pytest.importorskip(module, reason="the exporter needs onnx, onnxruntime(-gpu) and OpenCV")
    from depthapp.export.exporter import export_backend

    weights = save_untrained(tmp_path, GCNet(32))
    report = export_backend("gcnet", weights, "onnx", 40, 60, tmp_path / "gcnet.onnx", max_disp=32,
                            log=lambda message: None)
    assert report.max_abs_diff < 1e-3
    assert (tmp_path / "gcnet.onnx").stat().st_size > 10 * 2**20  # 2.8 M float32 parameters


# --------------------------------------------------------------------------- learning

@pytest.mark.slow
def test_tiny_gcnet_overfits_one_synthetic_pair(rng):
    """A narrow GC-Net (F = 8, 2 residual blocks) learns one pair to below 1 px EPE."""
    torch.manual_seed(0)
    left, right, gt = synthetic_pair(32, 64, [3, 9, 6, 12], rng)
    left_t, right_t = standardize(left), standardize(right)
    target = torch.from_numpy(gt)[None]
    matched = torch.arange(64)[None, None, :] >= target  # left pixels whose match is in view
    model = GCNet(32, features=8, residual_blocks=2)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    initial = None
    for _ in range(150):
        model.train()
        disparity = model(left_t, right_t)
        epe = (disparity.detach() - target)[matched].abs().mean().item()
        initial = initial if initial is not None else epe
        if epe < 0.5:
            break
        loss = F.smooth_l1_loss(disparity[matched], target[matched])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    recalibrate_batchnorm(model, left_t, right_t)
    with torch.inference_mode():
        predicted, _ = model.infer(left_t, right_t)
    final = (predicted - target)[matched].abs().mean().item()
    assert initial > 3.0
    assert final < 1.0



@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_backend_equals_the_cpu(tmp_path, rng, no_tf32):
    torch.manual_seed(2)
    weights = save_untrained(tmp_path, GCNet(96))
    left, right, _ = synthetic_pair(250, 370, [5, 20, 40], rng)
    small = StereoPair((left * 255).astype(np.uint8), (right * 255).astype(np.uint8), name="synthetic")
    cpu = create_backend("gcnet", max_disp=96, device="cpu", weights=weights).compute(small)
    gpu = create_backend("gcnet", max_disp=96, device="cuda", weights=weights).compute(small)
    assert gpu.device.startswith("cuda")
    np.testing.assert_allclose(gpu.disparity, cpu.disparity, rtol=1e-3, atol=1e-2)
