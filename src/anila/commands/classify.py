"""``anila classify RUN``: a trained classifier energy (JEM, ``model.num_classes``) on labelled test data.

The test data are the run's own data set: for ``digits`` the 20 % a labelled run held out
(:func:`anila.data.labelled.digits_split`), for ``mnist`` / ``cifar10`` their test split (``--split train``: the
training images), for a labelled toy ``--num`` fresh draws (seed ``--seed``). Reports ``accuracy``, ``nll`` (mean
``-log p(y | x)``), ``ece`` (15 bins) and ``num``; ``--out DIR`` also writes ``DIR/classify.json`` and the
reliability diagram ``DIR/reliability.png``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from anila.errors import DataError

TOY_TEST_SEED_OFFSET = 1_000_003  #: toy test draws use ``seed + this``, away from any training seed


def classify_checkpoint(checkpoint, *, split: str = "test", num: int = 10000, seed: int = 0,
                        out: str | Path | None = None) -> dict[str, float]:
    """Classification metrics of the checkpoint's classifier energy on its test data (module docstring)."""
    from anila.data.labelled import labelled_images, labelled_toy
    from anila.objectives.jem import classification_metrics, has_class_head, predict, reliability_diagram
    from anila.train.trained import load_trained_energy

    if split not in ("train", "test") or num < 1:
        raise DataError(f"--split must be train or test and --num >= 1; got {split!r}, {num}")
    config, energy = load_trained_energy(checkpoint)
    if not has_class_head(energy):
        raise DataError(f"{checkpoint}: its model has no class head (model.num_classes); train one with "
                        "objective.name = \"jem\"")
    device = next(energy.parameters()).device
    if config.data.is_toy:
        x, y = labelled_toy(config.data.name)(num, torch.Generator(device=device).manual_seed(seed +
                                                                                               TOY_TEST_SEED_OFFSET))
    elif config.data.is_points:
        raise DataError(f"{checkpoint}: point data have no labels")
    else:
        x, y = labelled_images(config, split)
    x, y = x.to(device), y.to(device)
    metrics = classification_metrics(energy, x, y)
    if out is not None:
        from anila.io import atomic_write_text

        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        reliability_diagram(predict(energy, x), y, folder / "reliability.png",
                            title=f"{config.data.name} {split}")
        atomic_write_text(folder / "classify.json", json.dumps(metrics, indent=2) + "\n")
    return metrics
