"""The `saladpipe` command.

Usage and config errors print one line naming the culprit and exit with code 2;
other known failures exit with 1; neither prints a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import resources as importlib_resources
from pathlib import Path

from saladpipe import __version__
from saladpipe.cli.audit import add_audit_commands
from saladpipe.cli.mix import add_mix_command
from saladpipe.cli.models import add_models_commands
from saladpipe.data_schemas.config import RunConfig, load_config, parse_config
from saladpipe.data_schemas.errors import ConfigError, SaladpipeError
from saladpipe.data_schemas.layout import RunLayout

EXIT_USAGE = 2
EXIT_FAILURE = 1


def default_config(overrides: Sequence[str] = ()) -> RunConfig:
    """The embedded default (same as examples/quickstart.toml); paths resolve against the cwd."""
    text = importlib_resources.files("saladpipe").joinpath("defaults/quickstart.toml").read_text()
    return parse_config(text, "the embedded default", Path.cwd(), list(overrides))


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.set) if args.config else default_config(args.set)
    if args.output_dir is not None:
        run = config.run.model_copy(update={"output_dir": args.output_dir.resolve()})
        config = config.model_copy(update={"run": run})
    if args.next_round and args.overwrite:
        raise ConfigError("--next-round adds to a run folder; it cannot go with --overwrite")
    from saladpipe.audit.artifacts import publish_audit_summary
    from saladpipe.cli.preflight import Folder, preflight
    from saladpipe.flows.launch import run_round

    folder = (
        Folder.NEXT_ROUND
        if args.next_round
        else Folder.OVERWRITE
        if args.overwrite
        else Folder.NEW_OR_RESUME
    )
    ready = preflight(config, folder)
    if ready.resuming and not args.next_round:
        print(f"resuming the unfinished or finished run in {config.output_path()}", file=sys.stderr)
    result = run_round(config, ready.round_index, ready.trained, publish_audit_summary)
    counts = result.manifest.counts
    print(
        f"run {config.run.name} round {ready.round_index}: {counts['synthesized']} of "
        f"{counts['selected']} selected texts in {counts['shards']} shards; "
        f"manifest {RunLayout(config.output_path()).manifest}"
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.set)
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    try:
        CronSchedule(cron=args.cron)
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise ConfigError(f"--cron {args.cron!r}: {reason}") from None
    from saladpipe.cli.deployment import serve_rounds
    from saladpipe.cli.preflight import Folder, preflight

    # The checks of every scheduled run, once now: a bad name fails before serving.
    preflight(config, Folder.SCHEDULED, build_models=False)
    serve_rounds(config, args.config.resolve(), args.set, args.cron, args.name or config.run.name)
    return 0


def _explain(args: argparse.Namespace) -> int:
    from saladpipe.audit.explain import explain

    run_dir = args.run_dir if args.run_dir is not None else default_config().output_path()
    if not run_dir.is_dir():
        raise ConfigError(f"run folder {run_dir} not found; pass --run-dir")
    for line in explain(run_dir, args.text_id):
        print(line)
    return 0


def _corpus(args: argparse.Namespace) -> int:
    import pyarrow.parquet as pq

    from saladpipe.corpora.wordnet import build_wordnet_corpus
    from saladpipe.data_schemas.io import atomic_path

    table = build_wordnet_corpus(per_domain=args.per_domain, seed=args.seed)
    with atomic_path(args.output) as tmp:
        pq.write_table(table, tmp)
    domains = len(set(table.column("domain").to_pylist()))
    print(f"wrote {table.num_rows} texts of {domains} domains to {args.output}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from saladpipe.data_schemas.mix_manifest import is_mix
    from saladpipe.mix.verify import verify_mix
    from saladpipe.shards.verify import verify_run

    problems = verify_mix(args.run_dir) if is_mix(args.run_dir) else verify_run(args.run_dir)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{args.run_dir}: {len(problems)} problem(s)", file=sys.stderr)
        return EXIT_FAILURE
    print(f"{args.run_dir}: every file matches the manifest")
    return 0


def _export(args: argparse.Namespace) -> int:
    from saladpipe.shards.export import export_lhotse_shar, export_nemo_manifest

    if not (args.run_dir / "manifest.json").is_file():
        raise ConfigError(f"{args.run_dir} is not a finished run folder (no manifest.json)")
    if args.format == "lhotse-shar":
        written = export_lhotse_shar(args.run_dir, args.output, shard_size=args.shard_size)
        print(f"wrote {len(written.get('cuts', []))} Lhotse Shar shards to {args.output}")
    else:
        manifest = export_nemo_manifest(args.run_dir, args.output)
        print(f"wrote NeMo manifest {manifest}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="saladpipe", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"saladpipe {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run one active-selection round as a Prefect flow")
    run.add_argument(
        "config", nargs="?", type=Path, help="TOML config (default: the embedded quickstart)"
    )
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set select.budget_texts=100",
    )
    run.add_argument(
        "--output-dir", type=Path, help="run folder (default: run.output_dir or runs/<name>)"
    )
    run.add_argument("--overwrite", action="store_true", help="clear a non-empty run folder first")
    run.add_argument(
        "--next-round",
        action="store_true",
        help="add a selection round to a finished run folder: re-score with the configured "
        "student, never re-pick what the ledger holds, spend a fresh budget",
    )
    run.set_defaults(handler=_run)

    serve = commands.add_parser(
        "serve",
        help="serve a deployment that adds a round to the config's run folder on a cron "
        "schedule (round 0 first); runs here until stopped",
    )
    serve.add_argument("config", type=Path, help="TOML config, read again at every run")
    serve.add_argument("--cron", required=True, help='cron schedule, e.g. "0 2 * * *"')
    serve.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value at every run, e.g. --set select.budget_texts=100",
    )
    serve.add_argument("--name", help="deployment name (default: run.name)")
    serve.set_defaults(handler=_serve)

    explain = commands.add_parser(
        "explain", help="say why a text was or was not selected, round by round"
    )
    explain.add_argument("text_id")
    explain.add_argument(
        "--run-dir", type=Path, help="run folder (default: the embedded default's, runs/quickstart)"
    )
    explain.set_defaults(handler=_explain)

    verify = commands.add_parser(
        "verify", help="re-read a run or mix folder and check it against its manifest"
    )
    verify.add_argument("run_dir", type=Path)
    verify.set_defaults(handler=_verify)

    export = commands.add_parser(
        "export", help="export a run's shards as Lhotse Shar or a NeMo manifest"
    )
    export.add_argument("run_dir", type=Path)
    export.add_argument("output", type=Path)
    export.add_argument("--format", choices=["lhotse-shar", "nemo"], default="lhotse-shar")
    export.add_argument("--shard-size", type=int, default=1000, help="cuts per Lhotse Shar shard")
    export.set_defaults(handler=_export)

    add_mix_command(commands)

    corpus = commands.add_parser(
        "corpus", help="build the builtin WordNet multi-domain corpus as Parquet"
    )
    corpus.add_argument("output", type=Path)
    corpus.add_argument("--per-domain", type=int, default=500)
    corpus.add_argument("--seed", type=int, default=0)
    corpus.set_defaults(handler=_corpus)

    add_audit_commands(commands)
    add_models_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Route saladpipe's own log records to Prefect's handlers (console and API).
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "saladpipe")
    # Records logged outside the flow (server start and stop) stay on the console only.
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"saladpipe: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SaladpipeError as exc:
        print(f"saladpipe: {exc}", file=sys.stderr)
        return EXIT_FAILURE
