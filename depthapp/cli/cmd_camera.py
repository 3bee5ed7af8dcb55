"""``depthapp camera``: live disparity from a stereo camera (or files emulating one), with
optional lossless recording. A thin layer over :mod:`depthapp.camera`."""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import Optional

from ..errors import BackendUnavailableError, UsageError
from .backend_args import add_backend_arguments, cli_parameters, create_cli_backend
from .robotics_args import (add_bag_source_arguments, add_output_arguments, check_bag_source,
                            open_bag_source, outputs_or_none)

AUTO_BACKEND = "auto"
LIVE_PRESET = "fast"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "camera", help="live disparity from a stereo camera, video files or an image folder",
        description="Capture stereo pairs, rectify them with the calibration, compute disparity "
                    "(and depth) and show it live; optionally record every processed pair "
                    "losslessly. SRC is a camera index (0), a device (/dev/video2, "
                    "/dev/v4l/by-id/... survives replugging) or a video file. Files and folders "
                    "are read frame by frame without dropping any, unless --realtime.",
        epilog="Ends at the end of a file or folder (exit 0), after --frames N pairs, when the "
               "window is closed, or on Ctrl-C (a clean stop: the recording is complete).")
    source = parser.add_argument_group("source (--left SRC --right SRC | --sbs SRC | --folder DIR "
                                       "| --bag PATH)")
    source.add_argument("--left", metavar="SRC", help="left camera or video file")
    source.add_argument("--right", metavar="SRC", help="right camera or video file")
    source.add_argument("--sbs", metavar="SRC",
                        help="one side-by-side camera or video file (left half | right half)")
    source.add_argument("--folder", metavar="DIR",
                        help="image folder of pairs (left/ + right/, a recording, im0/im1, ...)")
    add_bag_source_arguments(source)
    source.add_argument("--realtime", action="store_true",
                        help="files and folders: emulate a live camera (pace by the file's FPS, "
                             "drop the frames processing cannot keep up with)")
    source.add_argument("--width", type=int, metavar="PX", help="camera: requested frame width (per view)")
    source.add_argument("--height", type=int, metavar="PX", help="camera: requested frame height")
    source.add_argument("--fps", type=float, metavar="F", help="camera: requested frame rate")
    source.add_argument("--fourcc", metavar="CODE", help="camera: requested pixel format (e.g. MJPG)")
    parser.add_argument("--calib", metavar="FILE",
                        help="calibration file (raw: pairs are rectified; rectified: depth in metres); "
                             "ROS camera_info YAML as left.yaml,right.yaml; with --bag it replaces "
                             "the bag's camera_info")
    parser.add_argument("--calib-units", choices=("mm", "cm", "m"),
                        help="units of T in an OpenCV calibration file")
    parser.add_argument("--record", metavar="DIR",
                        help="write every processed pair to DIR/left/NNNNNN.png, DIR/right/NNNNNN.png "
                             "and DIR/timestamps.csv")
    parser.add_argument("--force", action="store_true",
                        help="record into a non-empty DIR (replaces a recording); replace the --screenshot FILE")
    parser.add_argument("--snapshots", default=".", metavar="DIR",
                        help="window: where the Snapshot button (key S) saves the newest pair "
                             "(default: the current folder; existing files are replaced only if you agree)")
    parser.add_argument("--screenshot", metavar="FILE",
                        help="window: save it as a PNG when the stream ends (with --frames N)")
    parser.add_argument("--frames", type=int, metavar="N", help="stop after N processed pairs")
    parser.add_argument("--no-window", action="store_true", help="run headless (print statistics only)")
    parser.add_argument("--stats-every", type=float, default=2.0, metavar="S",
                        help="print statistics every S seconds (default 2; 0 = only at the end)")
    add_output_arguments(parser)
    add_backend_arguments(parser, default_backend=AUTO_BACKEND)
    parser.set_defaults(handler=handle)


def choose_backend(requested: str, preset: Optional[str], device: str) -> tuple[str, Optional[str], str]:
    """``(backend, preset, why)`` for the live feed.

    ``auto``: ``sgm`` on a GPU; on a CPU ``opencv-sgbm`` with its "fast" preset, the preset that
    keeps up best. (``sgm`` "fast" was the planned CPU default, but at 640x480 it runs at about
    a sixth of OpenCV SGBM's rate on the CPU; see benchmarks/bench_camera.py.) An explicit
    ``--backend`` is used as given.
    """
    from ..backends import get_backend_class
    from ..device import cuda_available

    if requested != AUTO_BACKEND:
        return requested, preset, "--backend"
    wants_cuda = device.startswith("cuda") or (device == "auto" and cuda_available())
    if wants_cuda:
        try:
            sgm = get_backend_class("sgm")
            sgm.check_available()
            if sgm.supports_cuda:
                return "sgm", preset, "default on a GPU"
        except BackendUnavailableError:
            pass
    return "opencv-sgbm", preset or LIVE_PRESET, "default on a CPU: the preset that keeps up best"


def _print_status(message: str) -> None:
    print(f"camera: {message}", file=sys.stderr, flush=True)


def handle(args, extra) -> int:
    from ..camera.recorder import Recorder
    from ..pipeline import choose_max_disp
    from ..sources import open_source

    if args.frames is not None and args.frames < 1:
        raise UsageError(f"--frames must be at least 1, got {args.frames}")
    if args.stats_every < 0:
        raise UsageError(f"--stats-every must be >= 0, got {args.stats_every}")
    if args.screenshot:
        if args.no_window:
            raise UsageError("--screenshot saves the window: drop --no-window")
        from ..io.atomic import check_writable

        check_writable(args.screenshot, args.force)
    name, preset, why = choose_backend(args.backend, args.preset, args.device)
    params = cli_parameters(args, extra, name, preset or "")

    check_bag_source(args)
    calibration = None
    if args.calib:
        from ..calibration import read_calibration

        calibration = read_calibration(args.calib, units=args.calib_units)
    bag = open_bag_source(args, _print_status) if args.bag else None
    outputs = None
    try:
        if bag is not None:
            from ..sources.bag import effective_calibration

            calibration = effective_calibration(calibration, bag.calibration, bag.topics)
        max_disp, origin = choose_max_disp(name, args.max_disp, args.weights, calibration)
        backend = create_cli_backend(args, params, max_disp, name)

        recorder = None
        if args.record:
            recorder = Recorder(args.record, overwrite=args.force, calibration_file=args.calib)
            recorder.check()  # refuse a non-empty folder before any camera is opened
        outputs = outputs_or_none(args, backend, args.force)  # refuses existing outputs here
        if not args.no_window and not args.screenshot and _window_problem(args) is None:
            from ..gui.qt_platform import require_qt_platform

            require_qt_platform()  # missing X libraries: one line now, not an abort in Qt later
        source = bag or open_source(left=args.left, right=args.right, sbs=args.sbs, folder=args.folder,
                                    realtime=args.realtime, on_status=_print_status, width=args.width,
                                    height=args.height, fps=args.fps, fourcc=args.fourcc)
        source.open()  # a missing camera or unreadable file fails here, before anything is printed
    except BaseException:
        if outputs is not None:
            outputs.abort()
        if bag is not None:
            bag.close()
        raise
    try:
        code = _run(args, source, backend, name, preset, why, origin, calibration, recorder, outputs)
    except BaseException:
        if outputs is not None:
            outputs.abort()
        raise
    finally:
        source.close()
    if outputs is not None:
        for line in outputs.close():
            print(line)
    return code


def _run(args, source, backend, name, preset, why, origin, calibration, recorder, outputs=None) -> int:
    from ..camera.loop import CameraLoop

    print(f"source: {source.description}" + (" (live)" if source.live else " (every frame)"))
    if calibration is not None:
        kind = "raw, pairs are rectified" if not calibration.rectified else "rectified"
        print(f"calibration: {args.calib or calibration.source} ({kind})")
    preset_text = f", preset {preset}" if preset else ""
    print(f"backend: {name}{preset_text} on {backend.device} ({why}), "
          f"max disparity {backend.max_disp} levels ({origin})")
    if backend.overrides:  # what the preset and the flags set; the rest are the backend's defaults
        print("parameters: " + ", ".join(f"{key}={value}" for key, value in backend.overrides.items()))

    last_print = [time.monotonic()]

    def on_frame(frame) -> None:
        if outputs is not None:
            outputs.write(frame)
        if args.stats_every and time.monotonic() - last_print[0] >= args.stats_every:
            last_print[0] = time.monotonic()
            print(f"frame {frame.frame.index}: {frame.stats.summary()}", flush=True)

    loop = CameraLoop(source, backend, calibration, on_frame=on_frame, on_status=_print_status,
                      recorder=recorder, max_frames=args.frames,
                      with_points=outputs is not None and outputs.needs_points)
    interrupted = threading.Event()

    def on_interrupt(signum, stack) -> None:
        # First Ctrl-C: finish the current pair and stop cleanly. A second one aborts.
        interrupted.set()
        loop.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_interrupt) if in_main_thread else None
    try:
        window_problem = _window_problem(args)
        if window_problem:
            print(f"note: {window_problem}; running without a window", file=sys.stderr)
        if args.no_window or window_problem:
            stats = loop.run()
        else:
            from ..camera.preview import run_with_window

            stats = run_with_window(loop, f"depthapp camera: {source.description}", float(backend.max_disp),
                                    snapshot_dir=args.snapshots, calibration_file=args.calib,
                                    screenshot=args.screenshot, overwrite=args.force,
                                    on_message=_print_status)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous)
        if recorder is not None:
            recorder.close()  # a no-op when the loop closed it; else it finishes queued pairs

    reason = "Ctrl-C" if interrupted.is_set() else (stats.end_reason or "stopped")
    if reason == "stopped":
        reason = "window closed"
    print(f"stopped: {reason}")
    print(f"summary: {stats.summary()}")
    if recorder is not None:
        print(f"recorded {recorder.frames_written} pairs to {args.record} "
              "(left/, right/, timestamps.csv)")
    return 0


def _window_problem(args) -> Optional[str]:
    if args.no_window:
        return None
    from ..camera.preview import display_problem

    return display_problem(offscreen=bool(args.screenshot))
