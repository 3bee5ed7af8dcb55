"""Evaluation with the official metrics of KITTI 2012/2015, Scene Flow and Middlebury v3.

- :mod:`.metrics`: the metric definitions (pure numpy), each citing its source;
- :mod:`.datasets`: readers of the official dataset layouts and of any folder of pairs;
- :mod:`.benchmarks`: per-benchmark scoring and pooling protocols;
- :mod:`.runner`: the resumable batch runner (local processes or Dask) behind
  ``depthapp eval`` and ``depthapp predict``.
"""

from .datasets import DATASETS, GroundTruth, Sample, StereoDataset, find_prediction, open_dataset
from .runner import BackendSpec, EvaluationResult, PredictionResult, evaluate, predict

__all__ = ["BackendSpec", "DATASETS", "EvaluationResult", "GroundTruth", "PredictionResult", "Sample",
           "StereoDataset", "evaluate", "find_prediction", "open_dataset", "predict"]
