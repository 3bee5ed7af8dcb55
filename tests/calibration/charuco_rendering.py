"""Rendered ChArUco views of a known stereo rig (test helper, not a test module)."""

from __future__ import annotations

import cv2
import numpy as np

from depthapp.calibration.stereo_calibrate import CharucoPattern


def render_charuco_rig(count: int = 10, seed: int = 3):
    """``(pattern, [(name, left, right)], truth)``: a 7x5 DICT_5X5_100 board (40/30 mm) at
    ``count`` random poses 0.65-0.9 m away, seen by two pinhole cameras 9 cm apart."""
    pattern = CharucoPattern("DICT_5X5_100", 7, 5, 40.0, 30.0, "mm")
    truth = {"K1": np.array([[700.0, 0, 322.0], [0, 700.0, 238.0], [0, 0, 1]]),
             "K2": np.array([[690.0, 0, 316.0], [0, 690.0, 244.0], [0, 0, 1]]),
             "R": cv2.Rodrigues(np.array([0.005, -0.03, 0.01]))[0],
             "T": np.array([-0.09, 0.001, 0.002])}
    rng = np.random.default_rng(seed)
    poses = []
    for _ in range(count):
        rvec = rng.uniform(-0.7, 0.7, 3) * np.array([1, 1, 0.3])
        tvec = np.array([rng.uniform(-0.17, -0.1), rng.uniform(-0.13, -0.07), rng.uniform(0.65, 0.9)])
        poses.append((rvec, tvec))
    pairs = _render(pattern, poses, truth["K1"], truth["K2"], truth["R"], truth["T"], (640, 480))
    return pattern, pairs, truth


def _render(pattern: CharucoPattern, poses, k1, k2, rotation, translation, size):
    """Images of a flat ChArUco board at ``poses`` seen by two pinhole cameras, rendered at
    4x and averaged down (plain warping of a finer texture aliases the edges)."""
    board = pattern.board()
    pixels_per_metre = 4000.0
    texture = board.generateImage((round(pattern.columns * pattern.square_metres * pixels_per_metre),
                                   round(pattern.rows * pattern.square_metres * pixels_per_metre)))
    # Texture pixel centres -> board plane metres (a square edge lies on a pixel boundary).
    to_plane = np.array([[1 / pixels_per_metre, 0, 0.5 / pixels_per_metre],
                         [0, 1 / pixels_per_metre, 0.5 / pixels_per_metre], [0, 0, 1]])
    factor = 4
    # Output pixel centres -> 4x pixel centres.
    upscale = np.array([[factor, 0, (factor - 1) / 2], [0, factor, (factor - 1) / 2], [0, 0, 1]])
    big = (size[0] * factor, size[1] * factor)
    pairs = []
    for index, (rvec, tvec) in enumerate(poses):
        board_rotation, _ = cv2.Rodrigues(np.asarray(rvec, float))
        views = []
        for k, extra_r, extra_t in ((k1, np.eye(3), np.zeros(3)), (k2, rotation, translation)):
            r = extra_r @ board_rotation
            t = extra_r @ np.asarray(tvec, float) + extra_t
            homography = upscale @ k @ np.column_stack([r[:, 0], r[:, 1], t]) @ to_plane
            image = cv2.warpPerspective(texture, homography, big, flags=cv2.INTER_LINEAR,
                                        borderValue=200)
            views.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
        pairs.append((f"pose{index}", views[0], views[1]))
    return pairs
