"""Progress on the command line: stage lines with an ETA on stderr (stdout keeps the results) for
the learned backends of ``depthapp run``, none with ``--quiet`` (the other commands are tested
where their code lives: export, training, evaluation, weights)."""

import re

import numpy as np
import pytest

from depthapp.cli import main
from depthapp.io import write_image

ETA = re.compile(r"ETA \d\d:\d\d")


def progress_lines(text: str, description: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(description)]


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory, motorcycle_session):
    """A 96x64 crop of the Motorcycle pair (small, so the networks finish in seconds)."""
    folder = tmp_path_factory.mktemp("tiny-pair")
    for side, image in (("left", motorcycle_session.left), ("right", motorcycle_session.right)):
        write_image(folder / f"{side}.png", np.ascontiguousarray(image[200:264, 300:396]))
    return folder / "left.png", folder / "right.png"


@pytest.mark.slow
@pytest.mark.parametrize("backend, stage", [("psmnet", "aggregation"), ("mccnn", "features")])
def test_learned_backends_show_their_stages_with_an_eta_on_stderr(tmp_path, tiny_pair, capsys, backend, stage):
    left, right = tiny_pair
    assert main(["run", str(left), str(right), "--backend", backend, "--max-disp", "32",
                 "--out", str(tmp_path), "--offline"]) == 0
    captured = capsys.readouterr()
    lines = progress_lines(captured.err, f"run {backend}: ")
    assert any(line.startswith(f"run {backend}: {stage} [") for line in lines), captured.err
    assert any(ETA.search(line) for line in lines), captured.err
    assert lines[-1].startswith(f"run {backend}: done [") and "100%" in lines[-1]
    assert "run " not in captured.out and "timings:" in captured.out


def test_quiet_run_prints_results_and_no_progress(tmp_path, tiny_pair, capsys):
    left, right = tiny_pair
    assert main(["run", str(left), str(right), "--backend", "mccnn", "--max-disp", "32",
                 "--out", str(tmp_path), "--offline", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "timings:" in captured.out


def test_fast_classical_backends_print_no_progress(tmp_path, tiny_pair, capsys):
    left, right = tiny_pair
    assert main(["run", str(left), str(right), "--max-disp", "32", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().err == ""
