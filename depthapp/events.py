"""A tiny callback signal for Qt-free models (napari's EventEmitter idea, without Qt).

    changed = Signal("changed")
    changed.connect(print)
    changed.emit(42)

Handlers run synchronously in the emitting thread, in connection order. The GUI only emits from
the Qt main thread (worker results are marshalled there first), so widgets may touch themselves
inside handlers.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator


class Signal:
    """A list of callbacks called with the arguments of :meth:`emit`."""

    def __init__(self, name: str = "signal"):
        self.name = name
        self._handlers: list[Callable[..., Any]] = []
        self._blocked = 0

    def connect(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """Add ``handler`` (once); returns it so this works as a decorator."""
        if handler not in self._handlers:
            self._handlers.append(handler)
        return handler

    def disconnect(self, handler: Callable[..., Any]) -> None:
        try:
            self._handlers.remove(handler)
        except ValueError:
            pass

    def emit(self, *args: Any) -> None:
        if self._blocked:
            return
        for handler in list(self._handlers):
            handler(*args)

    @contextmanager
    def blocked(self) -> Iterator[None]:
        """Suppress emissions inside the block (bulk updates)."""
        self._blocked += 1
        try:
            yield
        finally:
            self._blocked -= 1

    def __len__(self) -> int:
        return len(self._handlers)

    def __repr__(self) -> str:
        return f"<Signal {self.name} with {len(self._handlers)} handlers>"
