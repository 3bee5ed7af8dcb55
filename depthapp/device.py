"""Device selection: ``auto`` means CUDA when present and supported, else the CPU."""

from __future__ import annotations

import os
import sys
from typing import Optional

from .errors import BackendUnavailableError, UsageError


def cuda_driver_present() -> bool:
    """Whether an NVIDIA driver is installed, answered from the file system in microseconds.

    Importing torch to ask ``torch.cuda.is_available()`` costs seconds; without a driver the
    answer is "no" anyway, so classical backends on a CPU machine never import torch. Linux
    exposes a loaded driver as ``/proc/driver/nvidia`` and ``/dev/nvidiactl`` (WSL2 as
    ``/dev/dxg``); Windows has
    ``nvcuda.dll`` in System32; macOS has no CUDA."""
    if sys.platform.startswith("linux"):
        return any(os.path.exists(path) for path in
                   ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/dxg"))
    if sys.platform == "win32":
        system_root = os.environ.get("SystemRoot", r"C:\Windows")
        return os.path.exists(os.path.join(system_root, "System32", "nvcuda.dll"))
    return False


def cuda_available() -> bool:
    """Whether torch can use a CUDA device; imports torch only when a driver is present."""
    torch = sys.modules.get("torch")
    if torch is None:
        if not cuda_driver_present():
            return False
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


def available_memory_bytes(device: str) -> Optional[int]:
    """Memory free for one more computation on ``device``, in bytes, or None when unknown. On
    CUDA the free memory plus what this process's caching allocator holds unused; on the CPU
    ``MemAvailable`` (Linux), else the free physical pages."""
    if device.startswith("cuda"):
        import torch

        index = torch.device(device)
        free, _ = torch.cuda.mem_get_info(index)
        cached = torch.cuda.memory_reserved(index) - torch.cuda.memory_allocated(index)
        return int(free + cached)
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None
