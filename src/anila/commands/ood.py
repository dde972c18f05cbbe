"""``anila ood``: AUROC of energy and input-gradient-norm scores, in-distribution set vs. each OOD set.

Data set specifications, ``NAME[:KEY=VALUE[:KEY=VALUE...]]``:

- an image set, ``digits`` / ``mnist`` / ``cifar10`` / ``folder``, with keys ``class=C`` (only class C),
  ``holdout=C`` (every class but C), ``split=train|test`` and ``root=PATH`` (default: the checkpoint's);
  ``digits:class=9`` is the held-out digit of a model trained with ``data.holdout_class = 9``;
- a toy set (``rings``, ``8gaussians``, ...): fresh draws of its generator;
- ``uniform`` (keys ``low``, ``high``; default the pixel range ``[-1, 1]``, for toys ``[-bound, bound]``) and
  ``gaussian`` (keys ``mean``, ``std``; default ``N(0, 1)``): noise shaped like the model's samples.

The default in-distribution set is the checkpoint's own training data (with its ``holdout_class`` left out).
Each set is cut to ``num`` inputs (a seeded random subset). Writes ``{out_set: {auroc_energy,
auroc_grad_norm, mean_energy, ...}}``; for a classifier energy (JEM) also ``auroc_max_softmax``, the
max-softmax baseline (Hendrycks & Gimpel 2017).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from anila.config import Config
from anila.data.images import IMAGE_DATASETS, build_dataset
from anila.data.toy import TOY_DATASETS, toy_dataset
from anila.errors import DataError
from anila.metrics.ood import SCORES, auroc, ood_scores

NOISE_SETS = ("uniform", "gaussian")
_KEYS = {"image": ("class", "holdout", "split", "root"), "toy": (), "uniform": ("low", "high"),
         "gaussian": ("mean", "std")}


def parse_spec(text: str) -> tuple[str, dict[str, str]]:
    """``"digits:class=9"`` -> ``("digits", {"class": "9"})``, with the keys checked against the set's kind."""
    name, *items = text.strip().split(":")
    kind = "image" if name in IMAGE_DATASETS else "toy" if name in TOY_DATASETS else name
    if kind not in _KEYS:
        raise DataError(f"unknown data set {name!r} in {text!r}; choose an image set "
                        f"({', '.join(IMAGE_DATASETS)}), a toy set or {', '.join(NOISE_SETS)}")
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in _KEYS[kind]:
            raise DataError(f"{text!r}: bad option {item!r}; {name} takes "
                            f"{', '.join(k + '=...' for k in _KEYS[kind]) or 'no options'}")
        options[key] = value
    return name, options


def _number(text: str, value: str, cast=float):
    try:
        return cast(value)
    except ValueError:
        raise DataError(f"{text!r}: {value!r} is not a number") from None


def _subset(x: torch.Tensor, num: int, generator: torch.Generator) -> torch.Tensor:
    if len(x) <= num:
        return x
    return x[torch.randperm(len(x), generator=generator)[:num]]


def load_set(text: str, config: Config, num: int, generator: torch.Generator) -> torch.Tensor:
    """The inputs named by the specification ``text`` (module docstring), shaped like the model's samples."""
    name, options = parse_spec(text)
    shape = config.data.event_shape
    if name in NOISE_SETS:
        bound = toy_dataset(config.data.name).bound if config.data.is_toy else 1.0
        if name == "uniform":
            low, high = (_number(text, options.get(k, str(d))) for k, d in (("low", -bound), ("high", bound)))
            if not low < high:
                raise DataError(f"{text!r}: needs low < high")
            return low + (high - low) * torch.rand(num, *shape, generator=generator)
        mean, std = (_number(text, options.get(k, d)) for k, d in (("mean", "0"), ("std", "1")))
        return mean + std * torch.randn(num, *shape, generator=generator)
    if name in TOY_DATASETS:
        x = toy_dataset(name).sample(num, generator=generator)
    else:
        data = config.data
        root = options.get("root", data.root if name == data.name else None)
        try:
            dataset = build_dataset(name, root, image_size=data.image_size, split=options.get("split", "train"))
        except ValueError as exc:
            raise DataError(f"{text!r}: {exc}") from None
        for key, arg in (("class", "only"), ("holdout", "exclude")):
            if key in options:
                dataset = dataset.select(**{arg: _number(text, options[key], int)})
        x = _subset(dataset.images, num, generator)
    if tuple(x.shape[1:]) != tuple(shape):
        raise DataError(f"{text!r} has inputs shaped {tuple(x.shape[1:])}, the model takes {tuple(shape)}")
    return x


def default_in_spec(config: Config) -> str:
    """The checkpoint's own training data, without its held-out class."""
    data = config.data
    spec = data.name
    if data.holdout_class is not None:
        spec += f":holdout={data.holdout_class}"
    if data.name in ("mnist", "cifar10"):
        spec += f":split={data.split}"
    return spec


def ood_checkpoint(checkpoint, out_specs: list[str], *, in_spec: str | None = None, num: int = 1000, seed: int = 0,
                   out_json: str | Path | None = None) -> dict[str, dict[str, float]]:
    """AUROC of each score for ``in_spec`` vs. every set in ``out_specs``; see the module docstring."""
    from anila.train.trained import load_trained_energy

    if num < 1 or not out_specs:
        raise DataError("--num must be >= 1 and --out must name at least one data set")
    config, energy = load_trained_energy(checkpoint)
    energy = config.objective.density_energy(energy)  # noise-conditional: sigma_min
    generator = torch.Generator().manual_seed(seed)
    in_spec = in_spec or default_in_spec(config)
    x_in = load_set(in_spec, config, num, generator)
    scores_in = ood_scores(energy, x_in)
    results: dict[str, dict[str, float]] = {}
    for spec in out_specs:
        x_out = load_set(spec, config, num, generator)
        scores_out = ood_scores(energy, x_out)
        try:
            row = {f"auroc_{s}": auroc(scores_in[s], scores_out[s]) for s in SCORES}
        except ValueError as exc:
            raise DataError(f"{spec}: {exc}") from None
        row.update({f"mean_{s}_in": float(scores_in[s].mean()) for s in SCORES})
        row.update({f"mean_{s}_out": float(scores_out[s].mean()) for s in SCORES})
        row.update(num_in=len(scores_in["energy"]), num_out=len(scores_out["energy"]))
        from anila.objectives.jem import has_class_head, max_softmax_score

        if has_class_head(energy):  # a classifier energy (JEM): the max-softmax baseline too
            row["auroc_max_softmax"] = auroc(max_softmax_score(energy, x_in), max_softmax_score(energy, x_out))
        results[spec] = row
    if out_json is not None:
        from anila.io import atomic_write_text

        atomic_write_text(out_json, json.dumps({"in": in_spec, "results": results}, indent=2) + "\n")
    return results
