"""Weights trained by depthapp are registry records: the ones shipped in models/, and any
``depthapp train`` output folder (or its ``weights_record.json``) given as ``--weights``."""

from __future__ import annotations

import json
import math
import shutil
import warnings

import pytest

from depthapp.cli import main
from depthapp.errors import WeightsError
from depthapp.pipeline import choose_max_disp
from depthapp.weights import RECORDS, resolve_weights, sha256_file, verify
from depthapp.weights.registry import (RECORD_FILE, SGBM_MOTORCYCLE_BAD2, SHIPPED, SHIPPED_DIR,
                                       default_record, motorcycle_bad2, quality_note, record_at)

GCNET_RUN = SHIPPED_DIR / "gcnet-synthetic-h100"


def test_shipped_gcnet_record_is_in_the_registry_and_its_file_verifies():
    record = record_at(str(GCNET_RUN))
    assert record in SHIPPED and RECORDS[record.id] == record
    assert record.backend == "gcnet" and record.max_disp == 128 and record.padding_multiple == 32
    assert verify(record).ok and sha256_file(GCNET_RUN / "weights.pt") == record.sha256
    bad2 = motorcycle_bad2(record)
    assert bad2 is not None and math.isfinite(bad2) and 0 <= bad2 <= 100
    note = quality_note(record)
    assert record.id in note and f"{bad2:.1f} %" in note
    assert ("worse than" if bad2 >= SGBM_MOTORCYCLE_BAD2 else "better than") in note


def test_without_weights_gcnet_uses_the_best_shipped_record():
    best = default_record("gcnet")
    scores = [motorcycle_bad2(r) for r in SHIPPED if r.backend == "gcnet"]
    assert motorcycle_bad2(best) == min(s for s in scores if s is not None)
    resolved = resolve_weights(None, "gcnet", None)
    assert resolved.record == best and resolved.path.is_file()
    assert default_record("sgm") is None


def test_a_run_folder_and_its_record_file_are_weights_and_decide_max_disp():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no torch weights_only warning about a JSON file
        by_folder = resolve_weights(str(GCNET_RUN), "gcnet", None)
        by_file = resolve_weights(str(GCNET_RUN / RECORD_FILE), "gcnet", None)
    assert by_folder == by_file and by_folder.path == (GCNET_RUN / "weights.pt").resolve()
    with pytest.raises(WeightsError, match="belong to backend gcnet"):
        resolve_weights(str(GCNET_RUN), "ganet", None)
    # The record's 128 levels win over a calibration's ndisp (96 for the Motorcycle sample).
    assert choose_max_disp("gcnet", None, str(GCNET_RUN), None) == (128, "weights record")
    assert choose_max_disp("gcnet", 64, str(GCNET_RUN), None) == (64, "--max-disp")


def test_bad_run_folders_and_records_are_one_line_errors(tmp_path):
    with pytest.raises(WeightsError, match="without weights_record.json"):
        resolve_weights(str(tmp_path), "gcnet", None)
    (tmp_path / "r.json").write_text("[1, 2]")
    with pytest.raises(WeightsError, match="not a depthapp weights record"):
        resolve_weights(str(tmp_path / "r.json"), "gcnet", None)
    run = tmp_path / "run"
    shutil.copytree(GCNET_RUN, run, ignore=shutil.ignore_patterns("weights.pt"))
    with pytest.raises(WeightsError, match="weights file of gcnet-paper-gcnet not found"):
        resolve_weights(str(run), "gcnet", None)
    data = json.loads((run / RECORD_FILE).read_text())
    (run / RECORD_FILE).write_text(json.dumps(dict(data, max_disp=-3)))
    with pytest.raises(WeightsError, match="max_disp must be an integer"):
        resolve_weights(str(run), "gcnet", None)


def test_weights_list_shows_the_shipped_records(capsys):
    assert main(["weights", "list", "--verbose"]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("gcnet-paper-gcnet"))
    assert "shipped" in line
    assert quality_note(RECORDS["gcnet-paper-gcnet"]) in out
    assert "gcnet: untrained" not in out


def test_run_without_weights_names_the_shipped_record_and_its_quality(tmp_path, capsys):
    assert main(["run", "--sample", "--backend", "gcnet", "--scale", "0.2", "--device", "cpu",
                 "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert f"note: default {quality_note(default_record('gcnet'))}" in out
    assert "max disparity 128 levels (weights record)" in out
