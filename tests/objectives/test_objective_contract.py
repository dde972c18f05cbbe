"""The objective contract, over every registered objective (``OBJECTIVES``): what the training loop relies on.

For each one, on a 2-D toy: the built objective's loss is a finite scalar with detached scalar metrics; a small
gradient step on every trained parameter (the energy's and the auxiliary modules') moves the model the right
way at fixed randomness; its auxiliary modules have optimizers; and a checkpoint round trip (capture, restore
into a freshly built state, continue) ends bit-identical to the run that was not interrupted.
"""

import dataclasses

import pytest
import torch

from anila.chains import ChainInit
from anila.energies import MLPEnergy
from anila.objectives import OBJECTIVES, Batch, ObjectiveSpec, contrastive_divergence
from anila.objectives.jem import JEMLoss
from anila.objectives.score_matching import NoiseConditionalMLP
from anila.samplers import Langevin
from anila.train import TrainSettings, attach_objective, capture, make_train_state, restore, train_step

SETTINGS = TrainSettings(iterations=10, batch_size=64, num_steps=3, lr=1e-2, l2_reg=0.1, seed=3)
SAMPLER, CHAINS = Langevin(step_size=0.05), ChainInit(init="noise", scale=2.0)
SMALL = {"nce": {"fit_samples": 500}, "multilevel_dsm": {"steps_per_level": 2},
         "stein_critic": {"critic_width": 16},
         "adversarial_flow": {"num_layers": 2, "width": 16, "fit_samples": 200},
         "adversarial_noisy": {"width": 16, "fit_samples": 200}, "cooperative": {"width": 16, "fit_samples": 200},
         "jem": {"conditional_weight": 0.5, "conditional_steps": 2}, "drl": {"num_levels": 3, "num_steps": 3}}
#: Max-min objectives: the energy descends the loss and the auxiliary modules ascend it (their loss is written so
#: that each parameter set sees its own half). No value falls under the joint step; each half is checked alone.
MAX_MIN = {"stein_critic"}
#: Objectives whose loss value is a surrogate that the joint step need not lower: improved CD (its KL part is
#: first-order in a frozen-parameter energy) and the adversarial samplers (a max-min game in which each sampler
#: descends its own half). For them the energy half must fall: the data-vs-negatives energy gap of the same batch
#: (the sampler halves are checked in their own tests).
SURROGATES = {"improved_cd", "adversarial_flow", "adversarial_noisy"}


def data(n: int, generator: torch.Generator) -> torch.Tensor:
    """A shifted, anisotropic Gaussian: N((1, -1), diag(0.25, 1))."""
    return torch.randn(n, 2, generator=generator) * torch.tensor([0.5, 1.0]) + torch.tensor([1.0, -1.0])


def label(x: torch.Tensor) -> torch.Tensor:
    """Two classes, for objectives with labels: which side of x₁ = 1 a point lies on."""
    return (x[:, 0] > 1).long()


def labelled(n: int, generator: torch.Generator):
    x = data(n, generator)
    return x, label(x)


def spec_of(name: str) -> ObjectiveSpec:
    return OBJECTIVES[name](**SMALL.get(name, {}))


def energy_for(spec: ObjectiveSpec) -> torch.nn.Module:
    torch.manual_seed(0)
    if spec.noise_conditional:
        return NoiseConditionalMLP(dim=2, width=16, depth=2)
    return MLPEnergy(dim=2, width=16, depth=2, activation="silu", num_classes=2 if spec.needs_labels else 0)


def built_state(name: str):
    spec = spec_of(name)
    state = make_train_state(energy_for(spec), SETTINGS, CHAINS, (2,))
    attach_objective(state, spec, labelled if spec.needs_labels else data, SETTINGS)
    return spec, state


def one_batch(state, generator: torch.Generator) -> Batch:
    """A fixed batch: data, and (for objectives with negatives) detached chain outputs of the current model."""
    x_pos = data(SETTINGS.batch_size, generator)
    y = label(x_pos) if isinstance(state.objective, JEMLoss) else None
    if not state.objective.needs_negatives:
        return Batch(x_pos, y=y)
    from anila.samplers import run_chains

    x0, _ = state.objective.chain_starts(x_pos, CHAINS, state.buffer, generator)
    result = run_chains(SAMPLER, state.energy, x0, SETTINGS.num_steps, generator=generator,
                        differentiable_last_step=state.objective.differentiable_negatives)
    return Batch(x_pos, result.x, x0, y=y)


def loss_at(state, batch: Batch, seed: int) -> tuple[torch.Tensor, dict]:
    return state.objective.loss(state.energy, batch, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_loss_is_a_finite_scalar_with_detached_scalar_metrics(name):
    _, state = built_state(name)
    loss, metrics = loss_at(state, one_batch(state, torch.Generator().manual_seed(1)), seed=2)
    assert loss.shape == () and torch.isfinite(loss) and loss.requires_grad
    assert all(v.shape == () and not v.requires_grad and torch.isfinite(v) for v in metrics.values())
    assert set(state.objective.modules()) == set(state.objective.optimizers())  # every aux module is trained


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_a_small_gradient_step_moves_the_model_the_right_way(name):
    """At fixed randomness (same batch, same generator seed), a step of -eta * grad on every trained parameter
    lowers the loss. For the ``SURROGATES`` the data-vs-sample energy gap of the same batch must fall instead. A
    max-min objective (``MAX_MIN``) is checked one half at a time: down along the energy, up along the auxiliary
    modules."""
    _, state = built_state(name)
    batch = one_batch(state, torch.Generator().manual_seed(1))
    loss, metrics = loss_at(state, batch, seed=2)
    loss.backward()
    # score-based losses do not see the energy's additive constant (its last bias): no gradient there
    assert any(p.grad is not None for p in state.energy.parameters())
    assert all(p.grad is not None for p in state.objective.parameters()), "an auxiliary module gets no gradient"
    parameters = [p for p in state.parameters() if p.grad is not None]
    if name in MAX_MIN:
        _check_max_min(state, batch, loss.detach())
        return
    _step_down(parameters)
    if name in SURROGATES:
        negatives = batch.x_neg if batch.x_neg is not None else state.objective.negatives
        after, _ = contrastive_divergence(state.energy, batch.x_pos, negatives.detach())
        assert after < metrics["energy_gap"]
    else:
        after_loss, _ = loss_at(state, batch, seed=2)
        assert after_loss < loss


def _step_down(parameters: list[torch.nn.Parameter]) -> None:
    norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in parameters))
    with torch.no_grad():
        for p in parameters:
            p -= 1e-2 * p.grad / norm  # a step of length 0.01 down the gradient


def _check_max_min(state, batch: Batch, loss: torch.Tensor) -> None:
    """A step down the gradient of the energy's parameters alone lowers the loss (the energy minimises it); the
    same step on the auxiliary parameters alone raises it (the critic maximises it), at fixed randomness."""
    energy_params = [p for p in state.energy.parameters() if p.grad is not None]
    aux_params = state.objective.parameters()
    saved = [p.detach().clone() for p in (*energy_params, *aux_params)]
    _step_down(energy_params)
    lowered, _ = loss_at(state, batch, seed=2)
    with torch.no_grad():
        for p, value in zip((*energy_params, *aux_params), saved, strict=True):
            p.copy_(value)
    _step_down(aux_params)
    raised, _ = loss_at(state, batch, seed=2)
    assert lowered < loss < raised, (float(lowered), float(loss), float(raised))


def _run(state, steps: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = data(SETTINGS.batch_size, generator)
        y = label(x) if isinstance(state.objective, JEMLoss) else None
        train_step(state, SAMPLER, CHAINS, x, SETTINGS, labels=y)


def _trained(state) -> list[torch.Tensor]:
    return [p.detach().clone() for p in state.parameters()] + list(state.objective.state_dict().values())


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_checkpoint_round_trip_continues_bit_identically(name):
    _, straight = built_state(name)
    _run(straight, 2, seed=5)
    groups, meta = capture(straight)
    groups = {g: {k: v.clone() for k, v in t.items()} for g, t in groups.items()}
    _run(straight, 2, seed=6)

    _, resumed = built_state(name)
    restore(resumed, groups, meta)
    _run(resumed, 2, seed=6)
    for a, b in zip(_trained(straight), _trained(resumed), strict=True):
        assert torch.equal(a, b)
    assert resumed.iteration == straight.iteration == 4


def test_the_guard_covers_auxiliary_modules_and_their_optimizers():
    """A NaN in an auxiliary parameter (NCE's log Z) rejects the step; the rollback restores the module and its
    optimizer, and the retry runs with every optimizer's lr shrunk."""
    from anila.train import GuardSettings, GuardState, guarded_train

    _, state = built_state("nce")
    groups, meta = capture(state)  # the state's own tensors: copy them, as the checkpoint writer does
    saved = {"last": ({g: {k: v.clone() for k, v in t.items()} for g, t in groups.items()}, meta)}
    poisoned = {"left": 1}

    def poisoned_data(n, g):
        if state.iteration == 2 and poisoned["left"]:
            poisoned["left"] -= 1
            with torch.no_grad():
                state.objective.log_z.log_z.fill_(float("nan"))
        return data(n, g)

    events = []
    guarded_train(state, GuardState(SAMPLER), CHAINS, poisoned_data, dataclasses.replace(SETTINGS, iterations=4),
                  GuardSettings(max_retries=1, shrink=0.5), rollback=lambda s: restore(s, *saved["last"]),
                  on_event=events.append, progress=False)
    assert [e["event"] for e in events] == ["step_rejected"] and "the loss is nan" in events[0]["reason"]
    assert state.iteration == 4 and torch.isfinite(state.objective.log_z.log_z)
    assert [group["lr"] for optimizer in state.optimizers() for group in optimizer.param_groups] == [5e-3, 5e-3]


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_the_declared_models_are_registered_and_fit_noise_conditional(name):
    """``models`` names registered networks; a noise-conditional objective takes exactly the noise-conditional
    models (points and images), and every other objective none of them."""
    from anila.config import ENERGIES
    from anila.objectives.base import NOISE_CONDITIONAL_MODELS

    spec = OBJECTIVES[name]
    assert set(spec.models or ()) <= set(ENERGIES) and set(NOISE_CONDITIONAL_MODELS) <= set(ENERGIES)
    if spec.noise_conditional:
        assert spec.models == NOISE_CONDITIONAL_MODELS
    else:
        assert not set(spec.models or ()) & set(NOISE_CONDITIONAL_MODELS)
