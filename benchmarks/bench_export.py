"""Exported models vs torch, side by side: parity and CPU time (issue 8).

    python benchmarks/bench_export.py                      # PSMNet KITTI 2015 at 741x500
    python benchmarks/bench_export.py --backend mccnn --backend psmnet --height 125 --width 185
    python benchmarks/bench_export.py --backend gcnet --weights gcnet=models/gcnet-synthetic-h100/weights.pt

Exports each backend with ``depthapp export`` (verified on the sample), then times the torch
network and the onnxruntime session on the same padded input with the same thread count;
prints one table (a torch and an onnxruntime row per backend, the ratio against that backend's
torch row) and the largest difference over the image (disparity in px; MC-CNN: its features).
A backend the exporter refuses for ONNX (GA-Net) is listed with the reason.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", action="append", help="backend to export (repeatable; default psmnet)")
    parser.add_argument("--weights", action="append", default=[], metavar="BACKEND=ID|PATH",
                        help="weights for one backend (repeatable; needed by gcnet and ganet)")
    parser.add_argument("--height", type=int, default=500)
    parser.add_argument("--width", type=int, default=741)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", help="an existing export to time instead of exporting again "
                                        "(with a single --backend)")
    args = parser.parse_args()
    backends = args.backend or ["psmnet"]
    weights = dict(item.split("=", 1) for item in args.weights)
    if args.model and len(backends) != 1:
        parser.error("--model goes with a single --backend")

    from depthapp.bench import (TIMING_HEADERS, environment_line, format_table, measure,
                                set_threads, timing_rows)
    from depthapp.errors import DepthAppError

    threads = set_threads(args.threads)
    print(f"# export of {', '.join(backends)} at {args.width}x{args.height}, {args.threads} threads")
    print(f"{environment_line()}; threads {threads}\n")
    rows, notes = [], []
    for backend in backends:
        try:
            rows += compare(backend, weights.get(backend), args, measure, timing_rows, notes)
        except DepthAppError as error:
            notes.append(f"{backend}: {error}")
    if rows:
        print(format_table(TIMING_HEADERS, rows))
    print("\n" + "\n".join(notes))
    return 0


def compare(backend: str, weights, args, measure, timing_rows, notes: list[str]) -> list:
    """Export ``backend`` (unless ``--model``), time torch and onnxruntime; table rows."""
    import numpy as np
    import torch

    from depthapp.backends import get_backend_class
    from depthapp.export.exporter import example_inputs, export_backend, onnx_session

    path = Path(args.model) if args.model else Path(tempfile.mkdtemp()) / f"{backend}.onnx"
    if not args.model:
        report = export_backend(backend, weights, "onnx", args.height, args.width, path)
        notes.append(f"{backend}: export {report.nodes} nodes, verified max diff {report.max_abs_diff:.5f}")
    options = {"device": "cpu"}
    if weights:
        options["weights"] = weights
    spec = get_backend_class(backend)(**options).export_spec(args.height, args.width)
    spec.module.eval()
    inputs, padding = example_inputs(spec, args.height, args.width)
    tensors = [torch.from_numpy(x) for x in inputs]
    session, provider, _ = onnx_session(path, "cpu", args.threads)
    feeds = dict(zip(spec.input_names, inputs))

    def run_torch():
        with torch.inference_mode():
            return spec.module(*tensors).float().numpy()

    torch_measure, torch_out = measure(f"{backend}: torch (eager, CPU)", run_torch, repeats=args.repeats)
    ort_measure, ort_out = measure(f"{backend}: onnxruntime ({provider}, ORT_ENABLE_ALL)",
                                   lambda: session.run(None, feeds)[0], repeats=args.repeats)
    ref, got = padding.unpad(torch_out), padding.unpad(np.asarray(ort_out))
    difference = np.abs(ref - got)
    unit = "px" if spec.output_name == "disparity" else f"({spec.output_name})"
    notes.append(f"{backend}: max |onnx - torch| {difference.max():.5f} {unit}; 99.9th percentile "
                 f"{np.percentile(difference, 99.9):.5f}")
    return timing_rows([torch_measure, ort_measure], torch_measure.name)


if __name__ == "__main__":
    sys.exit(main())
