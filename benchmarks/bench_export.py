"""Exported models vs torch, side by side: parity and CPU time (issue 8).

    python benchmarks/bench_export.py                      # PSMNet KITTI 2015 at 741x500
    python benchmarks/bench_export.py --backend gcnet --weights models/gcnet-synthetic-h100/weights.pt

Exports with ``depthapp export`` (verified on the sample), then times the torch network and the
onnxruntime session on the same padded input with the same thread count; prints medians, the
ratio and the largest disparity difference over the image.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="psmnet")
    parser.add_argument("--weights")
    parser.add_argument("--height", type=int, default=500)
    parser.add_argument("--width", type=int, default=741)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", help="an existing export to time instead of exporting again")
    args = parser.parse_args()

    from depthapp.bench import (TIMING_HEADERS, environment_line, format_table, measure,
                                set_threads, timing_rows)

    threads = set_threads(args.threads)
    import numpy as np
    import torch

    from depthapp.backends import get_backend_class
    from depthapp.export.exporter import example_inputs, export_backend, onnx_session
    from depthapp.export.spec import crop_output

    print(f"# export of {args.backend} at {args.width}x{args.height}, {args.threads} threads")
    print(f"{environment_line()}; threads {threads}\n")
    path = Path(args.model) if args.model else Path(tempfile.mkdtemp()) / f"{args.backend}.onnx"
    if not args.model:
        report = export_backend(args.backend, args.weights, "onnx", args.height, args.width, path)
        print(f"export: {report.nodes} nodes, verified max diff {report.max_abs_diff:.5f} px\n")
    options = {"device": "cpu"}
    if args.weights:
        options["weights"] = args.weights
    spec = get_backend_class(args.backend)(**options).export_spec(args.height, args.width)
    spec.module.eval()
    inputs, (padded_h, padded_w) = example_inputs(spec, args.height, args.width)
    tensors = [torch.from_numpy(x) for x in inputs]
    session, provider, note = onnx_session(path, "cpu", args.threads)
    feeds = dict(zip(spec.input_names, inputs))

    def run_torch():
        with torch.inference_mode():
            return spec.module(*tensors).float().numpy()

    torch_measure, torch_out = measure("torch (eager, CPU)", run_torch, repeats=args.repeats)
    ort_measure, ort_out = measure(f"onnxruntime ({provider}, ORT_ENABLE_ALL)",
                                   lambda: session.run(None, feeds)[0], repeats=args.repeats)
    ref = crop_output(torch_out, args.height, args.width, padded_h, padded_w, spec.pad_mode)
    got = crop_output(np.asarray(ort_out), args.height, args.width, padded_h, padded_w, spec.pad_mode)
    difference = np.abs(ref - got)
    print(format_table(TIMING_HEADERS, timing_rows([torch_measure, ort_measure], torch_measure.name)))
    print(f"\nmax |onnx - torch| {difference.max():.5f} px; 99.9th percentile {np.percentile(difference, 99.9):.5f} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
