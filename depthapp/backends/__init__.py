"""The backend registry (torchvision's ``get_model``/``list_models`` idea).

Built-in backends are named here with the module that holds them and imported only when asked
for, so a backend whose heavy dependency, kernel or weights are missing says so on its own
instead of breaking ``import depthapp``. Every backend class registers itself with
:func:`register_backend`; a name is taken once (a built-in's name belongs to the class its line
here names). Outside packages add backends through the entry-point group ``depthapp.backends``
(``name = "package.module:Class"``) or :func:`register_backend`.

A new backend is one module (its class declares parameters, capabilities and preprocessing:
CLI flags, viewer controls, eval, export and training follow) plus one line in ``_BUILTIN``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Optional

from ..errors import BackendUnavailableError, UsageError
from .base import Backend

ENTRY_POINT_GROUP = "depthapp.backends"

# name -> "module:Class" of the class that defines it (imported on first use)
_BUILTIN: dict[str, str] = {
    "opencv-bm": "depthapp.backends.opencv:OpenCVBM",
    "opencv-sgbm": "depthapp.backends.opencv:OpenCVSGBM",
    "sgm": "depthapp.backends.sgm.backend:SGMBackend",
    "mccnn": "depthapp.backends.mccnn.backend:MCCNNBackend",
    "psmnet": "depthapp.backends.psmnet.backend:PSMNetBackend",
    "gcnet": "depthapp.backends.gcnet.backend:GCNetBackend",
    "ganet": "depthapp.backends.ganet.backend:GANetBackend",
    "onnx": "depthapp.backends.onnx:ONNXBackend",
}

_REGISTERED: dict[str, type[Backend]] = {}
_entry_points_loaded = False


def register_backend(cls: Optional[type[Backend]] = None, *, replace: bool = False):
    """Class decorator: make ``cls`` available as ``--backend cls.name``.

    A name already taken (by another registered class, or by a built-in's line in
    ``_BUILTIN``) is refused with a ValueError unless ``replace=True``:
    ``@register_backend(replace=True)``."""
    def register(cls: type[Backend]) -> type[Backend]:
        if not cls.name:
            raise ValueError(f"{cls.__qualname__} has no name")
        existing = _REGISTERED.get(cls.name)
        builtin = _BUILTIN.get(cls.name)
        own_line = builtin == f"{cls.__module__}:{cls.__qualname__}"
        taken = existing is not cls and (existing is not None or (builtin is not None and not own_line))
        if taken and not replace:
            holder = f"{existing.__module__}:{existing.__qualname__}" if existing else builtin
            raise ValueError(f"backend name {cls.name!r} is taken by {holder}; "
                             f"register_backend(replace=True) replaces it")
        _REGISTERED[cls.name] = cls
        return cls

    return register(cls) if cls is not None else register


def _entry_point_targets() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _targets() -> dict[str, str]:
    targets = dict(_BUILTIN)
    for name, value in _entry_point_targets().items():
        targets.setdefault(name, value)
    return targets


def backend_names() -> list[str]:
    """Every known backend name, available or not."""
    return sorted(set(_targets()) | set(_REGISTERED))


def get_backend_class(name: str) -> type[Backend]:
    """The backend class for ``name``; UsageError if unknown, BackendUnavailableError if it
    cannot be imported here."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    # Built-in names win over plugins (see _targets), so they need no entry-point scan.
    targets = _BUILTIN if name in _BUILTIN else _targets()
    if name not in targets:
        raise UsageError(f"unknown backend {name!r} (known: {', '.join(backend_names())})")
    module_name, _, attribute = targets[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise BackendUnavailableError(
            f"backend {name} is not available: module {error.name} is missing") from None
    except ImportError as error:
        raise BackendUnavailableError(f"backend {name} is not available: {error}") from None
    try:
        cls = getattr(module, attribute)
    except AttributeError:
        raise BackendUnavailableError(
            f"backend {name} is not available: {module_name} has no {attribute}") from None
    _REGISTERED[name] = cls
    return cls


def create_backend(name: str, **options) -> Backend:
    """Instantiate a backend: ``create_backend("sgm", max_disp=64, p1=10)``."""
    return get_backend_class(name)(**options)


@dataclass
class BackendInfo:
    name: str
    cls: Optional[type[Backend]]
    problem: Optional[str]

    @property
    def available(self) -> bool:
        return self.cls is not None and self.problem is None


def list_backends() -> list[BackendInfo]:
    """Every backend with its class, or the reason it is unavailable here."""
    infos = []
    for name in backend_names():
        try:
            cls = get_backend_class(name)
            cls.check_available()
            infos.append(BackendInfo(name, cls, None))
        except BackendUnavailableError as error:
            infos.append(BackendInfo(name, _REGISTERED.get(name), str(error)))
    return infos


__all__ = ["Backend", "BackendInfo", "ENTRY_POINT_GROUP", "backend_names", "create_backend",
           "get_backend_class", "list_backends", "register_backend"]
