"""The ``depthapp`` command line: a thin layer over the Python API.

Each sub-command lives in a module ``depthapp/cli/cmd_<name>.py`` that defines
``register(subparsers)`` (adding its parser, with ``set_defaults(handler=...)``). Modules are
discovered by name, so adding a command touches no shared list.

Exit codes: 0 success, 1 input errors, 2 usage errors, 130 cancelled (Ctrl-C).
Results go to stdout; progress (with an ETA) and errors to stderr. Commands with long work take
``-q/--quiet`` (see :mod:`depthapp.cli.progress`).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Optional, Sequence

from ..errors import DepthAppError, ParameterError, UsageError


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage and exiting."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


def _command_modules():
    package = importlib.import_module(__name__)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("cmd_"):
            yield importlib.import_module(f"{__name__}.{info.name}")


def build_parser() -> ArgumentParser:
    from .. import __version__
    from .backend_args import BACKEND_PARSERS

    BACKEND_PARSERS.clear()

    parser = ArgumentParser(prog="depthapp", description="Stereo depth estimation.")
    parser.add_argument("--version", action="version", version=f"depthapp {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND",
                                       parser_class=ArgumentParser)
    for module in _command_modules():
        module.register(subparsers)
    return parser


def error_line(message: str) -> str:
    return f"depthapp: error: {message}"


def _end_progress() -> None:
    progress = sys.modules.get(f"{__name__}.progress")
    if progress is not None:
        progress.finish()


def parse_command_line(argv: Sequence[str]):
    """``(parser, args, extra)`` for ``argv``: every backend parameter flag of the chosen
    backend is in ``extra`` as tokens (``--p1 3``) for :func:`backend_args.cli_parameters`."""
    from .backend_args import add_parameter_flags, parameter_tokens

    parser = build_parser()
    if argv and not argv[0].startswith("-"):
        # A command is named: give it its backend's flags. Bare --version/--help import
        # no backend (OpenCV alone would double their time).
        add_parameter_flags(argv)
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "backend_parser", False):
        extra = parameter_tokens(args) + list(extra)
    if extra and getattr(args, "command", None) and not getattr(args, "accepts_extra", False):
        raise UsageError(f"unrecognised arguments: {' '.join(extra)}")
    return parser, args, extra


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser, args, extra = parse_command_line(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 2
        handler = args.handler
        from .progress import configure

        configure(args)
        result = handler(args, extra) if getattr(args, "accepts_extra", False) else handler(args)
        return int(result or 0)
    except DepthAppError as error:
        _end_progress()
        # The library names parameters (max_disp); on the command line they are flags.
        message = error.with_flags() if isinstance(error, ParameterError) else str(error)
        print(error_line(message), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        _end_progress()
        print(error_line("interrupted"), file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    finally:
        _end_progress()
        # A command may let backends fetch weights (see backend_args.backend_options); the
        # library default (ask first) comes back when the command ends.
        weights = sys.modules.get("depthapp.weights")
        if weights is not None:
            weights.set_auto_fetch(False)
            weights.set_fetch_progress(None)


if __name__ == "__main__":
    sys.exit(main())
