"""GA-Net backend: ``create_backend("ganet", weights=PATH, variant="deep"|"11")``.

SGA and LGA: :mod:`.sga`, :mod:`.lga` (pure torch) and :mod:`.triton_kernels` (CUDA).
"""

from .backend import GANetBackend

__all__ = ["GANetBackend"]
