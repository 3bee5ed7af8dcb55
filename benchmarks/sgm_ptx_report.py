"""Compile the sgm CUDA kernels to PTX without a GPU and report what the compiler made of them.

    pip install numba-cuda==0.30.4 nvidia-cuda-nvcc-cu12   # the GPU image's numba-cuda, + NVVM
    CUDA_HOME=$(python -c "import nvidia.cuda_nvcc as n; print(n.__path__[0])") \
        python benchmarks/sgm_ptx_report.py [--cc 9.0]

Typing and NVVM errors surface here before any GPU time is spent, and the table shows, per
kernel, whether values spilled to local memory and how many barriers, shuffles and global loads
the code has (the aggregation step should have shuffles and no barriers). numba asks the driver
for the device's compute capability when it compiles device functions; with no driver here the
capability is given instead (--cc).
"""

from __future__ import annotations

import argparse
import re
import sys
from types import SimpleNamespace


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cc", default="9.0", help="compute capability, e.g. 9.0 (H100)")
    args = parser.parse_args()
    cc = tuple(int(part) for part in args.cc.split("."))

    from numba import cuda, types

    import numba.cuda.dispatcher as dispatcher

    dispatcher.get_current_device = lambda: SimpleNamespace(compute_capability=cc)
    from depthapp.backends.sgm import cuda as sgm_cuda
    from depthapp.bench import format_table

    def array(dtype, dims):
        return types.Array(dtype, dims, "C")

    f32, i32, u8, u16 = types.float32, types.int32, types.uint8, types.uint16
    kernels = {
        "aggregation, warp per path line, 4 disparities a lane (128)": (
            sgm_cuda._warp_aggregation_kernel(4),
            (array(u8, 3), array(f32, 3), array(f32, 3), array(i32, 1), array(i32, 1),
             array(types.boolean, 1), array(i32, 1), array(u16, 4))),
        "aggregation of an MC-CNN float32 cost, 3 disparities a lane (70 levels)": (
            sgm_cuda._warp_aggregation_kernel(3),
            (array(f32, 3), array(f32, 3), array(f32, 3), array(i32, 1), array(i32, 1),
             array(types.boolean, 1), array(i32, 1), array(f32, 4))),
        "aggregation of an MC-CNN float32 cost, 8 disparities a lane (228 levels)": (
            sgm_cuda._warp_aggregation_kernel(8),
            (array(f32, 3), array(f32, 3), array(f32, 3), array(i32, 1), array(i32, 1),
             array(types.boolean, 1), array(i32, 1), array(f32, 4))),
        "aggregation fallback, block per line": (
            sgm_cuda._aggregate_kernel,
            (array(u8, 3), array(f32, 3), array(f32, 3), array(i32, 1), array(i32, 1),
             array(i32, 1), array(types.boolean, 1), array(types.boolean, 1), array(u16, 4))),
        "cost": (sgm_cuda._cost_kernel,
                 (array(types.uint64, 2), array(types.uint64, 2)) + (array(f32, 2),) * 4
                 + (types.int64,) + (f32,) * 5 + (u8, array(u8, 3))),
        "sum of path volumes": (sgm_cuda._sum_kernel, (array(u16, 4), types.int64, array(u16, 3))),
        "sum of float32 path volumes (MC-CNN)": (sgm_cuda._sum_kernel,
                                                 (array(f32, 4), types.int64, array(f32, 3))),
        "winner-take-all": (sgm_cuda._wta_kernel, (array(u16, 3), f32, types.boolean, f32,
                                                   array(f32, 2), array(f32, 2))),
        "speckle merge (union-find)": (sgm_cuda._speckle_merge_kernel,
                                       (array(f32, 2), types.float64, array(i32, 1))),
        "median": (sgm_cuda._median_kernel, (array(f32, 2), types.int64, array(f32, 2))),
    }
    rows, failed = [], 0
    for name, (kernel, signature) in kernels.items():
        try:
            ptx, _ = cuda.compile_ptx(kernel.py_func, signature, cc=cc)
        except Exception as error:
            failed += 1
            rows.append([name, f"FAILED: {type(error).__name__}: {error}"[:200], "", "", "", ""])
            continue
        local = re.findall(r"\.local\s+\.align\s+\d+\s+\.b8\s+\S+\[(\d+)\]", ptx)
        rows.append([name, "ok", sum(int(n) for n in local), ptx.count("bar.sync"),
                     ptx.count("shfl.sync"), ptx.count("ld.global")])
    print(f"# sgm kernels compiled to PTX for sm_{cc[0]}{cc[1]}")
    print(format_table(["kernel", "compile", "local bytes", "barriers", "shuffles",
                        "global loads"], rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
