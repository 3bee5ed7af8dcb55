"""``depthapp backends``: list backends with their declared parameters."""

from __future__ import annotations

from ..backends import list_backends
from .backend_args import describe_backend


def register(subparsers) -> None:
    parser = subparsers.add_parser("backends", help="list disparity backends and their parameters")
    parser.set_defaults(handler=handle)


def handle(args) -> int:
    for info in list_backends():
        print(describe_backend(info))
    return 0
