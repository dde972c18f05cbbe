"""The toy studies behind ``docs/results/toy.md`` (stationary bias, convergence speed, equal-budget training) and
``docs/results/time_to_quality.md`` (each preset's grid KL after a fixed CPU budget).

Each module has ``run(out_dir, quick=False, settings=None) -> rows`` and a frozen settings dataclass; the CLI
(``anila compare <study> [--quick] [--set key=value]``) and ``benchmarks/*.py`` call it.
"""

STUDIES = {"bias": "anila.studies.bias", "convergence": "anila.studies.convergence",
           "equal_budget": "anila.studies.equal_budget", "time_to_quality": "anila.studies.time_to_quality"}
