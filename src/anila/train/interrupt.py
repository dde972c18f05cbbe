"""Stopping a training cleanly on SIGINT (Ctrl-C) or SIGTERM (``kill``, a batch scheduler).

:func:`graceful_stop` installs handlers that only raise a flag; the training loop looks at it between
iterations, so the run stops at an iteration boundary, writes a checkpoint of that iteration (atomically, as
every checkpoint) and :func:`~anila.train.run.run_training` raises :class:`~anila.errors.RunInterrupted`
(exit code 130 for SIGINT, 143 for SIGTERM) with the command that resumes it. A second signal while the
checkpoint is written restores the default behaviour: Ctrl-C twice stops at once (the previous checkpoint
stays valid, as after a ``kill -9``). With ``flag.immediate = True`` (the end-of-run figures, where there is
no iteration to finish) the handler raises :class:`KeyboardInterrupt` at once.

>>> with graceful_stop() as stop:  # doctest: +SKIP
...     run_training(config, out, stop=stop)
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class StopFlag:
    """Set by a signal handler (or by hand); ``bool(flag)`` is true once a stop was requested."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.immediate = False  # True: the handler also raises KeyboardInterrupt (no iteration to finish)

    def request(self, signum: int = signal.SIGINT) -> None:
        if self.signum is None:
            self.signum = int(signum)

    def __bool__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""


SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def graceful_stop(flag: StopFlag | None = None) -> Iterator[StopFlag]:
    """Within the block, SIGINT and SIGTERM set the returned flag instead of stopping the process; a second
    one gets the previous handler's behaviour. Outside the main thread nothing is installed."""
    flag = flag or StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}

    def handler(signum, frame):
        flag.request(signum)
        for sig, old in previous.items():  # a second signal: the usual behaviour (Ctrl-C twice stops at once)
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        if flag.immediate:
            raise KeyboardInterrupt

    for sig in SIGNALS:
        signal.signal(sig, handler)
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
