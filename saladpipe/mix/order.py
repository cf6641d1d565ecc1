"""The order a mix is read in: sources interleaved by their shares, fresh each epoch,
split over the (rank, dataloader worker) slots of a job.

Each source's rows are shuffled on their own (seed, epoch, source) stream and dealt
round-robin to the slots, so every slot holds each source's share to within a row and
every row goes to exactly one slot. Within a slot, row k of a source with n rows sits
at (k + u) / n, u uniform in [0, 1): sorting by that position spreads each source
evenly over the epoch, so any stretch of a slot's stream holds about the shares.
"""

from __future__ import annotations

import numpy as np


def slot_order(
    source_of_row: np.ndarray, seed: int, epoch: int, slot: int = 0, slots: int = 1
) -> np.ndarray:
    """Row indices slot `slot` of `slots` reads this epoch, in order."""
    mine: list[np.ndarray] = []
    positions: list[np.ndarray] = []
    dealt = 0
    for source in np.unique(source_of_row):
        rows = np.flatnonzero(source_of_row == source)
        rng = np.random.default_rng([seed, epoch, int(source)])
        shuffled = rows[rng.permutation(rows.size)]
        # Dealing goes on where the previous source stopped, so slot sizes differ by one at most.
        taken = shuffled[(dealt + np.arange(rows.size)) % slots == slot]
        dealt += rows.size
        mine.append(taken)
        positions.append((np.arange(taken.size) + rng.random(taken.size)) / max(taken.size, 1))
    if not mine:
        return np.empty(0, dtype=np.int64)
    rows_of_slot = np.concatenate(mine)
    return rows_of_slot[np.argsort(np.concatenate(positions), kind="stable")]
