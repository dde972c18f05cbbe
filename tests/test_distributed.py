"""Two processes on the CPU (gloo, torch.multiprocessing spawn): the first DDP update with half the batch per rank
matches a one-process update on the whole batch; a short run keeps the parameters identical on both ranks, and
a 2-process run stopped and resumed ends bit-identical to an uninterrupted one (rank-local state included), for
contrastive divergence and for one objective of each other family."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from anila.chains import ChainInit
from anila.energies import MLPEnergy
from anila.samplers import Langevin
from anila.train import TrainSettings, make_train_state
from anila.train.checkpoint import load_checkpoint
from anila.train.loop import train_step

TOY = """
[data]
name = "rings"
[model]
width = 8
depth = 1
[sampler]
name = "anila"
step_size = 0.05
threshold = 1.0
[chains]
init = "replay"
scale = 2.0
buffer_size = 32
[train]
iterations = {iterations}
batch_size = 8
num_steps = 2
log_every = 2
checkpoint_every = 2
[eval]
grid_resolution = 8
num_samples = 16
"""
#: one objective of each family: a differentiable last sampler step and a rank-local bank; second derivatives of
#: the energy, no sampler; an auxiliary module (log Z) with its own optimizer
OBJECTIVE_FAMILIES = ({"name": "improved_cd", "bank_size": 8}, {"name": "ssm"}, {"name": "nce", "fit_samples": 64})
BATCH = 16
SETTINGS = TrainSettings(iterations=1, batch_size=BATCH, num_steps=5, lr=1e-3, l2_reg=0.1)
# noise_scale = 0: the chains are a deterministic function of their start (the data), per chain, so splitting
# the batch across ranks changes nothing but the order of the sums.
SAMPLER, CHAINS = Langevin(step_size=2.0, noise_scale=0.0), ChainInit(init="data")


def first_update(x_pos: torch.Tensor) -> dict[str, torch.Tensor]:
    """One training step; inside a process group, train_step averages the gradients over the ranks."""
    torch.manual_seed(0)
    energy = MLPEnergy(dim=2, width=16, depth=2)
    state = make_train_state(energy, SETTINGS, CHAINS, (2,))
    train_step(state, SAMPLER, CHAINS, x_pos, SETTINGS)
    out = {f"grad.{n}": p.grad.detach().clone() for n, p in energy.named_parameters()}
    out.update({f"param.{n}": p.detach().clone() for n, p in energy.named_parameters()})
    return out


def _worker(rank: int, world_size: int, port: int, folder: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from anila.config import config_from_dict
    from anila.train.distributed import init_distributed, shutdown
    from anila.train.run import run_training

    context = init_distributed()
    try:
        # logged metrics are averaged over the ranks; the guard's flag is AND-ed over them
        assert context.average({"iteration": 3, "loss": float(rank)}) == {"iteration": 3, "loss": 0.5}
        assert not bool(context.all_agree(torch.tensor(rank == 0)))
        assert bool(context.all_agree(torch.tensor(True)))
        x_pos = torch.randn(BATCH, 2, generator=torch.Generator().manual_seed(123))
        half = BATCH // world_size
        save_file(first_update(x_pos[rank * half:(rank + 1) * half]), f"{folder}/first_{rank}.safetensors")

        import tomllib
        for name, iterations, resume in (("whole", 6, False), ("split", 4, False), ("split", 6, True)):
            config = config_from_dict(tomllib.loads(TOY.format(iterations=iterations)))
            summary = run_training(config, f"{folder}/{name}", progress=False, resume=resume)
        final = summary
        for objective in OBJECTIVE_FAMILIES:  # every family of objective, stopped and resumed on 2 processes
            for name, iterations, resume in (("whole", 4, False), ("split", 2, False), ("split", 4, True)):
                raw = tomllib.loads(TOY.format(iterations=iterations))
                raw["model"]["activation"] = "silu"
                raw["objective"] = dict(objective)
                run_training(config_from_dict(raw), f"{folder}/{objective['name']}_{name}", progress=False,
                             resume=resume)
        summary = final
        save_file(summary.energy.state_dict(), f"{folder}/final_{rank}.safetensors")
        assert context.enabled and (context.is_main == (summary.metrics != {}))  # rank 0 alone evaluates
    finally:
        shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_training_on_cpu(tmp_path):
    mp.spawn(_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)

    # First update: the averaged half-batch gradients equal the one-process whole-batch gradient.
    x_pos = torch.randn(BATCH, 2, generator=torch.Generator().manual_seed(123))
    reference = first_update(x_pos)
    ranks = [load_file(str(tmp_path / f"first_{rank}.safetensors")) for rank in range(2)]
    checked = []
    for key, value in reference.items():
        assert torch.equal(ranks[0][key], ranks[1][key]), f"{key} differs between ranks"
        if key.startswith("grad."):
            # float32 sums in another order: relative error ~1e-7; 1e-5 leaves room and still catches a half-batch
            # gradient (it differs by O(1) relative) or an update without averaging.
            error = (ranks[0][key] - value).abs().max()
            assert torch.allclose(ranks[0][key], value, rtol=1e-5, atol=1e-7), (key, error)
        else:
            # Adam's first step is lr * g / (|g| + eps): where |g| is near eps = 1e-8 the last-bit differences of g
            # move the step by up to lr; elsewhere (|g| > 1e-5) the update agrees to ~lr * 1e-5.
            sizeable = reference["grad." + key.split(".", 1)[1]].abs() > 1e-5
            checked.append(sizeable.float().mean())
            assert torch.allclose(ranks[0][key][sizeable], value[sizeable], rtol=0, atol=1e-7), key

    assert sum(checked) / len(checked) > 0.8  # most of the update is compared

    # The run: rank 0 wrote everything, with rank 1's local state; stopped at 4 and resumed to 6 = straight to 6.
    whole, whole_meta = load_checkpoint(tmp_path / "whole")
    split, split_meta = load_checkpoint(tmp_path / "split")
    assert whole_meta["iteration"] == split_meta["iteration"] == 6 and whole_meta["world_size"] == 2
    assert {"model", "optimizer", "buffer", "rng", "rank1"} <= whole.keys()
    assert not torch.equal(whole["buffer"]["chains"], whole["rank1"]["buffer.chains"])  # rank-local buffers
    for group in whole:
        for name in whole[group]:
            assert torch.equal(whole[group][name], split[group][name]), f"{group}.{name}"
    assert whole_meta["rank_rng"] == split_meta["rank_rng"]
    for objective in OBJECTIVE_FAMILIES:
        o_whole, _ = load_checkpoint(tmp_path / f"{objective['name']}_whole")
        o_split, o_split_meta = load_checkpoint(tmp_path / f"{objective['name']}_split")
        assert o_split_meta["iteration"] == 4 and o_split.keys() == o_whole.keys(), objective
        for group in o_whole:
            for name in o_whole[group]:
                assert torch.equal(o_whole[group][name], o_split[group][name]), f"{objective}: {group}.{name}"
    assert "rank1" in o_split and "objective.bank.samples" not in o_split["rank1"]  # nce: no bank
    bank_run, _ = load_checkpoint(tmp_path / "improved_cd_whole")
    assert not torch.equal(bank_run["objective"]["bank.samples"], bank_run["rank1"]["objective.bank.samples"])
    assert "aux" in o_split and "aux" not in o_split["rank1"]  # log Z: shared, stored once
    assert (tmp_path / "whole" / "summary.json").is_file()
    final = [load_file(str(tmp_path / f"final_{rank}.safetensors")) for rank in range(2)]
    for name in final[0]:  # the parameters each rank ends with: identical, and those rank 0 saved
        assert torch.equal(final[0][name], final[1][name]) and torch.equal(final[0][name], split["model"][name])
