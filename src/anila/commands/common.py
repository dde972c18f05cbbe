"""Helpers shared by the subcommands: a checkpoint's sampler swapped or tuned from the command line."""

from __future__ import annotations

from anila.config import Config, config_from_dict, parse_override
from anila.errors import ConfigError


def with_sampler(config: Config, sampler: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """``config`` with its sampler replaced by ``sampler`` (a name of :data:`anila.samplers.SAMPLERS`, default
    fields) and ``sampler.key=value`` ``overrides`` applied, validated like a config file."""
    raw = config.to_dict()
    if sampler is not None:
        raw["sampler"] = {"name": sampler}
    for text in overrides:
        section, key, value = parse_override(text)
        if section != "sampler":
            raise ConfigError(f"--set {text!r}: only sampler.KEY=VALUE can be changed here")
        raw["sampler"][key] = value
    return config_from_dict(raw)
