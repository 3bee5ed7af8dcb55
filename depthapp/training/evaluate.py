"""Accuracy of a network under training: held-out synthetic pairs and, for reporting only, the
Motorcycle pair (never used to choose anything).

Numbers follow the conventions of the rest of depthapp: EPE is the mean absolute error over
pixels with ground truth; ``bad-T`` is the percentage of those pixels whose error exceeds T
pixels, a missing (NaN) estimate counting as an error, as ``depthapp run`` reports it.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from ..jobs import Job
from .data import TrainingSample
from .models import TrainingAdapter


def disparity_errors(estimate: np.ndarray, truth: np.ndarray,
                     thresholds: Sequence[float] = (1.0, 2.0, 3.0)) -> dict[str, float]:
    """``epe`` and ``bad<T>`` (percent) of an ``(H, W)`` estimate against ``(H, W)`` truth."""
    known = np.isfinite(truth)
    error = np.abs(estimate.astype(np.float64) - truth)[known]
    finite = np.isfinite(error)
    result = {"epe": float(error[finite].mean()) if finite.any() else float("nan"),
              "density": float(finite.mean() * 100.0) if error.size else float("nan")}
    for threshold in thresholds:
        result[f"bad{threshold:g}"] = float(np.mean(~(error <= threshold)) * 100.0) if error.size else float("nan")
    return result


def predict_numpy(adapter: TrainingAdapter, model: torch.nn.Module, left: np.ndarray,
                  right: np.ndarray, device: str) -> np.ndarray:
    """Disparity ``(H, W)`` of one pair of ``(H, W, 3)`` float [0, 1] (or uint8) images."""
    from .data import as_unit_float

    def tensor(image):
        return torch.from_numpy(as_unit_float(image)).permute(2, 0, 1)[None].to(device)

    with torch.no_grad():
        disparity = adapter.predict(model, tensor(left), tensor(right))
    return disparity[0].float().cpu().numpy()


def evaluate_samples(adapter: TrainingAdapter, model: torch.nn.Module,
                     samples: Sequence[TrainingSample], device: str,
                     job: Optional[Job] = None) -> dict[str, float]:
    """Mean of the per-pair numbers over ``samples`` (network in eval mode, then restored);
    ``job`` (progress, cancel) steps once per pair."""
    was_training = model.training
    model.eval()
    rows = []
    try:
        for sample in samples:
            rows.append(disparity_errors(predict_numpy(adapter, model, sample.left, sample.right, device),
                                         sample.disparity))
            if job:
                job.step()
    finally:
        model.train(was_training)
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]} if rows else {}


def evaluate_motorcycle(adapter: TrainingAdapter, model: torch.nn.Module,
                        device: str) -> Optional[dict[str, float]]:
    """The held-out real pair's numbers (None when the sample cannot be loaded here)."""
    try:
        from ..sample import load_sample

        pair = load_sample()
    except Exception:  # scikit-image missing: reported as not measured
        return None
    was_training = model.training
    model.eval()
    try:
        estimate = predict_numpy(adapter, model, pair.left, pair.right, device)
    finally:
        model.train(was_training)
    result = disparity_errors(estimate, pair.gt_disparity)
    result["gt_max"] = float(np.nanmax(pair.gt_disparity))
    return result


__all__ = ["disparity_errors", "evaluate_motorcycle", "evaluate_samples", "predict_numpy"]
