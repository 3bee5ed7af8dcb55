"""What a learned backend hands to the exporter, and how exported graphs are fed.

A backend that can be exported implements :meth:`~depthapp.backends.Backend.export_spec`
``(height, width) -> ExportSpec``: the network as a module taking already-prepared tensors,
and the :class:`~depthapp.preprocessing.Preprocessing` that prepares them (written into the
file's metadata, so the onnx backend prepares its input exactly the same way).

Input kinds (``ExportSpec.input_kind``):
- ``"rgb"``: two ``(1, 3, Hp, Wp)`` float32 tensors (a whole network: disparity out).
- ``"grey_standardised"``: one ``(1, 1, Hp, Wp)`` tensor per call; the graph is a feature
  network (MC-CNN).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

from ..preprocessing import Preprocessing


@dataclass
class ExportSpec:
    module: Any  # torch.nn.Module in eval mode
    input_kind: str
    input_names: tuple[str, ...]
    output_name: str
    preprocessing: Preprocessing
    max_disp: Optional[int] = None
    dynamic_size: bool = True  # False: the module fixes the image size (no --dynamic)
    backend: str = ""
    weights_id: str = ""
    weights_sha256: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def preprocessing_from_metadata(meta: dict[str, str]) -> Preprocessing:
    """The :class:`Preprocessing` an export was written with (its ``depthapp.*`` metadata)."""
    kind = "grey_standardise" if meta["depthapp.input_kind"] == "grey_standardised" else "mean_std"
    return Preprocessing(kind, mean=tuple(json.loads(meta["depthapp.mean"])),
                         std=tuple(json.loads(meta["depthapp.std"])),
                         pad_multiple=int(meta["depthapp.pad_multiple"]),
                         pad_mode=meta["depthapp.pad_mode"],
                         min_size=int(meta.get("depthapp.min_padded_size") or 0))


def metadata_of(spec: ExportSpec, height: int, width: int, dynamic: bool, fp16: bool,
                export_format: str) -> dict[str, str]:
    """String metadata written into ``metadata_props`` (ONNX) or beside the file."""
    prep = spec.preprocessing
    padded_h, padded_w = prep.padded_size(height, width)
    meta = {
        "depthapp.backend": spec.backend,
        "depthapp.weights_id": spec.weights_id,
        "depthapp.weights_sha256": spec.weights_sha256,
        "depthapp.input_kind": spec.input_kind,
        "depthapp.input_names": ",".join(spec.input_names),
        "depthapp.output_name": spec.output_name,
        "depthapp.mean": json.dumps(list(prep.mean)),
        "depthapp.std": json.dumps(list(prep.std)),
        "depthapp.pad_multiple": str(prep.pad_multiple),
        "depthapp.pad_mode": prep.pad_mode,
        "depthapp.min_padded_size": str(prep.min_size),
        "depthapp.max_disp": str(spec.max_disp or ""),
        "depthapp.height": str(height),
        "depthapp.width": str(width),
        "depthapp.padded_height": "dynamic" if dynamic else str(padded_h),
        "depthapp.padded_width": "dynamic" if dynamic else str(padded_w),
        "depthapp.dynamic": str(bool(dynamic)).lower(),
        "depthapp.fp16": str(bool(fp16)).lower(),
        "depthapp.format": export_format,
        "depthapp.extra": json.dumps(spec.extra),
    }
    return meta
