"""Property-based fuzzing of every reader: whatever the bytes, only depthapp's own error class
comes out (:class:`depthapp.errors.DepthAppError`), never a traceback of another type.

Inputs are real files mutated: the shipped calibrations (every format), images written by
OpenCV, PFM/NPY/KITTI disparity maps, id lists, dataset folders, weights and export metadata.
Numbers are replaced by the values that broke readers before (nan, inf, 0, negative, 1e308,
1e-300, integers beyond int64, words), declared sizes disagree with the data, bytes are
flipped, cut and inserted.

The CI budget is small (``EXAMPLES`` per reader). The long run::

    DEPTHAPP_FUZZ_EXAMPLES=20000 python -m pytest -q tests/fuzz -p no:cacheprovider

prints the inputs, refusals, acceptances and crashes per reader. OpenCV FileStorage inputs
run in a child process there, so a memory-corruption signal is caught and counted.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from depthapp.errors import DepthAppError

REPO = Path(__file__).resolve().parents[2]
CALIB = REPO / "calib"
EXAMPLES = int(os.environ.get("DEPTHAPP_FUZZ_EXAMPLES") or 25)
LONG_RUN = bool(os.environ.get("DEPTHAPP_FUZZ_EXAMPLES"))

FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not LONG_RUN,
                suppress_health_check=list(HealthCheck))

BAD_NUMBERS = ["nan", "NaN", "inf", "-inf", "Infinity", "0", "-0", "-1", "-68", "-3", "1e308",
               "-1e308", "1e-300", "1e999", "99999999999", "9223372036854775808",
               "99999999999999999999999999999999999999", "abc", '"abc"', "", "[]", "{}", "null",
               "true", "0x10", "1.5", "2000000", "3"]


def run_reader(counts, name: str, read, *args, **kwargs):
    """Call a reader; anything but success or a DepthAppError fails the test."""
    counts[name]["inputs"] += 1
    try:
        read(*args, **kwargs)
    except DepthAppError as error:
        message = str(error)
        assert message and "\n" not in message.strip(), f"{name}: not one line: {message!r}"
        counts[name]["refused"] += 1
        return
    except BaseException as error:  # noqa: BLE001 - the property under test
        counts[name]["crashes"] += 1
        raise AssertionError(f"{name}: {type(error).__name__} escaped: {error}") from error
    counts[name]["accepted"] += 1


def fuzz_file_reader(folder: Path, counts, label: str, reader, strategy, filename: str) -> None:
    """Write each input of ``strategy`` to ``folder/filename`` and read it with ``reader``."""
    @FUZZ
    @given(data=strategy)
    def check(data):
        (folder / filename).write_bytes(data)
        run_reader(counts, label, reader, folder / filename)

    check()


# Mutations --------------------------------------------------------------------------------------

_NUMBER = re.compile(rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


@st.composite
def mutated(draw, seeds: list[bytes]) -> bytes:
    """A seed with numbers replaced by bad values, and bytes flipped, cut or inserted."""
    data = draw(st.sampled_from(seeds))
    numbers = list(_NUMBER.finditer(data))
    for _ in range(draw(st.integers(0, 3)) if numbers else 0):
        match = numbers[draw(st.integers(0, len(numbers) - 1))]
        value = draw(st.sampled_from(BAD_NUMBERS)).encode()
        data = data[:match.start()] + value + data[match.end():]
        numbers = list(_NUMBER.finditer(data))
        if not numbers:
            break
    for _ in range(draw(st.integers(0, 2))):
        if not data:
            break
        kind = draw(st.sampled_from(["flip", "cut", "insert", "truncate", "duplicate"]))
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
        elif kind == "cut":
            data = data[:at] + data[at + draw(st.integers(1, 64)):]
        elif kind == "insert":
            data = data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
        elif kind == "truncate":
            data = data[:at]
        else:
            data = data[:at] + data[at:at + 200] + data[at:]
    return data


# Calibration files ------------------------------------------------------------------------------

def _calibration_seeds(folder: Path) -> dict[str, list[bytes]]:
    from depthapp.calibration.readers import read_calibration
    from depthapp.calibration.writers import write_calibration

    text_seeds = [path.read_bytes() for path in sorted(CALIB.glob("*")) + sorted(CALIB.glob("ros_*/*"))
                  if path.is_file() and path.suffix in (".txt", ".json", ".yaml")]
    raw = read_calibration(CALIB / "opencv_doc_chessboard.json")
    opencv = []
    for name in ("seed.yml", "seed.xml"):
        write_calibration(raw, folder / name, overwrite=True, units="mm")
        opencv.append((folder / name).read_bytes())
    opencv += [(CALIB / "opencv_stereo_calib" / name).read_bytes()
               for name in ("intrinsics.yml", "extrinsics.yml")]
    return {"text": text_seeds, "opencv": opencv}


@st.composite
def opencv_matrix_file(draw) -> bytes:
    """A YAML/XML file whose matrix nodes declare rows, cols, dt and data that may disagree."""
    nodes = []
    for name in draw(st.lists(st.sampled_from(["M1", "D1", "M2", "D2", "R", "T", "P1", "P2", "Q",
                                               "R1", "R2"]), min_size=1, max_size=8, unique=True)):
        rows = draw(st.sampled_from([-3, -1, 0, 1, 3, 4, 65, 2**31, 2**40]) | st.integers(-5, 70))
        cols = draw(st.sampled_from([-3, -1, 0, 1, 3, 4, 65, 2**31]) | st.integers(-5, 70))
        dt = draw(st.sampled_from(["d", "f", "i", "u", "3d", "2f", "x", "dd", ""]))
        count = draw(st.integers(0, 20))
        data = [draw(st.sampled_from(["1.", "0", "-1", "nan", ".inf", "-.inf", "1e308", "3"]))
                for _ in range(count)]
        nodes.append((name, rows, cols, dt, data))
    extras = draw(st.lists(st.sampled_from(["units: mm", "units: furlong", "rectified: 1",
                                            "rectified: 7", "ndisp: -68", "ndisp: 1e308",
                                            "width: 0", "height: nan", "image_size: [ 640, 480 ]",
                                            "image_size: [ -1, 1e308 ]", "ndisp: abc"]),
                          max_size=4))
    if draw(st.booleans()):
        lines = ["%YAML:1.0", "---"]
        for name, rows, cols, dt, data in nodes:
            lines += [f"{name}: !!opencv-matrix", f"   rows: {rows}", f"   cols: {cols}",
                      f"   dt: {dt}", f"   data: [ {', '.join(data)} ]"]
        lines += extras
    else:
        lines = ['<?xml version="1.0"?>', "<opencv_storage>"]
        for name, rows, cols, dt, data in nodes:
            lines.append(f'<{name} type_id="opencv-matrix"><rows>{rows}</rows><cols>{cols}</cols>'
                         f"<dt>{dt}</dt><data>{' '.join(data)}</data></{name}>")
        for extra in extras:
            key, _, value = extra.partition(": ")
            lines.append(f"<{key}>{value.strip('[]')}</{key}>")
        lines.append("</opencv_storage>")
    return ("\n".join(lines) + "\n").encode()


@st.composite
def json_calibration(draw) -> bytes:
    """stereodemo and depthapp JSON whose every field may hold any bad value or type."""
    values = st.sampled_from([float("nan"), float("inf"), 0, -1, 1e308, 1e-300, 10**30, "abc",
                              None, [], {}, True, [1, 2], [[1, 2, 3]] * 3, 640, 480.0, 0.1, 500])
    if draw(st.booleans()):
        data = {"fx": 500.0, "fy": 500.0, "cx0": 320.0, "cx1": 320.0, "cy": 240.0,
                "baseline_meters": 0.075, "width": 640, "height": 480}
    else:
        data = json.loads((CALIB / "opencv_doc_chessboard.json").read_text())
    for key in draw(st.lists(st.sampled_from(sorted(data) + ["ndisp", "units", "extra"]), max_size=3)):
        data[key] = draw(values)
    text = json.dumps(data, allow_nan=True)
    if draw(st.integers(0, 9)) == 0:  # deep nesting
        depth = draw(st.sampled_from([100, 5000, 100_000]))
        text = text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    return text.encode()


def _read_calibration_file(path: Path):
    from depthapp.calibration.readers import read_calibration

    return read_calibration(path, units="mm")


@pytest.fixture(scope="module")
def calib_seeds(tmp_path_factory):
    return _calibration_seeds(tmp_path_factory.mktemp("seeds"))


def test_fuzz_calibration_text_formats(tmp_path_factory, calib_seeds, fuzz_counts):
    """Middlebury, KITTI raw and stereo, stereodemo and depthapp JSON files, mutated."""
    fuzz_file_reader(tmp_path_factory.mktemp("calib"), fuzz_counts, "calibration (text/JSON)",
                     _read_calibration_file, mutated(calib_seeds["text"]) | json_calibration(), "calib.txt")


# OpenCV FileStorage: in the long run, in child processes that may die of a signal.
_OPENCV_CHILD = """
import sys
from pathlib import Path
from depthapp.errors import DepthAppError
from depthapp.calibration.readers import read_calibration
for line in sys.stdin:
    path = Path(line.strip())
    try:
        read_calibration(path, units="mm")
        outcome = "accepted"
    except DepthAppError:
        outcome = "refused"
    except BaseException as error:
        outcome = "crash " + type(error).__name__ + " " + str(error).replace(chr(10), " ")[:200]
    print(outcome, flush=True)
"""


def _run_opencv_batch(paths: list[Path], counts) -> list[str]:
    """Feed files to child processes; a child killed by a signal counts one crash and the
    rest of the batch goes to a fresh child."""
    crashes = []
    pending = list(paths)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    while pending:
        batch = pending[:500]
        try:
            child = subprocess.run([sys.executable, "-c", _OPENCV_CHILD], input="\n".join(map(str, batch)) + "\n",
                                   capture_output=True, text=True, env=env, timeout=900)
        except subprocess.TimeoutExpired as expired:  # a hang counts as a crash of the input it hung on
            output = expired.stdout or ""
            output = output.decode() if isinstance(output, bytes) else output
            child = subprocess.CompletedProcess(expired.cmd, -9, output, "timed out")
        outcomes = child.stdout.splitlines()
        for path, outcome in zip(batch, outcomes):
            counts["opencv FileStorage"]["inputs"] += 1
            if outcome == "accepted":
                counts["opencv FileStorage"]["accepted"] += 1
            elif outcome == "refused":
                counts["opencv FileStorage"]["refused"] += 1
            else:
                counts["opencv FileStorage"]["crashes"] += 1
                crashes.append(f"{path}: {outcome}")
        done = len(outcomes)
        if child.returncode != 0 and done < len(batch):
            counts["opencv FileStorage"]["inputs"] += 1
            counts["opencv FileStorage"]["crashes"] += 1
            crashes.append(f"{pending[done]}: child exited {child.returncode} "
                           f"({child.stderr.strip().splitlines()[-1:] or ''})")
            done += 1
        pending = pending[done:]
    return crashes


def test_fuzz_opencv_filestorage(tmp_path_factory, calib_seeds, fuzz_counts):
    """OpenCV YAML/XML: mutated real files and matrices whose declared shape lies."""
    folder = tmp_path_factory.mktemp("opencv")
    kept: list[Path] = []

    @FUZZ
    @given(data=mutated(calib_seeds["opencv"]) | opencv_matrix_file(), xml=st.booleans())
    def check(data, xml):
        suffix = ".xml" if data.lstrip().startswith(b"<") else ".yml"
        if LONG_RUN:
            path = folder / f"{len(kept):06d}{suffix}"
            path.write_bytes(data)
            kept.append(path)
        else:
            path = folder / f"calib{suffix}"
            path.write_bytes(data)
            run_reader(fuzz_counts, "opencv FileStorage", _read_calibration_file, path)

    check()
    if kept:
        crashes = _run_opencv_batch(kept, fuzz_counts)
        assert not crashes, "\n".join(crashes[:20])


# Disparity maps ---------------------------------------------------------------------------------

@st.composite
def pfm_file(draw) -> bytes:
    magic = draw(st.sampled_from([b"Pf", b"PF", b"pf", b"P5", b"Pf "]))
    width = draw(st.sampled_from([0, 1, 3, 7, -2, 10**12, 2**31]) | st.integers(0, 40))
    height = draw(st.sampled_from([0, 1, 4, 10**10]) | st.integers(0, 40))
    scale = draw(st.sampled_from([b"-1.0", b"1.0", b"0", b"nan", b"-inf", b"1e999", b"abc", b"-"]))
    channels = 3 if magic == b"PF" else 1
    declared = max(0, width) * max(0, height) * channels if width < 10**6 and height < 10**6 else 16
    count = draw(st.sampled_from([declared, declared - 1, declared + 1, declared * 2, 0]))
    body = np.asarray(draw(st.lists(st.floats(width=32), min_size=min(max(count, 0), 64),
                                    max_size=min(max(count, 0), 64))), dtype="<f4").tobytes()
    body = (body * (max(count, 1) // 64 + 1))[:max(count, 0) * 4]
    header = magic + b"\n" + f"{width} {height}".encode() + b"\n" + scale + b"\n"
    return header + body


def test_fuzz_pfm(tmp_path_factory, fuzz_counts):
    from depthapp.io import read_disparity, write_pfm

    folder = tmp_path_factory.mktemp("pfm")
    write_pfm(folder / "seed.pfm", np.random.default_rng(0).random((5, 7)).astype(np.float32))
    seeds = [(folder / "seed.pfm").read_bytes()]

    fuzz_file_reader(folder, fuzz_counts, "PFM", read_disparity, pfm_file() | mutated(seeds), "d.pfm")


def _png_seeds() -> list[bytes]:
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 65535, (6, 9), dtype=np.uint16), rng.integers(0, 255, (6, 9), dtype=np.uint8),
              rng.integers(0, 255, (4, 5, 3), dtype=np.uint8), rng.integers(0, 255, (4, 5, 4), dtype=np.uint8)]
    return [cv2.imencode(".png", image)[1].tobytes() for image in images]


def _png(width: int, height: int, depth: int = 16, colour: int = 0, idat: bytes = b"") -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", idat or zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


@st.composite
def declared_png(draw) -> bytes:
    """Valid chunk structure, any declared size (up to 2^32-1 a side), depth and colour type."""
    width = draw(st.sampled_from([0, 1, 9, 20000, 2**31, 2**32 - 1]) | st.integers(0, 64))
    height = draw(st.sampled_from([0, 1, 6, 20000, 2**30, 2**32 - 1]) | st.integers(0, 64))
    return _png(width, height, draw(st.sampled_from([1, 8, 16, 3])), draw(st.sampled_from([0, 2, 3, 4, 6, 7])),
                zlib.compress(draw(st.binary(max_size=256))))


def test_fuzz_kitti_png(tmp_path_factory, fuzz_counts):
    from depthapp.io import read_kitti_disparity

    fuzz_file_reader(tmp_path_factory.mktemp("kitti"), fuzz_counts, "KITTI 16-bit PNG",
                     read_kitti_disparity, mutated(_png_seeds()) | declared_png(), "d.png")


@st.composite
def npy_file(draw) -> bytes:
    """A .npy whose header may lie about dtype, shape and order, or hold a pickle."""
    if draw(st.booleans()):
        import io

        dtype = draw(st.sampled_from(["<f4", "<f8", "<u2", "|b1", "<U3", "|S2", "<c8", "O", "<i8"]))
        shape = draw(st.lists(st.integers(0, 5), max_size=3))
        array = np.zeros(shape, dtype=dtype)
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=True)
        return buffer.getvalue()
    descr = draw(st.sampled_from(["'<f4'", "'<f8'", "'|O'", "'<U2'", "[('a', '<f4')]", "'x'", "3",
                                  "'<f4', 'evil': 1", "'V8'"]))
    shape = draw(st.sampled_from(["()", "(3,)", "(2, 3)", "(-1, 2)", "(10**12, 10**12)",
                                  "(99999999999999999999,)", "(2, 'a')", "[2, 3]", "(0,)"]))
    order = draw(st.sampled_from(["False", "True", "1", "'no'"]))
    header = f"{{'descr': {descr}, 'fortran_order': {order}, 'shape': {shape}, }}"
    header = header.ljust(draw(st.sampled_from([len(header), 118, 70000])))
    version = draw(st.sampled_from([b"\x01\x00", b"\x02\x00", b"\x03\x00", b"\x09\x09"]))
    size = struct.pack("<H", min(len(header) + 1, 65535)) if version == b"\x01\x00" else struct.pack("<I", len(header) + 1)
    return b"\x93NUMPY" + version + size + header.encode() + b"\n" + draw(st.binary(max_size=64))


def test_fuzz_npy(tmp_path_factory, fuzz_counts):
    from depthapp.io import read_disparity

    folder = tmp_path_factory.mktemp("npy")
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.ones((3, 4), np.float32))
    seeds = [buffer.getvalue()]

    fuzz_file_reader(folder, fuzz_counts, "NPY", read_disparity, npy_file() | mutated(seeds), "d.npy")


# Images -----------------------------------------------------------------------------------------

def _image_seeds() -> list[bytes]:
    rng = np.random.default_rng(2)
    colour = rng.integers(0, 255, (6, 9, 3), dtype=np.uint8)
    grey16 = rng.integers(0, 65535, (6, 9), dtype=np.uint16)
    seeds = [cv2.imencode(ext, colour)[1].tobytes() for ext in (".png", ".jpg", ".bmp", ".ppm", ".tif", ".webp")]
    seeds += [cv2.imencode(ext, grey16)[1].tobytes() for ext in (".png", ".tif", ".pgm")]
    return seeds


@st.composite
def declared_header(draw) -> bytes:
    """Headers of every format that declare any size, followed by little or no data."""
    width = draw(st.sampled_from([0, 1, 7, 20000, 65535, 2**31 - 1]))
    height = draw(st.sampled_from([0, 1, 5, 20000, 65535, 2**31 - 1]))
    kind = draw(st.sampled_from(["png", "bmp", "pnm", "jpeg", "tiff", "webp"]))
    tail = draw(st.binary(max_size=64))
    if kind == "png":
        return _png(width % 2**32, height % 2**32, 8, 2, zlib.compress(tail))
    if kind == "bmp":
        return b"BM" + struct.pack("<IHHI", 54 + len(tail), 0, 0, 54) + struct.pack(
            "<IiiHHIIiiII", 40, width, -height, 1, 24, 0, 0, 0, 0, 0, 0) + tail
    if kind == "pnm":
        return f"P6\n{width} {height}\n255\n".encode() + tail
    if kind == "jpeg":
        sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height % 65536, width % 65536, 1) + b"\x01\x11\x00"
        return b"\xff\xd8" + sof + tail + b"\xff\xd9"
    if kind == "tiff":
        entries = struct.pack("<HHII", 256, 4, 1, width) + struct.pack("<HHII", 257, 4, 1, height)
        return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 2) + entries + b"\x00" * 4 + tail
    body = b"VP8L" + struct.pack("<I", 5) + b"\x2f" + struct.pack(
        "<I", ((width - 1) & 0x3FFF) | (((height - 1) & 0x3FFF) << 14)) + tail
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def test_fuzz_image_headers(tmp_path_factory, fuzz_counts):
    from depthapp.io import read_rgb

    fuzz_file_reader(tmp_path_factory.mktemp("images"), fuzz_counts, "image headers", read_rgb,
                     mutated(_image_seeds()) | declared_header(), "image.png")


# Id lists and dataset layouts -------------------------------------------------------------------

def test_fuzz_id_lists(tmp_path_factory, fuzz_counts):
    from depthapp.evaluation.datasets import _read_ids

    lines = st.lists(st.text(max_size=20), max_size=10).map(
        lambda items: "\n".join(items).encode("utf-8", "surrogatepass"))
    fuzz_file_reader(tmp_path_factory.mktemp("ids"), fuzz_counts, "id lists", _read_ids,
                     st.binary(max_size=200) | lines, "ids.txt")


_LAYOUT_FILES = ["training/image_2/000000_10.png", "training/image_3/000000_10.png",
                 "training/disp_occ_0/000000_10.png", "training/disp_noc_0/000000_10.png",
                 "training/obj_map/000000_10.png", "training/colored_0/000000_10.png",
                 "training/colored_1/000000_10.png", "training/disp_occ/000000_10.png",
                 "training/disp_noc/000000_10.png", "trainingQ/Motor/im0.png", "trainingQ/Motor/im1.png",
                 "trainingQ/Motor/disp0GT.pfm", "trainingQ/Motor/mask0nocc.png", "trainingQ/Motor/calib.txt",
                 "Motor/im0.png", "Motor/im1.png", "Motor/disp0.pfm", "Motor/disp1.pfm", "Motor/calib.txt",
                 "left/a.png", "right/a.png", "disp/a.pfm", "a_left.png", "a_right.png", "a_disp.npy",
                 "FlyingThings3D/frames_cleanpass/TEST/A/0000/left/0006.png",
                 "FlyingThings3D/frames_cleanpass/TEST/A/0000/right/0006.png",
                 "FlyingThings3D/disparity/TEST/A/0000/left/0006.pfm"]


_LAYOUTS = {"kitti2015": _LAYOUT_FILES[:5], "kitti2012": _LAYOUT_FILES[5:9],
            "middlebury": _LAYOUT_FILES[9:14], "folder": _LAYOUT_FILES[14:25],
            "sceneflow": _LAYOUT_FILES[25:]}


def _role(name: str) -> str:
    """Which kind of file a layout path holds, so a tree is mostly well-formed."""
    if name.endswith(".pfm"):
        return "pfm"
    if name.endswith(".npy"):
        return "npy"
    if "disp" in name:
        return "disparity png"
    if "obj_map" in name or "mask" in name:
        return "grey png"
    return "image"


@st.composite
def dataset_tree(draw, seeds: dict[str, bytes]) -> tuple[str, dict[str, bytes]]:
    """A complete layout of one dataset (most of the time) with stray files of others; files
    are mostly the right kind, sometimes mutated."""
    layout = draw(st.sampled_from(sorted(_LAYOUTS)))
    names = list(_LAYOUTS[layout]) if draw(st.integers(0, 3)) else []
    names = sorted(set(names) | set(draw(st.lists(st.sampled_from(_LAYOUT_FILES), max_size=3))))
    for name in draw(st.lists(st.sampled_from(names), max_size=1, unique=True)) if names else []:
        names.remove(name)
    files = {}
    for name in names:
        if name.endswith("calib.txt"):
            files[name] = draw(mutated([(CALIB / "middlebury2014_motorcycle_calib.txt").read_bytes()]))
        elif draw(st.integers(0, 4)):
            files[name] = seeds[_role(name)]
        else:
            files[name] = draw(mutated(list(seeds.values())))
    name = layout if draw(st.integers(0, 3)) else draw(st.sampled_from(sorted(_LAYOUTS)))
    return name, files


def test_fuzz_dataset_layouts(tmp_path_factory, fuzz_counts):
    import io
    import shutil

    from depthapp.evaluation.datasets import open_dataset

    root_parent = tmp_path_factory.mktemp("datasets")
    rng = np.random.default_rng(3)
    npy = io.BytesIO()
    np.save(npy, np.full((6, 9), 2.0, np.float32))
    seeds = {"image": cv2.imencode(".png", rng.integers(0, 255, (6, 9, 3), dtype=np.uint8))[1].tobytes(),
             "disparity png": cv2.imencode(".png", rng.integers(1, 9000, (6, 9), dtype=np.uint16))[1].tobytes(),
             "grey png": cv2.imencode(".png", rng.integers(0, 255, (6, 9), dtype=np.uint8))[1].tobytes(),
             "pfm": b"Pf\n9 6\n-1.0\n" + np.ones(54, "<f4").tobytes(), "npy": npy.getvalue()}
    counter = iter(range(10**9))

    def load_all(name: str, root: Path) -> None:
        dataset = open_dataset(name, root)
        for sample in list(dataset)[:2]:
            sample.load_pair()
            sample.load_ground_truth()

    @FUZZ
    @given(tree=dataset_tree(seeds))
    def check(tree):
        name, files = tree
        root = root_parent / str(next(counter))
        for relative, data in files.items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_bytes(data)
        root.mkdir(exist_ok=True)
        run_reader(fuzz_counts, "dataset layouts", load_all, name, root)
        shutil.rmtree(root)

    check()


# Weights and exported-model metadata ------------------------------------------------------------

def test_fuzz_weights_specs_and_checkpoints(tmp_path_factory, fuzz_counts):
    pytest.importorskip("torch", reason="torch is needed to read checkpoints")
    import io

    import torch

    from depthapp.weights import cache

    folder = tmp_path_factory.mktemp("weights")
    buffer = io.BytesIO()
    torch.save({"conv.weight": torch.ones(2, 2), "step": 3}, buffer)
    seeds = [buffer.getvalue()]

    def resolve_and_load(spec: str, data: bytes) -> None:
        (folder / "w.pth").write_bytes(data)
        cache.resolve_weights(spec, "psmnet", None, fetch_missing=False)
        cache.load_checkpoint(cache.resolve_weights(str(folder / "w.pth"), "psmnet", None,
                                                    fetch_missing=False))

    @FUZZ
    @given(spec=st.text(max_size=30), data=mutated(seeds) | st.binary(max_size=300))
    def check(spec, data):
        run_reader(fuzz_counts, "weights records", resolve_and_load, spec, data)

    check()


def test_fuzz_export_metadata(tmp_path_factory, fuzz_counts):
    from depthapp.export.exporter import check_metadata

    good = {"depthapp.backend": "psmnet", "depthapp.input_kind": "rgb", "depthapp.input_names": "left,right",
            "depthapp.output_name": "disparity", "depthapp.mean": "[0.485, 0.456, 0.406]",
            "depthapp.std": "[0.229, 0.224, 0.225]", "depthapp.pad_multiple": "16",
            "depthapp.pad_mode": "constant", "depthapp.min_padded_size": "0", "depthapp.max_disp": "192",
            "depthapp.height": "64", "depthapp.width": "96", "depthapp.padded_height": "64",
            "depthapp.padded_width": "96", "depthapp.dynamic": "false", "depthapp.extra": "{}"}
    values = st.sampled_from(BAD_NUMBERS + ["[1, 2]", "[0, 0, 0]", "[nan]", "dynamic", "true",
                                            "[" * 5000 + "]" * 5000, "1" * 5000]) | st.text(max_size=20)

    @FUZZ
    @given(changes=st.dictionaries(st.sampled_from(sorted(good)), values, max_size=4),
           removed=st.lists(st.sampled_from(sorted(good)), max_size=2))
    def check(changes, removed):
        meta = {**good, **changes}
        for key in removed:
            meta.pop(key, None)
        run_reader(fuzz_counts, "export metadata", check_metadata, meta, "model.onnx")

    check()
