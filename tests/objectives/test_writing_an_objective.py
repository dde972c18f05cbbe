"""The worked example of docs/objectives.md runs as written: a spec, an objective with an auxiliary module and
one registry line train through the run, and the auxiliary module and its optimizer are checkpointed."""

import re
from pathlib import Path

import pytest

from anila.objectives import OBJECTIVES
from anila.train.checkpoint import load_checkpoint

DOC = Path(__file__).resolve().parents[2] / "docs" / "objectives.md"
pytestmark = pytest.mark.usefixtures("one_thread")


def worked_example() -> str:
    section = DOC.read_text().split("## Writing an objective", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_worked_example_trains_and_checkpoints_its_auxiliary_module(tmp_path):
    from anila.train.run import run_training

    namespace = {}
    try:
        exec(compile(worked_example(), str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
        config = namespace["config"]
        assert config.to_dict()["objective"] == {"name": "shifted_cd"}
        run_training(config, tmp_path, progress=False)
        groups, meta = load_checkpoint(tmp_path)
        shift = groups["aux"]["shift.value"]
        assert shift.item() != 0.0 and "shift.0.exp_avg" in groups["aux_optimizer"]
        assert meta["aux_optimizer"]["shift"]["param_groups"][0]["lr"] == 1e-2
    finally:
        OBJECTIVES.pop("shifted_cd", None)
