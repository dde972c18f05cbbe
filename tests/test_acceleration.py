"""The speed switches of ``[train]``: ``compile`` gives the plain path's result, ``cuda_graphs`` is refused
off CUDA (and with Metropolis samplers) with a one-line message, Adam is fused only on CUDA."""

import pytest
import torch

import anila.train.acceleration as acceleration
from anila.chains import ChainInit
from anila.cli import main
from anila.config import check_train_device, config_from_dict
from anila.energies import MLPEnergy
from anila.errors import ConfigError
from anila.samplers import AniLA
from anila.train.loop import TrainSettings, make_train_state, train_step


def _one_iteration(**options):
    torch.manual_seed(0)
    energy = MLPEnergy(dim=2, width=16, depth=2)
    settings = TrainSettings(iterations=2, batch_size=32, num_steps=4, lr=1e-3, **options)
    chains = ChainInit(scale=2.0)
    state = make_train_state(energy, settings, chains, (2,))
    x_pos = torch.randn(32, 2, generator=torch.Generator().manual_seed(1))
    sampler = AniLA(step_size=0.05, threshold=0.5, noise_scale=1.0)
    metrics = [train_step(state, sampler, chains, x_pos, settings) for _ in range(2)]
    return state, metrics


@pytest.mark.slow
def test_compiled_chains_match_the_plain_path(monkeypatch):
    # aot_eager: dynamo's trace and AOTAutograd's forward/backward split (the parts that could change the
    # maths), without Inductor's C++ code generation, which takes minutes on a busy 2-core CPU.
    from torch._dynamo.utils import counters

    monkeypatch.setattr(acceleration, "BACKEND", "aot_eager")
    plain_state, plain = _one_iteration()
    torch._dynamo.reset()
    counters.clear()
    compiled_state, compiled = _one_iteration(compile=True)
    assert counters["stats"]["unique_graphs"] >= 1  # the chains did run through the compiled energy
    assert plain_state.chain_energy is None and compiled_state.chain_energy is not None
    assert compiled_state.chain_energy is not compiled_state.energy
    # Two iterations: the second chain runs on weights updated by the first step, seen through the compiled view.
    for a, b in zip(plain, compiled, strict=True):
        for key in ("energy_pos", "energy_neg", "loss"):
            assert abs(float(a[key]) - float(b[key])) <= 1e-5 * (1 + abs(float(a[key]))), key
    for p, q in zip(plain_state.energy.parameters(), compiled_state.energy.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6, rtol=0)


def test_cuda_graphs_is_refused_off_cuda(tmp_path, capsys):
    with pytest.raises(ValueError, match="cuda_graphs needs a CUDA device"):
        TrainSettings(cuda_graphs=True)
    if not torch.cuda.is_available():
        settings = TrainSettings(cuda_graphs=True, device="auto")
        with pytest.raises(ValueError, match="^cuda_graphs needs a CUDA device"):  # the library names its argument
            make_train_state(MLPEnergy(dim=2, width=4, depth=1), settings, ChainInit(), (2,))
        with pytest.raises(ConfigError, match="^train.cuda_graphs needs a CUDA device"):  # the config, its key
            check_train_device(settings)
    path = tmp_path / "graphs.toml"
    path.write_text('[data]\nname = "rings"\n[train]\ncuda_graphs = true\niterations = 1\n')
    assert main(["train", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("anila: error: train.cuda_graphs") and len(err.splitlines()) == 1


def test_cuda_graphs_needs_an_unadjusted_sampler():
    raw = {"train": {"cuda_graphs": True, "device": "cuda"}, "sampler": {"name": "mala"}}
    with pytest.raises(ConfigError, match="only samplers that recompute E and ∇E at every step"):
        config_from_dict(raw)
    raw["sampler"] = {"name": "anila"}
    assert config_from_dict(raw).train.cuda_graphs


def test_adam_is_fused_only_on_cuda():
    adam = acceleration.make_adam(MLPEnergy(dim=2, width=4, depth=1), 1e-3, (0.9, 0.999), torch.device("cpu"))
    assert not adam.defaults["fused"]
