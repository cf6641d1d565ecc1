"""The audit subcommands of `saladpipe`: `report`, `audit` and `listen`.

They only read a run folder, or for `report` a mix folder too (and write the file or
folder asked for), so they run without Prefect and on a machine that did not make it.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from saladpipe.data_schemas.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

    from saladpipe.audit import AuditTable, RunFolder


def _run_k(run: RunFolder) -> int | None:
    k = run.config.get("cluster", {}).get("k")
    return int(k) if k is not None else None


def _filtered(args: argparse.Namespace) -> tuple[RunFolder, AuditTable, pa.Table]:
    """The run, its audit table and the rows that pass the command's filters."""
    from saladpipe.audit import AuditFilter, RunFolder, audit_table

    run = RunFolder.open(args.run_dir)
    audit = audit_table(run)
    selection = AuditFilter(
        clusters=tuple(args.cluster),
        rounds=tuple(args.round),
        voices=tuple(args.voice),
        gap_min=args.gap_min,
        gap_max=args.gap_max,
        quarantined=args.quarantined,
    )
    selection.check(audit.table, run.rounds, _run_k(run))
    return run, audit, selection.apply(audit.table)


def _mix_report(args: argparse.Namespace) -> int:
    """The report of a mix folder: its sources' numbers and a sample of their clips."""
    from saladpipe.audit.mix_report import build_mix_report
    from saladpipe.mix.samples import sample_clips

    clips = sample_clips(args.run_dir, args.clips_per_source, args.seed)
    out = build_mix_report(args.run_dir, args.output or args.run_dir / "mix_report.html", clips)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {len(clips)} clips)")
    return 0


def _report(args: argparse.Namespace) -> int:
    from saladpipe.audit import ReportOptions, build_report
    from saladpipe.data_schemas.mix_manifest import is_mix

    if is_mix(args.run_dir):
        return _mix_report(args)

    options = ReportOptions(
        seed=args.seed,
        rows_per_cluster=args.rows_per_cluster,
        max_clips=args.max_clips,
        representatives=args.representatives,
        map_points=args.map_points,
    )
    out = args.output or args.run_dir / "report.html"
    result = build_report(args.run_dir, out, options)
    print(
        f"wrote {result.path} ({result.bytes / 1e6:.1f} MB, {result.clips} clips, "
        f"{result.rows} selected rows) in {result.seconds:.1f} s"
    )
    return 0


def _audit(args: argparse.Namespace) -> int:
    from saladpipe.audit import format_rows, write_csv

    _, audit, rows = _filtered(args)
    if args.limit < 0:
        raise ConfigError(f"--limit: must be at least 0 (got {args.limit})")
    shown = rows if args.limit == 0 else rows.slice(0, args.limit)
    width = shutil.get_terminal_size((160, 24)).columns
    for line in format_rows(shown, width):
        print(line)
    more = "" if shown.num_rows == rows.num_rows else " (--limit 0 prints all)"
    print(
        f"{rows.num_rows} of {audit.table.num_rows} selected rows match; "
        f"{shown.num_rows} printed{more}"
    )
    for note in audit.notes:
        print(f"note: {note}")
    if args.csv is not None:
        write_csv(rows, args.csv)
        print(f"wrote {rows.num_rows} rows to {args.csv}")
    return 0


def _listen(args: argparse.Namespace) -> int:
    from saladpipe.audit import write_listening_set

    run, _, rows = _filtered(args)
    written = write_listening_set(
        rows, run.root, args.out_dir, args.n, args.seed, overwrite=args.overwrite
    )
    print(
        f"wrote {written.clips} clips (a sample of {written.eligible} matching clips) "
        f"and {written.csv.name} to {written.out_dir}"
    )
    return 0


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cluster", type=int, action="append", default=[], help="only this cluster (repeatable)"
    )
    parser.add_argument(
        "--round",
        type=int,
        action="append",
        default=[],
        help="only this selection round (repeatable)",
    )
    parser.add_argument(
        "--voice", action="append", default=[], help="only clips of this TTS voice (repeatable)"
    )
    parser.add_argument("--gap-min", type=float, help="only rows whose gap_score is at least this")
    parser.add_argument("--gap-max", type=float, help="only rows whose gap_score is at most this")
    parser.add_argument(
        "--quarantined",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="only rows whose synthesis was quarantined (--no-quarantined: only the others)",
    )


def add_audit_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `report`, `audit` and `listen` to the `saladpipe` subcommands."""
    report = commands.add_parser(
        "report",
        help="write a self-contained HTML report of a run (charts, map, audio) or of a "
        "training mix (its sources, groups, durations and clips)",
    )
    report.add_argument("run_dir", type=Path, metavar="DIR", help="a run folder or a mix folder")
    report.add_argument(
        "-o",
        "--output",
        type=Path,
        help="HTML file to write (default: DIR/report.html, for a mix DIR/mix_report.html)",
    )
    report.add_argument("--seed", type=int, default=0, help="seed of every sample in the report")
    report.add_argument(
        "--clips-per-source",
        type=int,
        default=3,
        help="a mix: clips embedded per speech source",
    )
    report.add_argument(
        "--rows-per-cluster", type=int, default=2, help="selected rows shown per cluster"
    )
    report.add_argument(
        "--max-clips", type=int, default=48, help="clips embedded in the report, at most"
    )
    report.add_argument(
        "--representatives", type=int, default=3, help="texts nearest each centroid shown"
    )
    report.add_argument(
        "--map-points", type=int, default=3000, help="pool texts drawn on the embedding map"
    )
    report.set_defaults(handler=_report)

    audit = commands.add_parser(
        "audit", help="print the selected rows of a run, filtered; export them as CSV"
    )
    audit.add_argument("run_dir", type=Path)
    _add_filters(audit)
    audit.add_argument("--limit", type=int, default=50, help="rows printed (0: all)")
    audit.add_argument("--csv", type=Path, help="also write every matching row to this CSV file")
    audit.set_defaults(handler=_audit)

    listen = commands.add_parser(
        "listen", help="write a seeded sample of clips as WAV files with a CSV of their texts"
    )
    listen.add_argument("run_dir", type=Path)
    listen.add_argument("out_dir", type=Path)
    listen.add_argument("-n", type=int, default=20, help="clips to write (default 20)")
    listen.add_argument("--seed", type=int, default=0)
    listen.add_argument("--overwrite", action="store_true", help="replace an earlier sample")
    _add_filters(listen)
    listen.set_defaults(handler=_listen)
