"""Exported models on a GPU: torch CUDA milliseconds per pair for TorchScript and torch.export
(pt2) exports next to the eager torch model, in one run.

    python benchmarks/export_cuda.py [--backends psmnet:375x1242,...] [--repeats 10]

Each model is exported here with `depthapp export --device cuda`'s code (traced on CUDA, since
TorchScript and pt2 graphs keep the device they were traced on, and verified on the sample there
before it is kept), loaded onto CUDA and timed on the sample resized to the export size
(median of back-to-back runs after warm-up, synchronised). onnxruntime CUDA/TensorRT need an
onnxruntime-gpu build with CUDA libraries; see depthapp/export/exporter.py for that route.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np


def median_ms(run, repeats: int) -> float:
    import torch

    for _ in range(2):
        run()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="psmnet:375x1242,mccnn:375x1242,"
                        "gcnet:256x512:models/gcnet-synthetic-h100/weights.pt",
                        help="NAME:HxW[:WEIGHTS],... (weights: registry id or file)")
    parser.add_argument("--formats", default="torchscript,pt2")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    import torch

    from depthapp.backends import get_backend_class
    from depthapp.bench import environment_line, format_table
    from depthapp.export.exporter import example_inputs, export_backend

    if not torch.cuda.is_available():
        print("no CUDA device: nothing to time")
        return 1
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for item in args.backends.split(","):
            name, size, *weights = item.split(":")
            weights = weights[0] if weights else None
            height, width = (int(v) for v in size.split("x"))
            try:
                options = {"weights": weights} if weights else {}
                spec = get_backend_class(name)(device="cuda", **options).export_spec(height, width)
                inputs, _ = example_inputs(spec, height, width)
                on_gpu = [torch.from_numpy(x).cuda() for x in inputs]
                eager = spec.module.eval()  # the module export traces, on CUDA
                with torch.inference_mode():
                    eager_ms = median_ms(lambda: eager(*on_gpu), args.repeats)
                rows.append([name, f"{width}x{height}", "eager torch", "-", round(eager_ms, 2)])
                print(rows[-1], flush=True)
                del eager, spec  # free the GPU memory before the exports
            except Exception as error:
                rows.append([name, size, "eager torch", f"failed: {error}", "-"])
                traceback.print_exc()
                continue
            for fmt in args.formats.split(","):
                out = Path(folder) / f"{name}.{fmt}"
                try:
                    report = export_backend(name, weights, fmt, height, width, out,
                                            log=lambda m: None, device="cuda")
                    if fmt == "torchscript":
                        model = torch.jit.load(str(out), map_location="cuda")
                    else:
                        model = torch.export.load(str(out)).module().to("cuda")
                    with torch.inference_mode():
                        ms = median_ms(lambda: model(*on_gpu), args.repeats)
                    rows.append([name, f"{width}x{height}", fmt,
                                 f"{report.max_abs_diff:.4f}", round(ms, 2)])
                except Exception as error:
                    rows.append([name, f"{width}x{height}", fmt, f"failed: {error}"[:120], "-"])
                    traceback.print_exc()
                print(rows[-1], flush=True)
    print(f"\n# exported models on CUDA, {args.repeats} runs after 2 warm-ups")
    print(environment_line())
    print(format_table(["backend", "size", "format", "max |exported - torch| px",
                        "CUDA ms"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
