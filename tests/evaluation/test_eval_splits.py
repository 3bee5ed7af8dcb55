

def test_shipped_split_lists_are_package_data():
    from depthapp.evaluation.datasets import _read_ids, shipped_split

    path = shipped_split("kitti2015_val40")
    assert path is not None and "resources" in str(path)
    ids = _read_ids("kitti2015_val40")
    assert len(ids) == 40 and len(set(ids)) == 40
