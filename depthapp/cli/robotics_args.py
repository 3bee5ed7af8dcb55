"""Command-line options for ROS bags and Rerun, shared by ``camera`` and ``run``.

``--bag`` reads a bag as the source; ``--out-bag`` writes results as a bag; ``--rerun`` and
``--rerun-save`` log them to Rerun. :class:`Outputs` gathers the sinks a command asked for.
"""

from __future__ import annotations

import argparse
from typing import Optional

from ..errors import UsageError
from ..robotics import DEFAULT_SYNC_TOLERANCE


def add_bag_source_arguments(group) -> None:
    group.add_argument("--bag", metavar="PATH",
                       help="a ROS bag: ROS 1 .bag, ROS 2 folder, .mcap or .db3 (needs depthapp[ros])")
    group.add_argument("--left-topic", metavar="T", help="--bag: left image topic (default: detected)")
    group.add_argument("--right-topic", metavar="T", help="--bag: right image topic (default: detected)")
    group.add_argument("--sync-tolerance", type=float, default=None, metavar="S",
                       help="--bag: largest left/right header stamp difference of a pair, seconds "
                            f"(default {DEFAULT_SYNC_TOLERANCE:g})")


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("robotics outputs")
    group.add_argument("--out-bag", metavar="PATH",
                       help="write disparity (stereo_msgs/DisparityImage), depth (32FC1 m) and "
                            "points (PointCloud2) to a ROS 2 bag (MCAP; sqlite3 with "
                            "--out-bag-storage; ROS 1 for a .bag path); needs depthapp[ros]")
    group.add_argument("--out-bag-storage", choices=("mcap", "sqlite3"), default="mcap",
                       help="ROS 2 storage of --out-bag (default mcap)")
    group.add_argument("--out-bag-images", action="store_true",
                       help="--out-bag: also write the rectified images and their camera_info")
    group.add_argument("--out-namespace", default="/depthapp", metavar="NS",
                       help="--out-bag: topic namespace (default /depthapp)")
    group.add_argument("--rerun", nargs="?", const="spawn", metavar="URL",
                       help="log to Rerun: spawn a viewer, or connect to URL "
                            "(rerun+http://host:9876/proxy); needs depthapp[rerun]")
    group.add_argument("--rerun-save", metavar="FILE.rrd", help="log to a Rerun .rrd file")


def check_bag_source(args) -> None:
    if not getattr(args, "bag", None):
        for flag in ("left_topic", "right_topic", "sync_tolerance"):
            if getattr(args, flag, None) is not None:
                raise UsageError(f"--{flag.replace('_', '-')} goes with --bag")
        return
    others = [f"--{name}" for name in ("left", "right", "sbs", "folder", "realtime", "width",
                                        "height", "fps", "fourcc") if getattr(args, name, None)]
    if others:
        raise UsageError(f"--bag plays every recorded pair; drop {' '.join(others)}")


def open_bag_source(args, on_status):
    """The opened :class:`~depthapp.sources.bag.BagSource` of ``--bag``."""
    from ..sources.bag import BagSource

    tolerance = DEFAULT_SYNC_TOLERANCE if args.sync_tolerance is None else args.sync_tolerance
    source = BagSource(args.bag, args.left_topic, args.right_topic, tolerance=tolerance,
                       on_status=on_status)
    return source.open()


class Outputs:
    """The robotics sinks a command asked for; ``write(live)`` for each processed pair,
    ``close()`` at a clean end (files appear), ``abort()`` on failure (nothing is left)."""

    def __init__(self, args, backend, force: bool):
        self.sinks = []
        self.bag = self.rerun = None
        if args.rerun_save and not args.rerun_save.endswith(".rrd"):
            raise UsageError(f"--rerun-save {args.rerun_save}: use a .rrd file name")
        if args.out_bag:
            from ..robotics.bag_sink import BagSink

            self.bag = BagSink(args.out_bag, storage=args.out_bag_storage, overwrite=force,
                               namespace=args.out_namespace, images=args.out_bag_images,
                               max_disp=backend.max_disp, delta_d=backend.disparity_step)
            self.sinks.append(self.bag)
        if args.rerun or args.rerun_save:
            from ..robotics.rerun_log import RerunLogger

            self.rerun = RerunLogger(args.rerun, args.rerun_save, overwrite=force)
            self.sinks.append(self.rerun)

    @property
    def needs_points(self) -> bool:
        return bool(self.sinks)

    def write(self, live) -> None:
        if self.bag is not None:
            self.bag.write(live)
        if self.rerun is not None:
            self.rerun.log(live)

    def close(self) -> list[str]:
        """Finish every sink; lines saying what was written."""
        lines = []
        if self.bag is not None:
            path = self.bag.close()
            counts = ", ".join(f"{topic} {count}" for topic, count in self.bag.writer.counts.items())
            lines.append(f"wrote {path} ({self.bag.frames_written} pairs: {counts or 'no messages'})")
        if self.rerun is not None:
            path = self.rerun.close()
            if path is not None:
                lines.append(f"wrote {path} ({self.rerun.frames_logged} pairs logged to Rerun)")
        return lines

    def abort(self) -> None:
        for sink in self.sinks:
            sink.abort()


def live_frame_of(pair, output, number: int = 1, frame=None):
    """A :class:`~depthapp.camera.loop.LiveFrame` of one ``run`` result, for the sinks."""
    from ..camera.loop import LiveFrame, LoopStats
    from ..sources import FramePair

    frame = frame or FramePair(number - 1, pair.left, pair.right, 0.0, 0.0, name=pair.name)
    return LiveFrame(number=number, frame=frame, pair=output.pair, result=output.result,
                     depth=output.depth, cloud=output.cloud, stats=LoopStats(processed=number))


def outputs_or_none(args, backend, force: bool) -> Optional[Outputs]:
    wanted = args.out_bag or args.rerun or args.rerun_save
    return Outputs(args, backend, force) if wanted else None
