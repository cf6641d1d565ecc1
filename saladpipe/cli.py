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
from saladpipe.data_schemas.config import RunConfig, load_config, parse_config
from saladpipe.data_schemas.errors import ConfigError, SaladpipeError
from saladpipe.data_schemas.layout import RunLayout

EXIT_USAGE = 2
EXIT_FAILURE = 1


def default_config(overrides: Sequence[str] = ()) -> RunConfig:
    """The embedded default (same as examples/quickstart.toml); paths resolve against the cwd."""
    text = importlib_resources.files("saladpipe").joinpath("defaults/quickstart.toml").read_text()
    return parse_config(text, "the embedded default", Path.cwd(), list(overrides))


def prepare_run_dir(layout: RunLayout, overwrite: bool) -> None:
    """Refuse to mix a new run into a folder that holds another run's files."""
    if not layout.root.exists():
        return
    content = [p for p in layout.root.iterdir() if p.name != layout.state.name]
    if not content:
        return
    if not overwrite:
        raise ConfigError(
            f"run folder {layout.root} is not empty; "
            "choose another --output-dir or pass --overwrite"
        )
    import shutil

    for path in content:
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.set) if args.config else default_config(args.set)
    if args.output_dir is not None:
        run = config.run.model_copy(update={"output_dir": args.output_dir.resolve()})
        config = config.model_copy(update={"run": run})
    # Fail on names the config validator cannot know (registries) before anything runs.
    from saladpipe.selectors import create_strategy
    from saladpipe.tts import ENGINES

    create_strategy(config.select)
    if config.tts.engine not in ENGINES:
        known = ", ".join(sorted(ENGINES))
        raise ConfigError(
            f"config error: tts.engine: unknown engine {config.tts.engine!r} (have: {known})"
        )
    layout = RunLayout(config.output_path())
    prepare_run_dir(layout, args.overwrite)

    from saladpipe.flows.round import run_round

    result = run_round(config)
    counts = result.manifest.counts
    print(
        f"run {config.run.name}: {counts['synthesized']} of {counts['selected']} selected texts "
        f"in {counts['shards']} shards; manifest {layout.manifest}"
    )
    return 0


def _corpus(args: argparse.Namespace) -> int:
    import pyarrow.parquet as pq

    from saladpipe.data_schemas.io import atomic_path
    from saladpipe.pipeline.corpora.wordnet import build_wordnet_corpus

    table = build_wordnet_corpus(per_domain=args.per_domain, seed=args.seed)
    with atomic_path(args.output) as tmp:
        pq.write_table(table, tmp)
    domains = len(set(table.column("domain").to_pylist()))
    print(f"wrote {table.num_rows} texts of {domains} domains to {args.output}")
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
    run.set_defaults(handler=_run)

    corpus = commands.add_parser(
        "corpus", help="build the builtin WordNet multi-domain corpus as Parquet"
    )
    corpus.add_argument("output", type=Path)
    corpus.add_argument("--per-domain", type=int, default=500)
    corpus.add_argument("--seed", type=int, default=0)
    corpus.set_defaults(handler=_corpus)
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


if __name__ == "__main__":
    sys.exit(main())
