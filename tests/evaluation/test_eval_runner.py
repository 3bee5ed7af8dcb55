"""The batch runner: exact summaries from official-format fixtures, resume, Ctrl-C, processes, Dask."""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict

import numpy as np
import pytest

from depthapp.errors import Cancelled, InputError, OutputExistsError
from depthapp.evaluation import BackendSpec, evaluate, open_dataset, predict
from depthapp.evaluation import runner
from depthapp.io import read_image, read_kitti_disparity, write_image, write_pfm
from depthapp.jobs import CancelToken

from eval_fixtures import (ConstantBackend, random_image, write_kitti2012, write_kitti2015,
                           write_kitti_predictions, write_middeval3_scene, write_sceneflow_frame)
from test_eval_metrics import kitti2015_case

NAN = np.nan


def two_kitti_frames():
    est0, noc0, occ0, obj0 = kitti2015_case()
    occ1 = np.full((2, 4), 20, dtype=np.float32)
    est1 = np.array([[20, 24, NAN, 20], [20, 20, 20, 20]], dtype=np.float32)
    frames = [{"occ": occ0, "noc": noc0, "obj": obj0},
              {"occ": occ1, "noc": occ1.copy(), "obj": np.zeros((2, 4), dtype=np.uint8)}]
    return frames, [est0, est1]


def test_kitti2015_from_a_submission_folder_pools_exactly(tmp_path, rng):
    frames, estimates = two_kitti_frames()
    write_kitti2015(tmp_path / "kitti", frames, rng)
    write_kitti_predictions(tmp_path / "submission", estimates)
    dataset = open_dataset("kitti2015", tmp_path / "kitti")
    result = evaluate(dataset, predictions=tmp_path / "submission", out_dir=tmp_path / "out",
                      published={"d1_all": 2.32})
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    # image 0: 5 of 16 outliers (2 of 10 bg, 3 of 6 fg); image 1: 1 of 8 (bg); see test_eval_metrics
    assert summary["d1_all"] == pytest.approx(100 * 6 / 24)
    assert summary["d1_bg"] == pytest.approx(100 * 3 / 18)
    assert summary["d1_fg"] == pytest.approx(50.0)
    assert summary["d1_all_noc"] == pytest.approx(100 * 4 / 22)
    assert summary["density"] == pytest.approx(100 * 20 / 24)
    assert summary["epe"] == pytest.approx((38.5 + 4) / 24)
    assert summary["images"] == 2 and summary["backend"] == "predictions"
    assert result.computed == 2 and result.skipped == 0
    with open(tmp_path / "out" / "per_image.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["image"] for row in rows] == ["000000_10", "000001_10"]
    assert float(rows[0]["d1_all"]) == pytest.approx(31.25) and float(rows[1]["d1_all"]) == pytest.approx(12.5)
    assert rows[1]["d1_fg"] == ""  # undefined for an image without foreground
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| d1_all | 25.00 % | 2.32 % |" in report
    error_map = read_image(tmp_path / "out" / "errors" / "000000_10.png")
    assert error_map.shape == (3, 6, 3) and error_map.any()


def test_undefined_numbers_are_json_null(tmp_path, rng):
    frames, estimates = two_kitti_frames()
    write_kitti2015(tmp_path / "kitti", frames[::-1], rng)
    write_kitti_predictions(tmp_path / "submission", estimates[::-1])
    dataset = open_dataset("kitti2015", tmp_path / "kitti")
    evaluate(dataset, predictions=tmp_path / "submission", out_dir=tmp_path / "out", limit=1)
    text = (tmp_path / "out" / "summary.json").read_text()
    assert '"d1_fg": null' in text and json.loads(text)["d1_all"] == pytest.approx(12.5)


def test_kitti2012_sceneflow_and_middlebury_runs(tmp_path, rng):
    gt = np.full((1, 8), 10, dtype=np.float32)
    noc = gt.copy()
    noc[0, 6:] = NAN
    write_kitti2012(tmp_path / "k12", [{"occ": gt, "noc": noc}], rng)
    write_kitti_predictions(tmp_path / "k12pred", [gt + np.array([0, 1.5, 2, 2.5, 3.5, 4.5, 5.5, NAN])])
    k12 = evaluate(open_dataset("kitti2012", tmp_path / "k12"), predictions=tmp_path / "k12pred",
                   out_dir=tmp_path / "k12out").summary
    assert [k12[f"out_all_{t}"] for t in (2, 3, 4, 5)] == pytest.approx([62.5, 50.0, 37.5, 25.0])
    assert k12["avg_noc"] == pytest.approx(14 / 6)

    sf_gt = np.array([[10, 20, 30, 195]], dtype=np.float32)
    sample_id = write_sceneflow_frame(tmp_path / "sf", "FlyingThings3D", "TEST/A/0000", 6, sf_gt, rng)
    write_pfm(tmp_path / "sfpred" / f"{sample_id}.pfm", np.array([[10.5, 22, 26, 0]], dtype=np.float32))
    sf = evaluate(open_dataset("sceneflow", tmp_path / "sf"), predictions=tmp_path / "sfpred",
                  out_dir=tmp_path / "sfout").summary
    assert sf["epe"] == pytest.approx(6.5 / 3) and sf["bad_1"] == pytest.approx(200 / 3)
    assert sf["bad_3"] == pytest.approx(100 / 3)

    gt_full = np.arange(16, dtype=np.float32).reshape(4, 4) + 10
    write_middeval3_scene(tmp_path / "mb" / "trainingF", "Piano", gt_full, np.full((4, 4), 255), 100, rng)
    write_middeval3_scene(tmp_path / "mb" / "trainingH", "Piano", gt_full[::2, ::2] / 2, None, 50, rng)
    write_pfm(tmp_path / "mbpred" / "Piano" / "disp0MINE.pfm", gt_full[::2, ::2] / 2)
    mb = evaluate(open_dataset("middlebury", tmp_path / "mb"), predictions=tmp_path / "mbpred",
                  out_dir=tmp_path / "mbout").summary
    assert mb["bad_0.5_nonocc"] == 75.0 and mb["bad_2_all"] == 50.0 and mb["avgerr_all"] == pytest.approx(2.5)
    assert (tmp_path / "mbout" / "errors" / "Piano.png").exists()


def constant_folder(tmp_path, rng, count=5, height=6, width=10):
    root = tmp_path / "pairs"
    for index in range(count):
        name = f"p{index}"
        write_image(root / "left" / f"{name}.png", random_image(rng, height, width))
        write_image(root / "right" / f"{name}.png", random_image(rng, height, width))
        gt = np.full((height, width), 4.0 + index, dtype=np.float32)
        write_pfm(root / "disp" / f"{name}.pfm", gt)
    return open_dataset("folder", root)


def test_resume_after_cancel_computes_only_the_rest(tmp_path, rng):
    dataset = constant_folder(tmp_path, rng)
    backend = ConstantBackend(value=4.0)
    cancel = CancelToken()

    def stop_after_two(progress):
        if progress.done == 2:
            cancel.cancel()

    before = ConstantBackend.CALLS["count"]
    with pytest.raises(Cancelled, match="after 2 of 5 images"):
        evaluate(dataset, backend, out_dir=tmp_path / "out", progress=stop_after_two, cancel=cancel)
    assert ConstantBackend.CALLS["count"] - before == 2
    assert len((tmp_path / "out" / "results.jsonl").read_text().splitlines()) == 2
    assert not (tmp_path / "out" / "summary.json").exists()

    result = evaluate(dataset, ConstantBackend(value=4.0), out_dir=tmp_path / "out")
    assert (result.computed, result.skipped) == (3, 2)
    assert ConstantBackend.CALLS["count"] - before == 5
    # constant 4 px against ground truth 4, 5, 6, 7, 8 px: errors 0..4
    assert [r["values"]["epe"] for r in result.per_image] == pytest.approx([0, 1, 2, 3, 4])
    assert result.summary["epe"] == pytest.approx(2.0)
    again = evaluate(dataset, ConstantBackend(value=4.0), out_dir=tmp_path / "out")
    assert (again.computed, again.skipped) == (0, 5) and again.summary == result.summary


def test_ctrl_c_keeps_finished_images_and_a_torn_last_line_is_ignored(tmp_path, rng):
    dataset = constant_folder(tmp_path, rng, count=4)

    def interrupt(progress):
        if progress.done == 3:
            raise KeyboardInterrupt

    with pytest.raises(Cancelled, match="after 3 of 4"):
        evaluate(dataset, ConstantBackend(value=5.0), out_dir=tmp_path / "out", progress=interrupt)
    log = tmp_path / "out" / "results.jsonl"
    with open(log, "ab") as handle:
        handle.write(b'{"key": "torn')  # a crash mid-write
    result = evaluate(dataset, ConstantBackend(value=5.0), out_dir=tmp_path / "out")
    assert (result.computed, result.skipped) == (1, 3)
    assert len(runner.read_records(log)) == 4


def test_another_method_in_the_same_folder_needs_force(tmp_path, rng):
    dataset = constant_folder(tmp_path, rng, count=2)
    evaluate(dataset, ConstantBackend(value=4.0), out_dir=tmp_path / "out")
    with pytest.raises(OutputExistsError, match="different parameters"):
        evaluate(dataset, ConstantBackend(value=6.0), out_dir=tmp_path / "out")
    result = evaluate(dataset, ConstantBackend(value=6.0), out_dir=tmp_path / "out", force=True)
    assert result.computed == 2 and result.summary["parameters"]["value"] == 6.0
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="holds no depthapp evaluation"):
        evaluate(dataset, ConstantBackend(value=6.0), out_dir=tmp_path / "other")


def test_unlabelled_data_is_refused_with_a_pointer_to_predict(tmp_path, rng):
    write_kitti2015(tmp_path, [{"occ": np.ones((4, 5), np.float32)}] * 1, rng, split="testing")
    with pytest.raises(InputError, match="depthapp predict"):
        evaluate(open_dataset("kitti2015", tmp_path, split="testing"), predictions=tmp_path,
                 out_dir=tmp_path / "out")


def test_local_worker_processes_load_the_backend_once_each(tmp_path, rng):
    dataset = constant_folder(tmp_path, rng, count=6)
    result = evaluate(dataset, ConstantBackend(value=4.0, hole=3), out_dir=tmp_path / "out", workers=2)
    serial = evaluate(dataset, ConstantBackend(value=4.0, hole=3), out_dir=tmp_path / "serial")
    assert result.summary == {**serial.summary}
    instances = defaultdict(set)
    for record in result.per_image:
        instances[record["worker"]].add(record["backend_instance"])
    assert 1 <= len(instances) <= 2 and all(len(ids) == 1 for ids in instances.values())
    assert all(not worker.endswith(f":{os.getpid()}") for worker in instances)  # really other processes


def test_dask_local_cluster_gives_the_serial_numbers(tmp_path, rng):
    distributed = pytest.importorskip("distributed")
    dataset = constant_folder(tmp_path, rng, count=4)
    spec = BackendSpec("test-constant", 64, "cpu", None, (("hole", 2), ("value", 7.0)),
                       "eval_fixtures:ConstantBackend")
    loads = runner.BACKEND_LOADS["count"]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        result = evaluate(dataset, spec, out_dir=tmp_path / "dask", scheduler=cluster.scheduler_address)
    assert runner.BACKEND_LOADS["count"] - loads == 1  # one process, one backend for both workers
    serial = evaluate(dataset, ConstantBackend(value=7.0, hole=2), out_dir=tmp_path / "serial")
    assert result.summary == serial.summary and result.computed == 4
    assert result.summary["density"] == pytest.approx(80.0)


def test_a_missing_prediction_names_the_file_and_stops(tmp_path, rng):
    frames, estimates = two_kitti_frames()
    write_kitti2015(tmp_path / "kitti", frames, rng)
    write_kitti_predictions(tmp_path / "submission", estimates[:1])
    with pytest.raises(InputError, match="no prediction for 000001_10"):
        evaluate(open_dataset("kitti2015", tmp_path / "kitti"), predictions=tmp_path / "submission",
                 out_dir=tmp_path / "out")
    assert len(runner.read_records(tmp_path / "out" / "results.jsonl")) == 1


def test_predict_writes_the_kitti_submission_layout_and_resumes(tmp_path, rng):
    frames, _ = two_kitti_frames()
    write_kitti2015(tmp_path / "kitti", frames, rng, split="testing")
    dataset = open_dataset("kitti2015", tmp_path / "kitti", split="testing")
    result = predict(dataset, ConstantBackend(value=3.25, hole=1), tmp_path / "sub", fmt="kitti")
    written = sorted(p.relative_to(tmp_path / "sub").as_posix() for p in result.written)
    assert written == ["disp_0/000000_10.png", "disp_0/000001_10.png"]
    disparity = read_kitti_disparity(tmp_path / "sub" / "disp_0" / "000001_10.png")
    assert np.isnan(disparity[:, 0]).all() and (disparity[:, 1:] == 3.25).all()
    again = predict(dataset, ConstantBackend(value=3.25, hole=1), tmp_path / "sub", fmt="kitti")
    assert again.written == [] and again.skipped == 2
    npy = predict(dataset, ConstantBackend(value=3.25), tmp_path / "npy", fmt="npy", workers=1)
    assert np.load(npy.written[0]).shape == (3, 6)


def test_a_configuration_has_one_key_however_it_is_given():
    from depthapp.backends import create_backend

    from_flags = BackendSpec.make("opencv-sgbm", max_disp=60, block_size="3")
    from_instance = BackendSpec.from_backend(create_backend("opencv-sgbm", max_disp=60, block_size=3))
    assert from_flags.identity() == from_instance.identity()
    assert from_flags.max_disp == 64  # rounded to SGBM's multiple of 16, as the backend does
