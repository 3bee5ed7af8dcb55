"""Training data: ``--data`` specs, augmentation, and a deterministic batch for every iteration.

Specs (several joined with ``+``, e.g. ``synthetic:2000+kitti2015:/data/kitti``):

- ``synthetic``: an endless stream of new procedural scenes (:mod:`.synthetic`);
  ``synthetic:N``: N fixed scenes, visited in epochs;
- ``kitti2012:ROOT``, ``kitti2015:ROOT``, ``sceneflow:ROOT``, ``middlebury:ROOT``,
  ``folder:DIR`` (pairs with or without ground truth): the evaluation readers
  (:mod:`depthapp.evaluation.datasets`); options follow the root after commas
  (``sceneflow:/data/sf,subset=all,split=train``). Training defaults to each dataset's training
  split (Scene Flow: FlyingThings3D ``TRAIN``).

The embedded Motorcycle pair is our held-out real test: a spec that holds it (by name or by
content, at any resolution) is refused, and Middlebury scenes named Motorcycle are left out.

Determinism: batch ``i`` is a pure function of ``(seed, i)``. The sample order of a finite
source is a seeded permutation per epoch; the augmentation of slot ``b`` of batch ``i`` draws
from its own generator seeded with ``(seed, i, b)``. So a resumed run needs nothing but the
iteration number to continue exactly, and worker processes cannot change the order.

Augmentation as the papers use it: random crops (same window in both views and the ground
truth) and colour jitter; ``same`` jitters both views alike, ``per-view`` independently, and
``asymmetric`` (RAFT-Stereo) independently with probability 0.2, alike otherwise. No flips:
a horizontally flipped pair is only a stereo pair again with the views swapped, and a vertical
flip changes nothing a network could learn from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..data import luma
from ..errors import InputError, UsageError
from ..io.images import read_rgb
from ..sources.dataset import DatasetSequence
from .synthetic import SyntheticConfig, generate

JITTER_MODES = ("asymmetric", "same", "per-view", "none")
DATASET_NAMES = ("kitti2012", "kitti2015", "sceneflow", "middlebury", "folder")
# The training split of each reader (the evaluation defaults to the test/benchmark split).
TRAINING_DEFAULTS = {"kitti2012": {"split": "training"}, "kitti2015": {"split": "training"},
                     "sceneflow": {"split": "train"}, "middlebury": {"split": "training"}}
HELDOUT_NAME = "motorcycle"
# Seeds of the held-out synthetic set: a namespace training streams never use.
VALIDATION_NAMESPACE = 2
TRAINING_NAMESPACE = 1


@dataclass
class TrainingSample:
    """One pair as training sees it: ``left``/``right`` ``(H, W, 3)`` float32 in [0, 1],
    ``disparity`` ``(H, W)`` float32 (NaN unknown) or None, and a name for messages."""

    left: np.ndarray
    right: np.ndarray
    disparity: Optional[np.ndarray]
    name: str


def as_unit_float(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255.0)
    if image.dtype == np.uint16:
        return image.astype(np.float32) / np.float32(65535.0)
    return np.clip(image.astype(np.float32), 0.0, 1.0)


# ----------------------------------------------------------------------------- held-out guard

def _sample_reference():
    try:
        from ..sample import _load_arrays

        left, right, _ = _load_arrays()
        return left, right
    except Exception:  # scikit-image missing: the name check still applies
        return None


def looks_like_heldout(image: np.ndarray) -> bool:
    """Whether ``image`` (``(H, W, 3)``, any resolution) is a view of the Motorcycle sample:
    same aspect ratio (1 %) and, resized to the sample's size, a mean grey difference under 6
    levels from either view."""
    reference = _sample_reference()
    if reference is None:
        return False
    height, width = image.shape[:2]
    ref_h, ref_w = reference[0].shape[:2]
    if abs(height / width - ref_h / ref_w) > 0.01 * ref_h / ref_w:
        return False
    grey = _grey(image)
    if (height, width) != (ref_h, ref_w):
        import cv2

        grey = cv2.resize(grey, (ref_w, ref_h), interpolation=cv2.INTER_AREA)
    return any(float(np.abs(grey - _grey(view)).mean()) < 6.0 for view in reference)


def _grey(image: np.ndarray) -> np.ndarray:
    image = image.astype(np.float32)
    if image.max() <= 1.0 + 1e-6 and image.dtype != np.uint8:
        image = image * 255.0
    return luma(image)


def refuse_heldout(image: np.ndarray, name: str) -> None:
    if looks_like_heldout(image):
        raise InputError(f"{name}: this is the Middlebury Motorcycle pair, depthapp's held-out real "
                         f"test; it must never be trained or tuned on (remove it from the data)")


# ----------------------------------------------------------------------------- sources

class SampleSource:
    """Where samples come from. ``length`` None means endless."""

    description: str = ""
    has_ground_truth: bool = False
    length: Optional[int] = None

    def load(self, index: int) -> TrainingSample:
        raise NotImplementedError

    def cache_key(self, index: int) -> Optional[str]:
        """A stable file-name-safe key for per-sample caches (None: do not cache)."""
        return None


class SyntheticSource(SampleSource):
    """Procedural scenes; scene ``k`` is ``generate((1, seed, k))``."""

    def __init__(self, count: Optional[int], config: SyntheticConfig, seed: int):
        self.length = count
        self.config = config
        self.seed = int(seed)
        self.has_ground_truth = True
        # Rendering costs more than a training step of a small network: keep finite scene sets
        # in memory (up to about 512 MB per process).
        self._cache: dict[int, TrainingSample] = {}
        self._cache_limit = max(1, (512 << 20) // (config.height * config.width * 28))
        size = f"{config.width}x{config.height}, disparities {config.min_disparity:g}-{config.max_disparity:g}"
        self.description = (f"synthetic:{count} ({size})" if count else
                            f"synthetic (endless stream of new scenes, {size})")

    def load(self, index: int) -> TrainingSample:
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        sample = generate((TRAINING_NAMESPACE, self.seed, int(index)), self.config)
        result = TrainingSample(sample.left, sample.right, sample.disparity, f"synthetic-{index}")
        if self.length and len(self._cache) < self._cache_limit:
            self._cache[index] = result  # augmentation copies, never writes into these arrays
        return result

    def cache_key(self, index: int) -> Optional[str]:
        return f"synthetic-{self.seed}-{index}" if self.length else None


class DatasetSource(SampleSource):
    """A dataset of :mod:`depthapp.evaluation.datasets`, read pair by pair through
    :class:`depthapp.sources.DatasetSequence`."""

    def __init__(self, name: str, root: str, options: dict[str, str]):
        from ..evaluation.datasets import open_dataset

        given = dict(TRAINING_DEFAULTS.get(name, {}))
        given.update(options)
        if "pass" in given:
            given["render_pass"] = given.pop("pass")
        dataset = open_dataset(name, root, **given)
        samples = []
        left_out = []
        for sample in dataset.samples:
            # The scene's own names only: a parent folder called "motorcycle-tests" is harmless.
            names = (sample.id, sample.left.name, sample.left.parent.name)
            if any(HELDOUT_NAME in name.lower() for name in names):
                left_out.append(sample.id)
            else:
                samples.append(sample)
        if not samples:
            raise InputError(f"{dataset.root}: holds only the Motorcycle scene, depthapp's held-out "
                             f"real test; it must never be trained or tuned on")
        self.samples = samples
        self.pairs = DatasetSequence(dataset, samples)
        self.left_out = left_out
        self.length = len(samples)
        self.has_ground_truth = any(sample.has_ground_truth for sample in samples)
        self.dataset_name = name
        gt_count = sum(sample.has_ground_truth for sample in samples)
        self.description = (f"{dataset.describe()}: {len(samples)} pairs, {gt_count} with ground truth"
                            + (f"; left out as held-out test: {', '.join(left_out)}" if left_out else ""))
        # Small collections are checked by content now, so a folder holding the sample fails
        # at once; large ones (Scene Flow) are checked as each pair is first loaded.
        self._checked: set[int] = set()
        if len(samples) <= 64:
            for index in range(len(samples)):
                self._check(index, self._read_left(index))

    def _read_left(self, index: int) -> np.ndarray:
        return read_rgb(self.samples[index].left)

    def _check(self, index: int, left: np.ndarray) -> None:
        if index not in self._checked:
            refuse_heldout(left, str(self.samples[index].left))
            self._checked.add(index)

    def load(self, index: int) -> TrainingSample:
        pair = self.pairs.load(index)
        self._check(index, pair.left)
        return TrainingSample(as_unit_float(pair.left), as_unit_float(pair.right), pair.gt_disparity,
                              self.samples[index].id)

    def cache_key(self, index: int) -> Optional[str]:
        return f"{self.dataset_name}-" + self.samples[index].id.replace("/", "_").replace(os.sep, "_")


class ConcatSource(SampleSource):
    """Several finite sources one after another."""

    def __init__(self, sources: Sequence[SampleSource]):
        if any(source.length is None for source in sources):
            raise UsageError("--data: the endless 'synthetic' stream cannot be joined with other "
                             "data; use synthetic:N")
        self.sources = list(sources)
        self.offsets = np.cumsum([0] + [source.length for source in sources])
        self.length = int(self.offsets[-1])
        self.has_ground_truth = all(source.has_ground_truth for source in sources)
        self.description = " + ".join(source.description for source in sources)

    def _locate(self, index: int) -> tuple[SampleSource, int]:
        which = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return self.sources[which], index - int(self.offsets[which])

    def load(self, index: int) -> TrainingSample:
        source, local = self._locate(index)
        return source.load(local)

    def cache_key(self, index: int) -> Optional[str]:
        source, local = self._locate(index)
        return source.cache_key(local)


def synthetic_config_for(crop: tuple[int, int], max_disp: int) -> SyntheticConfig:
    """Scenes of the crop's size whose disparities the network can represent (below
    ``max_disp - 1``) and that stay plausible for the width (at most 40 % of it)."""
    height, width = crop
    return SyntheticConfig(height=height, width=width,
                           max_disparity=float(max(4.0, min(max_disp - 1.0, 0.4 * width))))


def parse_data_spec(spec: str, crop: tuple[int, int], max_disp: int, seed: int) -> SampleSource:
    """The :class:`SampleSource` for a ``--data`` spec (see the module docstring)."""
    spec = (spec or "").strip()
    if not spec:
        raise UsageError("--data: empty spec (e.g. synthetic, synthetic:2000, kitti2015:ROOT, folder:DIR)")
    parts = [part for part in spec.split("+") if part]
    if len(parts) > 1:
        return ConcatSource([parse_data_spec(part, crop, max_disp, seed) for part in parts])
    name, _, rest = spec.partition(":")
    name = name.strip().lower()
    if name == "synthetic":
        count = None
        if rest:
            try:
                count = int(rest)
            except ValueError:
                raise UsageError(f"--data {spec}: synthetic takes a number of scenes (synthetic:2000)") from None
            if count < 1:
                raise UsageError(f"--data {spec}: the number of scenes must be at least 1")
        return SyntheticSource(count, synthetic_config_for(crop, max_disp), seed)
    if name in DATASET_NAMES:
        if not rest:
            raise UsageError(f"--data {spec}: give the dataset's folder ({name}:ROOT)")
        root, *option_tokens = rest.split(",")
        options = {}
        for token in option_tokens:
            key, sep, value = token.partition("=")
            if not sep:
                raise UsageError(f"--data {spec}: option {token!r} is not key=value")
            options[key.strip().replace("-", "_")] = value.strip()
        return DatasetSource(name, root, options)
    if name == "sample" or HELDOUT_NAME in spec.lower():
        raise InputError(f"--data {spec}: the Motorcycle sample is depthapp's held-out real test "
                         f"and must never be trained or tuned on")
    known = ", ".join(("synthetic", "synthetic:N") + tuple(f"{n}:ROOT" for n in DATASET_NAMES))
    raise UsageError(f"--data {spec}: unknown data (known: {known})")


# ----------------------------------------------------------------------------- augmentation

def _jitter_parameters(rng: np.random.Generator) -> tuple[float, float, float, float]:
    """Brightness, contrast, saturation factors and a gamma."""
    return (float(rng.uniform(0.7, 1.3)), float(rng.uniform(0.7, 1.3)),
            float(rng.uniform(0.7, 1.3)), float(rng.uniform(0.8, 1.2)))


def _apply_jitter(image: np.ndarray, parameters) -> np.ndarray:
    brightness, contrast, saturation, gamma = parameters
    image = image * np.float32(brightness)
    mean = image.mean()
    image = (image - mean) * np.float32(contrast) + mean
    grey = luma(image)[..., None]
    image = (image - grey) * np.float32(saturation) + grey
    return np.clip(image, 0.0, 1.0) ** np.float32(gamma)


@dataclass(frozen=True)
class Augmentation:
    """Random crop to ``crop`` (``(H, W)``; smaller images are zero-padded at the bottom and
    right, with unknown ground truth there) and colour jitter (:data:`JITTER_MODES`)."""

    crop: tuple[int, int]
    jitter: str = "asymmetric"

    def __post_init__(self):
        if self.jitter not in JITTER_MODES:
            raise UsageError(f"--jitter: one of {', '.join(JITTER_MODES)}, not {self.jitter!r}")

    def apply(self, sample: TrainingSample, rng: np.random.Generator,
              extra: Optional[np.ndarray] = None) -> tuple[TrainingSample, Optional[np.ndarray]]:
        """Crop (and jitter) ``sample``; ``extra`` ``(H, W)`` (a teacher's disparity) gets the
        same crop."""
        height, width = sample.left.shape[:2]
        crop_h, crop_w = self.crop
        top = int(rng.integers(0, height - crop_h + 1)) if height > crop_h else 0
        left = int(rng.integers(0, width - crop_w + 1)) if width > crop_w else 0

        def cut(array, fill):
            if array is None:
                return None
            window = array[top:top + crop_h, left:left + crop_w]
            pad_h, pad_w = crop_h - window.shape[0], crop_w - window.shape[1]
            if pad_h or pad_w:
                pad = ((0, pad_h), (0, pad_w)) + ((0, 0),) * (array.ndim - 2)
                window = np.pad(window, pad, constant_values=fill)
            return np.array(window, copy=True)

        left_image, right_image = cut(sample.left, 0.0), cut(sample.right, 0.0)
        disparity = cut(sample.disparity, np.nan)
        extra = cut(extra, np.nan)
        if self.jitter != "none":
            shared = _jitter_parameters(rng)
            independent = self.jitter == "per-view" or (self.jitter == "asymmetric" and rng.random() < 0.2)
            left_image = _apply_jitter(left_image, shared)
            right_image = _apply_jitter(right_image, _jitter_parameters(rng) if independent else shared)
        return TrainingSample(left_image.astype(np.float32), right_image.astype(np.float32),
                              disparity, sample.name), extra


# ----------------------------------------------------------------------------- teacher

class TeacherCache:
    """Another backend's disparity of each sample, computed once (on the whole, un-augmented
    pair) and kept in memory and, for finite data, as ``.npy`` files in ``folder``."""

    def __init__(self, backend: str, max_disp: int, folder: Optional[Path] = None,
                 device: str = "cpu", params: Optional[dict] = None):
        self.backend_name = backend
        self.max_disp = max_disp
        self.folder = Path(folder) if folder else None
        self.device = device
        self.params = dict(params or {})
        self._backend = None
        self._memory: dict[str, np.ndarray] = {}

    def check(self) -> None:
        """Create the backend now so a bad teacher fails before training starts."""
        self._get_backend()

    def _get_backend(self):
        if self._backend is None:
            from ..backends import create_backend

            self._backend = create_backend(self.backend_name, max_disp=self.max_disp,
                                           device=self.device, **self.params)
        return self._backend

    def __getstate__(self):  # worker processes build their own backend
        state = dict(self.__dict__)
        state["_backend"] = None
        state["_memory"] = {}
        return state

    def disparity(self, sample: TrainingSample, key: Optional[str]) -> np.ndarray:
        if key is not None and key in self._memory:
            return self._memory[key]
        path = self.folder / f"{key}.npy" if (self.folder is not None and key is not None) else None
        if path is not None and path.is_file():
            try:
                values = np.load(path)
                if values.shape == sample.left.shape[:2]:
                    self._memory[key] = values
                    return values
            except (OSError, ValueError):
                pass  # a damaged cache file is recomputed
        from ..data import StereoPair
        from .synthetic import to_uint8

        pair = StereoPair(to_uint8(sample.left), to_uint8(sample.right), name=sample.name)
        values = self._get_backend().compute(pair).disparity.astype(np.float32)
        if key is not None:
            self._memory[key] = values
            if path is not None:
                from ..io.atomic import atomic_path

                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(path, overwrite=True) as tmp:
                    with open(tmp, "wb") as handle:
                        np.save(handle, values)
        return values


# ----------------------------------------------------------------------------- batches

@dataclass
class Batch:
    """``left``, ``right``: ``(B, 3, H, W)`` float32 in [0, 1]; ``disparity`` and ``teacher``:
    ``(B, H, W)`` float32 with NaN unknown, or None."""

    left: "object"
    right: "object"
    disparity: "object"
    teacher: "object"
    names: list[str]
    indices: list[int]


class BatchMaker:
    """Batch ``i`` of a run, a pure function of ``(seed, i)`` (see the module docstring)."""

    def __init__(self, source: SampleSource, batch_size: int, augmentation: Augmentation, seed: int,
                 teacher: Optional[TeacherCache] = None):
        if batch_size < 1:
            raise UsageError(f"--batch must be at least 1, got {batch_size}")
        self.source = source
        self.batch_size = batch_size
        self.augmentation = augmentation
        self.seed = int(seed)
        self.teacher = teacher
        self._permutations: dict[int, np.ndarray] = {}

    def sample_index(self, position: int) -> int:
        """The sample at ``position`` of the (endless) visiting order."""
        if self.source.length is None:
            return position
        length = self.source.length
        epoch, offset = divmod(position, length)
        order = self._permutations.get(epoch)
        if order is None:
            order = np.random.default_rng([self.seed, epoch, 17]).permutation(length)
            self._permutations = {epoch: order}  # one epoch at a time is all a run needs
        return int(order[offset])

    def make(self, iteration: int, slots: Optional[range] = None) -> Batch:
        """Batch ``iteration``, or only its ``slots`` (one rank's share of a distributed run)."""
        import torch

        lefts, rights, disparities, teachers, names, indices = [], [], [], [], [], []
        for slot in (range(self.batch_size) if slots is None else slots):
            index = self.sample_index(iteration * self.batch_size + slot)
            sample = self.source.load(index)
            teacher = None
            if self.teacher is not None:
                teacher = self.teacher.disparity(sample, self.source.cache_key(index))
            rng = np.random.default_rng([self.seed, iteration, slot, 29])
            sample, teacher = self.augmentation.apply(sample, rng, teacher)
            lefts.append(sample.left)
            rights.append(sample.right)
            disparities.append(sample.disparity)
            teachers.append(teacher)
            names.append(sample.name)
            indices.append(index)

        def stack_images(images):
            return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()

        def stack_maps(maps):
            if all(m is None for m in maps):
                return None
            shape = next(m.shape for m in maps if m is not None)
            return torch.from_numpy(np.stack([m if m is not None else np.full(shape, np.nan, np.float32)
                                              for m in maps]).astype(np.float32))

        return Batch(stack_images(lefts), stack_images(rights), stack_maps(disparities),
                     stack_maps(teachers), names, indices)


class _IterationDataset:
    """``dataset[i]`` = batch of iteration ``start + i`` (for a torch DataLoader)."""

    def __init__(self, maker: BatchMaker, start: int, stop: int, slots: Optional[range] = None):
        self.maker, self.start, self.stop, self.slots = maker, start, stop, slots

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int) -> Batch:
        return self.maker.make(self.start + i, self.slots)


def _identity(batch):
    return batch


def iterate_batches(maker: BatchMaker, start: int, stop: int, workers: int = 0,
                    slots: Optional[range] = None):
    """Batches of iterations ``start .. stop - 1`` in order (only ``slots`` of each, if given),
    prepared by ``workers`` background processes (0: in this process). The result does not
    depend on ``workers``."""
    if workers <= 0:
        for iteration in range(start, stop):
            yield maker.make(iteration, slots)
        return
    import torch.utils.data

    loader = torch.utils.data.DataLoader(_IterationDataset(maker, start, stop, slots), batch_size=None,
                                         shuffle=False, num_workers=workers, prefetch_factor=4,
                                         persistent_workers=False, collate_fn=_identity)
    yield from loader


# ----------------------------------------------------------------------------- held-out synthetic

def validation_samples(count: int, crop: tuple[int, int], max_disp: int) -> list[TrainingSample]:
    """``count`` held-out synthetic pairs of the crop's size, the same for every run with this
    crop and disparity range (seeded in a namespace no training stream uses)."""
    config = replace(synthetic_config_for(crop, max_disp))
    samples = []
    for index in range(count):
        sample = generate((VALIDATION_NAMESPACE, index), config)
        samples.append(TrainingSample(sample.left, sample.right, sample.disparity, f"validation-{index}"))
    return samples


__all__ = ["Augmentation", "Batch", "BatchMaker", "ConcatSource", "DatasetSource", "JITTER_MODES",
           "SampleSource", "SyntheticSource", "TeacherCache", "TrainingSample", "iterate_batches",
           "looks_like_heldout", "parse_data_spec", "refuse_heldout", "synthetic_config_for",
           "validation_samples"]
