"""What a CLI process imports: classical backends never load torch (2 s of start-up on a
machine without a GPU; issue 18), and nothing heavy loads before it is needed."""

import subprocess
import sys

import numpy as np
import pytest

from depthapp.device import cuda_driver_present
from depthapp.io import write_image

# numba and scipy: the sgm kernels are compiled C++ (numba's import and kernel load were 0.6 s)
HEAVY = ("torch", "skimage", "onnx", "onnxruntime", "PyQt6", "kornia", "numba", "scipy")


def modules_after(code: str) -> set[str]:
    """Top-level names of the modules loaded by ``code`` in a fresh interpreter."""
    probe = code + "\nimport sys\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


@pytest.fixture
def pair_files(tmp_path, rng):
    left = rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)
    right = np.roll(left, -4, axis=1)
    write_image(tmp_path / "left.png", left)
    write_image(tmp_path / "right.png", right)
    return tmp_path / "left.png", tmp_path / "right.png"


@pytest.mark.parametrize("backend", ["sgm", "opencv-sgbm", "opencv-bm"])
def test_run_with_a_classical_backend_imports_nothing_heavy(backend, pair_files, tmp_path):
    left, right = pair_files
    # On a machine with an NVIDIA driver, sgm's "auto" device rightly asks torch about CUDA;
    # the CPU run must still not touch it.
    device = "cpu" if backend == "sgm" and cuda_driver_present() else "auto"
    argv = ["run", str(left), str(right), "--backend", backend, "--max-disp", "16",
            "--device", device, "--out", str(tmp_path / "out")]
    loaded = modules_after(f"from depthapp.cli import main\nassert main({argv!r}) == 0")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert (tmp_path / "out" / "disparity.pfm").is_file()


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help_load_no_compute_libraries(flag):
    code = (f"from depthapp.cli import main\ntry:\n    main([{flag!r}])\n"
            "except SystemExit:\n    pass")
    loaded = modules_after(code)
    assert not loaded & {"numba", "torch", "skimage", "scipy", "cv2"}, loaded


def test_cuda_question_without_a_driver_does_not_import_torch():
    if cuda_driver_present():
        pytest.skip("an NVIDIA driver is installed here: torch is rightly asked")
    loaded = modules_after("from depthapp.device import cuda_available\n"
                           "assert cuda_available() is False")
    assert "torch" not in loaded


def test_without_the_compiled_kernels_sgm_says_so_and_the_rest_works(pair_files, tmp_path):
    # An install on a machine without a C++ compiler skips the optional extension.
    left, right = pair_files
    code = f"""
import sys
sys.modules["depthapp.backends.sgm._native"] = None  # as if it had not been built
from depthapp.cli import main
assert main(["run", {str(left)!r}, {str(right)!r}, "--backend", "sgm", "--max-disp", "16",
             "--device", "cpu", "--out", {str(tmp_path / "sgm")!r}]) == 1
assert main(["run", {str(left)!r}, {str(right)!r}, "--backend", "opencv-sgbm", "--max-disp", "16",
             "--out", {str(tmp_path / "sgbm")!r}]) == 0
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "compiled sgm kernels are not built" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "sgm").exists() and (tmp_path / "sgbm" / "disparity.pfm").is_file()
