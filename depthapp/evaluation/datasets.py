"""Readers of the benchmark datasets in their official layouts (see ``datasets/README.md``).

Every dataset is a list of :class:`Sample` objects: an id, the paths of the left/right images
and of the ground-truth files. Nothing is read until asked (:meth:`Sample.load_pair`,
:meth:`Sample.load_ground_truth`), and a sample is a small picklable record, so the runner can
ship it to worker processes or a Dask cluster.

``root`` is, as users download the data:

- ``kitti2012`` / ``kitti2015``: the folder that holds ``training/`` (and ``testing/``);
- ``sceneflow``: the folder that holds ``FlyingThings3D/`` (and ``Monkaa/``, ``Driving/``);
- ``middlebury``: the MiddEval3 folder (holding ``trainingH/`` ...), one of its resolution
  folders, or a folder of full-size 2014/2021 scenes;
- ``folder``: any folder of pairs that :func:`depthapp.sources.find_pairs` understands, with optional
  ground truth beside it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator, Optional, Sequence

import numpy as np

from ..data import StereoPair
from ..errors import InputError, UsageError
from ..io import read_disparity, read_image
from ..limits import read_bounded
from ..sources.files import find_pairs, load_pair

DISPARITY_SUFFIXES = (".pfm", ".png", ".npy")


@dataclass
class GroundTruth:
    """Ground truth of one sample; every map is ``(H, W)`` at the ground truth's resolution.

    Attributes:
        disparity: all known pixels (KITTI ``disp_occ``), float32, NaN = unknown.
        disparity_noc: the non-occluded subset (KITTI ``disp_noc``; Middlebury ``mask0nocc``
            or a left-right check), NaN elsewhere; None when the dataset has no such split.
        object_map: KITTI 2015 ``obj_map`` (0 = background), else None.
        refl_noc, refl_occ: KITTI 2012 reflective-region ground truth, when present.
        ndisp: disparity levels at the *images'* resolution (Middlebury ``calib.txt``).
        gt_scale: full-resolution pixels per ground-truth pixel (Middlebury H/Q ground truth).
    """

    disparity: np.ndarray
    disparity_noc: Optional[np.ndarray] = None
    object_map: Optional[np.ndarray] = None
    refl_noc: Optional[np.ndarray] = None
    refl_occ: Optional[np.ndarray] = None
    ndisp: Optional[int] = None
    gt_scale: int = 1

    @property
    def nonocc_mask(self) -> Optional[np.ndarray]:
        return None if self.disparity_noc is None else np.isfinite(self.disparity_noc)


@dataclass
class Sample:
    """One stereo pair of a dataset.

    Attributes:
        id: unique within the dataset and path-like (``000000_10``,
            ``FlyingThings3D/TEST/A/0000/0006``, ``Adirondack``); names prediction files.
        left, right: image paths.
        files: ground-truth files by role: ``disp`` (all pixels), ``disp_noc``, ``obj_map``,
            ``disp_refl_noc``, ``disp_refl_occ``, ``mask_nonocc`` (Middlebury, 255 = non-occluded),
            ``disp_right`` (right-view disparity, for a left-right check).
        ndisp: disparity levels at the images' resolution, when the dataset says.
        gt_scale: full-resolution pixels per ground-truth pixel.
        calibration: Middlebury ``calib.txt`` of these images, when present.
    """

    id: str
    left: Path
    right: Path
    files: dict[str, Path] = field(default_factory=dict)
    ndisp: Optional[int] = None
    gt_scale: int = 1
    calibration: Optional[Path] = None

    @property
    def has_ground_truth(self) -> bool:
        return "disp" in self.files

    def load_pair(self) -> StereoPair:
        """The images as RGB uint8 (with the Middlebury calibration when there is one)."""
        pair = load_pair(self.left, self.right, name=self.id)
        if self.calibration is not None:
            from ..calibration.middlebury import read_middlebury_calib

            pair.calibration = read_middlebury_calib(self.calibration, image_size=pair.size)
        return pair

    def load_ground_truth(self) -> Optional[GroundTruth]:
        """The ground truth, or None for a sample without it (e.g. KITTI ``testing``)."""
        if not self.has_ground_truth:
            return None
        disparity = read_disparity(self.files["disp"])
        shape = disparity.shape

        def optional_map(role: str) -> Optional[np.ndarray]:
            path = self.files.get(role)
            if path is None:
                return None
            values = read_disparity(path)
            _check_shape(path, values.shape, shape)
            return values

        noc = optional_map("disp_noc")
        if noc is None and "mask_nonocc" in self.files:
            mask = read_image(self.files["mask_nonocc"], grey=True)
            _check_shape(self.files["mask_nonocc"], mask.shape, shape)
            noc = np.where(mask == 255, disparity, np.float32(np.nan)).astype(np.float32)
        if noc is None and "disp_right" in self.files:
            right = read_disparity(self.files["disp_right"])
            _check_shape(self.files["disp_right"], right.shape, shape)
            noc = np.where(left_right_consistent(disparity, right), disparity,
                           np.float32(np.nan)).astype(np.float32)
        object_map = None
        if "obj_map" in self.files:
            object_map = read_image(self.files["obj_map"], grey=True)
            _check_shape(self.files["obj_map"], object_map.shape, shape)
        return GroundTruth(disparity=disparity, disparity_noc=noc, object_map=object_map,
                           refl_noc=optional_map("disp_refl_noc"), refl_occ=optional_map("disp_refl_occ"),
                           ndisp=self.ndisp, gt_scale=self.gt_scale)


def _check_shape(path: Path, got: tuple[int, ...], expected: tuple[int, ...]) -> None:
    if tuple(got[:2]) != tuple(expected[:2]):
        raise InputError(f"{path}: is {got[1]}x{got[0]}, the ground truth it goes with is "
                         f"{expected[1]}x{expected[0]}")


def left_right_consistent(disp_left: np.ndarray, disp_right: np.ndarray,
                          threshold: float = 1.0) -> np.ndarray:
    """Pixels of the left view whose disparity the right view confirms (non-occluded).

    Left pixel ``x`` with disparity ``d`` maps to right pixel ``round(x - d)``; it is kept when
    that pixel is inside the image and its right-view disparity differs by at most
    ``threshold`` (1 px, the default of the MiddEval3 SDK's ``computemask``).

    Args:
        disp_left, disp_right: ``(H, W)`` positive disparities of each view, NaN/inf unknown.

    Returns:
        ``(H, W)`` bool.
    """
    disp_left = np.asarray(disp_left, dtype=np.float32)
    disp_right = np.asarray(disp_right, dtype=np.float32)
    height, width = disp_left.shape
    known = np.isfinite(disp_left)
    columns = np.arange(width, dtype=np.float32)[None, :]
    target = np.rint(columns - np.where(known, disp_left, 0)).astype(np.int64)
    inside = known & (target >= 0) & (target < width)
    rows = np.broadcast_to(np.arange(height)[:, None], (height, width))
    matched = disp_right[rows, np.clip(target, 0, width - 1)]
    with np.errstate(invalid="ignore"):
        return inside & np.isfinite(matched) & (np.abs(matched - disp_left) <= threshold)


def _first_existing(paths: Sequence[Path]) -> Optional[Path]:
    return next((path for path in paths if path.exists()), None)


def shipped_split(name: str) -> Optional[Path]:
    """A split list shipped with depthapp (``kitti2015_val40`` ...), or None."""
    from importlib import resources

    candidate = Path(str(resources.files("depthapp") / "resources" / "splits" / f"{Path(name).stem}.txt"))
    return candidate if candidate.exists() else None


def _read_ids(path: os.PathLike | str) -> list[str]:
    path = Path(path)
    if not path.exists() and (shipped := shipped_split(str(path))) is not None:
        path = shipped
    data = read_bounded(path, 16 << 20, "an id list", InputError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: the id list is not UTF-8 text (byte 0x{data[error.start]:02x} "
                         f"at offset {error.start})") from None
    if "\x00" in text:
        raise InputError(f"{path}: the id list is not text (it holds NUL bytes)")
    ids = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    ids = [i for i in ids if i]
    if not ids:
        raise InputError(f"{path}: the id list is empty")
    return ids


class StereoDataset:
    """A list of samples plus what the runner needs to score them.

    Subclasses set ``name`` (the ``--dataset`` value) and ``benchmark`` (the metric protocol:
    ``kitti2015``, ``kitti2012``, ``sceneflow``, ``middlebury`` or ``generic``).
    """

    name: ClassVar[str] = ""
    benchmark: ClassVar[str] = "generic"

    def __init__(self, root: os.PathLike | str, ids: Optional[Sequence[str] | os.PathLike | str] = None):
        self.root = Path(root).expanduser()
        self._check_root()
        samples = self._find_samples()
        if not samples:
            raise InputError(f"{self.root}: no {self.name} samples found ({self.layout_hint()})")
        if ids is not None:
            wanted = _read_ids(ids) if isinstance(ids, (str, os.PathLike)) else list(ids)
            by_id = {sample.id: sample for sample in samples}
            missing = [i for i in wanted if i not in by_id]
            if missing:
                shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
                raise InputError(f"{ids}: {len(missing)} id(s) not in the dataset at {self.root}: {shown}")
            samples = [by_id[i] for i in wanted]
        self.samples: list[Sample] = samples

    def _check_root(self) -> None:
        if not self.root.is_dir():
            raise InputError(f"{self.root}: no such folder (--root of the {self.name} dataset)")

    def _find_samples(self) -> list[Sample]:
        raise NotImplementedError

    def layout_hint(self) -> str:
        return "see datasets/README.md"

    def options(self) -> dict[str, Any]:
        """What selects the data besides the root (split, pass, resolution ...)."""
        return {}

    def describe(self) -> str:
        extra = ", ".join(f"{k} {v}" for k, v in self.options().items())
        return f"{self.name} at {self.root}" + (f" ({extra})" if extra else "")

    @property
    def has_ground_truth(self) -> bool:
        return any(sample.has_ground_truth for sample in self.samples)

    def max_ndisp(self) -> Optional[int]:
        values = [sample.ndisp for sample in self.samples if sample.ndisp]
        return max(values) if values else None

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]


def _split_folder(root: Path, split: str, marker: str) -> Path:
    """``root/split`` when it exists; ``root`` itself when it already is the split folder."""
    if (root / split).is_dir():
        return root / split
    if (root / marker).is_dir():
        return root
    raise InputError(f"{root}: no {split}/ folder (expected {root / split / marker})")


class KITTI2015(StereoDataset):
    """KITTI 2015 stereo: ``training/image_2``, ``image_3``, ``disp_noc_0``, ``disp_occ_0``, ``obj_map``.

    Only frame ``_10`` has ground truth; ``testing/`` has images only (for ``depthapp predict``).
    """

    name = "kitti2015"
    benchmark = "kitti2015"
    left_dir, right_dir = "image_2", "image_3"

    def __init__(self, root, split: str = "training", ids=None):
        if split not in ("training", "testing"):
            raise UsageError(f"--split for {self.name}: training or testing, not {split!r}")
        self.split = split
        super().__init__(root, ids)

    def options(self) -> dict[str, Any]:
        return {"split": self.split}

    def layout_hint(self) -> str:
        return f"expected {self.split}/{self.left_dir}/000000_10.png and {self.split}/{self.right_dir}/"

    def _ground_truth_files(self, folder: Path, name: str) -> dict[str, Path]:
        files = {"disp": folder / "disp_occ_0" / name, "disp_noc": folder / "disp_noc_0" / name,
                 "obj_map": folder / "obj_map" / name}
        for role, path in files.items():
            if not path.exists():
                raise InputError(f"{path}: missing ({self.name} ground truth '{role}')")
        return files

    def _find_samples(self) -> list[Sample]:
        folder = _split_folder(self.root, self.split, self.left_dir)
        left_dir, right_dir = folder / self.left_dir, folder / self.right_dir
        if not right_dir.is_dir():
            raise InputError(f"{right_dir}: missing (right images of {self.name})")
        samples = []
        for left in sorted(left_dir.glob("*_10.png")):
            right = right_dir / left.name
            if not right.exists():
                raise InputError(f"{right}: missing (right image of {left.name})")
            files = self._ground_truth_files(folder, left.name) if self.split == "training" else {}
            samples.append(Sample(left.stem, left, right, files))
        return samples


class KITTI2012(KITTI2015):
    """KITTI 2012 stereo: ``training/colored_0``, ``colored_1`` (or grey ``image_0``/``image_1``),
    ``disp_noc``, ``disp_occ`` and, where present, ``disp_refl_noc``/``disp_refl_occ``."""

    name = "kitti2012"
    benchmark = "kitti2012"
    left_dir, right_dir = "colored_0", "colored_1"

    def _find_samples(self) -> list[Sample]:
        split_dir = self.root / self.split if (self.root / self.split).is_dir() else self.root
        if not (split_dir / "colored_0").is_dir() and (split_dir / "image_0").is_dir():
            # the grey pairs of the original release
            self.left_dir, self.right_dir = "image_0", "image_1"
        return super()._find_samples()

    def _ground_truth_files(self, folder: Path, name: str) -> dict[str, Path]:
        files = {"disp": folder / "disp_occ" / name, "disp_noc": folder / "disp_noc" / name}
        for role, path in files.items():
            if not path.exists():
                raise InputError(f"{path}: missing ({self.name} ground truth '{role}')")
        for role in ("disp_refl_noc", "disp_refl_occ"):
            if (folder / role / name).exists():
                files[role] = folder / role / name
        return files


SCENEFLOW_SUBSETS = {"flyingthings3d": "FlyingThings3D", "monkaa": "Monkaa", "driving": "Driving"}


class SceneFlow(StereoDataset):
    """Scene Flow (Mayer et al. 2016): FlyingThings3D, Monkaa, Driving.

    Layout under ``root/<Subset>/``: ``frames_cleanpass`` or ``frames_finalpass`` with
    ``.../left/NNNN.png`` + ``.../right/NNNN.png``, and ``disparity`` (or ``frames_disparity``)
    with ``.../left/NNNN.pfm`` at the same relative path. FlyingThings3D is split into
    ``TRAIN``/``TEST`` with parts ``A``/``B``/``C``; its ``TEST`` split (4,370 pairs) is the
    standard benchmark. Monkaa and Driving have no test split (``split`` must be ``all``).
    """

    name = "sceneflow"
    benchmark = "sceneflow"

    def __init__(self, root, subset: str = "flyingthings3d", split: Optional[str] = None,
                 render_pass: str = "clean", ids=None):
        subset = subset.lower()
        if subset not in (*SCENEFLOW_SUBSETS, "all"):
            raise UsageError(f"--subset: one of {', '.join(SCENEFLOW_SUBSETS)}, all; not {subset!r}")
        if render_pass not in ("clean", "final"):
            raise UsageError(f"--pass: clean or final, not {render_pass!r}")
        if split is None:
            split = "test" if subset == "flyingthings3d" else "all"
        split = split.lower()
        if split not in ("test", "train", "all"):
            raise UsageError(f"--split for sceneflow: test, train or all, not {split!r}")
        if split != "all" and subset != "flyingthings3d":
            raise UsageError(f"--split {split}: only FlyingThings3D has TRAIN/TEST; use --split all")
        self.subset, self.split, self.render_pass = subset, split, render_pass
        super().__init__(root, ids)

    def options(self) -> dict[str, Any]:
        return {"subset": self.subset, "split": self.split, "pass": self.render_pass}

    def layout_hint(self) -> str:
        return ("expected FlyingThings3D/frames_cleanpass/TEST/A/0000/left/0006.png and "
                "FlyingThings3D/disparity/TEST/A/0000/left/0006.pfm")

    def _find_samples(self) -> list[Sample]:
        subsets = list(SCENEFLOW_SUBSETS) if self.subset == "all" else [self.subset]
        samples = []
        for subset in subsets:
            folder = self.root / SCENEFLOW_SUBSETS[subset]
            if not folder.is_dir():
                if self.subset == "all":
                    continue
                raise InputError(f"{folder}: missing (--root must hold {SCENEFLOW_SUBSETS[subset]}/)")
            frames = folder / f"frames_{self.render_pass}pass"
            disparity = _first_existing([folder / "disparity", folder / "frames_disparity"])
            if not frames.is_dir():
                raise InputError(f"{frames}: missing ({self.render_pass} pass images)")
            if disparity is None:
                raise InputError(f"{folder}: no disparity/ (or frames_disparity/) folder")
            top = frames
            if subset == "flyingthings3d" and self.split != "all":
                top = frames / self.split.upper()
                if not top.is_dir():
                    raise InputError(f"{top}: missing (FlyingThings3D {self.split.upper()} split)")
            for left in sorted(top.rglob("*.png")):
                if left.parent.name != "left":
                    continue
                relative = left.relative_to(frames)
                right = left.parent.parent / "right" / left.name
                gt = disparity / relative.with_suffix(".pfm")
                if not right.exists():
                    raise InputError(f"{right}: missing (right image of {left})")
                if not gt.exists():
                    raise InputError(f"{gt}: missing (disparity of {left})")
                sample_id = "/".join((SCENEFLOW_SUBSETS[subset], *relative.parent.parent.parts, left.stem))
                samples.append(Sample(sample_id, left, right, {"disp": gt}))
        return samples


MIDDLEBURY_RESOLUTIONS = {"F": 1, "H": 2, "Q": 4}
_RESOLUTION_FOLDER = re.compile(r"^(training|test)([FHQ])$")


def _calib_ndisp(path: Path) -> Optional[int]:
    if not path.exists():
        return None
    from ..calibration import checks
    from ..calibration.middlebury import parse_key_values
    from ..calibration.readers import read_calibration_text

    value = parse_key_values(read_calibration_text(path)).get("ndisp")
    try:
        number = float(value.split()[0]) if value else None
    except (ValueError, IndexError):
        raise InputError(f"{path}: field 'ndisp' is not a number: {value[:60]!r}") from None
    return checks.ndisp(str(path), number, "field 'ndisp'")


class Middlebury(StereoDataset):
    """Middlebury: MiddEval3 (``trainingF|H|Q/<scene>/im0.png, im1.png, disp0GT.pfm,
    mask0nocc.png, calib.txt``) or full-size 2014/2021 scenes (``<scene>/im0.png, im1.png,
    disp0.pfm, disp1.pfm, calib.txt``).

    MiddEval3 is scored as the official table does, at full resolution: when ``trainingF`` is
    present its ground truth is used for every resolution (the estimate is upsampled by 2 or 4);
    otherwise the ground truth of the chosen resolution is used with errors scaled to
    full-resolution pixels (``gt_scale``). 2014/2021 scenes have no mask: the non-occluded
    pixels are those that pass a left-right check of ``disp0`` against ``disp1``.
    """

    name = "middlebury"
    benchmark = "middlebury"

    def __init__(self, root, resolution: str = "auto", split: str = "training", ids=None):
        resolution = resolution.upper() if resolution.lower() != "auto" else "auto"
        if resolution not in ("auto", *MIDDLEBURY_RESOLUTIONS):
            raise UsageError(f"--resolution: F, H, Q or auto, not {resolution!r}")
        if split not in ("training", "test"):
            raise UsageError(f"--split for middlebury: training or test, not {split!r}")
        self.resolution, self.split = resolution, split
        self.layout = ""
        super().__init__(root, ids)

    def options(self) -> dict[str, Any]:
        return {"resolution": self.resolution, "split": self.split, "layout": self.layout}

    def layout_hint(self) -> str:
        return "expected trainingH/<scene>/im0.png (MiddEval3) or <scene>/im0.png + disp0.pfm"

    def _find_samples(self) -> list[Sample]:
        root = self.root
        folders = {m.group(2): root / name for name in os.listdir(root)
                   if (m := _RESOLUTION_FOLDER.match(name)) and m.group(1) == self.split and (root / name).is_dir()}
        if folders:
            return self._midd_eval3(root, folders)
        match = _RESOLUTION_FOLDER.match(root.name)
        if match:
            # root is one resolution folder of MiddEval3
            self.split = match.group(1)
            siblings = {m.group(2): root.parent / name for name in os.listdir(root.parent)
                        if (m := _RESOLUTION_FOLDER.match(name)) and m.group(1) == self.split}
            if self.resolution == "auto":
                self.resolution = match.group(2)
            elif self.resolution != match.group(2):
                raise UsageError(f"--resolution {self.resolution} but --root is {root.name}")
            return self._midd_eval3(root.parent, siblings)
        return self._full_scenes(root)

    def _midd_eval3(self, base: Path, folders: dict[str, Path]) -> list[Sample]:
        self.layout = "MiddEval3"
        if self.resolution == "auto":
            self.resolution = next(r for r in ("H", "Q", "F") if r in folders)
        if self.resolution not in folders:
            raise InputError(f"{base / (self.split + self.resolution)}: missing "
                             f"(found {', '.join(sorted(folders))})")
        folder = folders[self.resolution]
        full = folders.get("F")
        samples = []
        for scene in sorted(p for p in folder.iterdir() if p.is_dir()):
            left, right = scene / "im0.png", scene / "im1.png"
            if not left.exists():
                continue
            if not right.exists():
                raise InputError(f"{right}: missing (right image of {scene.name})")
            files: dict[str, Path] = {}
            gt_scale = 1
            gt_dir = full / scene.name if full is not None and (full / scene.name / "disp0GT.pfm").exists() else scene
            if (gt_dir / "disp0GT.pfm").exists():
                if gt_dir == scene:
                    gt_scale = MIDDLEBURY_RESOLUTIONS[self.resolution]
                files["disp"] = gt_dir / "disp0GT.pfm"
                if (gt_dir / "mask0nocc.png").exists():
                    files["mask_nonocc"] = gt_dir / "mask0nocc.png"
            calib = scene / "calib.txt"
            samples.append(Sample(scene.name, left, right, files, ndisp=_calib_ndisp(calib),
                                  gt_scale=gt_scale, calibration=calib if calib.exists() else None))
        return samples

    def _full_scenes(self, root: Path) -> list[Sample]:
        self.layout = "scenes"
        if self.resolution not in ("auto", "F"):
            raise UsageError(f"--resolution {self.resolution}: full 2014/2021 scenes come at one resolution")
        self.resolution = "F"
        candidates = [root] if (root / "im0.png").exists() else sorted(p for p in root.iterdir() if p.is_dir())
        samples = []
        for scene in candidates:
            left, right = scene / "im0.png", scene / "im1.png"
            if not (left.exists() and right.exists()):
                continue
            files: dict[str, Path] = {}
            gt = _first_existing([scene / "disp0.pfm", scene / "disp0GT.pfm"])
            if gt is not None:
                files["disp"] = gt
                if (scene / "mask0nocc.png").exists():
                    files["mask_nonocc"] = scene / "mask0nocc.png"
                elif (scene / "disp1.pfm").exists():
                    files["disp_right"] = scene / "disp1.pfm"
            calib = scene / "calib.txt"
            samples.append(Sample(scene.name, left, right, files, ndisp=_calib_ndisp(calib),
                                  calibration=calib if calib.exists() else None))
        return samples


_GT_FOLDERS = ("disp", "disparity", "gt", "groundtruth", "ground_truth", "disp0", "disp_occ",
               "disp_occ_0")
_GT_NOC_FOLDERS = ("disp_noc", "disp_noc_0")
_GT_SUFFIXES = ("_disp", "_disparity", "_gt", "-disp", "-gt")


class FolderDataset(StereoDataset):
    """Any folder of pairs (``left/`` + ``right/``, ``im0``/``im1`` scene folders, ``*_left``/
    ``*_right`` files; see :func:`depthapp.sources.find_pairs`) with optional ground truth:

    - ``left/`` + ``right/`` layouts: a sibling ``disp/`` (or ``disparity/``, ``gt/``,
      ``disp_occ/`` ...) holding ``<name>.pfm|.png|.npy``; ``disp_noc/`` for non-occluded GT;
    - scene folders: ``disp0GT.pfm`` or ``disp0.pfm`` (+ ``mask0nocc.png``, ``calib.txt``);
    - flat files: ``<name>_disp.pfm`` (or ``_gt``, ``_disparity``) beside ``<name>_left.png``.

    PNG ground truth must be KITTI 16-bit (value / 256).
    """

    name = "folder"
    benchmark = "generic"

    def layout_hint(self) -> str:
        return "expected left/ + right/, im0/im1 scene folders or *_left/*_right files"

    def _find_samples(self) -> list[Sample]:
        samples = []
        for pair in find_pairs(self.root):
            files: dict[str, Path] = {}
            ndisp, calibration = None, None
            left_parent = pair.left.parent
            stem = pair.left.stem
            if pair.left.stem == "im0":
                gt = _first_existing([left_parent / "disp0GT.pfm", left_parent / "disp0.pfm",
                                      left_parent / "disp0.png", left_parent / "disp0.npy"])
                if gt is not None:
                    files["disp"] = gt
                    if (left_parent / "mask0nocc.png").exists():
                        files["mask_nonocc"] = left_parent / "mask0nocc.png"
                    elif (left_parent / "disp1.pfm").exists():
                        files["disp_right"] = left_parent / "disp1.pfm"
                if (left_parent / "calib.txt").exists():
                    calibration = left_parent / "calib.txt"
                    ndisp = _calib_ndisp(calibration)
            elif left_parent != self.root:
                base = left_parent.parent
                gt = _first_existing([base / folder / f"{stem}{suffix}" for folder in _GT_FOLDERS
                                      for suffix in DISPARITY_SUFFIXES])
                if gt is not None:
                    files["disp"] = gt
                    noc = _first_existing([base / folder / f"{stem}{suffix}" for folder in _GT_NOC_FOLDERS
                                           for suffix in DISPARITY_SUFFIXES])
                    if noc is not None:
                        files["disp_noc"] = noc
            else:
                gt = _first_existing([left_parent / f"{pair.name}{marker}{suffix}"
                                      for marker in _GT_SUFFIXES for suffix in DISPARITY_SUFFIXES])
                if gt is not None:
                    files["disp"] = gt
            samples.append(Sample(pair.name, pair.left, pair.right, files, ndisp=ndisp,
                                  calibration=calibration))
        ids = [sample.id for sample in samples]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise InputError(f"{self.root}: several pairs are named {', '.join(duplicates)}")
        return samples


DATASETS: dict[str, type[StereoDataset]] = {
    "kitti2012": KITTI2012, "kitti2015": KITTI2015, "sceneflow": SceneFlow,
    "middlebury": Middlebury, "folder": FolderDataset,
}
#: Datasets defined elsewhere, imported when asked for: ``name -> (module, class)``.
EXTERNAL_DATASETS = {"bag": ("depthapp.robotics.bag_dataset", "BagDataset")}


def open_dataset(name: str, root: os.PathLike | str, **options: Any) -> StereoDataset:
    """``open_dataset("kitti2015", "/data/kitti2015", split="training")``; options that are None
    are left at the dataset's default; an option the dataset does not take is a UsageError."""
    if name in EXTERNAL_DATASETS:
        import importlib

        module, attribute = EXTERNAL_DATASETS[name]
        cls = getattr(importlib.import_module(module), attribute)
    elif name in DATASETS:
        cls = DATASETS[name]
    else:
        raise UsageError(f"unknown dataset {name!r} (known: {', '.join([*DATASETS, *EXTERNAL_DATASETS])})")
    accepted = {"kitti2012": ("split", "ids"), "kitti2015": ("split", "ids"),
                "sceneflow": ("subset", "split", "render_pass", "ids"),
                "middlebury": ("resolution", "split", "ids"), "folder": ("ids",),
                "bag": ("ids", "left_topic", "right_topic")}[name]
    given = {key: value for key, value in options.items() if value is not None}
    unknown = [key for key in given if key not in accepted]
    if unknown:
        flags = ", ".join("--" + key.replace("render_pass", "pass").replace("_", "-") for key in unknown)
        raise UsageError(f"dataset {name} does not take {flags}")
    return cls(root, **given)


def find_prediction(predictions: os.PathLike | str, sample: Sample) -> Path:
    """The saved prediction of ``sample`` under ``predictions``.

    Looked for, in order: ``disp_0/<id>.png`` (KITTI 2015 submission), ``data/<id>.png``
    (KITTI 2012 devkit), ``<id>.pfm|.png|.npy``, and the MiddEval3 SDK's ``<id>/disp0<ALG>.pfm``.
    """
    folder = Path(predictions)
    candidates = [folder / "disp_0" / f"{sample.id}.png", folder / "data" / f"{sample.id}.png"]
    candidates += [folder / f"{sample.id}{suffix}" for suffix in DISPARITY_SUFFIXES]
    found = _first_existing(candidates)
    if found is not None:
        return found
    scene = folder / sample.id
    if scene.is_dir():
        matches = sorted(scene.glob("disp0*.pfm"))
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InputError(f"{scene}: several predictions ({', '.join(m.name for m in matches)}); "
                             "keep one disp0<ALG>.pfm per scene")
    raise InputError(f"{folder}: no prediction for {sample.id} (looked for disp_0/{sample.id}.png, "
                     f"{sample.id}.pfm|.png|.npy, {sample.id}/disp0*.pfm)")


__all__ = ["DATASETS", "FolderDataset", "GroundTruth", "KITTI2012", "KITTI2015", "Middlebury",
           "Sample", "SceneFlow", "StereoDataset", "find_prediction", "left_right_consistent",
           "open_dataset"]
