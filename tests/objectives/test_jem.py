"""JEM (Grathwohl et al. 2019): the classifier energy, the loss, calibration metrics, the labelled data, a 2-class
2-D mixture learnt to the Bayes rate with a generative fit, config errors, and ``anila classify``.

Tolerances of the mixture test come from 10 seeds (0-9) of the same run (300 iterations), recorded next to each
check; the test uses seed 0.
"""

import math

import pytest
import torch
from torch import nn

from anila.chains import ChainInit
from anila.config import config_from_dict
from anila.data.labelled import bayes_accuracy, labelled_toy, two_gaussians
from anila.energies import ConvNetEnergy, MLPEnergy
from anila.errors import ConfigError
from anila.metrics import energy_grid_divergences
from anila.objectives import OBJECTIVES
from anila.objectives.jem import (
    ClassifierEnergy,
    classification_metrics,
    expected_calibration_error,
    jem_loss,
    reliability_diagram,
)
from anila.samplers import Langevin
from anila.train import TrainSettings, attach_objective, make_train_state, train

pytestmark = pytest.mark.usefixtures("one_thread")  # the shared fixture of tests/conftest.py


def test_the_logsumexp_energy_is_the_classifiers_marginal_by_construction():
    """exp(-E(x)) = Σ_y exp(f(x)[y]): the unnormalised joint summed over classes; p(y | x) = softmax f(x)
    = exp(f(x)[y] + E(x)), for the MLP and conv heads and the wrapper alike."""
    torch.manual_seed(0)
    cases = [(MLPEnergy(dim=2, width=8, depth=2, num_classes=3), torch.randn(6, 2)),
             (ConvNetEnergy(in_channels=1, n_f=4, image_size=8, num_classes=4), torch.randn(6, 1, 8, 8)),
             (ClassifierEnergy(nn.Linear(2, 5)), torch.randn(6, 2))]
    for energy, x in cases:
        logits = energy.logits(x)
        assert energy(x).shape == (6,)
        assert torch.allclose(torch.exp(-energy(x)), torch.exp(logits).sum(1), rtol=1e-5)
        assert torch.allclose(torch.softmax(logits, 1), torch.exp(logits + energy(x)[:, None]), atol=1e-6)
    assert ClassifierEnergy(MLPEnergy(dim=2, num_classes=2)).logits(torch.zeros(1, 2)).shape == (1, 2)
    with pytest.raises(ValueError, match="num_classes must be 0"):
        MLPEnergy(dim=2, num_classes=1)
    with pytest.raises(ValueError, match="no class head"):
        MLPEnergy(dim=2).logits(torch.zeros(1, 2))


def test_the_loss_is_cross_entropy_plus_contrastive_divergence():
    torch.manual_seed(0)
    energy = MLPEnergy(dim=2, width=8, depth=2, num_classes=2)
    x, y, x_neg = torch.randn(16, 2), torch.randint(0, 2, (16,)), torch.randn(16, 2)
    loss, metrics = jem_loss(energy, x, y, x_neg)
    ce = nn.functional.cross_entropy(energy.logits(x), y)
    assert torch.allclose(loss, ce + energy(x).mean() - energy(x_neg).mean())
    assert torch.allclose(metrics["cross_entropy"], ce)
    classifier_only, metrics = jem_loss(energy, x, y, x_neg, generative_weight=0.0)
    assert torch.allclose(classifier_only, ce) and "energy_gap" not in metrics


def test_expected_calibration_error_and_reliability_diagram(tmp_path):
    y = torch.tensor([0, 0, 1, 1])
    assert expected_calibration_error(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]), y) == 0.0
    # confidence 0.9, all wrong: |0 - 0.9|
    assert math.isclose(expected_calibration_error(torch.tensor([[0.1, 0.9]] * 2 + [[0.9, 0.1]] * 2), y), 0.9,
                        rel_tol=1e-6)
    path = reliability_diagram(torch.tensor([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8]]), y,
                               tmp_path / "reliability.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_labelled_toys_give_points_with_their_classes():
    g = torch.Generator().manual_seed(0)
    x, y = labelled_toy("8gaussians")(4000, g)
    assert x.shape == (4000, 2) and set(y.tolist()) == set(range(8))
    angles = torch.atan2(x[:, 1], x[:, 0]) % (2 * math.pi)  # component k sits at angle kπ/4
    nearest = torch.round(angles / (math.pi / 4)).long() % 8
    assert (nearest == y).float().mean() > 0.99
    x, y = labelled_toy("moons")(1000, g)
    assert set(y.tolist()) == {0, 1}
    assert x[y == 0, 1].mean() > x[y == 1, 1].mean()  # class 0 is the upper moon


def _train(seed: int, generative_weight: float, iterations: int = 300):
    torch.manual_seed(seed)
    mixture = two_gaussians()
    data = lambda n, g: mixture.sample(n, generator=g)  # noqa: E731
    settings = TrainSettings(iterations=iterations, batch_size=128, num_steps=20, lr=3e-3, seed=seed,
                             log_every=10**6)
    chains = ChainInit(init="replay", noise="uniform", low=-4.0, high=4.0, buffer_size=2000, reinit_fraction=0.05)
    energy = MLPEnergy(dim=2, width=32, depth=2, activation="silu", num_classes=2)
    state = make_train_state(energy, settings, chains, (2,))
    attach_objective(state, OBJECTIVES["jem"](generative_weight=generative_weight), data, settings)
    before = energy_grid_divergences(energy, mixture.log_density, 6.0, 128)["kl_true_model"]
    train(state, Langevin(step_size=0.05), chains, data, settings, progress=False)
    after = energy_grid_divergences(energy, mixture.log_density, 6.0, 128)["kl_true_model"]
    x, y = mixture.sample(20000, generator=torch.Generator().manual_seed(999))
    return before, after, classification_metrics(energy, x, y)


@pytest.mark.slow
def test_jem_on_a_two_class_mixture_reaches_the_bayes_rate_and_fits_the_density():
    """Two unit Gaussians 2 apart: Bayes accuracy Φ(1) = 0.841. Over seeds 0-9 JEM's test accuracy (20000 draws)
    was 0.8399-0.8438 and the grid KL(true ‖ exp(-E)) fell from 1.70-1.93 to 0.006-0.20 (at most 0.107 x its
    start). Negative control: the same classifier without the p(x) term (generative_weight = 0) classifies as
    well but its logsumexp is no density of the data: KL 3.9-6.3 over seeds 0-7, above where it started."""
    before, after, metrics = _train(0, 1.0)
    assert metrics["accuracy"] > bayes_accuracy() - 0.015
    assert metrics["ece"] < 0.03  # seeds 0-9: 0.005-0.015
    assert after < 0.25 * before
    before, after, metrics = _train(0, 0.0)
    assert metrics["accuracy"] > bayes_accuracy() - 0.015
    assert not after < 0.25 * before


def test_jem_config_errors():
    base = {"data": {"name": "moons"}, "objective": {"name": "jem"}}
    with pytest.raises(ConfigError, match="generative_weight"):
        config_from_dict({**base, "objective": {"name": "jem", "generative_weight": -1.0}})
    with pytest.raises(ConfigError, match="conditional_steps"):
        config_from_dict({**base, "objective": {"name": "jem", "conditional_steps": 0}})
    with pytest.raises(ConfigError, match="model.name: jem"):
        config_from_dict({**base, "model": {"name": "resnet"}, "data": {"name": "digits"}})
    with pytest.raises(ConfigError, match="model.num_classes"):
        config_from_dict({**base, "model": {"num_classes": 1}})


def test_jem_needs_a_class_head_and_labels_that_fit_it(tmp_path):
    from anila.train.run import run_training

    tiny = {"data": {"name": "8gaussians"}, "objective": {"name": "jem"},
            "train": {"iterations": 2, "batch_size": 16, "num_steps": 2, "log_every": 1}}
    with pytest.raises(ConfigError, match="model.num_classes: jem needs a classifier head"):
        run_training(config_from_dict(tiny), tmp_path / "a", progress=False)
    with pytest.raises(ConfigError, match="model.num_classes = 2: the data have label 7"):
        run_training(config_from_dict({**tiny, "model": {"num_classes": 2}}), tmp_path / "b", progress=False)
    with pytest.raises(Exception, match="has no labels"):
        run_training(config_from_dict({**tiny, "data": {"name": "rings"}, "model": {"num_classes": 2}}),
                     tmp_path / "c", progress=False)


def test_classify_and_ood_of_a_trained_jem_run(tmp_path, capsys):
    import json

    from anila.cli import main
    from anila.train.run import run_training

    raw = {"data": {"name": "moons"}, "model": {"width": 16, "depth": 2, "num_classes": 2},
           "objective": {"name": "jem"}, "chains": {"init": "replay", "buffer_size": 200},
           "train": {"iterations": 20, "batch_size": 32, "num_steps": 2, "lr": 3e-3, "log_every": 10},
           "eval": {"grid_resolution": 16, "num_samples": 16}}
    run_training(config_from_dict(raw), tmp_path / "run", progress=False)
    assert main(["classify", str(tmp_path / "run"), "--num", "500", "--out", str(tmp_path / "cls")]) == 0
    printed = capsys.readouterr().out
    assert "accuracy = " in printed and "ece = " in printed
    assert json.loads((tmp_path / "cls" / "classify.json").read_text())["num"] == 500
    assert (tmp_path / "cls" / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["ood", str(tmp_path / "run"), "--out", "uniform", "--num", "100"]) == 0
    assert "AUROC (max softmax)" in capsys.readouterr().out


def test_classify_refuses_a_model_without_a_class_head(tmp_path):
    from anila.cli import main
    from anila.train.run import run_training

    raw = {"data": {"name": "moons"}, "model": {"width": 8, "depth": 1},
           "train": {"iterations": 2, "batch_size": 8, "num_steps": 1, "log_every": 1},
           "eval": {"grid_resolution": 8, "num_samples": 8}}
    run_training(config_from_dict(raw), tmp_path, progress=False)
    assert main(["classify", str(tmp_path)]) != 0
