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
import errno
import importlib
import os
import pkgutil
import sys
from typing import Optional, Sequence

from ..errors import DepthAppError, UsageError
from ..limits import MAX_PIXELS_VARIABLE


class _VersionAction(argparse.Action):
    """``--version``, reading the version only when asked (it costs an importlib.metadata
    import that every other command would pay)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="show the version and exit"):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from .. import __version__

        print(f"depthapp {__version__}")  # stdout, as argparse's own version action
        parser.exit()


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
    from .backend_args import BACKEND_PARSERS

    BACKEND_PARSERS.clear()

    parser = ArgumentParser(prog="depthapp", description="Stereo depth estimation.")
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND",
                                       parser_class=ArgumentParser)
    for module in _command_modules():
        module.register(subparsers)
    return parser


def error_line(message: str) -> str:
    # one line, whatever a file name held
    return "depthapp: error: " + message.strip().replace("\r", "\\r").replace("\n", "\\n")


def _named_paths(args: Optional[argparse.Namespace]) -> list[str]:
    """The command-line values that name existing files or folders, for last-resort messages."""
    if args is None:
        return []
    names = []
    for value in vars(args).values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item and os.path.exists(item):
                names.append(item)
    return names


def environment_error_line(error: BaseException, args: Optional[argparse.Namespace]) -> Optional[str]:
    """One line for an error that bad input or a full/read-only disk caused below the layer
    that should have named it, or None for anything else (a bug keeps its traceback)."""
    where = ", ".join(_named_paths(args)) or "the input"
    if isinstance(error, OSError):
        name = error.filename or where
        if error.errno == errno.ENOSPC:
            return f"{name}: no space left on the device"
        if error.errno == errno.EROFS:
            return f"{name}: the file system is read-only"
        return f"{name}: {error.strerror or error}"
    if isinstance(error, MemoryError):
        return f"{where}: out of memory (the input is too large for this machine)"
    if isinstance(error, RecursionError):
        return f"{where}: nested too deeply to read"
    if isinstance(error, UnicodeError):
        return f"{where}: not valid text ({error.__class__.__name__})"
    if type(error).__module__ == "cv2" or type(error).__name__ == "error" and "OpenCV" in str(error):
        lines = [line for line in str(error).strip().splitlines() if line.strip()]
        return f"{where}: OpenCV refused it ({lines[-1].strip()[-160:] if lines else 'no message'})"
    return None


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
    args = None
    saved_max_pixels = os.environ.get(MAX_PIXELS_VARIABLE)
    try:
        parser, args, extra = parse_command_line(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 2
        handler = args.handler
        if getattr(args, "max_pixels", None):
            # An environment variable, so worker processes of eval/predict inherit it.
            os.environ[MAX_PIXELS_VARIABLE] = str(args.max_pixels)
        from .progress import configure

        configure(args)
        result = handler(args, extra) if getattr(args, "accepts_extra", False) else handler(args)
        return int(result or 0)
    except DepthAppError as error:
        _end_progress()
        # The library names parameters (max_disp); on the command line they are flags.
        message = error.with_flags()
        print(error_line(message), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        _end_progress()
        print(error_line("interrupted"), file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as error:  # noqa: BLE001 - re-raised unless bad input caused it
        line = environment_error_line(error, args)
        if line is None:
            raise
        _end_progress()
        print(error_line(line), file=sys.stderr)
        return 1
    finally:
        _end_progress()
        if saved_max_pixels is None:
            os.environ.pop(MAX_PIXELS_VARIABLE, None)
        else:
            os.environ[MAX_PIXELS_VARIABLE] = saved_max_pixels
        # A command may let backends fetch weights (see backend_args.backend_options); the
        # library default (ask first) comes back when the command ends.
        weights = sys.modules.get("depthapp.weights")
        if weights is not None:
            weights.set_auto_fetch(False)
            weights.set_fetch_progress(None)


if __name__ == "__main__":
    sys.exit(main())
