"""Benchmark protocols: how one image is scored and how images are combined, per benchmark.

Each protocol follows its official evaluation code (cited in :mod:`depthapp.evaluation.metrics`):

- ``kitti2015``: counts pooled over all pixels of all images (devkit ``evaluate_scene_flow.cpp``);
- ``kitti2012``: per-image values averaged over images (devkit ``evaluate_stereo.cpp``, ``statMean``);
- ``sceneflow``: per-image EPE / bad-1 / bad-3 averaged over images (the PSMNet/GwcNet
  convention), with the pixel-pooled values beside them as ``*_pooled``;
- ``middlebury``: per-scene values (MiddEval3 SDK ``evaldisp``) averaged over scenes, unweighted
  (the online table's average weights some scenes differently);
- ``generic`` (any folder with ground truth): KITTI-style counts pooled over all pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from . import metrics
from .datasets import GroundTruth

BENCHMARKS = ("kitti2015", "kitti2012", "sceneflow", "middlebury", "generic")

# The keys every summary.json of a benchmark has, in report order (the contract).
SUMMARY_KEYS: dict[str, tuple[str, ...]] = {
    "kitti2015": ("d1_all", "d1_bg", "d1_fg", "d1_all_noc", "d1_bg_noc", "d1_fg_noc",
                  "d1_all_est", "d1_all_noc_est", "epe", "epe_noc", "density"),
    "kitti2012": tuple(f"out_noc_{t}" for t in (2, 3, 4, 5)) + tuple(f"out_all_{t}" for t in (2, 3, 4, 5))
    + ("avg_noc", "avg_all", "density"),
    "sceneflow": ("epe", "bad_1", "bad_3", "density", "epe_pooled", "bad_1_pooled", "bad_3_pooled"),
    "middlebury": tuple(
        f"{name}_{region}" for region in ("nonocc", "all")
        for name in ([f"bad_{metrics.threshold_name(t)}" for t in metrics.MIDDLEBURY_THRESHOLDS]
                     + [f"totbad_{metrics.threshold_name(t)}" for t in metrics.MIDDLEBURY_THRESHOLDS]
                     + ["invalid", "avgerr", "rms"] + [f"a{q}" for q in metrics.MIDDLEBURY_QUANTILES])),
    "generic": ("epe", "bad_1", "bad_2", "bad_3", "d1_all", "density", "epe_est", "bad_1_est",
                "bad_2_est", "bad_3_est", "d1_all_est"),
}

MAIN_METRIC = {"kitti2015": "d1_all", "kitti2012": "out_noc_3", "sceneflow": "epe",
               "middlebury": "bad_2_nonocc", "generic": "d1_all"}

PERCENT_FREE = ("epe", "avg_", "avgerr", "rms", "a50", "a90", "a95", "a99")

PROTOCOL_TEXT = {
    "kitti2015": "KITTI 2015 devkit: D1 outlier = error > 3 px and > 5 % of the true disparity; missing "
                 "estimates filled by the devkit's background interpolation; bg/fg from obj_map; "
                 "all = disp_occ_0, noc = disp_noc_0; pooled over all pixels of all images. "
                 "`_est`: estimated pixels only. density: estimated share of ground-truth pixels. "
                 "EPE (not a devkit number) over the same interpolated estimate.",
    "kitti2012": "KITTI 2012 devkit: Out-* = share of pixels with error > N px (no relative clause) after "
                 "background interpolation, Avg-* = mean absolute error; noc = disp_noc, all = disp_occ; "
                 "mean over images of the per-image values, as the devkit's statMean.",
    "sceneflow": "Scene Flow: EPE and > 1 px / > 3 px over pixels with ground truth below the maximum "
                 "disparity; missing estimates background-interpolated; mean over images "
                 "(`_pooled`: over all pixels of all images).",
    "middlebury": "MiddEval3 SDK evaldisp: estimate upsampled to the ground truth's resolution, valid "
                  "disparities clipped to [0, ndisp]; bad = valid and error > T (over all evaluated "
                  "pixels), totbad also counts invalid estimates; avgerr/rms/quantiles over valid "
                  "estimates; errors in full-resolution pixels; unweighted mean over scenes.",
    "generic": "Folder with ground truth: every pixel with ground truth, missing estimates filled by the "
               "KITTI background interpolation; D1 = error > 3 px and > 5 %; pooled over all pixels "
               "(`_est`: estimated pixels only).",
}


@dataclass
class ImageScore:
    """One image's numbers: ``values`` for per_image.csv, ``counts`` for pooling (or None)."""

    values: dict[str, Optional[float]]
    counts: Optional[dict[str, Any]] = None
    error_image: Optional[np.ndarray] = None


def _masked_noc(gt: GroundTruth) -> np.ndarray:
    return gt.disparity if gt.disparity_noc is None else gt.disparity_noc


def score_image(benchmark: str, estimate: np.ndarray, gt: GroundTruth, *,
                gt_max_disp: float = metrics.SCENEFLOW_MAX_DISP, error_image: bool = False,
                source: str = "estimate") -> ImageScore:
    """Score one ``(H, W)`` estimate (NaN = missing) against ``gt`` with ``benchmark``'s protocol.

    With ``error_image`` the KITTI devkit's log-colour error map of what was scored comes back too.
    """
    from ..errors import InputError

    estimate = metrics.as_array(estimate)
    if benchmark != "middlebury" and estimate.shape != gt.disparity.shape:
        raise InputError(f"{source}: disparity is {estimate.shape[1]}x{estimate.shape[0]}, the ground "
                         f"truth is {gt.disparity.shape[1]}x{gt.disparity.shape[0]}")
    image = None
    if benchmark == "kitti2015":
        if gt.disparity_noc is None:
            raise InputError(f"{source}: KITTI 2015 scoring needs disp_noc_0 ground truth")
        counts = metrics.kitti2015_counts(estimate, gt.disparity_noc, gt.disparity, gt.object_map)
        score = ImageScore(metrics.kitti2015_values(counts), counts)
        if error_image:
            image = metrics.kitti_error_image(metrics.interpolate_background(estimate), gt.disparity_noc,
                                              gt.disparity)
    elif benchmark == "kitti2012":
        if gt.disparity_noc is None:
            raise InputError(f"{source}: KITTI 2012 scoring needs disp_noc ground truth")
        values = metrics.kitti2012_image_values(estimate, gt.disparity_noc, gt.disparity,
                                                gt.refl_noc, gt.refl_occ)
        score = ImageScore(values)
        if error_image:
            image = metrics.kitti_error_image(metrics.interpolate_background(estimate), gt.disparity_noc,
                                              gt.disparity)
    elif benchmark == "sceneflow":
        result = metrics.sceneflow_image_values(estimate, gt.disparity, gt_max_disp)
        count_keys = ("pixels", "pixels_est", "abs_error_sum", "bad_1_count", "bad_3_count")
        score = ImageScore({k: v for k, v in result.items() if k not in count_keys},
                           {k: result[k] for k in count_keys})
        if error_image:
            with np.errstate(invalid="ignore"):
                evaluated = np.where(gt.disparity < gt_max_disp, gt.disparity, np.float32(np.nan))
            filled = metrics.interpolate_background(estimate, np.isfinite(estimate))
            image = metrics.kitti_error_image(filled, evaluated, evaluated)
    elif benchmark == "middlebury":
        values = metrics.middlebury_image_values(estimate, gt.disparity, gt.nonocc_mask, gt.ndisp,
                                                 gt.gt_scale, source=source)
        score = ImageScore(values)
        if error_image:
            upsampled, scale = metrics.upsample_to_ground_truth(estimate, gt.disparity.shape, source)
            upper = scale * gt.ndisp if gt.ndisp else np.inf
            scored = np.where(np.isfinite(upsampled), np.clip(upsampled, 0, upper), np.nan)
            image = metrics.kitti_error_image(scored, _masked_noc(gt), gt.disparity)
    elif benchmark == "generic":
        counts = metrics.generic_counts(estimate, gt.disparity)
        score = ImageScore(metrics.generic_values(counts), counts)
        if error_image:
            image = metrics.kitti_error_image(metrics.interpolate_background(estimate), _masked_noc(gt),
                                              gt.disparity)
    else:
        raise ValueError(f"unknown benchmark {benchmark!r}")
    score.error_image = image
    return score


def summarize(benchmark: str, values: Sequence[dict[str, Any]],
              counts: Sequence[Optional[dict[str, Any]]]) -> dict[str, Optional[float]]:
    """Combine per-image ``values`` / ``counts`` (same order) into the benchmark's numbers."""
    if benchmark == "kitti2015":
        summary = metrics.kitti2015_values(metrics.sum_counts(counts))
    elif benchmark == "generic":
        summary = metrics.generic_values(metrics.sum_counts(counts))
    elif benchmark == "sceneflow":
        summary = metrics.mean_values(values)
        pooled = metrics.sceneflow_values(metrics.sum_counts(counts))
        summary.update({f"{key}_pooled": pooled[key] for key in ("epe", "bad_1", "bad_3")})
    elif benchmark in ("kitti2012", "middlebury"):
        summary = metrics.mean_values(values)
    else:
        raise ValueError(f"unknown benchmark {benchmark!r}")
    ordered = {key: summary.get(key) for key in SUMMARY_KEYS[benchmark]}
    ordered.update({key: value for key, value in summary.items() if key not in ordered})
    return ordered


def is_percentage(key: str) -> bool:
    return not key.startswith(PERCENT_FREE)


# registry metric names whose summary key differs after the ``<benchmark>_`` prefix
_PUBLISHED_ALIASES = {"d1_noc": "d1_all_noc"}


def published_from_weights(weights: Optional[str], benchmark: str) -> tuple[dict[str, float], str]:
    """The numbers the weights record publishes for ``benchmark``, by summary key, and their
    citations (for report.md). Empty when the weights are a file or unknown to the registry."""
    if not weights:
        return {}, ""
    from ..weights.registry import RECORDS

    record = RECORDS.get(weights)
    if record is None:
        return {}, ""
    published: dict[str, float] = {}
    notes = []
    for name, metric in record.metrics.items():
        if not name.startswith(f"{benchmark}_"):
            continue
        key = name[len(benchmark) + 1:]
        key = _PUBLISHED_ALIASES.get(key, key)
        if key in SUMMARY_KEYS[benchmark]:
            published[key] = metric.value
            notes.append(f"{key} {metric.describe()}")
    return published, (f"weights record {weights}: " + "; ".join(notes)) if notes else ""
