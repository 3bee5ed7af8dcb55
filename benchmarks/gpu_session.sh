#!/usr/bin/env bash
# Everything issue 18 wants from a lent GPU, as one device-tool call of under 10 minutes:
#
#     bash benchmarks/gpu_session.sh            # logs to $OUT (the device tool's folder) or ./gpu-logs
#
# The GPU image has torch with Triton and numba-cuda but no package index, PyQt6 or kornia:
# the checkout runs from PYTHONPATH, and the sgm CPU kernels (which the CUDA tests compare
# against) are compiled in place. That build reads pyproject.toml, whose SPDX license string
# needs setuptools >= 77; for an image with an older one, download the wheel here first and
# carry it (the device tool's `carry`):
#
#     pip download --no-deps -d gpu-wheels "setuptools>=77"
#
# Each step has its own time limit, so one that hangs costs only its share; every step's
# output is kept, and the last lines of each are printed.
set -u
cd "$(dirname "$0")/.."
logs=${OUT:-gpu-logs}
mkdir -p "$logs"
export PYTHONPATH=$PWD DEPTHAPP_OFFLINE=${DEPTHAPP_OFFLINE:-0}

step() {  # step NAME SECONDS COMMAND...
    local name=$1 seconds=$2
    shift 2
    local start=$SECONDS
    timeout "$seconds" "$@" >"$logs/$name.log" 2>&1
    local status=$?
    echo "== $name: exit $status in $((SECONDS - start)) s"
    tail -n 25 "$logs/$name.log"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$logs/gpu.txt" 2>&1
cat "$logs/gpu.txt"
if ! python -c "import setuptools, sys; sys.exit(int(setuptools.__version__.split('.')[0]) < 77)"; then
    pip install -q --no-index --no-deps --target gpu-wheels/site gpu-wheels/setuptools-*.whl \
        && export PYTHONPATH=$PWD/gpu-wheels/site:$PYTHONPATH \
        || echo "setuptools < 77 here and no gpu-wheels/setuptools wheel: the build will fail"
fi
step build 120 python setup.py build_ext --inplace
# the tests that need a device (those named so; the simulator checks are the CPU's business)
step cuda-tests 150 python -m pytest -q -rs -k "(cuda or gpu or device) and not simulator" \
    tests/backends/sgm tests/backends/mccnn tests/backends/psmnet tests/camera
step sgm-stages 60 python benchmarks/sgm_cuda_stages.py --repeats 30
step sgm-motorcycle 60 python benchmarks/bench_sgm.py --device cuda --skip-oakd --skip-kitti \
    --repeats 7
step psmnet 120 python benchmarks/bench_psmnet.py --device cuda --kitti --repeats 5
step mccnn 90 python benchmarks/bench_mccnn.py --device cuda --repeats 5
