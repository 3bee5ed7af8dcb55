"""MC-CNN (Zbontar & LeCun, JMLR 2016): learned patch matching cost and its stereo method."""

from .backend import MCCNNBackend

__all__ = ["MCCNNBackend"]
