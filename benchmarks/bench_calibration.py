"""Stereo calibration quality and time: depthapp vs OpenCV's own stereo_calib procedure.

    python benchmarks/bench_calibration.py [--repeats 5] [--threads 2]

Data: Debian opencv-doc's real chessboard pairs (left01..14/right01..14, 9x6 inner corners,
25 mm squares), installed or fetched with ``apt-get download`` (see
``depthapp.calibration.chessboard_data``). Both procedures see the same 13 pairs.

Rows:
- ``opencv stereo_calib``: samples/cpp/stereo_calib.cpp step for step
  (``depthapp.calibration.opencv_reference``).
- ``depthapp (all views)``: depthapp's corners and fit, outlier dropping off.
- ``depthapp``: the default (``depthapp calibrate``), outlier dropping on.
- Two cross rows attribute the gain: the sample's fit on depthapp's corners, and depthapp's
  fit on the sample's corners.

Columns: stereo RMS reprojection error and OpenCV's "average epipolar err" on each method's
own corners (what each procedure reports), the epipolar error of each calibration measured on
one *common* corner set (findChessboardCornersSB, used by neither) so that corner quality
does not flatter the numbers, the corners' row misalignment after rectification, the baseline
and its difference from the reference, and the median wall time of corners + fit.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import cv2
import numpy as np


def sb_views(pairs, pattern):
    """A neutral corner set: the sector-based detector, which neither procedure uses."""
    from depthapp.calibration.stereo_calibrate import StereoView, _same_orientation

    views = []
    for name, left, right in pairs:
        found = []
        for image in (left, right):
            ok, corners = cv2.findChessboardCornersSB(
                image, (pattern.columns, pattern.rows),
                flags=cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_EXHAUSTIVE | cv2.CALIB_CB_ACCURACY)
            found.append(corners.reshape(-1, 2) if ok else None)
        if found[0] is not None and found[1] is not None:
            views.append(StereoView(name, pattern.object_points(), found[0],
                                    _same_orientation(found[0], found[1])))
    return views


def row_error(views, k1, d1, k2, d2, rotation, translation, size):
    r1, r2, p1, p2, *_ = cv2.stereoRectify(k1, d1, k2, d2, size, rotation, translation.reshape(3, 1),
                                           flags=cv2.CALIB_ZERO_DISPARITY, alpha=0)
    errors = []
    for view in views:
        left = cv2.undistortPoints(view.left.reshape(-1, 1, 2), k1, d1, R=r1, P=p1).reshape(-1, 2)
        right = cv2.undistortPoints(view.right.reshape(-1, 1, 2), k2, d2, R=r2, P=p2).reshape(-1, 2)
        errors.append(np.abs(left[:, 1] - right[:, 1]))
    return float(np.concatenate(errors).mean())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", help="where to fetch opencv-doc if it is not installed")
    args = parser.parse_args(argv)

    from depthapp.bench import environment_line, format_table, set_threads
    from depthapp.calibration.chessboard_data import (PATTERN_SIZE, SQUARE_MM, chessboard_pairs,
                                                      opencv_doc_chessboards)
    from depthapp.calibration.opencv_reference import sample_views, stereo_calib_fit
    from depthapp.calibration.stereo_calibrate import (ChessboardPattern,
                                                       _fit, calibrate_stereo, detect_views,
                                                       epipolar_errors, DISTORTION_MODELS)
    from depthapp.calibration.writers import essential_fundamental
    from depthapp.io.images import read_image

    set_threads(args.threads)
    folder = opencv_doc_chessboards(args.cache)
    pattern = ChessboardPattern(*PATTERN_SIZE, SQUARE_MM, "mm")
    pairs = [(name, read_image(left, grey=True), read_image(right, grey=True))
             for name, left, right in chessboard_pairs(folder)]
    size = (pairs[0][1].shape[1], pairs[0][1].shape[0])
    common = sb_views(pairs, pattern)

    def timed(fn):
        times, result = [], None
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times), result

    def reference():
        views, image_size = sample_views(pairs, pattern)
        return stereo_calib_fit(views, image_size)

    def ours(drop: bool):
        def run():
            detections = detect_views(pairs, pattern)
            return calibrate_stereo(detections, pattern,
                                    outlier_factor=2.0 if drop else float("inf"))
        return run

    rows = []
    ref_time, ref = timed(reference)
    ref_views = ref.views

    def add(name, rms, epipolar, k1, d1, k2, d2, rotation, translation, fundamental, views, seconds, n_views):
        on_common = float(np.concatenate(epipolar_errors(common, k1, d1, k2, d2, fundamental)).mean())
        baseline_mm = float(np.linalg.norm(translation)) * 1000
        rows.append([name, n_views, rms, epipolar, on_common,
                     row_error(views, k1, d1, k2, d2, rotation, translation, size),
                     baseline_mm, 100 * (baseline_mm / (ref.baseline * 1000) - 1), seconds])

    add("opencv stereo_calib", ref.rms, ref.epipolar_error, ref.K1, ref.D1, ref.K2, ref.D2, ref.R,
        ref.T, ref.F, ref_views, ref_time, len(ref_views))
    for label, drop in (("depthapp (all views)", False), ("depthapp", True)):
        seconds, report = timed(ours(drop))
        cal = report.calibration
        used = [v for v in detect_views(pairs, pattern).views if v.name not in report.dropped]
        _, fundamental = essential_fundamental(cal)
        add(label, report.rms, report.epipolar_error, cal.K1, cal.D1, cal.K2, cal.D2, cal.R, cal.T,
            fundamental, used, seconds, len(used))
        if drop and report.dropped:
            print(f"depthapp dropped: {', '.join(report.dropped)}")
    our_views = detect_views(pairs, pattern).views
    cross = stereo_calib_fit(our_views, size)
    add("stereo_calib fit, depthapp corners", cross.rms, cross.epipolar_error, cross.K1, cross.D1,
        cross.K2, cross.D2, cross.R, cross.T, cross.F, our_views, float("nan"), len(our_views))
    fit = _fit(ref_views, size, DISTORTION_MODELS["k1k2p"])
    fit_epipolar = float(np.concatenate(epipolar_errors(ref_views, fit.k1, fit.d1, fit.k2, fit.d2,
                                                        fit.fundamental)).mean())
    add("depthapp fit, stereo_calib corners", fit.rms, fit_epipolar, fit.k1, fit.d1, fit.k2, fit.d2,
        fit.rotation, fit.translation, fit.fundamental, ref_views, float("nan"), len(ref_views))

    print(f"# Stereo calibration on opencv-doc chessboards ({len(pairs)} pairs, {size[0]}x{size[1]}, "
          f"9x6, 25 mm)")
    print(environment_line() + f", opencv threads {cv2.getNumThreads()}, median of {args.repeats}")
    print(f"common corner set for the 'epipolar (common)' column: findChessboardCornersSB, "
          f"{len(common)} pairs")
    print()
    print(format_table(("method", "views", "RMS px", "epipolar px", "epipolar (common) px",
                        "rectified rows px", "baseline mm", "vs ref %", "time s"), rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
