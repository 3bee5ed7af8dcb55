"""Without the optional extras, the robotics options fail with one line naming the extra."""

from __future__ import annotations

import sys

import pytest

from depthapp.cli import main


@pytest.mark.parametrize("blocked, argv, expected", [
    ("rosbags.highlevel", ["camera", "--bag", "{tmp}"],
     "depthapp: error: reading and writing ROS bags needs the rosbags package: pip install 'depthapp[ros]'"),
    ("rerun", ["run", "--sample", "--backend", "opencv-bm", "--out", "{tmp}/out",
               "--rerun-save", "{tmp}/x.rrd"],
     "depthapp: error: logging to Rerun needs the rerun-sdk package: pip install 'depthapp[rerun]'"),
])
def test_missing_extra_is_one_line(tmp_path, capsys, monkeypatch, blocked, argv, expected):
    monkeypatch.setitem(sys.modules, blocked, None)  # what `import` sees when it is not installed
    code = main([arg.format(tmp=tmp_path) for arg in argv])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip() == expected
