"""Step-size adaptation by dual averaging: the recursion on a known acceptance curve, adaptive MALA reaching its
target acceptance from a step 100x too large or too small, and the training loop's adapted step (checkpointed
and resumed bit for bit)."""

import copy
import math

import pytest
import torch

from anila.chains import ChainInit
from anila.energies import Gaussian, GaussianMixture, MLPEnergy
from anila.samplers import MALA, AdaptiveStepSize, DualAveraging, Langevin, run_chains
from anila.train import TrainSettings, make_train_state, train
from anila.train.resume import capture, restore

pytestmark = pytest.mark.usefixtures("one_thread")
TARGET = 0.57
TOLERANCE = 0.05


def test_dual_averaging_finds_the_step_of_a_known_acceptance_curve():
    # acceptance exp(-h): the step with acceptance 0.57 is -log 0.57; the average converges to it.
    adaptation = DualAveraging(target_accept=TARGET)
    for start in (1e-3, 10.0):
        state = adaptation.init(start)
        for _ in range(2000):
            state = adaptation.update(state, torch.exp(-adaptation.step_size(state)))
        assert math.isclose(float(adaptation.final_step_size(state)), -math.log(TARGET), rel_tol=0.02)


def test_dual_averaging_rejects_bad_settings():
    with pytest.raises(ValueError, match="target_accept"):
        DualAveraging(target_accept=1.0)
    with pytest.raises(ValueError, match="kappa"):
        DualAveraging(kappa=0.3)


def gaussian_50d():
    # condition number 100: sds log-spaced from 0.1 to 1
    sds = torch.logspace(-1, 0, 50)
    return Gaussian(torch.zeros(50), torch.diag(sds**2))


def mixture_2d():
    means = torch.tensor([[-2.0, 0.0], [2.0, 0.5], [0.0, 2.5]])
    return GaussianMixture(means, stds=torch.tensor([[0.6, 0.3], [0.4, 0.8], [0.5, 0.5]]),
                           weights=torch.tensor([0.5, 0.3, 0.2]))


def adapted_acceptance(target, step_size, seed, *, chains=64, warmup=600, steps=200):
    """Mean acceptance over ``steps`` steps after a ``warmup`` of per-chain dual averaging from ``step_size``."""
    g = torch.Generator().manual_seed(seed)
    x0 = target.sample(chains, generator=g)
    result = run_chains(MALA(step_size=step_size), target, x0, steps, generator=g, num_warmup=warmup,
                        adaptation=DualAveraging(target_accept=TARGET))
    return float(result.accept_rate.mean()), result.step_size


# Development check (seeds 0-19, `adapted_acceptance` as here): the largest |acceptance - 0.57| was 0.024 (50-D,
# 100x large), 0.033 (50-D, 100x small), 0.010 (mixture, 100x large), 0.027 (mixture, 100x small).
@pytest.mark.parametrize("target,reference", [(gaussian_50d, 0.005), (mixture_2d, 0.05)],
                         ids=["gaussian50d", "mixture"])
@pytest.mark.parametrize("factor", [100.0, 0.01], ids=["100x_large", "100x_small"])
def test_adaptive_mala_reaches_its_target_acceptance_within_the_warmup(target, reference, factor):
    accept, step = adapted_acceptance(target(), reference * factor, seed=0)
    assert abs(accept - TARGET) < TOLERANCE, accept
    assert step.shape == (64,) and torch.isfinite(step).all()


def test_without_adaptation_the_bad_steps_miss_the_target():
    # Negative control: the same starts, no warm-up: acceptance ~0 (too large) or ~1 (too small).
    target = gaussian_50d()
    g = torch.Generator().manual_seed(0)
    x0 = target.sample(64, generator=g)
    large = run_chains(MALA(step_size=0.5), target, x0, 200, generator=g).accept_rate.mean()
    small = run_chains(MALA(step_size=5e-5), target, x0, 200, generator=g).accept_rate.mean()
    assert large < 0.1 and small > 0.95


def test_warmup_needs_an_exact_sampler_and_an_adaptation():
    x0 = torch.zeros(4, 2)
    target = Gaussian.isotropic(2)
    with pytest.raises(ValueError, match="Metropolis"):
        run_chains(Langevin(), target, x0, 1, num_warmup=2, adaptation=DualAveraging())
    with pytest.raises(ValueError, match="adaptation"):
        run_chains(MALA(), target, x0, 1, num_warmup=2)


def test_a_windowed_dual_averaging_tracks_a_moving_target():
    # acceptance exp(-h / c): the right step is -c log 0.57; c jumps from 1 to 10 halfway. Both iterates follow
    # (the plain one too: its gain sqrt(m)/γ grows as fast as the weight 1/m of a new acceptance shrinks).
    plain, windowed = DualAveraging(TARGET), DualAveraging(TARGET, window=50)
    states = [plain.init(0.1), windowed.init(0.1)]
    for m in range(2000):
        c = 1.0 if m < 1000 else 10.0
        states = [a.update(s, torch.exp(-a.step_size(s) / c)) for a, s in zip((plain, windowed), states, strict=True)]
    wanted = -10.0 * math.log(TARGET)
    for adaptation, state in zip((plain, windowed), states, strict=True):
        assert math.isclose(float(adaptation.step_size(state)), wanted, rel_tol=0.15)


def _training(step_size, seed=0):
    torch.manual_seed(seed)
    settings = TrainSettings(iterations=20, batch_size=32, num_steps=5, lr=1e-3, log_every=5, seed=seed)
    chains = ChainInit(init="noise", scale=2.0)
    state = make_train_state(MLPEnergy(dim=2, width=16, depth=2), settings, chains, (2,))
    state.adaptation = AdaptiveStepSize(DualAveraging(TARGET), step_size=step_size)
    return state, settings, chains


def test_training_adapts_the_step_and_resumes_it_bit_for_bit():
    target = Gaussian.isotropic(2, std=0.7)
    data = lambda n, g: target.sample(n, generator=g)  # noqa: E731
    sampler = MALA(step_size=1e-4)  # far too small: every proposal is accepted
    state, settings, chains = _training(sampler.step_size)
    records = []
    train(state, sampler, chains, data, TrainSettings(**{**settings.__dict__, "iterations": 10}),
          on_log=records.append, progress=False)
    groups, meta = capture(state)  # as a checkpoint would hold it: copies, not views of the live tensors
    groups = {name: {k: v.clone() for k, v in group.items()} for name, group in groups.items()}
    meta = copy.deepcopy(meta)
    train(state, sampler, chains, data, settings, on_log=records.append, progress=False)
    assert records[-1]["step_size"] > 10 * sampler.step_size  # grown toward the target acceptance

    resumed, _, _ = _training(sampler.step_size, seed=1)  # other weights and RNG: all must come from the checkpoint
    restore(resumed, groups, meta)
    train(resumed, sampler, chains, data, settings, progress=False)
    assert resumed.iteration == state.iteration == 20
    for a, b in zip(state.energy.parameters(), resumed.energy.parameters(), strict=True):
        assert torch.equal(a, b)
    assert all(torch.equal(v, resumed.adaptation.state_dict()[k]) for k, v in state.adaptation.state_dict().items())


def test_the_adapted_step_stays_within_its_bounds():
    adapter = AdaptiveStepSize(DualAveraging(TARGET), 0.1)
    for _ in range(500):  # a flat energy: everything accepted
        adapter.update(torch.tensor(1.0))
    assert math.isclose(float(adapter.step_size()), 0.1 * AdaptiveStepSize.MAX_FACTOR, rel_tol=1e-5)


def test_config_adapt_builds_the_adaptation_and_refuses_unadjusted_samplers():
    from anila.config import config_from_dict
    from anila.errors import ConfigError

    config = config_from_dict({"sampler": {"name": "mala", "step_size": 0.05, "adapt": True}})
    assert config.adaptation == DualAveraging(target_accept=0.57)
    assert config.to_dict()["sampler"]["adapt"] is True
    assert config_from_dict(config.to_dict()).adaptation == config.adaptation  # the resolved config round-trips
    hmc = config_from_dict({"sampler": {"name": "hmc", "adapt": True}})
    assert hmc.adaptation.target_accept == 0.65  # the registry's target for HMC
    with pytest.raises(ConfigError, match="sampler.adapt: .*unadjusted"):
        config_from_dict({"sampler": {"name": "anila", "adapt": True}})
    with pytest.raises(ConfigError, match="sampler.target_accept"):
        config_from_dict({"sampler": {"name": "mala", "adapt": True, "target_accept": 1.5}})
    with pytest.raises(ConfigError, match="sampler.target_accept: applies with sampler.adapt"):
        config_from_dict({"sampler": {"name": "mala", "target_accept": 0.6}})


def test_a_run_with_adapt_checkpoints_the_adapted_step_and_samples_with_it(tmp_path):
    from anila.config import config_from_dict
    from anila.train.run import run_training
    from anila.train.trained import load_trained_energy

    raw = {"data": {"name": "rings"}, "model": {"width": 8, "depth": 1},
           "sampler": {"name": "mala", "step_size": 1e-4, "adapt": True},
           "train": {"iterations": 12, "batch_size": 16, "num_steps": 3, "log_every": 4},
           "eval": {"grid_resolution": 16, "num_samples": 32}}
    run_training(config_from_dict(raw), tmp_path / "run", progress=False)
    config, _ = load_trained_energy(tmp_path / "run")
    assert config.sampler.step_size > 1e-3  # the adapted step (the config's own is 1e-4)
