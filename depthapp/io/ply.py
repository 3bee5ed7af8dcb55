"""Binary little-endian PLY point clouds with optional RGB colour (readable by MeshLab, Open3D,
CloudCompare)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError
from .atomic import atomic_path


def write_ply(path: str | os.PathLike, points: np.ndarray, colors: Optional[np.ndarray] = None,
              overwrite: bool = False) -> Path:
    """Write ``points`` ``(N, 3)`` (float32) and ``colors`` ``(N, 3)`` uint8 as binary PLY."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(points)}",
              "property float x", "property float y", "property float z"]
    if colors is not None:
        colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
        if len(colors) != len(points):
            raise ValueError(f"{len(points)} points but {len(colors)} colours")
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
        header += ["property uchar red", "property uchar green", "property uchar blue"]
    header.append("end_header")
    vertices = np.empty(len(points), dtype=fields)
    vertices["x"], vertices["y"], vertices["z"] = points.T
    if colors is not None:
        vertices["red"], vertices["green"], vertices["blue"] = colors.T
    with atomic_path(path, overwrite) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(("\n".join(header) + "\n").encode("ascii"))
            handle.write(vertices.tobytes())
    return Path(path)


_PLY_TYPES = {"float": "f4", "float32": "f4", "double": "f8", "float64": "f8", "uchar": "u1",
              "uint8": "u1", "char": "i1", "int8": "i1", "ushort": "u2", "uint16": "u2",
              "short": "i2", "int16": "i2", "uint": "u4", "uint32": "u4", "int": "i4",
              "int32": "i4"}


def read_ply(path: str | os.PathLike) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Read the vertices of a binary (either endianness) or ASCII PLY: ``(points, colors)``."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror or error})") from None
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0 or data.find(b"\n", end) < 0:
        raise InputError(f"{path}: not a PLY file")
    body_start = data.index(b"\n", end) + 1
    header = data[:end].decode("ascii", errors="replace").splitlines()
    fmt, count, props, in_vertex = None, 0, [], False
    for line in header:
        words = line.split()
        if not words:
            continue
        if words[0] == "format" and len(words) > 1:
            fmt = words[1]
        elif words[0] == "element" and len(words) > 1:
            in_vertex = words[1] == "vertex"
            if in_vertex:
                if len(words) < 3 or not words[2].isdigit() or len(words[2]) > 10:
                    raise InputError(f"{path}: PLY vertex count is not a number: {line[:60]!r}")
                count = int(words[2])
        elif words[0] == "property" and in_vertex:
            if len(words) > 1 and words[1] == "list":
                raise InputError(f"{path}: list properties on vertices are not supported")
            if len(words) < 3 or words[1] not in _PLY_TYPES:
                raise InputError(f"{path}: PLY property not understood: {line[:60]!r}")
            props.append((words[2], _PLY_TYPES[words[1]]))
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise InputError(f"{path}: PLY format {fmt!r} not understood")
    if len({name for name, _ in props}) != len(props):
        raise InputError(f"{path}: PLY vertex properties repeat a name")
    names = [p[0] for p in props]
    if not all(n in names for n in "xyz"):
        raise InputError(f"{path}: PLY vertices have no x/y/z")
    if fmt == "ascii":
        rows = data[body_start:].decode("ascii", errors="replace").split()
        if len(rows) < count * len(props):
            raise InputError(f"{path}: PLY is truncated")
        try:
            table = np.array(rows[:count * len(props)], dtype=np.float64).reshape(count, len(props))
        except ValueError:
            raise InputError(f"{path}: PLY vertex values are not numbers") from None
        get = {name: table[:, i] for i, name in enumerate(names)}
    else:
        order = "<" if fmt == "binary_little_endian" else ">"
        dtype = np.dtype([(n, order + t) for n, t in props])
        if len(data) - body_start < count * dtype.itemsize:
            raise InputError(f"{path}: PLY is truncated")
        vertices = np.frombuffer(data, dtype=dtype, count=count, offset=body_start)
        get = {name: vertices[name] for name in names}
    points = np.stack([get["x"], get["y"], get["z"]], axis=1).astype(np.float32)
    colors = None
    if all(c in get for c in ("red", "green", "blue")):
        colors = np.stack([get["red"], get["green"], get["blue"]], axis=1).astype(np.uint8)
    return points, colors
