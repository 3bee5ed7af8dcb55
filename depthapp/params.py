"""Backend parameters declared once as data; CLI flags and GUI controls are generated from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from .errors import ParameterError, flag_of


@dataclass(frozen=True)
class Parameter:
    """One tunable parameter of a backend.

    ``kind`` is ``int``, ``float``, ``bool`` or ``choice``. ``minimum``/``maximum`` bound numbers,
    ``choices`` lists the values of a choice, ``step`` is the GUI increment (``odd`` forces odd
    integers, e.g. window sizes). Errors name the parameter (``p2``); the CLI shows its flag.
    """

    name: str
    kind: str
    default: Any
    help: str
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    choices: Optional[Sequence[Any]] = None
    step: Optional[float] = None
    odd: bool = False

    def __post_init__(self):
        if self.kind not in ("int", "float", "bool", "choice"):
            raise ValueError(f"parameter {self.name}: unknown kind {self.kind!r}")
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"parameter {self.name}: a choice needs choices")
        self.validate(self.default)

    @property
    def flag(self) -> str:
        return flag_of(self.name)

    def convert(self, value: Any) -> Any:
        """Convert a value (possibly a CLI string) to this parameter's type, raising
        :class:`~depthapp.errors.ParameterError`."""
        try:
            if self.kind == "int":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                return int(value)
            if self.kind == "float":
                return float(value)
            if self.kind == "bool":
                if isinstance(value, str):
                    lowered = value.strip().lower()
                    if lowered in ("1", "true", "yes", "on"):
                        return True
                    if lowered in ("0", "false", "no", "off"):
                        return False
                    raise ValueError
                return bool(value)
            for choice in self.choices:
                if str(choice) == str(value):
                    return choice
            raise ValueError
        except (TypeError, ValueError):
            expected = (f"one of {', '.join(map(str, self.choices))}" if self.kind == "choice"
                        else f"a {self.kind}")
            raise ParameterError("{}: " + _literal(f"{value!r} is not {expected}"), self.name) from None

    def validate(self, value: Any) -> Any:
        value = self.convert(value)
        if self.kind in ("int", "float"):
            if self.minimum is not None and value < self.minimum:
                raise ParameterError("{}: " + _literal(f"{value} is below the minimum {self.minimum:g}"), self.name)
            if self.maximum is not None and value > self.maximum:
                raise ParameterError("{}: " + _literal(f"{value} is above the maximum {self.maximum:g}"), self.name)
            if self.odd and int(value) % 2 == 0:
                raise ParameterError("{}: " + _literal(f"{value} must be odd"), self.name)
        return value

    def domain(self) -> str:
        """Type and range: ``int [3..9]``, ``bool``, ``{4,8}``."""
        if self.kind == "choice":
            return "{" + ",".join(map(str, self.choices)) + "}"
        if self.kind == "bool":
            return "bool"
        lo = "" if self.minimum is None else f"{self.minimum:g}"
        hi = "" if self.maximum is None else f"{self.maximum:g}"
        return f"{self.kind} [{lo}..{hi}]"

    def describe(self) -> str:
        return f"{self.flag} {self.domain()} (default {self.default}): {self.help}"


def _literal(text: str) -> str:
    """``text`` safe inside a ParameterError template (a user's value may hold braces)."""
    return text.replace("{", "{{").replace("}", "}}")


def validate_overrides(declared: Sequence[Parameter], given: dict[str, Any],
                       owner: str) -> dict[str, Any]:
    """The user's values, each converted and checked; an unknown name is a ParameterError."""
    by_name = {p.name: p for p in declared}
    unknown = [name for name in given if name not in by_name]
    if unknown:
        accepted = ", ".join("{}" for _ in declared) or "no parameters"
        raise ParameterError(f"backend {_literal(owner)} does not take {', '.join('{}' for _ in unknown)} "
                             f"(it takes: {accepted})", *unknown, *(p.name for p in declared))
    return {name: by_name[name].validate(value) for name, value in given.items()}


def resolve_parameters(declared: Sequence[Parameter], given: dict[str, Any], owner: str,
                       defaults: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """``defaults`` (the declared ones unless given) overlaid with the validated user values."""
    values = dict(defaults) if defaults is not None else {p.name: p.default for p in declared}
    values.update(validate_overrides(declared, given, owner))
    return values
