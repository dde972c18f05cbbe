"""The training loop and its parts: the CD loss moves the model the right way, training on a Gaussian target
lowers the grid KL by a clear margin, chain initialisation strategies and their buffers behave."""

import pytest
import torch

from anila.chains import ChainInit, NoiseInit, PersistentChains, ReplayBuffer
from anila.energies import Gaussian, MLPEnergy
from anila.errors import TrainingDiverged
from anila.metrics import energy_grid_divergences
from anila.objectives import contrastive_divergence
from anila.samplers import MALA, Langevin
from anila.train import TrainSettings, make_train_state, train, train_step


def test_contrastive_divergence_lowers_data_energy_relative_to_samples():
    torch.manual_seed(0)
    energy = MLPEnergy(dim=2, width=16, depth=2)
    x_pos, x_neg = torch.randn(64, 2) + 2, torch.randn(64, 2) - 2
    optimizer = torch.optim.SGD(energy.parameters(), lr=1e-2)
    _, before = contrastive_divergence(energy, x_pos, x_neg)
    for _ in range(5):
        loss, _ = contrastive_divergence(energy, x_pos, x_neg)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    _, after = contrastive_divergence(energy, x_pos, x_neg)
    assert after["energy_gap"] < before["energy_gap"] - 0.1


def test_contrastive_divergence_l2_term_and_detached_negatives():
    torch.manual_seed(0)
    energy = MLPEnergy(dim=2, width=8, depth=1)
    x_pos, x_neg = torch.randn(8, 2), torch.randn(6, 2, requires_grad=True)
    loss, metrics = contrastive_divergence(energy, x_pos, x_neg, l2_reg=0.5)
    loss.backward()
    assert x_neg.grad is None  # negatives are constants of the loss
    with torch.no_grad():
        e_pos, e_neg = energy(x_pos), energy(x_neg)
        gap = e_pos.mean() - e_neg.mean()
        l2 = e_pos.pow(2).mean() + e_neg.pow(2).mean()
    assert set(metrics) == {"energy_pos", "energy_neg", "energy_gap"}
    assert torch.allclose(metrics["energy_gap"], gap, rtol=1e-6, atol=1e-7)
    assert torch.allclose(loss.detach(), gap + 0.5 * l2, rtol=1e-6, atol=1e-7)  # the L2 term, with its weight
    assert float(l2) > 1e-3  # the term is not negligible: a missing or wrongly weighted one fails above
    plain, _ = contrastive_divergence(energy, x_pos, x_neg)
    assert torch.allclose(plain.detach(), gap, rtol=1e-6, atol=1e-7)


def test_training_on_a_gaussian_target_lowers_grid_kl():
    torch.manual_seed(0)
    target = Gaussian(torch.tensor([1.0, -0.5]), torch.tensor([[0.5, 0.2], [0.2, 0.3]]))
    energy = MLPEnergy(dim=2, width=32, depth=2)
    settings = TrainSettings(iterations=300, batch_size=128, num_steps=20, lr=3e-3, log_every=100, seed=0)
    chains = ChainInit(init="noise", scale=1.5)
    state = make_train_state(energy, settings, chains, (2,))
    kl_before = energy_grid_divergences(energy, target.log_prob, 4.0, 128)["kl_true_model"]
    records = []
    train(state, MALA(step_size=0.05), chains, lambda n, g: target.sample(n, generator=g), settings,
          on_log=records.append, progress=False)
    kl_after = energy_grid_divergences(energy, target.log_prob, 4.0, 128)["kl_true_model"]
    assert [r["iteration"] for r in records] == [100, 200, 300]
    assert {"loss", "energy_pos", "energy_neg", "energy_gap", "grad_norm", "accept_rate", "wall_time"} <= set(
        records[-1])
    assert kl_after < 0.25 * kl_before and kl_after < 0.15, (kl_before, kl_after)


def test_non_finite_loss_stops_before_the_update():
    class Exploding(MLPEnergy):
        def forward(self, x):
            return super().forward(x) * float("nan")

    energy = Exploding(dim=2, width=4, depth=1)
    settings = TrainSettings(iterations=1, batch_size=4, num_steps=1)
    state = make_train_state(energy, settings, ChainInit(), (2,))
    before = [p.clone() for p in energy.parameters()]
    with pytest.raises(TrainingDiverged, match="iteration 1"):
        train_step(state, Langevin(), ChainInit(), torch.randn(4, 2), settings)
    assert all(torch.equal(a, b) for a, b in zip(before, energy.parameters(), strict=True))


def test_noise_init_distributions():
    g = torch.Generator().manual_seed(0)
    gauss = NoiseInit("gaussian", scale=2.0).sample(100_000, (2,), generator=g)
    assert abs(gauss.std().item() - 2.0) < 0.02
    box = NoiseInit("uniform", low=-1.0, high=3.0).sample(100_000, (2,), generator=g)
    assert box.min() >= -1.0 and box.max() <= 3.0 and abs(box.mean().item() - 1.0) < 0.02


def test_replay_buffer_reinitialises_the_stated_fraction_and_stores_pushes():
    g = torch.Generator().manual_seed(0)
    buffer = ReplayBuffer(1000, (2,), NoiseInit(), reinit_fraction=0.2, generator=g)
    buffer.chains.fill_(7.0)  # stored states are recognisable
    fresh = 0
    for _ in range(50):
        x0, idx = buffer.sample(100, generator=g)
        assert len(set(idx.tolist())) == 100  # drawn without replacement
        fresh += (x0[:, 0] != 7.0).sum().item()
        buffer.push(torch.full_like(x0, 7.0), idx)
    # 5000 Bernoulli(0.2) draws: sd = sqrt(5000 * 0.2 * 0.8) ≈ 28.3; allow 4 sd.
    assert abs(fresh - 1000) < 4 * 28.3
    state = buffer.state_dict()
    other = ReplayBuffer(1000, (2,), NoiseInit())
    other.load_state_dict(state)
    assert torch.equal(other.chains, buffer.chains)


def test_replay_restarts_from_data_take_the_positive_rows():
    g = torch.Generator().manual_seed(0)
    chains = ChainInit(init="replay", buffer_size=500, reinit_fraction=0.3, restart="data")
    buffer = chains.make_buffer(100, (2,), generator=g)
    buffer.chains.fill_(7.0)
    x_data = torch.randn(100, 2, generator=g) - 20.0  # recognisable, and unlike the noise
    x0, _ = chains.initial(x_data, buffer, generator=g)
    restarted = x0[:, 0] != 7.0
    assert torch.equal(x0[restarted], x_data[restarted])  # the same rows of the positive batch
    # 100 Bernoulli(0.3) draws: sd = sqrt(100 * 0.3 * 0.7) ≈ 4.6; allow 4 sd
    assert abs(restarted.sum().item() - 30) < 4 * 4.6
    noise_restarts = ChainInit(init="replay", buffer_size=500, reinit_fraction=0.3)
    x0, _ = noise_restarts.initial(x_data, buffer, generator=g)
    assert (x0 < -10).sum() == 0  # the negative control: noise restarts never land on these data
    with pytest.raises(ValueError, match="restart must be one of"):
        ChainInit(init="replay", restart="uniform")
    with pytest.raises(ValueError, match="applies to init"):
        ChainInit(init="persistent", restart="data")


def test_persistent_chains_continue_every_chain():
    chains = PersistentChains(8, (2,), NoiseInit())
    x0, idx = chains.sample(8)
    chains.push(x0 + 1, idx)
    x1, _ = chains.sample(8)
    assert torch.equal(x1, x0 + 1)
    with pytest.raises(ValueError, match="persistent"):
        chains.sample(4)


@pytest.mark.parametrize("init", ["noise", "data", "persistent", "replay"])
def test_every_chain_init_strategy_trains(init):
    torch.manual_seed(0)
    energy = MLPEnergy(dim=2, width=8, depth=1)
    settings = TrainSettings(iterations=3, batch_size=16, num_steps=2, log_every=1)
    chains = ChainInit(init=init, buffer_size=64)
    state = make_train_state(energy, settings, chains, (2,))
    assert (state.buffer is not None) == (init in ("persistent", "replay"))
    train(state, Langevin(), chains, lambda n, g: torch.randn(n, 2, generator=g), settings, progress=False)
    assert state.iteration == 3


@pytest.mark.parametrize("option", [{"channels_last": True}, {"precision": "bf16"}])
def test_gpu_options_match_the_plain_path_on_cpu(option):
    from anila.energies import ConvNetEnergy

    def one_step(**kwargs):
        torch.manual_seed(0)
        energy = ConvNetEnergy(1, 8, 8)
        settings = TrainSettings(iterations=1, batch_size=16, num_steps=3, lr=1e-3, **kwargs)
        chains = ChainInit(noise="uniform")
        state = make_train_state(energy, settings, chains, (1, 8, 8))
        x_pos = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
        metrics = train_step(state, Langevin(step_size=1.0, noise_scale=0.01), chains, x_pos, settings)
        grad = torch.cat([p.grad.flatten() for p in energy.parameters()])  # the step's gradient (kept by Adam)
        return metrics, torch.cat([p.detach().flatten() for p in energy.parameters()]), grad

    plain, w_plain, g_plain = one_step()
    other, w_other, g_other = one_step(**option)
    bf16 = "precision" in option
    # float32 reorders sums under channels_last (~1e-6); bfloat16 keeps 8 mantissa bits (~1e-2 relative).
    tol = 2e-2 if bf16 else 1e-5
    for key in ("energy_pos", "energy_neg"):
        assert abs(plain[key] - other[key]) <= tol * (1 + abs(plain[key])), (key, plain[key], other[key])
    # The gradient itself: bf16 chains and loss move it by ~5% (measured 4.9%), float32 reorderings by ~1e-7; a
    # wrong sign, scale or a missed term moves it by O(1). bf16 must also differ at all (autocast is on).
    error = float((g_plain - g_other).norm() / g_plain.norm())
    assert (0 < error <= 0.1) if bf16 else error <= 1e-5, error
    # Adam's first step moves every weight by about ±lr whatever the gradient's size, so a near-zero gradient
    # component whose sign flips under bf16 moves a weight by up to 2·lr = 2e-3 differently; nearly every other
    # weight must move exactly as on the plain path (measured 97%).
    moved = (w_plain - w_other).abs()
    assert moved.max() <= (2e-3 + 1e-6 if bf16 else 1e-6)
    assert (moved <= 1e-6).float().mean() >= 0.9
