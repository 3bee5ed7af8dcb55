"""``depthapp calibrate``: stereo calibration from chessboard (or ChArUco) image pairs.

    depthapp calibrate --left 'data/left*.jpg' --right 'data/right*.jpg' --pattern 9x6 \\
        --square 25 --units mm --out rig.yaml

writes ``rig.yaml`` (OpenCV FileStorage: M1 D1 M2 D2 R T E F R1 R2 P1 P2 Q, image size,
units) and prints the per-view and overall RMS and epipolar errors. ``--out`` takes several
files to write the calibration in several formats at once (``--out rig.yaml rig.json`` adds
the depthapp JSON, in metres); nothing else is written.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

from ..errors import InputError, OutputExistsError, UsageError
from .progress import add_quiet_argument, progress_bar

OUTPUT_EXTENSIONS = (".yaml", ".yml", ".xml", ".json")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "calibrate", help="calibrate a stereo rig from chessboard or ChArUco image pairs",
        description="Detect the calibration pattern in each left/right pair (paired by file "
                    "name), calibrate both cameras and their relative pose, drop outlier views, "
                    "compute the rectification and write it (OpenCV YAML/XML and depthapp JSON).")
    parser.add_argument("--left", nargs="+", required=True, metavar="GLOB",
                        help="left images: a quoted glob like 'calib/left*.jpg', or files")
    parser.add_argument("--right", nargs="+", required=True, metavar="GLOB",
                        help="right images, paired with the left ones by file name")
    parser.add_argument("--pattern", metavar="COLSxROWS",
                        help="chessboard inner corners across x down, e.g. 9x6")
    parser.add_argument("--square", type=float, metavar="SIZE",
                        help="chessboard square size in --units (T comes out in these units)")
    parser.add_argument("--units", choices=("mm", "cm", "m"),
                        help="unit of --square and of the ChArUco sizes (default mm)")
    parser.add_argument("--charuco", metavar="DICT:COLSxROWS:SQUARE:MARKER",
                        help="a ChArUco board instead of a chessboard, e.g. DICT_5X5_100:7x5:40:30 "
                             "(squares across x down, square and marker size in --units)")
    parser.add_argument("--out", metavar="FILE", nargs="+", default=["calibration.yaml"],
                        help="output file(s); .yaml/.yml/.xml writes OpenCV FileStorage, .json "
                             "depthapp JSON; give several to write several formats, e.g. --out "
                             "rig.yaml rig.json (default calibration.yaml)")
    parser.add_argument("--ros-out", metavar="DIR",
                        help="also write DIR/left.yaml + DIR/right.yaml in ROS camera_info YAML "
                             "(camera_calibration_parsers, as ROS's cameracalibrator writes them)")
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")
    parser.add_argument("--model", default="k1k2p", choices=("k1k2p", "k1k2k3p", "rational"),
                        help="distortion model (default k1k2p: k1 k2 p1 p2)")
    parser.add_argument("--alpha", type=float, default=0.0,
                        help="rectification scaling: 0 keeps valid pixels only, 1 keeps all (default 0)")
    parser.add_argument("--keep-outliers", action="store_true",
                        help="use every view, even those whose error stands out")
    add_quiet_argument(parser)
    parser.set_defaults(handler=handle)


def _outputs(names: list[str]) -> list[Path]:
    outputs = list(dict.fromkeys(Path(name) for name in names))
    for out in outputs:
        if out.suffix.lower() not in OUTPUT_EXTENSIONS:
            raise UsageError(f"--out {out}: use .yaml, .yml, .xml (OpenCV) or .json (depthapp)")
    return outputs


def _pattern(args):
    from ..calibration.stereo_calibrate import ChessboardPattern, parse_charuco, parse_size

    units = args.units or "mm"
    if args.charuco:
        return parse_charuco(args.charuco, units)
    if not args.pattern or args.square is None:
        raise UsageError("calibrate: give --pattern COLSxROWS and --square SIZE (or --charuco ...)")
    if args.units is None and args.square < 1.0:
        raise UsageError(f"--square {args.square:g} with the default unit mm is implausibly small; "
                         "pass --units m (or cm) if the size is not in millimetres")
    columns, rows = parse_size(args.pattern)
    return ChessboardPattern(columns, rows, args.square, units)


def handle(args) -> int:
    from ..calibration.ros import ROS_YAML_NAMES
    from ..calibration.stereo_calibrate import calibrate_stereo, detect_views
    from ..calibration.wizard.files import NO_PAIRS, expand_globs, pair_by_name
    from ..calibration.writers import write_calibration, write_ros_yaml
    from ..io.images import read_image

    pattern = _pattern(args)
    outputs = _outputs(args.out)
    ros_outputs = [Path(args.ros_out) / name for name in ROS_YAML_NAMES] if args.ros_out else []
    for path in (*outputs, *ros_outputs):
        if path.exists() and not args.force:
            raise OutputExistsError(f"{path}: already exists (pass --force to overwrite)")
    pairs, notes = pair_by_name(expand_globs(args.left, "--left", "left"),
                                expand_globs(args.right, "--right", "right"))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if not pairs:
        raise InputError(NO_PAIRS)
    print(f"{len(pairs)} image pairs, {pattern.describe()}")

    def images() -> Iterator:
        for name, left, right in pairs:
            yield name, read_image(left, grey=True), read_image(right, grey=True)

    detections = detect_views(images(), pattern, total=len(pairs),
                              callback=progress_bar(args, "detecting corners"))
    report = calibrate_stereo(detections, pattern, model=args.model, alpha=args.alpha,
                              outlier_factor=float("inf") if args.keep_outliers else 2.0)
    for line in report.summary_lines():
        print(line)
    if report.rms > 1.0 or report.epipolar_error > 1.0:
        print("warning: errors above 1 px: check the pattern size, blurred or partly hidden "
              "boards, and that left/right images were taken at the same moment", file=sys.stderr)
    written = []
    for path in outputs:
        written.append(write_calibration(report.calibration, path, overwrite=args.force,
                                         units=pattern.units))
    if args.ros_out:
        written.extend(write_ros_yaml(report.calibration, args.ros_out, overwrite=args.force))
    for path in written:
        print(f"wrote {path}")
    return 0
