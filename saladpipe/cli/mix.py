"""`saladpipe mix`: build a training mix from a mix TOML."""

from __future__ import annotations

import argparse
from pathlib import Path

from saladpipe.data_schemas.mix_config import BUILTIN_PREFIX, MixConfig, MixSource


def _resolve_builtins(config: MixConfig) -> MixConfig:
    """Builtin source paths (`builtin:stage1-speech`) replaced by the files they name."""
    sources: list[MixSource] = []
    for source in config.sources:
        paths = []
        for path in source.path:
            if str(path).startswith(BUILTIN_PREFIX):
                from saladpipe.training.standin import builtin_source_path

                path = builtin_source_path(str(path), source.kind)
            paths.append(path)
        sources.append(source.model_copy(update={"path": tuple(paths)}))
    return config.model_copy(update={"sources": sources})


def _mix(args: argparse.Namespace) -> int:
    from saladpipe.data_schemas.mix_config import load_mix_config
    from saladpipe.mix.draw import build_mix

    config = _resolve_builtins(load_mix_config(args.config))
    out_dir = args.output_dir or config.mix.output_dir or Path.cwd() / "mixes" / config.mix.name
    manifest = build_mix(config, out_dir, materialise=args.materialize)
    for report in manifest.sources:
        skipped = ", ".join(f"{n} {reason}" for reason, n in report.skipped.items())
        print(
            f"{report.name} ({report.kind}, {report.format}): {report.rows} rows, "
            f"{report.taken:.3f} of {report.requested:.3f} {manifest.unit} asked "
            f"({report.available:.3f} available)" + (f"; left out: {skipped}" if skipped else "")
        )
    if manifest.shards:
        print(f"materialised in {len(manifest.shards)} shard(s) under {out_dir / 'shards'}")
    print(f"mix manifest {out_dir / 'mix.json'}")
    return 0


def add_mix_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `mix` to the `saladpipe` subcommands."""
    mix = commands.add_parser(
        "mix", help="build a training mix from several sources by hours or rows"
    )
    mix.add_argument("config", type=Path, help="mix TOML (see examples/mix.toml)")
    mix.add_argument("--output-dir", type=Path, help="default: mix.output_dir, else mixes/NAME")
    mix.add_argument(
        "--materialize",
        action="store_true",
        help="also write the rows with their audio as shards of the mix (one folder to move)",
    )
    mix.set_defaults(handler=_mix)
