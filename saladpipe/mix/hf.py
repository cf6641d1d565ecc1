"""The mix as a Hugging Face `datasets.IterableDataset`, for trainers built on `datasets`.

The generator's shards are the slots of mix/order.py: `datasets` hands them out to
dataloader workers (and `split_dataset_by_node` to ranks), so each worker reads whole
slots, every row once per epoch, each slot holding every source's share.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saladpipe.mix.dataset import MixDataset

if TYPE_CHECKING:
    import datasets

_STRINGS = ("source", "format", "kind", "item_id", "locator", "text", "group", "voice", "engine")


def _examples(
    mix_dir: str, seed: int | None, epoch: int, slots: int, slot: list[int]
) -> Iterator[dict[str, Any]]:
    # One rank: slot s of `slots` is what worker s of `slots` workers reads.
    mix = MixDataset(Path(mix_dir), seed=seed, epoch=epoch, rank=0, world_size=1)
    for index in (i for s in slot for i in mix.my_rows(s, slots)):
        example = mix.example(int(index))
        audio = example.pop("audio")
        rate = example["sampling_rate"]
        example["audio"] = None if audio is None else {"array": audio, "sampling_rate": rate}
        yield example


def hf_mix(
    mix_dir: Path, seed: int | None = None, epoch: int = 0, slots: int = 8
) -> datasets.IterableDataset:
    """The mix for `datasets`; `slots` (the generator's shards) should be a multiple of
    world size times dataloader workers."""
    import datasets

    features = datasets.Features(
        {
            **{name: datasets.Value("string") for name in _STRINGS},
            "duration_s": datasets.Value("float64"),
            "audio": datasets.Audio(),
            "sampling_rate": datasets.Value("int32"),
        }
    )
    return datasets.IterableDataset.from_generator(
        _examples,
        features=features,
        gen_kwargs={
            "mix_dir": str(mix_dir),
            "seed": seed,
            "epoch": epoch,
            "slots": slots,
            "slot": list(range(slots)),
        },
    )
