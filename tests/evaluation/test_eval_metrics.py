"""The metrics against hand-built cases whose every number is known, a literal transcription of
the devkit's interpolation loop, and kornia.metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from depthapp.evaluation import benchmarks, metrics

NAN = np.nan


def devkit_interpolate_reference(disparity: np.ndarray) -> np.ndarray:
    """``DisparityImage::interpolateBackground`` transcribed loop for loop (invalid = -1)."""
    data = np.where(np.isfinite(disparity) & (disparity >= 0), disparity, -1.0).astype(np.float32)
    height, width = data.shape
    for v in range(height):
        count = 0
        for u in range(width):
            if data[v, u] >= 0:
                if count >= 1:
                    u1, u2 = u - count, u - 1
                    if u1 > 0 and u2 < width - 1:
                        fill = min(data[v, u1 - 1], data[v, u2 + 1])
                        data[v, u1:u2 + 1] = fill
                count = 0
            else:
                count += 1
        for u in range(width):
            if data[v, u] >= 0:
                data[v, :u] = data[v, u]
                break
        for u in range(width - 1, -1, -1):
            if data[v, u] >= 0:
                data[v, u + 1:] = data[v, u]
                break
    for u in range(width):
        for v in range(height):
            if data[v, u] >= 0:
                data[:v, u] = data[v, u]
                break
        for v in range(height - 1, -1, -1):
            if data[v, u] >= 0:
                data[v + 1:, u] = data[v, u]
                break
    return np.where(data >= 0, data, np.nan)


# --------------------------------------------------------------------------- interpolation


def test_interpolation_fills_gaps_with_the_background_side_and_extrapolates_row_ends():
    row = np.array([[NAN, 5, NAN, NAN, 3, NAN, -2.0, 8, NAN]], dtype=np.float32)
    filled = metrics.interpolate_background(row)
    np.testing.assert_array_equal(filled, [[5, 5, 3, 3, 3, 3, 3, 8, 8]])


def test_interpolation_extrapolates_columns_but_leaves_inner_empty_rows_as_the_devkit_does():
    image = np.full((5, 3), np.nan, dtype=np.float32)
    image[1] = [1, 2, 3]
    image[3] = [7, 8, 9]
    filled = metrics.interpolate_background(image)
    np.testing.assert_array_equal(filled[0], [1, 2, 3])
    np.testing.assert_array_equal(filled[4], [7, 8, 9])
    assert np.isnan(filled[2]).all()  # the devkit keeps -1 there


@pytest.mark.parametrize("shape,density", [((7, 11), 0.5), ((9, 5), 0.1), ((4, 13), 0.02), ((6, 6), 0.0),
                                           ((1, 9), 0.3), ((12, 1), 0.4)])
def test_interpolation_matches_the_devkit_loop(rng, shape, density):
    for _ in range(5):
        disparity = rng.uniform(0, 50, size=shape).astype(np.float32)
        disparity[rng.random(shape) > density] = np.nan
        disparity[rng.random(shape) < 0.05] = -3.0
        empty_row = rng.integers(0, shape[0])
        disparity[empty_row] = np.nan
        np.testing.assert_array_equal(metrics.interpolate_background(disparity),
                                      devkit_interpolate_reference(disparity))


# --------------------------------------------------------------------------- KITTI 2015


def test_d1_needs_both_the_3px_and_the_5_percent_clause():
    gt = np.array([100, 100, 40, 80, 80, 60, 10], dtype=np.float32)
    est = np.array([104, 106, 44, 84, 83, 63, 13.5], dtype=np.float32)
    # 4 px but 4 %; 6 px and 6 %; 4 px and 10 %; exactly 5 % at 4 px (float32 devkit: outlier);
    # 3 px (not > 3); 3 px = 5 %; 3.5 px and 35 %
    expected = [False, True, True, True, False, False, True]
    assert metrics.kitti_outliers(est, gt).tolist() == expected


def kitti2015_case():
    """3x6 frame whose every D1 count is worked out by hand in the test below."""
    occ = np.array([[10, 10, 10, 10, 10, 10],
                    [50, 50, 50, 50, NAN, NAN],
                    [100, 100, 100, 100, 100, 100]], dtype=np.float32)
    noc = occ.copy()
    noc[2, 4:] = NAN  # occluded
    obj = np.zeros(occ.shape, dtype=np.uint8)
    obj[2] = 1  # a car
    est = np.array([[10, 14, 13, NAN, 10, 10],
                    [50, 53.5, 47, 50, 0, 0],
                    [NAN, 104, 106, 100, 105.5, NAN]], dtype=np.float32)
    return est, noc, occ, obj


def test_kitti2015_counts_by_hand():
    est, noc, occ, obj = kitti2015_case()
    counts = metrics.kitti2015_counts(est, noc, occ, obj)
    # occ: outliers (0,1) 4 px/40 %, (1,1) 3.5 px/7 %, (2,2) 6 %, (2,4) 5.5 %, (2,5) filled 105.5;
    # not: (0,2) 3 px, (0,3) filled min(13,10)=10, (1,2) 3 px, (2,0) filled 104 -> 4 %, (2,1) 4 %
    assert (counts["occ_bg_pixels"], counts["occ_fg_pixels"], counts["occ_all_pixels"]) == (10, 6, 16)
    assert (counts["occ_bg_errors"], counts["occ_fg_errors"], counts["occ_all_errors"]) == (2, 3, 5)
    assert (counts["occ_bg_pixels_est"], counts["occ_fg_pixels_est"], counts["occ_all_pixels_est"]) == (9, 4, 13)
    assert (counts["occ_bg_errors_est"], counts["occ_fg_errors_est"], counts["occ_all_errors_est"]) == (2, 2, 4)
    assert (counts["noc_bg_pixels"], counts["noc_fg_pixels"], counts["noc_all_pixels"]) == (10, 4, 14)
    assert (counts["noc_bg_errors"], counts["noc_fg_errors"], counts["noc_all_errors"]) == (2, 1, 3)
    assert counts["occ_abs_error_sum"] == pytest.approx(7 + 6.5 + 25)
    values = metrics.kitti2015_values(counts)
    assert values["d1_all"] == pytest.approx(100 * 5 / 16)
    assert values["d1_bg"] == pytest.approx(20.0)
    assert values["d1_fg"] == pytest.approx(50.0)
    assert values["d1_all_noc"] == pytest.approx(100 * 3 / 14)
    assert values["d1_fg_noc"] == pytest.approx(25.0)
    assert values["d1_all_est"] == pytest.approx(100 * 4 / 13)
    assert values["density"] == pytest.approx(100 * 13 / 16)
    assert values["epe"] == pytest.approx(38.5 / 16)


def test_kitti2015_fg_is_undefined_without_foreground_and_counts_pool_over_images():
    est, noc, occ, obj = kitti2015_case()
    background_only = metrics.kitti2015_counts(est, noc, occ, np.zeros_like(obj))
    assert metrics.kitti2015_values(background_only)["d1_fg"] is None
    # pooled: (5 + 5) / (16 + 16) from the two images, not a mean of ratios of different sizes
    small = metrics.kitti2015_counts(est[:1], noc[:1], occ[:1], obj[:1])  # 1 outlier of 6
    pooled = metrics.kitti2015_values(metrics.sum_counts([background_only, small]))
    assert pooled["d1_all"] == pytest.approx(100 * (5 + 1) / (16 + 6))
    assert pooled["d1_fg"] is None


def test_an_empty_prediction_scores_like_the_devkits_minus_one():
    est = np.full((2, 3), np.nan, dtype=np.float32)
    gt = np.array([[2, 3, 4], [80, 100, 1]], dtype=np.float32)
    counts = metrics.kitti2015_counts(est, gt, gt)
    # d_est = -1: errors 3, 4, 5, 81, 101, 2 -> > 3 px and > 5 %: 4 (4 px of 3), 5, 81, 101
    assert counts["occ_all_errors"] == 4
    assert metrics.kitti2015_values(counts)["density"] == 0.0


# --------------------------------------------------------------------------- KITTI 2012


def test_kitti2012_out_and_avg_by_hand():
    gt = np.full((1, 8), 10, dtype=np.float32)
    est = (gt + np.array([0, 1.5, 2, 2.5, 3.5, 4.5, 5.5, NAN], dtype=np.float32)).astype(np.float32)
    noc = gt.copy()
    noc[0, 6:] = NAN
    values = metrics.kitti2012_image_values(est, noc, gt)
    # all: errors 0 1.5 2 2.5 3.5 4.5 5.5 5.5 (last pixel extrapolated from 15.5)
    assert [values[f"out_all_{t}"] for t in (2, 3, 4, 5)] == pytest.approx([62.5, 50.0, 37.5, 25.0])
    assert values["avg_all"] == pytest.approx(25 / 8)
    assert [values[f"out_noc_{t}"] for t in (2, 3, 4, 5)] == pytest.approx([50.0, 100 / 3, 100 / 6, 0.0])
    assert values["avg_noc"] == pytest.approx(14 / 6)
    assert values["density"] == pytest.approx(87.5)
    # KITTI 2012 has no relative clause: 4 px off at 200 px is an Out-3 outlier
    far = metrics.kitti2012_image_values(np.array([[204.0]]), np.array([[200.0]]), np.array([[200.0]]))
    assert far["out_noc_3"] == 100.0
    assert metrics.kitti_outliers(np.array([204.0]), np.array([200.0])).tolist() == [False]


def test_kitti2012_reflective_regions_and_mean_over_images():
    gt = np.full((1, 4), 10, dtype=np.float32)
    refl = np.array([[10, NAN, NAN, 10]], dtype=np.float32)
    est = np.array([[10, 15, 10, 14]], dtype=np.float32)
    values = metrics.kitti2012_image_values(est, gt, gt, refl, refl)
    assert values["out_refl_noc_3"] == 50.0 and values["out_refl_all_4"] == 0.0
    other = metrics.kitti2012_image_values(np.full((1, 2), 10.0), np.full((1, 2), 10.0), np.full((1, 2), 10.0))
    summary = benchmarks.summarize("kitti2012", [values, other], [None, None])
    # devkit statMean: (50 + 0) / 2, not pooled (2 of 6 pixels)
    assert summary["out_noc_3"] == pytest.approx(25.0)


# --------------------------------------------------------------------------- Scene Flow


def test_sceneflow_epe_and_bad_over_ground_truth_below_max_disp():
    gt = np.array([[10, 20, 30, 195, NAN, 191.5]], dtype=np.float32)
    est = np.array([[10.5, 22, 26, 0, 5, 191.5]], dtype=np.float32)
    values = metrics.sceneflow_image_values(est, gt)
    # scored: 10, 20, 30, 191.5 -> errors 0.5, 2, 4, 0
    assert values["pixels"] == 4
    assert values["epe"] == pytest.approx(6.5 / 4)
    assert values["bad_1"] == pytest.approx(50.0)
    assert values["bad_3"] == pytest.approx(25.0)
    assert metrics.sceneflow_image_values(est, gt, max_disp=31)["pixels"] == 3


def test_sceneflow_summary_is_a_mean_over_images_with_pooled_values_beside():
    one = benchmarks.score_image("sceneflow", np.array([[1.0, 1.0]]), _gt(np.array([[1.0, 5.0]])))
    two = benchmarks.score_image("sceneflow", np.zeros((1, 6)), _gt(np.zeros((1, 6))))
    summary = benchmarks.summarize("sceneflow", [one.values, two.values], [one.counts, two.counts])
    assert summary["epe"] == pytest.approx((2.0 + 0.0) / 2)
    assert summary["epe_pooled"] == pytest.approx(4.0 / 8)
    assert summary["bad_3"] == pytest.approx(25.0) and summary["bad_3_pooled"] == pytest.approx(12.5)


def _gt(disparity, **kwargs):
    from depthapp.evaluation import GroundTruth

    return GroundTruth(disparity=np.asarray(disparity, dtype=np.float32), **kwargs)


# --------------------------------------------------------------------------- Middlebury


def test_middlebury_sdk_bad_totbad_avgerr_quantiles_with_clipping():
    gt = np.array([[10, 10, 10, 10],
                   [20, 20, 1, 21],
                   [5, 5, 5, NAN]], dtype=np.float32)
    est = np.array([[10.3, 10.8, 11.5, 13],
                    [25, np.inf, -3, 21],
                    [5, NAN, 5.6, 7]], dtype=np.float32)
    mask = np.array([[255, 255, 255, 255],
                     [255, 128, 255, 128],
                     [255, 255, 0, 255]], dtype=np.uint8)
    values = metrics.middlebury_image_values(est, gt, mask, ndisp=21)
    # all: 11 pixels with GT; invalid: (1,1), (2,1); clipped: 25 -> 21 (err 1), -3 -> 0 (err 1)
    # valid errors: 0.3 0.8 1.5 3 | 1 1 0 | 0 0.6   (9 values)
    assert values["invalid_all"] == pytest.approx(100 * 2 / 11)
    assert values["bad_0.5_all"] == pytest.approx(100 * 6 / 11)
    assert values["bad_1_all"] == pytest.approx(100 * 2 / 11)
    assert values["bad_2_all"] == pytest.approx(100 * 1 / 11)
    assert values["bad_4_all"] == 0.0
    assert values["totbad_1_all"] == pytest.approx(100 * 4 / 11)
    errors = np.array([0.3, 0.8, 1.5, 3, 1, 1, 0, 0, 0.6])
    assert values["avgerr_all"] == pytest.approx(errors.mean(), rel=1e-6)
    assert values["rms_all"] == pytest.approx(math.sqrt((errors ** 2).mean()), rel=1e-6)
    ordered = np.sort(errors)  # 0 0 .3 .6 .8 1 1 1.5 3
    assert values["a50_all"] == pytest.approx(ordered[4])  # 5th of 9 is the first with >= 50 %
    assert values["a90_all"] == pytest.approx(ordered[8])
    assert values["a99_all"] == pytest.approx(ordered[8])
    # nonocc: mask 255 and GT known: drop (1,1) invalid, (1,3), (2,2) -> 8 pixels, 1 invalid
    assert values["invalid_nonocc"] == pytest.approx(100 / 8)
    assert values["bad_0.5_nonocc"] == pytest.approx(100 * 5 / 8)  # .8 1.5 3 1 1
    assert values["totbad_0.5_nonocc"] == pytest.approx(100 * 6 / 8)


def test_middlebury_upsamples_half_resolution_estimates_and_scales_gt_errors():
    gt_full = np.arange(16, dtype=np.float32).reshape(4, 4) + 10
    est_half = gt_full[::2, ::2] / 2  # exact at the top-left pixel of each 2x2 block
    values = metrics.middlebury_image_values(est_half, gt_full, None, ndisp=100)
    # upsampled: errors per 2x2 block 0, 1, 4, 5 (0 1 / 4 5 in each block)
    assert values["bad_0.5_all"] == 75.0 and values["bad_2_all"] == 50.0
    assert values["avgerr_all"] == pytest.approx(2.5)
    assert "bad_1_nonocc" not in values
    # ndisp clips at scale * ndisp (ndisp given at the estimate's resolution)
    clipped = metrics.middlebury_image_values(est_half, gt_full, None, ndisp=5)
    assert clipped["avgerr_all"] > values["avgerr_all"]
    # ground truth at half resolution: errors count in full-resolution pixels
    same = metrics.middlebury_image_values(est_half + 1, est_half, None, ndisp=100, gt_scale=2)
    assert same["avgerr_all"] == pytest.approx(2.0) and same["bad_1_all"] == 100.0
    with pytest.raises(Exception, match="1, 2 or 4"):
        metrics.middlebury_image_values(np.zeros((3, 3)), gt_full)


# --------------------------------------------------------------------------- folders


def test_generic_counts_pool_with_interpolated_holes():
    gt = np.array([[10, 10, 10, NAN]], dtype=np.float32)
    est = np.array([[NAN, 12.5, 10, 50]], dtype=np.float32)
    values = metrics.generic_values(metrics.generic_counts(est, gt))
    # (0,0) extrapolated 12.5 -> err 2.5; (0,1) 2.5; (0,2) 0
    assert values["epe"] == pytest.approx(5 / 3)
    assert values["bad_2"] == pytest.approx(200 / 3) and values["bad_3"] == 0.0
    assert values["epe_est"] == pytest.approx(2.5 / 2)
    assert values["density"] == pytest.approx(200 / 3)


# --------------------------------------------------------------------------- error image


def test_error_image_uses_the_devkit_log_colours_halves_occluded_and_paints_3x3():
    gt_occ = np.full((5, 6), np.nan, dtype=np.float32)
    gt_occ[2, 2] = 10.0  # error 0 -> first colour
    gt_occ[2, 3] = 10.0  # error 9 -> min(3, 18) = 3 -> [2, 4) colour, occluded -> halved
    gt_noc = gt_occ.copy()
    gt_noc[2, 3] = np.nan
    est = np.full((5, 6), 10.0, dtype=np.float32)
    est[2, 3] = 19.0
    image = metrics.kitti_error_image(est, gt_noc, gt_occ)
    first = (49, 54, 149)
    occluded = (253 // 2, 174 // 2, 97 // 2)
    assert tuple(image[1, 1]) == first and tuple(image[3, 1]) == first
    # the later centre (2,3) paints over the earlier one's right columns
    assert tuple(image[2, 2]) == occluded and tuple(image[1, 4]) == occluded
    assert tuple(image[0, 0]) == (0, 0, 0) and tuple(image[2, 5]) == (0, 0, 0)


# --------------------------------------------------------------------------- kornia


def test_outliers_bad_pixels_and_epe_agree_with_kornia(rng):
    torch = pytest.importorskip("torch")
    from kornia.metrics import kitti_d1_error, mean_absolute_disparity_error, mean_bad_pixel_error

    gt = rng.uniform(1, 150, size=(40, 60)).astype(np.float32)
    # non-negative: KITTI treats a negative estimate as missing, kornia as a value
    est = np.clip(gt + rng.normal(0, 4, size=gt.shape), 0, None).astype(np.float32)
    gt[rng.random(gt.shape) < 0.2] = np.nan
    valid = np.isfinite(gt)
    gt_t, est_t = torch.from_numpy(np.nan_to_num(gt)), torch.from_numpy(est)
    mask = torch.from_numpy(valid)
    ours = metrics.generic_values(metrics.generic_counts(est, gt))
    assert ours["d1_all"] == pytest.approx(100 * float(kitti_d1_error(est_t, gt_t, valid_mask=mask)), abs=1e-4)
    for threshold in (1, 2, 3):
        theirs = float(mean_bad_pixel_error(est_t, gt_t, threshold=float(threshold), valid_mask=mask))
        assert ours[f"bad_{threshold}"] == pytest.approx(100 * theirs, abs=1e-4)
    assert ours["epe"] == pytest.approx(float(mean_absolute_disparity_error(est_t, gt_t, mask)), rel=1e-5)
    per_pixel = kitti_d1_error(est_t, gt_t, valid_mask=mask, reduction="none").numpy().astype(bool)
    np.testing.assert_array_equal(metrics.kitti_outliers(est, gt) & valid, per_pixel)
    sceneflow = metrics.sceneflow_image_values(est, gt)
    below = mask & (gt_t < 192)
    assert sceneflow["bad_3"] == pytest.approx(100 * float(mean_bad_pixel_error(est_t, gt_t, 3.0, below)), abs=1e-4)
    middlebury = metrics.middlebury_image_values(est, gt, None)
    assert middlebury["bad_2_all"] == pytest.approx(
        100 * float(mean_bad_pixel_error(est_t, gt_t, 2.0, mask)), abs=1e-4)


def test_metrics_accept_torch_tensors():
    torch = pytest.importorskip("torch")
    est, noc, occ, obj = kitti2015_case()
    from_tensors = metrics.kitti2015_counts(torch.from_numpy(est), torch.from_numpy(noc),
                                            torch.from_numpy(occ), obj)
    assert from_tensors == metrics.kitti2015_counts(est, noc, occ, obj)
