"""``depthapp weights list | fetch | verify`` end to end."""

from __future__ import annotations

import shutil

import pytest

from depthapp.cli import main
from depthapp.weights import RECORDS, fetch


@pytest.fixture
def cache_with_one(tmp_path, monkeypatch):
    source = fetch("mccnn-fast-middlebury")
    cache = tmp_path / "models"
    cache.mkdir()
    shutil.copy(source, cache / source.name)
    monkeypatch.setenv("DEPTHAPP_MODELS", str(cache))
    return cache / source.name


@pytest.mark.network
def test_list_shows_every_record_and_its_state(cache_with_one, capsys):
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    for weights_id in RECORDS:
        assert weights_id in out
    line = next(l for l in out.splitlines() if l.startswith("mccnn-fast-middlebury"))
    assert "cached" in line
    line = next(l for l in out.splitlines() if l.startswith("psmnet-kitti2015"))
    assert "not fetched" in line
    assert main(["weights", "list", "--verbose"]) == 0
    assert "kitti2015_d1_all: 2.32 %" in capsys.readouterr().out


@pytest.mark.network
def test_verify_reports_corruption_with_exit_code(cache_with_one, capsys):
    assert main(["weights", "verify"]) == 0
    assert "mccnn-fast-middlebury: ok" in capsys.readouterr().out
    cache_with_one.write_bytes(cache_with_one.read_bytes()[:-10])
    assert main(["weights", "verify", "mccnn-fast-middlebury"]) == 1
    captured = capsys.readouterr()
    assert "CORRUPT" in captured.out and "depthapp weights fetch mccnn-fast-middlebury" in captured.out
    assert "failed verification" in captured.err


def test_fetch_errors_are_one_line_with_exit_codes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEPTHAPP_MODELS", str(tmp_path))
    assert main(["weights", "fetch", "no-such-weights"]) == 2
    assert "unknown weights 'no-such-weights'" in capsys.readouterr().err
    assert main(["weights", "fetch", "psmnet-kitti2015", "--offline"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "depthapp weights fetch psmnet-kitti2015" in err
    assert main(["weights", "verify", "psmnet-kitti2015"]) == 1
    assert "MISSING" in capsys.readouterr().out


def test_fetch_and_the_download_a_run_starts_show_progress_on_stderr_unless_quiet(mccnn_wheel_index, tmp_path, capsys):
    import re

    import numpy as np

    from depthapp.io import write_image
    from depthapp.sample import load_sample

    assert main(["weights", "fetch", "mccnn-fast-middlebury"]) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("downloading mccnn-fast-middlebury [")]
    assert lines and re.search(r"100% elapsed \d\d:\d\d ETA 00:00 KiB$", lines[-1]), captured.err
    assert "(sha256 ok)" in captured.out

    shutil.rmtree(tmp_path / "cache")
    assert main(["weights", "fetch", "mccnn-fast-middlebury", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "(sha256 ok)" in captured.out

    # `run` fetches a missing checkpoint itself, with the same bar (and none under --quiet).
    pair = load_sample()
    for side, image in (("left", pair.left), ("right", pair.right)):
        write_image(tmp_path / f"{side}.png", np.ascontiguousarray(image[200:248, 300:364]))
    run = ["run", str(tmp_path / "left.png"), str(tmp_path / "right.png"), "--backend", "mccnn",
           "--max-disp", "16"]
    shutil.rmtree(tmp_path / "cache")
    assert main(run + ["--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert re.search(r"^downloading weights mccnn-fast-middlebury \[.*100%", err, re.MULTILINE), err
    shutil.rmtree(tmp_path / "cache")
    assert main(run + ["--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
