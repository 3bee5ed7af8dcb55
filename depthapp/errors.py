"""One exception hierarchy for every user-facing failure.

The CLI turns a :class:`DepthAppError` into a one-line message and its ``exit_code``; the GUI
turns it into a dialog. Anything else escaping is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Optional


class DepthAppError(Exception):
    """Base class of errors caused by the user's input or environment, not by a bug.

    A message that names backend parameters is built with :meth:`naming`, so that the CLI can
    show each as its flag (:meth:`with_flags`) while the library and the GUI say ``scale``.
    """

    exit_code = 1
    template: Optional[str] = None
    names: tuple[str, ...] = ()

    @classmethod
    def naming(cls, template: str, *names: str, **kwargs):
        """This error with ``template``'s ``{}`` filled by the parameter ``names``."""
        error = cls(template.format(*names), **kwargs)
        error.template, error.names = template, names
        return error

    def with_flags(self) -> str:
        """The message with each named parameter written as its command-line flag."""
        if self.template is None:
            return str(self)
        return self.template.format(*(flag_of(name) for name in self.names))


class UsageError(DepthAppError):
    """Wrong command-line usage: an unknown flag, a missing argument, a bad combination."""

    exit_code = 2


class ParameterError(UsageError):
    """A parameter value or name a backend refuses. The message names parameters as the library
    knows them (``max_disp must be at least 1``); :meth:`with_flags` is the same message with
    each named parameter written as its command-line flag (``--max-disp must be at least 1``).

    ``template`` holds one ``{}`` per entry of ``names``; ``exit_code`` overrides the usage
    code where a command has always exited otherwise.
    """

    def __init__(self, template: str, *names: str, exit_code: Optional[int] = None):
        self.template = template
        self.names = names
        if exit_code is not None:
            self.exit_code = exit_code
        super().__init__(template.format(*names))


def literal(text) -> str:
    """``text`` (a file name, say) safe inside a :meth:`DepthAppError.naming` template."""
    return str(text).replace("{", "{{").replace("}", "}}")


def flag_of(name: str) -> str:
    """The command-line flag of a parameter name: ``max_disp`` -> ``--max-disp``."""
    return "--" + name.replace("_", "-")


class InputError(DepthAppError):
    """An input file is missing, unreadable, empty or inconsistent (e.g. size mismatch)."""


class CalibrationError(InputError):
    """A calibration file has an unknown format, missing fields or impossible values."""


class OutputExistsError(DepthAppError):
    """An output would overwrite existing results and ``--force`` was not given."""


class WeightsError(DepthAppError):
    """Weights are missing, fail their SHA-256 check or do not fit the backend."""


class BackendUnavailableError(DepthAppError):
    """A backend (or one of its devices) cannot run here: missing module, kernel or device."""


class Cancelled(DepthAppError):
    """A long job was cancelled by the user; partial results were kept where promised."""

    exit_code = 130
