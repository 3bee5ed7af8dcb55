"""Writers of small datasets in the official on-disk formats, and a tiny real backend for runs.

Everything here writes files the way the benchmarks ship them: KITTI 16-bit PNG disparity
(value / 256, 0 = invalid), 8-bit ``obj_map``, PFM disparity (+inf invalid), MiddEval3 folders
with ``calib.txt`` and ``mask0nocc.png`` (255 non-occluded, 128 occluded, 0 unknown).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from depthapp.backends.base import Backend
from depthapp.io import write_image, write_kitti_disparity, write_pfm
from depthapp.params import Parameter


def random_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def kitti_quantise(disparity: np.ndarray) -> np.ndarray:
    """What a disparity becomes after a round trip through a KITTI PNG."""
    valid = np.isfinite(disparity) & (disparity >= 0)
    values = np.clip(np.round(np.where(valid, disparity, 0) * 256.0), 1, 65535) / 256.0
    return np.where(valid, values, np.nan).astype(np.float32)


def write_kitti2015(root: Path, frames: list[dict], rng: np.random.Generator, split: str = "training") -> Path:
    """``frames``: dicts with ``occ``, ``noc`` (float arrays, NaN invalid) and ``obj`` (uint8)."""
    folder = root / split
    for index, frame in enumerate(frames):
        name = f"{index:06d}_10.png"
        height, width = frame["occ"].shape
        write_image(folder / "image_2" / name, random_image(rng, height, width))
        write_image(folder / "image_3" / name, random_image(rng, height, width))
        # the _11 frames exist in the real data but carry no stereo ground truth
        write_image(folder / "image_2" / f"{index:06d}_11.png", random_image(rng, height, width))
        if split == "training":
            write_kitti_disparity(folder / "disp_occ_0" / name, frame["occ"])
            write_kitti_disparity(folder / "disp_noc_0" / name, frame["noc"])
            write_image(folder / "obj_map" / name, frame["obj"].astype(np.uint8))
    return root


def write_kitti2012(root: Path, frames: list[dict], rng: np.random.Generator, refl: bool = False) -> Path:
    folder = root / "training"
    for index, frame in enumerate(frames):
        name = f"{index:06d}_10.png"
        height, width = frame["occ"].shape
        write_image(folder / "colored_0" / name, random_image(rng, height, width))
        write_image(folder / "colored_1" / name, random_image(rng, height, width))
        write_kitti_disparity(folder / "disp_occ" / name, frame["occ"])
        write_kitti_disparity(folder / "disp_noc" / name, frame["noc"])
        if refl:
            write_kitti_disparity(folder / "disp_refl_occ" / name, frame["refl_occ"])
            write_kitti_disparity(folder / "disp_refl_noc" / name, frame["refl_noc"])
    return root


def write_kitti_predictions(folder: Path, predictions: list[np.ndarray]) -> Path:
    for index, disparity in enumerate(predictions):
        write_kitti_disparity(folder / "disp_0" / f"{index:06d}_10.png", disparity)
    return folder


def write_sceneflow_frame(root: Path, subset: str, relative: str, frame: int, gt: np.ndarray,
                          rng: np.random.Generator, render_pass: str = "clean") -> str:
    """One frame of ``root/<subset>/frames_<pass>pass/<relative>/{left,right}/NNNN.png`` plus its
    ``disparity/<relative>/left/NNNN.pfm``; returns the sample id."""
    base = root / subset
    name = f"{frame:04d}"
    height, width = gt.shape
    for side in ("left", "right"):
        write_image(base / f"frames_{render_pass}pass" / relative / side / f"{name}.png",
                    random_image(rng, height, width))
    write_pfm(base / "disparity" / relative / "left" / f"{name}.pfm", gt)
    # Scene Flow ships right-view disparity too; readers must not take it for a sample
    write_pfm(base / "disparity" / relative / "right" / f"{name}.pfm", gt)
    return f"{subset}/{relative}/{name}"


def calib_text(ndisp: int, width: int, height: int, focal: float = 1000.0) -> str:
    return (f"cam0=[{focal} 0 {width / 2}; 0 {focal} {height / 2}; 0 0 1]\n"
            f"cam1=[{focal} 0 {width / 2 + 10}; 0 {focal} {height / 2}; 0 0 1]\n"
            f"doffs=10\nbaseline=100\nwidth={width}\nheight={height}\nndisp={ndisp}\n"
            "isint=0\nvmin=1\nvmax=50\ndyavg=0\ndymax=0\n")


def write_middeval3_scene(folder: Path, scene: str, gt: np.ndarray | None, mask: np.ndarray | None,
                          ndisp: int, rng: np.random.Generator, image_shape: tuple[int, int] | None = None) -> Path:
    """``folder/<scene>/im0.png, im1.png, calib.txt`` (+ ``disp0GT.pfm``, ``mask0nocc.png``)."""
    scene_dir = folder / scene
    height, width = image_shape if image_shape is not None else gt.shape
    write_image(scene_dir / "im0.png", random_image(rng, height, width))
    write_image(scene_dir / "im1.png", random_image(rng, height, width))
    (scene_dir / "calib.txt").write_text(calib_text(ndisp, width, height))
    if gt is not None:
        write_pfm(scene_dir / "disp0GT.pfm", gt)
    if mask is not None:
        write_image(scene_dir / "mask0nocc.png", mask.astype(np.uint8))
    return scene_dir


class ConstantBackend(Backend):
    """A real (if trivial) backend: disparity = ``value`` everywhere, ``hole`` columns invalid.

    ``CALLS`` counts computations in this process, ``CREATED`` instantiations.
    """

    name = "test-constant"
    description = "constant disparity (tests)"
    parameters = (Parameter("value", "float", 4.0, "the disparity returned", 0, 1000),
                  Parameter("hole", "int", 0, "leading columns left invalid", 0, 1000))
    default_max_disp = 64
    CALLS = {"count": 0}
    CREATED = {"count": 0}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        ConstantBackend.CREATED["count"] += 1

    def _compute(self, pair, timer, cancel):
        ConstantBackend.CALLS["count"] += 1
        with timer("fill"):
            disparity = np.full((pair.height, pair.width), self.params["value"], dtype=np.float32)
            disparity[:, : self.params["hole"]] = np.nan
        return disparity
