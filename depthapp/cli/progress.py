"""Progress on the command line: results on stdout, progress bars with an ETA on stderr.

Every command with long work takes ``-q/--quiet``; :func:`progress_bar` is the one place that
turns it into a display (or none), and :func:`configure` makes weights the library downloads
by itself report the same way.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, TextIO

from ..jobs import ProgressCallback, TerminalProgress

_bars: list[TerminalProgress] = []  # of this command, to clear before other output


def add_quiet_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress on stderr (results and errors still print)")
    parser.set_defaults(shows_progress=True)


def progress_bar(args: argparse.Namespace, description: str) -> Optional[ProgressCallback]:
    """A progress bar with ETA on stderr, or None under ``--quiet``."""
    if getattr(args, "quiet", False):
        return None
    bar = TerminalProgress(description)
    _bars.append(bar)
    return bar


def echo(text: str, file: Optional[TextIO] = None) -> None:
    """Print a line while a bar may be drawn on the terminal: the bar's line is erased first
    (it comes back with the next report), so the text is not glued to it."""
    for bar in _bars:
        bar.clear()
    print(text, file=file if file is not None else sys.stdout)


def finish() -> None:
    """After a command: no bar outlives it (an unfinished line is erased before an error)."""
    for bar in _bars:
        bar.clear()
    _bars.clear()


def configure(args: argparse.Namespace) -> None:
    """Before a command runs: a weights download started by the library shows a bar unless
    ``--quiet`` (commands without progress show none)."""
    if getattr(args, "shows_progress", False) and not getattr(args, "quiet", False):
        from ..weights import set_fetch_progress

        set_fetch_progress(lambda weights_id: progress_bar(args, f"downloading weights {weights_id}"))
