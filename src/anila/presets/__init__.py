"""Named training recipes: ``preset = "<name>"`` at the top of a config picks one.

A preset is a TOML file in this folder, ``<name>.toml``, holding any sections of a config except ``[data]``
(``[model]``, ``[sampler]``, ``[chains]``, ``[train]``, ...). Adding a recipe is adding one file: every
``*.toml`` here is a preset, listed by :func:`preset_names` and run by the time-to-quality benchmark.

A config that names a preset is the preset with the config's own keys on top, section by section
(:func:`merge_preset`). A section that names a different ``name`` than the preset's (another sampler, model
or objective) replaces the preset's section whole, since one sampler's keys do not fit another. So three
lines train on your own data with a recipe:

.. code-block:: toml

    preset = "recommended"
    [data]
    name = "points"
    path = "my_points.csv"

>>> sorted(preset_names())                      # doctest: +SKIP
['anila', 'hmc_short_run', 'langevin']
>>> merge_preset({"preset": "langevin", "data": {"name": "rings"}, "train": {"lr": 3e-4}})["train"]["lr"]
0.0003
"""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

from anila.errors import ConfigError

__all__ = ["load_preset", "merge_preset", "preset_names"]

PRESET_KEY = "preset"


def _files():
    return resources.files(__name__)


def preset_names() -> tuple[str, ...]:
    """The presets shipped in this folder, sorted."""
    return tuple(sorted(f.name[:-5] for f in _files().iterdir() if f.name.endswith(".toml")))


def load_preset(name: str) -> dict[str, dict[str, Any]]:
    """The sections of preset ``name``, as parsed from ``<name>.toml``."""
    if not isinstance(name, str) or name not in preset_names():
        raise ConfigError(f"preset: unknown preset {name!r}; choose one of {', '.join(preset_names())}")
    raw = tomllib.loads(_files().joinpath(f"{name}.toml").read_text())
    if "data" in raw or PRESET_KEY in raw:
        raise ConfigError(f"preset {name}: a preset holds no [data] section and names no other preset")
    return raw


def merge_preset(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` (a parsed config) with its ``preset`` filled in under it; ``raw`` itself is not modified.

    Without a ``preset`` key, ``raw`` is returned as it is."""
    if PRESET_KEY not in raw:
        return raw
    raw = dict(raw)
    preset = load_preset(raw.pop(PRESET_KEY))
    merged: dict[str, Any] = {section: dict(values) for section, values in preset.items()}
    for section, values in raw.items():
        base = merged.get(section)
        if not isinstance(values, dict) or base is None:
            merged[section] = values
        elif "name" in values and values["name"] != base.get("name"):
            merged[section] = dict(values)  # another sampler / model / objective: the preset's keys do not apply
        else:
            merged[section] = {**base, **values}
    return merged
