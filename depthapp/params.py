"""Backend parameters declared once as data; CLI flags and GUI controls are generated from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from .errors import UsageError


@dataclass(frozen=True)
class Parameter:
    """One tunable parameter of a backend.

    ``kind`` is ``int``, ``float``, ``bool`` or ``choice``. ``minimum``/``maximum`` bound numbers,
    ``choices`` lists the values of a choice, ``step`` is the GUI increment (``odd`` forces odd
    integers, e.g. window sizes). ``fast`` marks parameters cheap enough for live recompute.
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
        return "--" + self.name.replace("_", "-")

    def convert(self, value: Any) -> Any:
        """Convert a value (possibly a CLI string) to this parameter's type, raising UsageError."""
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
            raise UsageError(f"{self.flag}: {value!r} is not {expected}") from None

    def validate(self, value: Any) -> Any:
        value = self.convert(value)
        if self.kind in ("int", "float"):
            if self.minimum is not None and value < self.minimum:
                raise UsageError(f"{self.flag}: {value} is below the minimum {self.minimum:g}")
            if self.maximum is not None and value > self.maximum:
                raise UsageError(f"{self.flag}: {value} is above the maximum {self.maximum:g}")
            if self.odd and int(value) % 2 == 0:
                raise UsageError(f"{self.flag}: {value} must be odd")
        return value

    def describe(self) -> str:
        if self.kind == "choice":
            domain = "{" + ",".join(map(str, self.choices)) + "}"
        elif self.kind == "bool":
            domain = "bool"
        else:
            lo = "" if self.minimum is None else f"{self.minimum:g}"
            hi = "" if self.maximum is None else f"{self.maximum:g}"
            domain = f"{self.kind} [{lo}..{hi}]"
        return f"{self.flag} {domain} (default {self.default}): {self.help}"


def resolve_parameters(declared: Sequence[Parameter], given: dict[str, Any],
                       owner: str) -> dict[str, Any]:
    """Defaults overlaid with validated user values; unknown names are a UsageError."""
    by_name = {p.name: p for p in declared}
    unknown = [name for name in given if name not in by_name]
    if unknown:
        flags = ", ".join("--" + n.replace("_", "-") for n in unknown)
        accepted = ", ".join(p.flag for p in declared) or "no parameters"
        raise UsageError(f"backend {owner} does not take {flags} (it takes: {accepted})")
    values = {p.name: p.default for p in declared}
    for name, value in given.items():
        values[name] = by_name[name].validate(value)
    return values
