"""Export learned backends (ONNX, TorchScript, torch.export) with verified parity."""

from .spec import ExportSpec

__all__ = ["ExportSpec"]
