"""Speed benchmark: robust timing (:mod:`anila.bench.timing`) and the grid of models × batches × samplers
against the bare forward+backward limit (:mod:`anila.bench.speed`); ``anila bench`` runs it.

>>> from anila.bench import QUICK, run_speed, format_markdown
>>> print(format_markdown(run_speed(QUICK)))   # doctest: +SKIP
"""

from anila.bench.speed import MODELS, OPTIONS, QUICK, SpeedSettings, check_targets, format_markdown, run_speed
from anila.bench.timing import CallProfile, Timing, profile_call, time_per_call

__all__ = ["MODELS", "OPTIONS", "QUICK", "CallProfile", "SpeedSettings", "Timing", "check_targets",
           "format_markdown", "profile_call", "run_speed", "time_per_call"]
