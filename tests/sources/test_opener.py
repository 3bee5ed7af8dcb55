"""open_source: what the user named, its errors, and new kinds of source by registration."""

from __future__ import annotations

import numpy as np
import pytest

from depthapp.errors import InputError, UsageError
from depthapp.sources import (FolderSequence, SequenceSource, SourceKind, open_source, opener,
                              register_source_kind, source_kinds)

from video_fixtures import write_pair_folder


def test_open_source_names_the_problem():
    with pytest.raises(InputError, match="no-such.avi: no such file or camera"):
        open_source(left="no-such.avi", right="no-such.avi")
    with pytest.raises(UsageError, match="--left and --right go together"):
        open_source(left="0")
    with pytest.raises(UsageError, match="give one source"):
        open_source()


def test_a_missing_camera_is_a_clear_error():
    source = open_source(left="97", right="98")
    with pytest.raises(InputError, match="camera 97: cannot open the camera"):
        source.open()


def test_a_new_kind_of_source_is_one_registration(tmp_path, stereo_videos, monkeypatch):
    monkeypatch.setattr(opener, "_KINDS", dict(opener._KINDS))
    folder = write_pair_folder(tmp_path / "rec", stereo_videos.frames[:3])
    recording = tmp_path / "take.fakebag"
    recording.write_text(str(folder))
    opened = []

    def open_fakebag(path, realtime, on_status, clock):
        opened.append((path, realtime))
        return SequenceSource(lambda: FolderSequence(path.read_text()), f"fake bag {path}")

    kind = register_source_kind(SourceKind("fakebag", lambda path: path.suffix == ".fakebag", open_fakebag))
    assert kind in source_kinds()
    with pytest.raises(ValueError, match="already registered"):
        register_source_kind(kind)
    with open_source(sbs=str(recording)) as source:
        frames = list(source)
    assert opened == [(recording, False)] and len(frames) == 3
    np.testing.assert_array_equal(frames[2].left, stereo_videos.frames[2][0])
