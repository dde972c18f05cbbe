"""The toy studies behind ``docs/results/toy.md``: stationary bias, convergence speed, equal-budget training.

Each module has ``run(out_dir, quick=False, settings=None) -> rows`` and a frozen settings dataclass; the CLI
(``anila compare <study> [--quick] [--set key=value]``) and ``benchmarks/*.py`` call it.
"""

STUDIES = {"bias": "anila.studies.bias", "convergence": "anila.studies.convergence",
           "equal_budget": "anila.studies.equal_budget"}
