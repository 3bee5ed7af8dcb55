"""Backend options shared by every command that runs a backend (run, eval, predict, camera...).

Each backend's declared parameters become flags (``--p1 10``); they are parsed after the
backend is known, so a flag the chosen backend does not take is a one-line usage error.
"""

from __future__ import annotations

import argparse
from typing import Any, Optional, Sequence

from ..backends import BackendInfo, get_backend_class, list_backends
from ..errors import UsageError
from ..limits import DEFAULT_MAX_PIXELS, MAX_DISPARITY_LEVELS
from ..params import Parameter


def add_backend_arguments(parser: argparse.ArgumentParser, default_backend: str = "opencv-sgbm") -> None:
    group = parser.add_argument_group("backend")
    group.add_argument("--backend", default=default_backend,
                       help=f"disparity backend (default {default_backend}; see `depthapp backends`)")
    group.add_argument("--weights", metavar="ID|PATH", help="weights record id or checkpoint file")
    group.add_argument("--model", metavar="FILE", help="exported model file (onnx backend)")
    group.add_argument("--max-disp", type=bounded_int("--max-disp", 1, MAX_DISPARITY_LEVELS), metavar="N",
                       help="disparity levels 0..N-1 (default: weights, then calibration ndisp, "
                            "then the backend's default)")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    group.add_argument("--preset", help="a named parameter preset of the backend (e.g. fast)")
    group.add_argument("--offline", action="store_true", help="never fetch missing weights")
    add_max_pixels_argument(group)
    parser.set_defaults(accepts_extra=True, backend_parser=True)
    BACKEND_PARSERS.append(parser)


def bounded_int(flag: str, low: int, high: int):
    """An argparse ``type`` accepting whole numbers in ``[low, high]`` (a usage error otherwise)."""
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low}..{high}, got {value}")
        return value
    parse.__name__ = "whole number"
    return parse


def add_max_pixels_argument(parser) -> None:
    """``--max-pixels N``: raise the image size limit (checked from file headers, before decoding)."""
    parser.add_argument("--max-pixels", type=bounded_int("--max-pixels", 1, 1 << 40), metavar="N",
                        help="largest image (width x height) read, checked before decoding "
                             f"(default {DEFAULT_MAX_PIXELS})")


BACKEND_PARSERS: list[argparse.ArgumentParser] = []
PARAM_PREFIX = "backend_param_"


def _requested_backend(argv: Sequence[str], parser: argparse.ArgumentParser) -> str:
    for i, token in enumerate(argv):
        if token == "--backend" and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith("--backend="):
            return token.split("=", 1)[1]
    return parser.get_default("backend")


def add_parameter_flags(argv: Sequence[str]) -> None:
    """Give every backend-running command the flags of the backend named in ``argv``, so
    values are parsed as values (``--block-size 21``) and not as positional arguments."""
    for parser in BACKEND_PARSERS:
        try:
            cls = get_backend_class(_requested_backend(argv, parser))
        except Exception:  # reported properly when the command creates the backend
            continue
        group = parser.add_argument_group(f"{cls.name} parameters (see `depthapp backends`)")
        for parameter in cls.parameters:
            # argparse %-formats help texts
            text = f"{parameter.domain()} (default {parameter.default}): {parameter.help}".replace("%", "%%")
            group.add_argument(parameter.flag, dest=PARAM_PREFIX + parameter.name, default=None,
                               metavar=parameter.kind.upper(), help=text)


def parse_backend_parameters(backend_name: str, extra: Sequence[str],
                             preset: str | None = None) -> dict[str, Any]:
    """The backend parameter flags in ``extra`` (see :func:`parameter_tokens`) over the preset;
    a flag the backend does not take is a usage error that says so."""
    cls = get_backend_class(backend_name)
    values: dict[str, Any] = {}
    if preset:
        if preset not in cls.presets:
            known = ", ".join(cls.presets) or "none"
            raise UsageError(f"backend {backend_name} has no preset {preset!r} (presets: {known})")
        values.update(cls.presets[preset])
    if not extra:
        return values
    known_flags = {p.flag for p in cls.parameters}
    for token in extra:
        flag = token.split("=", 1)[0]
        if flag.startswith("--") and flag not in known_flags:
            accepted = ", ".join(sorted(known_flags)) or "no parameters"
            other = [info.name for info in list_backends()
                     if info.cls is not None and flag in {p.flag for p in info.cls.parameters}]
            hint = f"; {flag} belongs to {', '.join(other)}" if other else ""
            raise UsageError(f"backend {backend_name} does not take {flag} (it takes: {accepted}){hint}")
    namespace = _flag_parser(cls.parameters, f"depthapp --backend {backend_name}").parse_args(list(extra))
    values.update({name: value for name, value in vars(namespace).items() if value is not None})
    return values


def cli_parameters(args: argparse.Namespace, extra: Sequence[str], backend_name: Optional[str] = None,
                   preset: Optional[str] = None) -> dict[str, Any]:
    """What the user chose for the backend on this command line: the preset, the parameter
    flags and ``--model``. Only these go to the backend, which answers its own defaults."""
    params = parse_backend_parameters(backend_name or args.backend, extra,
                                      args.preset if preset is None else preset)
    if getattr(args, "model", None):
        params["model"] = args.model
    return params


def create_cli_backend(args: argparse.Namespace, params: dict[str, Any], max_disp: Optional[int],
                       backend_name: Optional[str] = None):
    """The backend of a command: ``params`` from :func:`cli_parameters`, device and weights
    from the shared options."""
    from ..backends import create_backend

    return create_backend(backend_name or args.backend, max_disp=max_disp, **backend_options(args),
                          **params)


def parameter_tokens(args: argparse.Namespace) -> list[str]:
    """The backend parameter flags parsed into ``args``, as command-line tokens again, so
    handlers receive every backend flag in ``extra`` however argparse split them."""
    tokens = []
    for name, value in vars(args).items():
        if name.startswith(PARAM_PREFIX) and value is not None:
            tokens += ["--" + name[len(PARAM_PREFIX):].replace("_", "-"), str(value)]
    return tokens


def _flag_parser(parameters: Sequence[Parameter], prog: str) -> argparse.ArgumentParser:
    from . import ArgumentParser

    parser = ArgumentParser(prog=prog, add_help=False)
    for parameter in parameters:
        parser.add_argument(parameter.flag, dest=parameter.name, default=None, metavar="VALUE")
    return parser


def backend_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments for ``create_backend`` that every backend accepts.

    On the command line a missing registry checkpoint is fetched with a progress line unless
    ``--offline`` is given (the library and the GUI ask first)."""
    from ..weights import set_auto_fetch

    set_auto_fetch(not getattr(args, "offline", False))
    options: dict[str, Any] = {"device": args.device}
    if getattr(args, "weights", None):
        options["weights"] = args.weights
    return options


def describe_backend(info: BackendInfo) -> str:
    if info.cls is None:
        return f"{info.name}: unavailable ({info.problem})"
    cls = info.cls
    tags = [cls.kind_label()]
    tags.append("cpu+cuda" if cls.supports_cuda else "cpu")
    if cls.interactive:
        tags.append("interactive")
    if cls.can_export():
        tags.append("exportable")
    if cls.training_adapter() is not None:
        tags.append("trainable")
    head = f"{info.name}: {cls.description} [{', '.join(tags)}; default max disp {cls.default_max_disp}]"
    if info.problem:
        head += f"\n    unavailable here: {info.problem}"
    lines = [head] + [f"    {p.describe()}" for p in cls.parameters]
    if cls.presets:
        lines.append("    presets: " + "; ".join(
            f"{name} ({', '.join(f'{k}={v}' for k, v in values.items())})"
            for name, values in cls.presets.items()))
    return "\n".join(lines)
