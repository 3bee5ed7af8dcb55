"""``depthapp camera --bag ... --out-bag ...``, ``run --out-bag``, ``predict --dataset bag``
and ``--rerun-save`` end to end, the outputs read back with rosbags and rerun alone."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rosbags", reason="needs rosbags (pip install 'depthapp[ros]')")

from bag_fixtures import mono8_message, read_all, stamp, write_stereo_bag  # noqa: E402

from depthapp.cli import main  # noqa: E402
from depthapp.io import read_disparity  # noqa: E402
from depthapp.io.ply import read_ply  # noqa: E402
from depthapp.robotics import messages  # noqa: E402

BACKEND = ["--backend", "opencv-bm", "--max-disp", "64"]


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def run_outputs(tmp_path_factory):
    """What ``depthapp run`` writes for the Motorcycle pair: PFM, depth PFM and PLY."""
    out = tmp_path_factory.mktemp("run")
    assert main(["run", "--sample", *BACKEND, "--out", str(out / "files"),
                 "--out-bag", str(out / "run_bag"), "--rerun-save", str(out / "run.rrd")]) == 0
    return out


def test_camera_bag_to_bag_matches_what_run_writes(tmp_path, motorcycle, run_outputs, capsys):
    frames = 3
    source = write_stereo_bag(tmp_path / "in.bag", [motorcycle.left] * frames,
                              [motorcycle.right] * frames, motorcycle.calibration)
    code, out, err = run_cli(capsys, "camera", "--bag", source, "--out-bag", tmp_path / "out",
                             "--out-bag-images", "--no-window", *BACKEND)
    assert code == 0, err
    assert f"wrote {tmp_path / 'out'} (3 pairs" in out
    written = read_all(tmp_path / "out")
    assert {topic: len(items) for topic, items in written.items()} == {
        f"/depthapp/{name}": frames for name in ("disparity", "depth", "points2", "left/image_rect",
                                                 "right/image_rect", "left/camera_info",
                                                 "right/camera_info")}
    pfm = read_disparity(run_outputs / "files" / "disparity.pfm")
    depth_pfm = read_disparity(run_outputs / "files" / "depth.pfm")
    ply_points, ply_colors = read_ply(run_outputs / "files" / "cloud.ply")
    calibration = motorcycle.calibration
    for index in range(frames):
        for topic, items in written.items():
            log_time, _, message = items[index]
            assert log_time == stamp(index) == messages.stamp_ns(message), topic
            assert message.header.frame_id == ("right_camera_optical_frame" if "right" in topic
                                               else "left_camera_optical_frame")
        disparity = written["/depthapp/disparity"][index][2]
        assert disparity.image.encoding == "32FC1" and disparity.delta_d == 1 / 16
        assert disparity.f == pytest.approx(calibration.focal)
        assert disparity.t == pytest.approx(calibration.baseline)
        assert disparity.max_disparity == pytest.approx(64 + calibration.doffs)
        raw = messages.image_to_float(disparity.image)  # d + doffs, as stereo_msgs defines it
        valid = np.isfinite(pfm)
        np.testing.assert_array_equal(raw[valid], pfm[valid] + np.float32(calibration.doffs))
        assert np.all(raw[~valid] < disparity.min_disparity)
        values = messages.disparity_from_message(disparity, calibration.doffs)
        np.testing.assert_array_equal(np.isnan(values), ~valid)
        np.testing.assert_allclose(values[valid], pfm[valid], atol=1e-5)
        depth = messages.image_to_float(written["/depthapp/depth"][index][2])
        np.testing.assert_array_equal(depth, depth_pfm)
        points, colors = messages.point_cloud_from_message(written["/depthapp/points2"][index][2])
        np.testing.assert_array_equal(points, ply_points)
        np.testing.assert_array_equal(colors, ply_colors)
        image = written["/depthapp/left/image_rect"][index][2]
        np.testing.assert_array_equal(np.asarray(image.data).reshape(image.height, image.width, 3),
                                      motorcycle.left)
        info = messages.camera_info_from_message(written["/depthapp/right/camera_info"][index][2], "out")
        np.testing.assert_array_equal(info.P, calibration.P2)


def test_oakd_driver_bag_plays_through_camera_to_an_mcap_bag(tmp_path, oakd, capsys):
    """The done-when case: a bag in a ROS 2 stereo driver's layout (depthai's /oak/...), mono8,
    with a missing right frame, plays through ``camera --bag ... --out-bag ...``."""
    lefts, rights, calibration = oakd
    source = write_stereo_bag(tmp_path / "oak_in", lefts, rights, calibration, namespace="/oak",
                              encode=mono8_message, skip_right=(1,), right_offset=1_000_000,
                              frame_ids=("oak_left_camera_optical_frame", "oak_right_camera_optical_frame"))
    code, out, err = run_cli(capsys, "camera", "--bag", source, "--out-bag", tmp_path / "oak_out",
                             "--out-namespace", "/oak/depthapp", "--no-window", *BACKEND)
    assert code == 0, err
    assert "source: bag" in out and "/oak/left/image_rect + /oak/right/image_rect" in out
    assert "calibration:" in out and "(rectified)" in out
    assert "dropped 1/0" in out and "skew 1.0 ms" in out
    assert "no partner" in err
    assert (tmp_path / "oak_out" / "oak_out.mcap").is_file()
    written = read_all(tmp_path / "oak_out")
    assert sorted(written) == ["/oak/depthapp/depth", "/oak/depthapp/disparity", "/oak/depthapp/points2"]
    stamps = [messages.stamp_ns(m) for _, _, m in written["/oak/depthapp/disparity"]]
    assert stamps == [stamp(0), stamp(2)]
    for _, msgtype, message in written["/oak/depthapp/points2"]:
        assert msgtype == messages.POINT_CLOUD2 and message.header.frame_id == "oak_left_camera_optical_frame"
        points, colors = messages.point_cloud_from_message(message)
        assert len(points) > 10000 and np.all(points[:, 2] > 0)
        np.testing.assert_array_equal(colors[:, 0], colors[:, 2])  # grey camera: grey points
    depth = messages.image_to_float(written["/oak/depthapp/depth"][1][2])
    assert 0.3 < float(np.nanmedian(depth)) < 20.0  # an indoor scene, metres


def test_out_bag_is_never_overwritten_without_force(tmp_path, motorcycle, capsys):
    source = write_stereo_bag(tmp_path / "in", [motorcycle.left], [motorcycle.right], motorcycle.calibration)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep").write_text("mine")
    code, out, err = run_cli(capsys, "camera", "--bag", source, "--out-bag", tmp_path / "out",
                             "--no-window", *BACKEND)
    assert code == 1 and err.strip() == f"depthapp: error: {tmp_path / 'out'}: already exists (pass --force to overwrite)"
    assert (tmp_path / "out" / "keep").read_text() == "mine"
    code, out, err = run_cli(capsys, "camera", "--bag", source, "--out-bag", tmp_path / "out",
                             "--out-bag-storage", "sqlite3", "--force", "--no-window", *BACKEND)
    assert code == 0, err
    assert not (tmp_path / "out" / "keep").exists() and (tmp_path / "out" / "out.db3").is_file()
    assert len(read_all(tmp_path / "out")["/depthapp/disparity"]) == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_ambiguous_bag_is_a_one_line_usage_error(tmp_path, oakd, capsys):
    lefts, rights, calibration = oakd
    path = write_stereo_bag(tmp_path / "two", lefts[:1], rights[:1], calibration, namespace="/front",
                            encode=mono8_message)
    # a second camera in the same bag
    from depthapp.robotics.bags import BagWriter

    merged = tmp_path / "merged"
    with BagWriter(merged) as writer:
        for topic, items in read_all(path).items():
            for ns in ("/front", "/rear"):
                for log_time, msgtype, message in items:
                    writer.write(topic.replace("/front", ns), msgtype, log_time, message)
    code, out, err = run_cli(capsys, "camera", "--bag", merged, "--no-window", *BACKEND)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "several stereo image pairs" in err and "/rear/left/image_rect + /rear/right/image_rect" in err
    code, out, err = run_cli(capsys, "camera", "--bag", merged, "--left-topic", "/rear/left/image_rect",
                             "--right-topic", "/rear/right/image_rect", "--no-window", *BACKEND)
    assert code == 0, err and "1 pairs" in out


def test_predict_reads_a_bag_as_a_dataset(tmp_path, oakd, capsys):
    lefts, rights, calibration = oakd
    path = write_stereo_bag(tmp_path / "oak.bag", lefts, rights, calibration, namespace="/oak",
                            encode=mono8_message)
    code, out, err = run_cli(capsys, "predict", "--dataset", "bag", "--root", path, *BACKEND,
                             "--out", tmp_path / "pred")
    assert code == 0, err
    assert "3 pairs" in out
    written = sorted((tmp_path / "pred").glob("*.pfm"))
    assert [p.stem for p in written] == [f"{stamp(i):019d}" for i in range(3)]
    from depthapp.backends import create_backend
    from depthapp.data import StereoPair

    backend = create_backend("opencv-bm", max_disp=64)
    expected = backend.compute(StereoPair(np.dstack([lefts[2]] * 3), np.dstack([rights[2]] * 3))).disparity
    np.testing.assert_array_equal(read_disparity(written[2]), expected)


@pytest.mark.slow
def test_rerun_recording_holds_every_entity_on_the_stamp_timeline(tmp_path, motorcycle, run_outputs, capsys):
    rerun = pytest.importorskip("rerun", reason="needs rerun-sdk (pip install 'depthapp[rerun]')")
    import pyarrow
    from rerun.chunk import RrdReader

    source = write_stereo_bag(tmp_path / "in", [motorcycle.left] * 2, [motorcycle.right] * 2,
                              motorcycle.calibration)
    code, out, err = run_cli(capsys, "camera", "--bag", source, "--rerun-save", tmp_path / "live.rrd",
                             "--no-window", *BACKEND)
    assert code == 0, err
    assert rerun.__version__
    columns: dict[str, dict] = {}
    for chunk in RrdReader(tmp_path / "live.rrd").stream():
        batch = chunk.to_record_batch()
        for name, column in zip(batch.schema.names, batch.columns):
            if pyarrow.types.is_timestamp(column.type):
                column = column.cast(pyarrow.int64())
            columns.setdefault(chunk.entity_path, {}).setdefault(name, []).extend(column.to_pylist())
    for entity in ("/world/camera", "/world/camera/image", "/world/camera/depth", "/disparity",
                   "/world/points", "/timings/match", "/timings/depth"):
        assert entity in columns, entity
        stamps = sorted(columns[entity]["stamp"])
        assert stamps == [stamp(0), stamp(1)], entity
    pinhole = np.asarray(columns["/world/camera"]["Pinhole:image_from_camera"][0], dtype=np.float64)
    np.testing.assert_allclose(pinhole.reshape(3, 3).T, motorcycle.calibration.P1[:, :3], rtol=1e-6)
    assert columns["/world/camera/depth"]["DepthImage:meter"][0] == [1.0]
    depth = np.frombuffer(bytes(columns["/world/camera/depth"]["DepthImage:buffer"][0][0]), "<f4")
    expected = read_disparity(run_outputs / "files" / "depth.pfm")
    np.testing.assert_array_equal(depth.reshape(expected.shape), np.nan_to_num(expected, nan=0.0))
    positions = columns["/world/points"]["Points3D:positions"][0]
    ply_points, _ = read_ply(run_outputs / "files" / "cloud.ply")
    assert len(positions) == len(ply_points)
    np.testing.assert_allclose(np.asarray(positions[:5], dtype=np.float32), ply_points[:5])
    assert (run_outputs / "run.rrd").stat().st_size > 0
    run_bag = read_all(run_outputs / "run_bag")
    assert sorted(run_bag) == ["/depthapp/depth", "/depthapp/disparity", "/depthapp/points2"]


@pytest.mark.parametrize("layout", ["cut.bag", "cut_mcap"])
def test_truncated_bag_is_one_line_from_the_command(tmp_path, motorcycle, capsys, layout):
    path = write_stereo_bag(tmp_path / layout, [motorcycle.left] * 2, [motorcycle.right] * 2,
                            motorcycle.calibration)
    data_file = path if path.is_file() else next(path.glob("*.mcap"))
    data = data_file.read_bytes()
    data_file.write_bytes(data[:len(data) * 2 // 3])
    code, out, err = run_cli(capsys, "camera", "--bag", path, "--out-bag", tmp_path / "out",
                             "--no-window", *BACKEND)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"depthapp: error: {path}") and "bag" in err
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("argv, message", [
    (["--left-topic", "/a/left/image"], "--left-topic goes with --bag"),
    (["--bag", "{tmp}", "--left", "0", "--right", "1"], "--bag plays every recorded pair; drop --left --right"),
    (["--bag", "{tmp}", "--realtime"], "drop --realtime"),
    (["--bag", "{tmp}", "--left-topic", "/a/left/image"], "--left-topic and --right-topic go together"),
    (["--bag", "{tmp}", "--rerun-save", "{tmp}/log.txt"], "use a .rrd file name"),
])
def test_usage_errors(tmp_path, capsys, argv, message):
    write_stereo_bag(tmp_path / "b", [np.zeros((8, 8, 3), np.uint8)], [np.zeros((8, 8, 3), np.uint8)], None)
    code, out, err = run_cli(capsys, "camera", "--no-window", *BACKEND,
                             *[a.format(tmp=tmp_path / "b") for a in argv])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_rerun_connects_to_a_viewer_url_and_refuses_a_dead_one(tmp_path, capsys):
    """``--rerun URL`` streams to a live gRPC endpoint (an in-process Rerun server here); a URL
    nobody answers is one line before any work."""
    rerun = pytest.importorskip("rerun", reason="needs rerun-sdk (pip install 'depthapp[rerun]')")
    import socket
    import time

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    code, out, err = run_cli(capsys, "run", "--sample", *BACKEND, "--out", tmp_path / "dead",
                             "--rerun", f"rerun+http://127.0.0.1:{port}/proxy")
    assert code == 1 and err.strip().endswith("no Rerun viewer answers (Connection refused)")
    assert not (tmp_path / "dead").exists()
    server = rerun.RecordingStream("depthapp-test-server")  # the server lives as long as it
    url = server.serve_grpc(grpc_port=port)
    for _ in range(300):  # the server starts in the background: wait until it listens
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    code, out, err = run_cli(capsys, "run", "--sample", *BACKEND, "--out", tmp_path / "live", "--rerun", url)
    assert code == 0, err
    server.disconnect()
