"""How many CPU threads torch uses for a run: ``[train] threads``.

Small models gain nothing from several threads: a per-point MLP on a batch of 100 points does too little
work per operation to split, and on a loaded machine the threads wait on each other. ``threads = 0`` (the
default) therefore picks **one thread for point data** (the 2-D toys and your own point files) and leaves
torch's own choice (one per core) for images; ``threads = N`` asks for ``N``. The measurement behind the
default is in ``docs/performance.md`` ("Threads").

:func:`apply_threads` sets torch's process-wide count (``torch.set_num_threads``) when a run starts and leaves
it so; it changes nothing on a GPU, where the work is not on CPU threads.

>>> run_threads(config)   # 1 for the rings toy with threads = 0    # doctest: +SKIP
1
"""

from __future__ import annotations

import torch

AUTO = 0
POINT_DATA_THREADS = 1


def run_threads(config) -> int:
    """The thread count a run of ``config`` uses: ``train.threads``, or for 0, 1 on point data and torch's
    current count otherwise."""
    if config.train.threads != AUTO:
        return config.train.threads
    return POINT_DATA_THREADS if config.data.is_points else torch.get_num_threads()


def apply_threads(config) -> int:
    """Set torch's CPU thread count for a run of ``config``; returns it."""
    threads = run_threads(config)
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads
