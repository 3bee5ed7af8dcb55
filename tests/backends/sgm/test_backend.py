import numpy as np
import pytest

from depthapp.backends import create_backend, get_backend_class
from depthapp.data import StereoPair
from depthapp.errors import Cancelled, UsageError
from depthapp.jobs import CancelToken


def _scores(disparity, gt):
    """bad-2 over valid ground truth (invalid counts as bad), the same outside the first 64
    columns, and density over valid ground truth (the issue's definitions)."""
    valid = np.isfinite(gt)
    error = np.abs(disparity - gt)
    bad2 = np.mean(~(error[valid] <= 2))
    inner = valid[:, 64:]
    bad2_inner = np.mean(~(error[:, 64:][inner] <= 2))
    density = np.mean(np.isfinite(disparity[valid]))
    return bad2, bad2_inner, density


def test_registered_with_declared_parameters():
    cls = get_backend_class("sgm")
    assert cls.name == "sgm" and cls.supports_cuda
    names = {p.name for p in cls.parameters}
    assert {"census_window", "paths", "p1", "p2", "p2_gradient", "uniqueness", "lr_max_diff",
            "subpixel", "median_size", "speckle_size", "speckle_range", "min_disp"} <= names
    for parameter in cls.parameters:
        assert parameter.help
        if parameter.kind in ("int", "float"):
            assert parameter.minimum is not None and parameter.maximum is not None
    backend = create_backend("sgm", max_disp=64, **cls.presets["fast"])
    assert backend.config().paths == 4 and backend.config().window == (5, 5)
    with pytest.raises(UsageError, match="census_window"):
        create_backend("sgm", census_window="4x4")


def test_defaults_beat_pandora_and_opencv_on_motorcycle(motorcycle):
    # Targets (issue 3): bad-2 <= 14.2 % (Pandora) with density >= 88 %, and <= 12.4 %
    # outside the first 64 columns. Measured with these defaults: 9.6 %, 9.0 %, 94.8 %.
    result = create_backend("sgm", max_disp=64).compute(motorcycle)
    bad2, bad2_inner, density = _scores(result.disparity, motorcycle.gt_disparity)
    assert bad2 <= 0.12 and bad2_inner <= 0.11 and density >= 0.90
    assert result.confidence.shape == result.disparity.shape
    assert list(result.timings)[:2] == ["grey", "cost"]
    # Dense to the left border, unlike OpenCV which leaves the first 64 columns empty.
    valid = np.isfinite(motorcycle.gt_disparity[:, :64])
    assert np.mean(np.isfinite(result.disparity[:, :64][valid])) > 0.85


def test_fast_preset_stays_accurate(motorcycle):
    backend = create_backend("sgm", max_disp=64, **get_backend_class("sgm").presets["fast"])
    bad2, bad2_inner, density = _scores(backend.compute(motorcycle).disparity,
                                        motorcycle.gt_disparity)
    assert bad2 <= 0.13 and bad2_inner <= 0.12 and density >= 0.88


def test_recovers_a_known_shift_to_the_border(textured_pair):
    left, right = textured_pair(40, 80, disparity=7)
    pair = StereoPair(np.dstack([left] * 3).astype(np.uint8), np.dstack([right] * 3).astype(np.uint8))
    disparity = create_backend("sgm", max_disp=16).compute(pair).disparity
    assert np.nanmax(np.abs(disparity[:, 10:] - 7)) < 0.5
    assert np.mean(np.isfinite(disparity[:, :7])) > 0.9  # band whose match is out of view
    assert np.nanmedian(disparity[:, :7]) == pytest.approx(7, abs=0.5)


def test_min_disp_shifts_the_search_range(textured_pair):
    left, right = textured_pair(30, 60, disparity=12)
    pair = StereoPair(np.dstack([left] * 3).astype(np.uint8), np.dstack([right] * 3).astype(np.uint8))
    narrow = create_backend("sgm", max_disp=8, min_disp=8).compute(pair).disparity
    assert np.nanmedian(narrow[:, 20:]) == pytest.approx(12, abs=0.3)
    too_small = create_backend("sgm", max_disp=8).compute(pair).disparity
    assert abs(np.nanmedian(too_small[:, 20:]) - 12) > 3


def test_cancel_stops_between_stages(motorcycle):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        create_backend("sgm", max_disp=16).compute(motorcycle, cancel=token)


def test_memory_estimate_for_a_large_pair_stays_bounded():
    from depthapp.backends.sgm.pipeline import memory_bytes, strips

    backend = create_backend("sgm", max_disp=256)
    config = backend.config()
    volume = 2000 * 3000 * 256
    # In one piece: uint8 cost + uint16 aggregated volume + image buffers, over 5 GB ...
    assert memory_bytes(2000, 3000, config, whole=True) >= 3 * volume
    # ... so it runs in overlapping strips that keep the peak near the 2 GiB budget.
    assert backend.estimate_memory(2000, 3000) <= config.max_memory * 1.05
    pieces = strips(2000, 3000, config)
    assert len(pieces) > 1 and pieces[0][2] == 0 and pieces[-1][3] == 2000
    assert all(a[3] == b[2] for a, b in zip(pieces, pieces[1:]))  # kept rows tile the image
    assert all(top <= keep_top - min(keep_top, config.strip_overlap)
               for top, _, keep_top, _ in pieces)
    # A frame that fits is one strip.
    assert strips(375, 1242, create_backend("sgm", max_disp=128).config()) == [(0, 375, 0, 375)]
    from depthapp.backends.sgm.cuda import device_memory_bytes

    # KITTI size on a GPU: cost, sum and eight per-path uint16 volumes (8 x 119 MB), < 1.5 GB.
    assert device_memory_bytes(375, 1242, create_backend("sgm", max_disp=128).config()) < 1.5e9


def test_strips_give_the_same_disparity(motorcycle):
    from depthapp.backends.sgm.pipeline import compute_sgm, memory_bytes, strips

    config = create_backend("sgm", max_disp=64).config()
    small = config.with_(max_memory=memory_bytes(260, motorcycle.width, config, whole=True))
    assert len(strips(motorcycle.height, motorcycle.width, small)) >= 3
    grey = motorcycle.grey()
    whole = compute_sgm(*grey, config).disparity
    pieces = compute_sgm(*grey, small).disparity
    # Paths restart 64 rows above/below each strip and the border cost is estimated from a
    # sample of rows, so a few sub-pixel values move slightly; nothing else changes.
    assert np.mean(np.isfinite(whole) == np.isfinite(pieces)) > 0.995
    both = np.isfinite(whole) & np.isfinite(pieces)
    assert np.mean(np.abs(whole[both] - pieces[both]) < 0.25) > 0.99
    bad2_whole, _, _ = _scores(whole, motorcycle.gt_disparity)
    bad2_pieces, _, _ = _scores(pieces, motorcycle.gt_disparity)
    assert abs(bad2_whole - bad2_pieces) < 0.002


@pytest.mark.cuda
@pytest.mark.skipif(not (lambda: __import__("torch").cuda.is_available())(),
                    reason="needs a CUDA device")
def test_cuda_matches_cpu_on_motorcycle(motorcycle):
    cpu = create_backend("sgm", max_disp=64, device="cpu").compute(motorcycle)
    gpu = create_backend("sgm", max_disp=64, device="cuda").compute(motorcycle)
    assert gpu.device.startswith("cuda")
    both = np.isfinite(cpu.disparity) & np.isfinite(gpu.disparity)
    assert np.mean(np.isfinite(cpu.disparity) == np.isfinite(gpu.disparity)) > 0.995
    # Known gap: the GPU's sub-pixel/median steps do not round like the CPU kernels. Measured on
    # an H100: 90.2 % of pixels within 0.001 px, 98.9 % within 0.05 px (the aggregation itself is
    # equal: test_gpu_aggregation_equals_the_cpu_kernels). Accuracy is asserted below.
    difference = np.abs(cpu.disparity[both] - gpu.disparity[both])
    assert np.mean(difference < 1e-3) > 0.85 and np.mean(difference < 0.05) > 0.98
    bad2, bad2_inner, density = _scores(gpu.disparity, motorcycle.gt_disparity)
    assert bad2 <= 0.12 and bad2_inner <= 0.11 and density >= 0.90


def test_a_stream_reusing_the_volumes_gives_each_frame_its_own_result(motorcycle):
    # The backend keeps its cost and sums volumes between frames of one size: nothing of the
    # previous frame may leak into the next, whatever the sizes in between.
    crop = StereoPair(motorcycle.left[100:260, 200:520], motorcycle.right[100:260, 200:520])
    other = StereoPair(motorcycle.left[250:410, 300:620], motorcycle.right[250:410, 300:620])
    small = StereoPair(motorcycle.left[:64, :96], motorcycle.right[:64, :96])
    stream = create_backend("sgm", max_disp=32)
    results = [stream.compute(pair).disparity for pair in (crop, other, small, crop, other)]
    for pair, got in zip((crop, other, small, crop, other), results):
        fresh = create_backend("sgm", max_disp=32).compute(pair).disparity
        np.testing.assert_array_equal(got, fresh)
