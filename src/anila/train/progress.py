"""Training progress on stderr: a bar on a terminal, plain periodic lines anywhere else.

Redirected to a file (``anila train run.toml 2> train.log``, a batch job, CI), a redrawn bar leaves hundreds
of lines. There the loop writes one line per logged iteration (every ``train.log_every`` and the last):

    train  150/1000  15%  loss=0.0123  energy_gap=-0.412  accept_rate=0.571  2.3 s, ~13 s left

On a terminal the same values ride on a tqdm bar. Both show the loss, the energy gap (mean data energy minus
mean sample energy) and the sampler's acceptance rate (Metropolis samplers) or clip fraction (AniLA) when the
iteration reports them. :func:`training_progress` is the one factory the loop calls.

>>> import io
>>> out = io.StringIO()
>>> progress = training_progress(100, stream=out)
>>> progress.update(50)
>>> progress.show({"iteration": 50, "loss": 0.25, "energy_gap": -1.5, "clip_fraction": 0.1, "wall_time": 2.0})
>>> progress.close()
>>> print(out.getvalue(), end="")
train  50/100  50%  loss=0.25  energy_gap=-1.5  clip_fraction=0.1  2.0 s, ~2.0 s left
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import IO, Protocol

#: The metrics a progress line shows, in order, when the iteration reports them.
SHOWN = ("loss", "energy_gap", "accept_rate", "clip_fraction")


class Progress(Protocol):
    """What the training loop calls: ``update`` once per iteration, ``show`` with each logged record."""

    def update(self, n: int = 1) -> None: ...

    def show(self, record: Mapping[str, float]) -> None: ...

    def close(self) -> None: ...


def shown(record: Mapping[str, float]) -> dict[str, str]:
    """The :data:`SHOWN` metrics of ``record`` that it has, formatted to three significant digits."""
    return {key: f"{record[key]:.3g}" for key in SHOWN if key in record}


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 100 else f"{s / 60:.1f} min" if s < 6000 else f"{s / 3600:.1f} h"


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def show(self, record: Mapping[str, float]) -> None:
        pass

    def close(self) -> None:
        pass


class _Lines:
    """One plain line per :meth:`show`; nothing in between."""

    def __init__(self, total: int, initial: int, stream: IO[str], desc: str):
        self.total, self.initial, self.stream, self.desc = total, initial, stream, desc
        self.done = initial

    def update(self, n: int = 1) -> None:
        self.done += n

    def show(self, record: Mapping[str, float]) -> None:
        width = len(str(self.total))
        iteration = int(record.get("iteration", self.done))
        parts = [f"{self.desc} {iteration:>{width}}/{self.total}", f"{100 * iteration / max(self.total, 1):.0f}%"]
        parts += [f"{key}={value}" for key, value in shown(record).items()]
        if "wall_time" in record:
            elapsed, ran = record["wall_time"], iteration - self.initial
            timing = _seconds(elapsed)
            if ran > 0 and iteration < self.total:
                timing += f", ~{_seconds(elapsed / ran * (self.total - iteration))} left"
            parts.append(timing)
        self.stream.write("  ".join(parts) + "\n")
        self.stream.flush()

    def close(self) -> None:
        pass


class _Bar:
    """A tqdm bar whose postfix carries the :data:`SHOWN` metrics."""

    def __init__(self, total: int, initial: int, stream: IO[str], desc: str):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, file=stream)

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def show(self, record: Mapping[str, float]) -> None:
        self.bar.set_postfix(shown(record))

    def close(self) -> None:
        self.bar.close()


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def training_progress(total: int, initial: int = 0, *, enabled: bool = True, stream: IO[str] | None = None,
                      desc: str = "train") -> Progress:
    """The progress of a run of ``total`` iterations that starts at ``initial`` (a resumed run).

    ``stream`` (default ``sys.stderr``) decides the form: a tqdm bar when it is a terminal, else one plain line
    per :meth:`~Progress.show`. ``enabled=False``: nothing is written."""
    stream = sys.stderr if stream is None else stream
    if not enabled:
        return _Silent()
    if _is_terminal(stream):
        return _Bar(total, initial, stream, desc)
    return _Lines(total, initial, stream, desc)


__all__ = ["SHOWN", "Progress", "shown", "training_progress"]
