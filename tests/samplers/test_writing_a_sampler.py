"""The worked example of docs/samplers.md runs as written: a new rule and two dataclasses, registered with one
line each, work with the runner, the config and the Metropolis correction."""

import re
from pathlib import Path

import pytest
import torch

from anila.config import config_from_dict
from anila.samplers import REGISTRY

DOC = Path(__file__).resolve().parents[2] / "docs" / "samplers.md"
pytestmark = pytest.mark.usefixtures("one_thread")


def worked_example() -> str:
    section = DOC.read_text().split("## Writing a sampler", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_worked_example_runs_and_registers_its_samplers():
    namespace = {}
    try:
        exec(compile(worked_example(), str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
        result = namespace["result"]
        assert 0.2 < float(result.accept_rate.mean()) < 1.0
        assert torch.isfinite(result.x).all()
        config = config_from_dict({"sampler": {"name": "capped_langevin", "cap": 0.5}})
        assert config.sampler.cap == 0.5 and config.to_dict()["sampler"]["name"] == "capped_langevin"
        assert namespace["MetropolisCappedLangevin"]().is_exact
    finally:
        REGISTRY.pop("capped_langevin", None)
        REGISTRY.pop("metropolis_capped_langevin", None)
