"""The toy studies: their measuring parts on known answers, and each study smoke-run in quick mode."""

import csv
import math

import pytest
import torch

from anila.cli import main
from anila.energies import Gaussian, Rings
from anila.metrics.density import cell_log_prob, histogram_log_prob, sample_divergences
from anila.studies.convergence import fit_rate


def test_fit_rate_recovers_a_geometric_curve():
    evals = list(range(0, 400, 10))
    tvs = [0.05 + 0.9 * 0.98**k for k in evals]  # limit 0.05, rate 0.98 per evaluation
    evals += list(range(400, 1600, 10))
    tvs += [0.05] * 120
    fit = fit_rate(evals, tvs, gap_min=0.01)
    assert fit["moved"] and math.isclose(fit["rate"], 0.98, rel_tol=1e-3)
    assert math.isclose(fit["half_life"], math.log(0.5) / math.log(0.98), rel_tol=1e-2)
    assert math.isclose(fit["tv_limit"], 0.05, abs_tol=1e-6)


def test_fit_rate_reports_a_stuck_sampler_as_not_moved():
    fit = fit_rate([0, 10, 20, 30], [1.0, 1.0, 1.0, 1.0], gap_min=0.01)
    assert fit["moved"] is False and math.isnan(fit["rate"]) and math.isnan(fit["evals_to_settle"])


def test_cell_masses_and_histogram():
    target = Gaussian.isotropic(2).double()
    cells = cell_log_prob(target.log_prob, 4.0, 8, refine=32)  # midpoint error ~0.4% at refine=4
    assert math.isclose(cells.exp().sum().item(), 1.0, rel_tol=1e-12)
    # The cell [0, 1]x[0, 1] holds (Φ(1) - Φ(0))² of a standard normal, up to the box's truncation.
    phi = 0.5 * (1 + math.erf(1 / math.sqrt(2))) - 0.5
    box = math.erf(4 / math.sqrt(2)) ** 2
    assert math.isclose(cells.exp()[4, 4].item(), phi**2 / box, rel_tol=1e-3)
    hist = histogram_log_prob(torch.tensor([[0.5, 0.5], [0.5, 0.5], [-3.5, 1.5], [9.0, 0.0]]), 4.0, 8)
    assert math.isclose(hist.exp()[4, 4].item(), 2 / 3) and math.isclose(hist.exp()[5, 0].item(), 1 / 3)


def test_exact_samples_score_near_the_multinomial_noise_floor():
    target = Rings().double()
    n, resolution = 100_000, 32
    x = target.sample(n, generator=torch.Generator().manual_seed(0))
    d = sample_divergences(x, target.log_prob, 5.0, resolution)
    p = cell_log_prob(target.log_prob, 5.0, resolution).exp()
    expected_tv = 0.5 * math.sqrt(2 / math.pi) * (p * (1 - p) / n).sqrt().sum().item()  # E|N(0, s²)| = s·sqrt(2/π)
    assert d["tv"] < 1.3 * expected_tv and d["outside"] == 0.0


@pytest.mark.parametrize("study", ["bias", "convergence", "equal_budget"])
def test_every_study_runs_quick_and_writes_its_files(study, tmp_path):
    overrides = {"equal_budget": ["--set", "iterations=5", "--set", "budgets=[5]",
                                  "--set", 'samplers=["anila", "mala+adapt"]'],
                 "bias": ["--set", "steps=40", "--set", "chains=100"],
                 "convergence": ["--set", "grad_evals=40", "--set", "chains=200"]}[study]
    assert main(["compare", study, "--quick", "--out", str(tmp_path), *overrides]) == 0
    rows = list(csv.DictReader((tmp_path / f"{study}.csv").open()))
    assert rows and (tmp_path / f"{study}.md").read_text().count("|") > 10
    assert list(tmp_path.glob("*.png"))


def test_compare_rejects_unknown_settings(capsys):
    assert main(["compare", "bias", "--quick", "--set", "chain=3"]) == 2
    assert "unknown setting" in capsys.readouterr().err


def test_samples_off_the_box_count_against_the_sampler():
    target = Gaussian.isotropic(2).double()
    x = target.sample(20_000, generator=torch.Generator().manual_seed(0))
    clean = sample_divergences(x, target.log_prob, 5.0, 16)
    x[:10_000] = 100.0  # half the samples thrown far away
    half = sample_divergences(x, target.log_prob, 5.0, 16)
    assert half["outside"] == 0.5 and math.isclose(half["tv"], 0.5, abs_tol=clean["tv"] + 0.01)
    gone = sample_divergences(torch.full((10, 2), 100.0), target.log_prob, 5.0, 16)
    assert gone["tv"] == 1.0 and math.isnan(gone["kl_hist_true"])
