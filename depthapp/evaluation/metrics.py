"""Stereo metrics with the official definitions of KITTI 2012/2015, Scene Flow and Middlebury v3.

Pure numpy (a torch tensor is accepted and read back to the host). No file IO here: the readers
are in :mod:`depthapp.evaluation.datasets`, the batch runner in :mod:`depthapp.evaluation.runner`.

Conventions of every function:
- Disparity maps are ``(H, W)``; invalid pixels are NaN (or +/-inf). In the KITTI functions a
  negative disparity is invalid too, as in the devkit (``isValid`` is ``d >= 0``).
- Per-image functions return JSON-ready dicts of *counts and sums* (ints and floats), so a
  benchmark can pool them over all pixels of all images the way its devkit does;
  ``*_values(counts)`` turns counts (of one image or pooled) into the reported numbers.
- Percentages are in percent, errors in pixels; a value that is undefined (no pixels of that
  kind, e.g. D1-fg of an image without foreground) is ``None``.

The comparisons replicate the devkits' float32 arithmetic: KITTI computes
``fabs(d_gt - d_est) / fabs(d_gt)`` in float and compares it with the double ``0.05``, so an
error of exactly 5 % (e.g. 84 px for 80 px) *is* an outlier there, and here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np

KITTI_ABS_THRESHOLD = 3.0
KITTI_REL_THRESHOLD = 0.05
KITTI2012_THRESHOLDS = (1, 2, 3, 4, 5)
SCENEFLOW_MAX_DISP = 192
MIDDLEBURY_THRESHOLDS = (0.5, 1.0, 2.0, 4.0)
MIDDLEBURY_QUANTILES = (50, 90, 95, 99)

# devkit log_colormap.h: [lower, upper) of the normalised error, then R, G, B.
KITTI_LOG_COLORS = (
    (0.0, 0.0625, 49, 54, 149),
    (0.0625, 0.125, 69, 117, 180),
    (0.125, 0.25, 116, 173, 209),
    (0.25, 0.5, 171, 217, 233),
    (0.5, 1.0, 224, 243, 248),
    (1.0, 2.0, 254, 224, 144),
    (2.0, 4.0, 253, 174, 97),
    (4.0, 8.0, 244, 109, 67),
    (8.0, 16.0, 215, 48, 39),
    (16.0, 1e9, 165, 0, 38),
)


def as_array(values: Any, dtype=np.float32) -> np.ndarray:
    """A numpy array of ``values`` (numpy, list or a torch tensor on any device)."""
    if hasattr(values, "detach") and hasattr(values, "cpu"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=dtype)


def _check_2d(name: str, array: np.ndarray, shape: Optional[tuple[int, ...]] = None) -> None:
    if array.ndim != 2:
        raise ValueError(f"{name} must be (H, W), got shape {array.shape}")
    if shape is not None and array.shape != shape:
        raise ValueError(f"{name} is {array.shape}, expected {shape}")


def _ratio(numerator: float, denominator: float, percent: bool = True) -> Optional[float]:
    if not denominator:
        return None
    return float(numerator) / float(denominator) * (100.0 if percent else 1.0)


def kitti_valid(disparity: np.ndarray) -> np.ndarray:
    """The devkit's ``isValid``: finite and ``>= 0`` (it stores invalid pixels as -1)."""
    disparity = as_array(disparity)
    with np.errstate(invalid="ignore"):
        return np.isfinite(disparity) & (disparity >= 0)


# --------------------------------------------------------------------------------------------
# Missing predictions: the KITTI devkit's background interpolation


def interpolate_background(disparity: Any, valid: Optional[np.ndarray] = None) -> np.ndarray:
    """Fill invalid pixels as the KITTI devkit does before scoring.

    Source: KITTI stereo / scene flow devkit, ``io_disp.h``, ``DisparityImage::interpolateBackground``.
    Per row: every gap between two valid pixels gets the *smaller* of its two valid neighbours
    (the background side); the row's leading gap takes the first valid value and its trailing gap
    the last. Then per column: rows above the first valid pixel take its value, rows below the
    last valid pixel take that one. Rows with no valid pixel between valid rows stay invalid,
    exactly as in the devkit.

    Args:
        disparity: ``(H, W)``; NaN, inf and negative values are invalid.
        valid: optional ``(H, W)`` bool overriding which pixels count as estimated (Scene Flow
            keeps negative network outputs as values).

    Returns:
        ``(H, W)`` float32 with every fillable pixel filled and NaN where the devkit leaves -1.
    """
    disparity = as_array(disparity)
    _check_2d("disparity", disparity)
    height, width = disparity.shape
    valid = kitti_valid(disparity) if valid is None else np.asarray(valid, dtype=bool) & np.isfinite(disparity)
    out = np.where(valid, disparity, np.float32(np.nan)).astype(np.float32)
    if height == 0 or width == 0:
        return out

    columns = np.arange(width)
    previous = np.maximum.accumulate(np.where(valid, columns, -1), axis=1)
    following = np.minimum.accumulate(np.where(valid, columns, width)[:, ::-1], axis=1)[:, ::-1]
    rows = np.arange(height)[:, None]
    has_prev = previous >= 0
    has_next = following < width
    left_value = out[rows, np.clip(previous, 0, width - 1)]
    right_value = out[rows, np.clip(following, 0, width - 1)]
    fill = np.where(has_prev & has_next, np.minimum(left_value, right_value),
                    np.where(has_next, right_value, left_value))
    fillable = ~valid & (has_prev | has_next)
    out[fillable] = fill[fillable]

    # After the row pass a row is either complete or entirely invalid.
    row_valid = np.isfinite(out).all(axis=1)
    if row_valid.any():
        first, last = int(np.argmax(row_valid)), int(height - 1 - np.argmax(row_valid[::-1]))
        out[:first] = out[first]
        out[last + 1:] = out[last]
    return out


def _devkit_estimate(estimate: np.ndarray, valid: Optional[np.ndarray] = None) -> np.ndarray:
    """The interpolated estimate with the devkit's -1 where nothing could be filled."""
    filled = interpolate_background(estimate, valid)
    return np.where(np.isfinite(filled), filled, np.float32(-1.0)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# KITTI 2015


def kitti_outliers(estimate: Any, ground_truth: Any, abs_threshold: float = KITTI_ABS_THRESHOLD,
                   rel_threshold: float = KITTI_REL_THRESHOLD) -> np.ndarray:
    """The D1 outlier mask: error > ``abs_threshold`` px **and** > ``rel_threshold`` of the truth.

    Source: KITTI 2015 devkit ``evaluate_scene_flow.cpp``, ``disparityErrorsOutlier``:
    ``fabs(d_gt-d_est) > ABS_THRESH && fabs(d_gt-d_est)/fabs(d_gt) > REL_THRESH`` with
    ``ABS_THRESH 3.0``, ``REL_THRESH 0.05``, evaluated in float32 as the devkit does.

    Args:
        estimate, ground_truth: ``(H, W)``; pixels where either is NaN are not outliers.

    Returns:
        ``(H, W)`` bool.
    """
    estimate, ground_truth = as_array(estimate), as_array(ground_truth)
    with np.errstate(invalid="ignore", divide="ignore"):
        error = np.abs(ground_truth - estimate)
        relative = error / np.abs(ground_truth)  # float32 quotient, as the devkit's float division
        # compared in double like the devkit's ``> 0.05``: numpy would round 0.05 to float32 first
        return (error.astype(np.float64) > abs_threshold) & (relative.astype(np.float64) > rel_threshold)


def _kitti2015_region(counts: dict, region: str, ground_truth: np.ndarray, estimate_filled: np.ndarray,
                      estimated: np.ndarray, foreground: np.ndarray) -> None:
    shape = estimate_filled.shape
    _check_2d(f"ground truth ({region})", ground_truth, shape)
    gt_valid = kitti_valid(ground_truth)
    outlier = kitti_outliers(estimate_filled, ground_truth) & gt_valid
    abs_error = np.where(gt_valid, np.abs(ground_truth - estimate_filled), 0).astype(np.float64)
    groups = {"bg": gt_valid & ~foreground, "fg": gt_valid & foreground, "all": gt_valid}
    for group, mask in groups.items():
        counts[f"{region}_{group}_pixels"] = int(mask.sum())
        counts[f"{region}_{group}_errors"] = int((outlier & mask).sum())
        counts[f"{region}_{group}_pixels_est"] = int((mask & estimated).sum())
        counts[f"{region}_{group}_errors_est"] = int((outlier & mask & estimated).sum())
    counts[f"{region}_abs_error_sum"] = float(abs_error.sum())
    counts[f"{region}_abs_error_sum_est"] = float(abs_error[estimated].sum())


def kitti2015_counts(estimate: Any, gt_noc: Any, gt_occ: Any, object_map: Any = None) -> dict[str, Any]:
    """Per-image outlier counts of the KITTI 2015 stereo benchmark (disparity of frame 0).

    Source: KITTI 2015 devkit ``evaluate_scene_flow.cpp`` (``disparityErrorsOutlier``, ``eval``):
    the estimate is background-interpolated (:func:`interpolate_background`), every pixel with
    valid ground truth is scored, split by ``obj_map`` into background (0) and foreground (>0);
    ``*_est`` counts use only pixels the method itself estimated; density is estimated pixels over
    ground-truth pixels. ``noc`` uses ``disp_noc_0``, ``occ`` (the leaderboard's "All pixels")
    uses ``disp_occ_0``. The absolute error sums feed the end-point error, which the devkit does
    not report.

    Args:
        estimate: ``(H, W)`` disparity of the left image, NaN/negative where missing.
        gt_noc, gt_occ: ``(H, W)`` ground truth, NaN where unknown.
        object_map: ``(H, W)`` ints, 0 = background; None = every pixel is background.

    Returns:
        A dict of counts; pool by summing, turn into metrics with :func:`kitti2015_values`.
    """
    estimate = as_array(estimate)
    _check_2d("estimate", estimate)
    shape = estimate.shape
    if object_map is None:
        foreground = np.zeros(shape, dtype=bool)
    else:
        object_map = np.asarray(object_map)
        _check_2d("object map", object_map, shape)
        foreground = object_map > 0
    estimated = kitti_valid(estimate)
    filled = _devkit_estimate(estimate)
    counts: dict[str, Any] = {}
    _kitti2015_region(counts, "noc", as_array(gt_noc), filled, estimated, foreground)
    _kitti2015_region(counts, "occ", as_array(gt_occ), filled, estimated, foreground)
    return counts


def kitti2015_values(counts: Mapping[str, Any]) -> dict[str, Optional[float]]:
    """The KITTI 2015 numbers (percent; EPE in pixels) from one image's or pooled counts.

    ``d1_all``/``d1_bg``/``d1_fg`` are on all ground-truth pixels (``disp_occ_0``), ``*_noc`` on
    non-occluded ones, ``*_est`` only on pixels the method estimated; ``density`` is the percentage
    of ground-truth pixels (all) the method estimated. Source: ``evaluate_scene_flow.cpp``,
    ``stats_disp_{noc,occ}_0.txt`` (errors / max(pixels, 1), printed here as None when 0 pixels).
    """
    values: dict[str, Optional[float]] = {}
    for region, suffix in (("occ", ""), ("noc", "_noc")):
        for group in ("all", "bg", "fg"):
            values[f"d1_{group}{suffix}"] = _ratio(counts[f"{region}_{group}_errors"],
                                                  counts[f"{region}_{group}_pixels"])
        values[f"d1_all{suffix}_est"] = _ratio(counts[f"{region}_all_errors_est"],
                                              counts[f"{region}_all_pixels_est"])
        values[f"epe{suffix}"] = _ratio(counts[f"{region}_abs_error_sum"],
                                       counts[f"{region}_all_pixels"], percent=False)
    values["density"] = _ratio(counts["occ_all_pixels_est"], counts["occ_all_pixels"])
    return values


# --------------------------------------------------------------------------------------------
# KITTI 2012


def kitti2012_image_values(estimate: Any, gt_noc: Any, gt_occ: Any, gt_refl_noc: Any = None,
                           gt_refl_occ: Any = None) -> dict[str, Optional[float]]:
    """Per-image KITTI 2012 numbers: Out-Noc/Out-All at 2..5 px, Avg-Noc/Avg-All, density.

    Source: KITTI 2012 devkit ``evaluate_stereo.cpp`` (``disparityErrorsOutlier``,
    ``disparityErrorsAverage``): the estimate is background-interpolated, a pixel is an outlier
    at ``tau`` when ``fabs(d_gt - d_ipol) > tau`` (no relative clause in 2012); Out-* divide by
    the ground-truth pixels, Avg-* is the mean absolute error; density is estimated pixels over
    ground-truth pixels of ``disp_occ``. The benchmark numbers are the *mean over images* of
    these per-image values (``statMean``), see :func:`mean_values`. The reflective-region maps
    (``disp_refl_noc``/``disp_refl_occ``), when given, add ``out_refl_noc_*``/``out_refl_all_*``.

    Args:
        estimate: ``(H, W)`` disparity, NaN/negative where missing.
        gt_noc, gt_occ (, gt_refl_noc, gt_refl_occ): ``(H, W)`` ground truth, NaN where unknown.

    Returns:
        Percentages (Out-*, density) and pixels (Avg-*); None for a map without valid pixels.
    """
    estimate = as_array(estimate)
    _check_2d("estimate", estimate)
    estimated = kitti_valid(estimate)
    filled = _devkit_estimate(estimate)
    values: dict[str, Optional[float]] = {}
    regions = [("noc", gt_noc), ("all", gt_occ)]
    if gt_refl_noc is not None:
        regions.append(("refl_noc", gt_refl_noc))
    if gt_refl_occ is not None:
        regions.append(("refl_all", gt_refl_occ))
    for region, ground_truth in regions:
        ground_truth = as_array(ground_truth)
        _check_2d(f"ground truth ({region})", ground_truth, estimate.shape)
        gt_valid = kitti_valid(ground_truth)
        error = np.abs(ground_truth - filled)[gt_valid]  # float32, as the devkit
        pixels = int(gt_valid.sum())
        for tau in KITTI2012_THRESHOLDS[1:]:
            values[f"out_{region}_{tau}"] = _ratio(int((error > np.float32(tau)).sum()), pixels)
        if not region.startswith("refl"):
            values[f"avg_{region}"] = _ratio(float(error.astype(np.float64).sum()), pixels, percent=False)
        if region == "all":
            values["density"] = _ratio(int((gt_valid & estimated).sum()), pixels)
    return values


# --------------------------------------------------------------------------------------------
# Scene Flow


def sceneflow_image_values(estimate: Any, ground_truth: Any,
                           max_disp: float = SCENEFLOW_MAX_DISP) -> dict[str, Any]:
    """Per-image Scene Flow numbers: EPE (px), >1 px and >3 px (percent), density.

    Definition (Mayer et al., CVPR 2016, and the PSMNet/GwcNet evaluation code that set the
    convention): end-point error ``|d - d_gt|`` over pixels whose ground truth is finite and below
    ``max_disp`` (192 by default); ``bad_1``/``bad_3`` are the shares of those pixels with an
    error above 1/3 px. Networks are dense; a missing estimate is filled by the KITTI background
    interpolation (:func:`interpolate_background`) so sparse methods are not rewarded for holes,
    and ``density`` says how many were estimated. The counts are returned too, for pooling.

    Args:
        estimate, ground_truth: ``(H, W)`` disparity; NaN = missing / unknown.
        max_disp: ground truth at or above this is excluded.

    Returns:
        ``epe``, ``bad_1``, ``bad_3``, ``density`` (None without evaluated pixels) and the counts
        ``pixels``, ``pixels_est``, ``abs_error_sum``, ``bad_1_count``, ``bad_3_count``.
    """
    estimate, ground_truth = as_array(estimate), as_array(ground_truth)
    _check_2d("estimate", estimate)
    _check_2d("ground truth", ground_truth, estimate.shape)
    with np.errstate(invalid="ignore"):
        evaluated = np.isfinite(ground_truth) & (ground_truth < max_disp)
    estimated = np.isfinite(estimate)
    filled = _devkit_estimate(estimate, estimated)
    error = np.abs(filled - ground_truth)[evaluated]
    counts = {"pixels": int(evaluated.sum()), "pixels_est": int((evaluated & estimated).sum()),
              "abs_error_sum": float(error.astype(np.float64).sum()),
              "bad_1_count": int((error > 1.0).sum()), "bad_3_count": int((error > 3.0).sum())}
    return {**sceneflow_values(counts), **counts}


def sceneflow_values(counts: Mapping[str, Any]) -> dict[str, Optional[float]]:
    """EPE / bad-1 / bad-3 / density from one image's or pooled Scene Flow counts."""
    pixels = counts["pixels"]
    return {"epe": _ratio(counts["abs_error_sum"], pixels, percent=False),
            "bad_1": _ratio(counts["bad_1_count"], pixels),
            "bad_3": _ratio(counts["bad_3_count"], pixels),
            "density": _ratio(counts["pixels_est"], pixels)}


# --------------------------------------------------------------------------------------------
# Middlebury v3


def threshold_name(threshold: float) -> str:
    """``0.5 -> "0.5"``, ``2.0 -> "2"`` (the key suffix used in summaries)."""
    return f"{threshold:g}"


def upsample_to_ground_truth(estimate: np.ndarray, gt_shape: tuple[int, int], source: str = "estimate") -> tuple[np.ndarray, int]:
    """Nearest-neighbour upsampling by the integer factor between GT and estimate, values scaled.

    Source: MiddEval3 SDK ``evaldisp.cpp``: ``scale = width / width2`` must be 1, 2 or 4 and
    exact in both directions; ``d = scale * disp.Pixel(x / scale, y / scale)``.
    """
    from ..errors import InputError

    height, width = gt_shape
    est_height, est_width = estimate.shape
    scale = width // est_width if est_width else 0
    if scale not in (1, 2, 4) or scale * est_width != width or scale * est_height != height:
        raise InputError(f"{source}: disparity is {est_width}x{est_height}, ground truth is "
                         f"{width}x{height}; it must be exactly 1, 2 or 4 times smaller (MiddEval3 F/H/Q)")
    if scale == 1:
        return estimate, 1
    up = np.repeat(np.repeat(estimate, scale, axis=0), scale, axis=1)
    return (up * np.float32(scale)).astype(np.float32), scale


def middlebury_image_values(estimate: Any, ground_truth: Any, nonocc_mask: Any = None,
                            ndisp: Optional[float] = None, gt_scale: int = 1,
                            thresholds: Sequence[float] = MIDDLEBURY_THRESHOLDS,
                            quantiles: Sequence[int] = MIDDLEBURY_QUANTILES,
                            source: str = "estimate") -> dict[str, Optional[float]]:
    """Per-image Middlebury v3 numbers on ``nonocc`` and ``all`` pixels.

    Source: MiddEval3 SDK ``code/evaldisp.cpp`` (D. Scharstein, 2014/2015) and the v3 table's
    metric definitions:

    - the estimate is upsampled to the ground-truth resolution (F/H/Q factor 1/2/4, see
      :func:`upsample_to_ground_truth`); valid (finite) disparities are clipped to
      ``[0, scale * ndisp]`` (``ndisp`` at the estimate's resolution, from its ``calib.txt``);
    - ``n`` = pixels with finite ground truth (and ``mask0nocc == 255`` for ``nonocc``);
    - ``bad_T = 100 * #(valid and err > T) / n``: invalid estimates are not counted as bad ...
    - ``totbad_T = 100 * (#(valid and err > T) + #invalid) / n``: ... here they are errors;
    - ``invalid = 100 * #invalid / n``;
    - ``avgerr = sum(err over valid) / (n - #invalid)`` (the SDK's 10/14/2014 definition), ``rms``
      the root mean square of the same errors, ``aQ`` the Q % error quantile (smallest error
      with at least Q % of the valid pixels at or below it);
    - ``gt_scale`` multiplies every error (full-resolution pixels per ground-truth pixel), so
      thresholds and errors are in full-resolution pixels like the official table even when the
      ground truth is trainingH/Q (the SDK's ``runeval`` scales the threshold instead; same result).

    Args:
        estimate: ``(h, w)`` disparity at F, H or Q resolution, NaN/inf where invalid.
        ground_truth: ``(H, W)`` with ``H = s*h``, ``W = s*w``, s in {1, 2, 4}; NaN/inf unknown.
        nonocc_mask: ``(H, W)`` bool (True = non-occluded) or the uint8 ``mask0nocc.png``
            (255 = non-occluded); None skips the ``_nonocc`` keys.
        ndisp: disparity levels at the estimate's resolution; None = no upper clip.

    Returns:
        ``bad_0.5_all``, ..., ``totbad_4_nonocc``, ``invalid_*``, ``avgerr_*``, ``rms_*``,
        ``a50_*`` ... ``a99_*``.
    """
    estimate = as_array(estimate)
    ground_truth = as_array(ground_truth)
    _check_2d("estimate", estimate)
    _check_2d("ground truth", ground_truth)
    estimate, scale = upsample_to_ground_truth(estimate, ground_truth.shape, source)
    valid = np.isfinite(estimate)
    upper = np.float32(scale * ndisp) if ndisp else np.float32(np.inf)
    clipped = np.clip(np.where(valid, estimate, 0), np.float32(0), upper).astype(np.float32)
    gt_known = np.isfinite(ground_truth)
    error = np.abs(clipped - np.where(gt_known, ground_truth, 0)).astype(np.float32) * np.float32(gt_scale)

    regions = [("all", gt_known)]
    if nonocc_mask is not None:
        mask = np.asarray(nonocc_mask)
        _check_2d("non-occlusion mask", mask, ground_truth.shape)
        mask = mask if mask.dtype == bool else mask == 255
        regions.insert(0, ("nonocc", gt_known & mask))
    values: dict[str, Optional[float]] = {}
    for region, evaluated in regions:
        n = int(evaluated.sum())
        scored = evaluated & valid
        invalid = n - int(scored.sum())
        errors = error[scored]
        for threshold in thresholds:
            bad = int((errors > np.float32(threshold)).sum())
            name = threshold_name(threshold)
            values[f"bad_{name}_{region}"] = _ratio(bad, n)
            values[f"totbad_{name}_{region}"] = _ratio(bad + invalid, n)
        values[f"invalid_{region}"] = _ratio(invalid, n)
        errors64 = errors.astype(np.float64)
        values[f"avgerr_{region}"] = _ratio(errors64.sum(), errors.size, percent=False)
        values[f"rms_{region}"] = (float(np.sqrt(np.mean(errors64 ** 2))) if errors.size else None)
        for q in quantiles:
            values[f"a{q}_{region}"] = (float(np.quantile(errors64, q / 100.0, method="inverted_cdf"))
                                        if errors.size else None)
    return values


# --------------------------------------------------------------------------------------------
# Any folder with ground truth


GENERIC_BAD_THRESHOLDS = (1.0, 2.0, 3.0)


def generic_counts(estimate: Any, ground_truth: Any) -> dict[str, Any]:
    """Counts for a folder of pairs with ground truth (no benchmark of its own).

    Every pixel with finite ground truth is scored against the background-interpolated estimate
    (KITTI devkit convention, :func:`interpolate_background`), so holes cost what they would on
    KITTI; ``*_est`` counts use only estimated pixels. ``d1`` is KITTI's (> 3 px and > 5 %).

    Args:
        estimate, ground_truth: ``(H, W)`` disparity, NaN where missing / unknown.
    """
    estimate, ground_truth = as_array(estimate), as_array(ground_truth)
    _check_2d("estimate", estimate)
    _check_2d("ground truth", ground_truth, estimate.shape)
    evaluated = np.isfinite(ground_truth)
    estimated = kitti_valid(estimate)
    filled = _devkit_estimate(estimate)
    error = np.abs(filled - ground_truth)
    outlier = kitti_outliers(filled, ground_truth) & evaluated
    counts: dict[str, Any] = {}
    for suffix, mask in (("", evaluated), ("_est", evaluated & estimated)):
        counts[f"pixels{suffix}"] = int(mask.sum())
        counts[f"abs_error_sum{suffix}"] = float(error[mask].astype(np.float64).sum())
        counts[f"d1_count{suffix}"] = int((outlier & mask).sum())
        for threshold in GENERIC_BAD_THRESHOLDS:
            counts[f"bad_{threshold_name(threshold)}_count{suffix}"] = int(((error > threshold) & mask).sum())
    return counts


def generic_values(counts: Mapping[str, Any]) -> dict[str, Optional[float]]:
    """``epe``, ``bad_1``/``bad_2``/``bad_3``, ``d1_all`` and ``density`` (+ ``_est`` variants)."""
    values: dict[str, Optional[float]] = {}
    for suffix in ("", "_est"):
        pixels = counts[f"pixels{suffix}"]
        values[f"epe{suffix}"] = _ratio(counts[f"abs_error_sum{suffix}"], pixels, percent=False)
        for threshold in GENERIC_BAD_THRESHOLDS:
            name = threshold_name(threshold)
            values[f"bad_{name}{suffix}"] = _ratio(counts[f"bad_{name}_count{suffix}"], pixels)
        values[f"d1_all{suffix}"] = _ratio(counts[f"d1_count{suffix}"], pixels)
    values["density"] = _ratio(counts["pixels_est"], counts["pixels"])
    return values


# --------------------------------------------------------------------------------------------
# Pooling


def sum_counts(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum count dicts key by key (pooling over all pixels of all images)."""
    total: dict[str, Any] = {}
    for record in records:
        for key, value in record.items():
            total[key] = total.get(key, 0) + value
    return total


def mean_values(records: Sequence[Mapping[str, Optional[float]]]) -> dict[str, Optional[float]]:
    """Mean over images of per-image values, skipping None (undefined) entries per key."""
    keys: list[str] = []
    for record in records:
        keys.extend(key for key in record if key not in keys)
    result: dict[str, Optional[float]] = {}
    for key in keys:
        present = [record[key] for record in records if record.get(key) is not None]
        result[key] = float(np.mean(present)) if present else None
    return result


# --------------------------------------------------------------------------------------------
# Error images


def kitti_error_image(estimate: Any, gt_noc: Any, gt_occ: Any) -> np.ndarray:
    """The devkit's log-colour disparity error image, ``(H, W, 3)`` RGB uint8.

    Source: KITTI devkit ``io_disp.h``, ``DisparityImage::errorImage(D_noc, D_occ, log_colors=true)``
    with ``log_colormap.h``: for every interior pixel with valid ``gt_occ`` the normalised error
    ``min(err / 3, 20 * err / |d_gt|)`` picks a colour from blue (< 1/16 of the outlier threshold)
    to red (>= 16x); pixels without non-occluded ground truth are drawn at half intensity; each
    pixel paints its 3x3 neighbourhood, later pixels (raster order) over earlier ones. The
    estimate is the one scored (interpolated for KITTI; -1 where the devkit has no value).

    Args:
        estimate: ``(H, W)``; NaN is scored as the devkit's -1.
        gt_noc, gt_occ: ``(H, W)`` ground truth, NaN where unknown (gt_noc may equal gt_occ).
    """
    estimate = as_array(estimate)
    gt_noc, gt_occ = as_array(gt_noc), as_array(gt_occ)
    _check_2d("estimate", estimate)
    height, width = estimate.shape
    estimate = np.where(np.isfinite(estimate), estimate, np.float32(-1.0))
    occ_valid = kitti_valid(gt_occ)
    noc_valid = kitti_valid(gt_noc)
    with np.errstate(invalid="ignore", divide="ignore"):
        error = np.abs(estimate - gt_occ)
        normalised = np.minimum(error / np.float32(3.0), np.float32(20.0) * error / np.abs(gt_occ))
        normalised = np.where(np.isnan(normalised), error / np.float32(3.0), normalised)
    colors = np.zeros((height, width, 3), dtype=np.uint8)
    for low, high, red, green, blue in KITTI_LOG_COLORS:
        in_bin = (normalised >= low) & (normalised < high)
        colors[in_bin] = (red, green, blue)
    # uint8 *= 0.5 in the devkit truncates.
    colors = np.where(noc_valid[:, :, None], colors, colors // 2).astype(np.uint8)

    image = np.zeros((height, width, 3), dtype=np.uint8)
    if height < 3 or width < 3:
        return image
    centre = np.zeros((height, width), dtype=bool)
    centre[1:-1, 1:-1] = occ_valid[1:-1, 1:-1]
    for dv in (-1, 0, 1):  # raster order of the painting centres: later ones win
        for du in (-1, 0, 1):
            source_rows = slice(max(0, dv), height + min(0, dv))
            source_cols = slice(max(0, du), width + min(0, du))
            target_rows = slice(max(0, -dv), height + min(0, -dv))
            target_cols = slice(max(0, -du), width + min(0, -du))
            paint = centre[source_rows, source_cols]
            image[target_rows, target_cols][paint] = colors[source_rows, source_cols][paint]
    return image


# --------------------------------------------------------------------------- quick score

@dataclass(frozen=True)
class Metrics:
    """Scores of one disparity map against ground truth, over pixels with a GT value.

    ``bad_all``: % of GT pixels whose error exceeds ``threshold`` px or that have no prediction
    (Middlebury's "all" convention); ``bad_filled``: the same over predicted pixels only;
    ``density``: % of GT pixels predicted; ``epe``: mean absolute error (px) of predicted pixels.
    """

    threshold: float
    bad_all: float
    bad_filled: float
    density: float
    epe: float
    gt_pixels: int

    def summary(self) -> str:
        n = f"{self.threshold:g}"
        return (f"bad-{n} {self.bad_all:.2f} % (filled {self.bad_filled:.2f} %), "
                f"EPE {self.epe:.3f} px, density {self.density:.1f} %")


def score(disparity: np.ndarray, gt: np.ndarray, threshold: float) -> Metrics:
    valid_gt = np.isfinite(gt)
    count = int(valid_gt.sum())
    if count == 0:
        return Metrics(threshold, float("nan"), float("nan"), float("nan"), float("nan"), 0)
    error = np.abs(disparity[valid_gt] - gt[valid_gt])
    filled = np.isfinite(error)
    bad_all = 100.0 * float(np.mean(~(error <= threshold)))
    if filled.any():
        bad_filled = 100.0 * float(np.mean(error[filled] > threshold))
        epe = float(np.mean(error[filled]))
    else:
        bad_filled = epe = float("nan")
    return Metrics(threshold, bad_all, bad_filled, 100.0 * float(filled.mean()), epe, count)
