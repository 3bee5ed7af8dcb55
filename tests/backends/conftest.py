"""Fixtures shared by the learned backends' tests: the Motorcycle pair at reduced sizes, scoring."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from depthapp.data import StereoPair


def downscale(pair: StereoPair, factor: int) -> StereoPair:
    """The pair at 1/factor size (area interpolation); ground truth subsampled and divided."""
    height, width = pair.height // factor, pair.width // factor
    left = cv2.resize(pair.left, (width, height), interpolation=cv2.INTER_AREA)
    right = cv2.resize(pair.right, (width, height), interpolation=cv2.INTER_AREA)
    gt = pair.gt_disparity[: height * factor: factor, : width * factor: factor] / factor
    return StereoPair(left, right, name=f"{pair.name}-1/{factor}", gt_disparity=gt)


def bad_and_epe(disparity: np.ndarray, gt: np.ndarray, threshold: float = 2.0) -> tuple[float, float]:
    """Percentage of ground-truth pixels off by more than ``threshold`` (invalid counts as bad)
    and the mean absolute error over them."""
    valid = np.isfinite(gt)
    error = np.abs(disparity - gt)[valid]
    return float(100 * np.mean(~(error <= threshold))), float(np.nanmean(error))


@pytest.fixture(scope="session")
def score():
    """``score(disparity, gt, threshold=2.0) -> (bad %, EPE px)``."""
    return bad_and_epe


@pytest.fixture(scope="module")
def half_motorcycle(motorcycle_session) -> StereoPair:
    return downscale(motorcycle_session, 2)


@pytest.fixture(scope="module")
def quarter_motorcycle(motorcycle_session) -> StereoPair:
    return downscale(motorcycle_session, 4)


@pytest.fixture
def no_tf32():
    """Full float32 on the GPU, so CPU and GPU results are comparable."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
