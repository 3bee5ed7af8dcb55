"""GC-Net backend: ``create_backend("gcnet", weights=PATH)``."""

from .backend import GCNetBackend

__all__ = ["GCNetBackend"]
