"""``depthapp export``: a learned backend to ONNX / TorchScript / torch.export, verified."""

from __future__ import annotations

from .progress import add_quiet_argument, echo, progress_bar


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="export a learned backend (onnx, torchscript, pt2) and verify it",
        description="Export a learned backend for deployment. The export is run against the "
                    "torch model on the real sample at the export size and removed if the "
                    "disparity differs by more than 0.05 px (fp32).")
    parser.add_argument("--backend", required=True, help="mccnn, psmnet, gcnet or ganet")
    parser.add_argument("--weights", metavar="ID|PATH", help="weights record id or checkpoint file")
    parser.add_argument("--format", required=True, choices=("onnx", "torchscript", "pt2"))
    parser.add_argument("--height", type=int, required=True, help="image height the user will feed")
    parser.add_argument("--width", type=int, required=True, help="image width the user will feed")
    parser.add_argument("--dynamic", action="store_true", help="dynamic height/width (onnx)")
    parser.add_argument("--fp16", action="store_true", help="half-precision weights (onnx)")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    parser.add_argument("--max-disp", type=int, help="disparity levels (default: the weights')")
    parser.add_argument("--offline", action="store_true", help="never fetch missing weights")
    parser.add_argument("--device", default="cpu", metavar="cpu|cuda|cuda:N",
                        help="torchscript/pt2: the device the graph is traced on and will run "
                             "on (they record it); default cpu")
    parser.add_argument("--out", required=True, metavar="FILE", help="output file")
    parser.add_argument("--force", action="store_true", help="overwrite FILE")
    add_quiet_argument(parser)
    parser.set_defaults(handler=handle)


def handle(args) -> int:
    from ..export.exporter import export_backend

    report = export_backend(args.backend, args.weights, args.format, args.height, args.width,
                            args.out, dynamic=args.dynamic, fp16=args.fp16, opset=args.opset,
                            overwrite=args.force, max_disp=args.max_disp, offline=args.offline,
                            device=args.device, log=echo,
                            progress=progress_bar(args, f"export {args.backend} {args.format}"))
    nodes = f", {report.nodes} nodes" if report.nodes is not None else ""
    output = report.metadata["depthapp.output_name"]
    unit = "px" if output == "disparity" else f"(in {output})"
    print(f"verified: max |exported - torch| = {report.max_abs_diff:.5f} {unit} "
          f"(tolerance {report.tolerance}) on the sample; torch {report.torch_seconds:.3f} s, "
          f"exported {report.exported_seconds:.3f} s{nodes}")
    print(f"wrote {report.path}")
    return 0
