"""Device selection: ``auto`` means CUDA when present and supported, else the CPU."""

from __future__ import annotations

from .errors import BackendUnavailableError, UsageError


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def resolve_device(spec: str | None, supports_cuda: bool, owner: str = "backend") -> str:
    """Turn ``auto|cpu|cuda|cuda:N`` into a concrete device string, with clear errors."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return "cuda" if supports_cuda and cuda_available() else "cpu"
    if spec == "cpu":
        return "cpu"
    if spec == "cuda" or spec.startswith("cuda:"):
        if not supports_cuda:
            raise BackendUnavailableError(f"{owner} runs on the CPU only (asked for {spec})")
        if not cuda_available():
            raise BackendUnavailableError(f"{owner}: {spec} requested but no CUDA device is available")
        return spec
    raise UsageError(f"--device: {spec!r} is not one of auto, cpu, cuda, cuda:N")
