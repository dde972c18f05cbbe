"""Resume an interrupted run: the result is bit-identical to a run that was never interrupted.

    python examples/resume_an_interrupted_run.py           # about 30 s on 2 CPU cores
    python examples/resume_an_interrupted_run.py --tiny

Shows: ``run_training`` on a config built in Python (the same sections as a TOML file); a run stopped after
half its iterations (as if killed; every checkpoint holds weights, Adam state, buffers and RNG states) is
continued with ``resume=True`` and its final weights are compared with those of an uninterrupted run. From the
command line: ``anila train CONFIG --resume RUN_DIR`` (docs/reliability.md).
"""

import torch
from _common import parse_args

from anila.config import config_from_dict
from anila.train import load_checkpoint, run_training

out, tiny = parse_args("resume_an_interrupted_run", __doc__)
iterations = 20 if tiny else 400
raw = {
    "data": {"name": "rings"},
    "model": {"name": "mlp", "width": 32, "depth": 3},
    "sampler": {"name": "anila", "step_size": 0.02, "threshold": 1.0},
    "chains": {"init": "noise", "scale": 2.0},
    "train": {"iterations": iterations, "num_steps": 10, "lr": 1e-3, "l2_reg": 0.1, "checkpoint_every": 5,
              "log_every": 5},
    "eval": {"grid_resolution": 64, "num_samples": 200},
}


def config(iterations: int):
    return config_from_dict({**raw, "train": {**raw["train"], "iterations": iterations}})


run_training(config(iterations), out / "uninterrupted", progress=False)
run_training(config(iterations // 2), out / "interrupted", progress=False)       # stops half-way ...
run_training(config(iterations), out / "interrupted", progress=False, resume=True)  # ... and is resumed

(a, _), (b, _) = load_checkpoint(out / "uninterrupted"), load_checkpoint(out / "interrupted")
same = all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
print(f"final weights bit-identical to the uninterrupted run: {same}")
print(f"training curves: {out}/uninterrupted/curves.png and {out}/interrupted/curves.png")
assert same
