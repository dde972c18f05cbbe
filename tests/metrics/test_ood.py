"""OOD scores and AUROC: exact values on an analytic energy and on hand-made score sets."""

import pytest
import torch

from anila.energies import Gaussian
from anila.metrics.ood import auroc, ood_scores

pytestmark = pytest.mark.usefixtures("one_thread")


def test_scores_are_the_energy_and_the_gradient_norm():
    target = Gaussian.isotropic(3, std=2.0)
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(0))
    scores = ood_scores(target, x, batch_size=3)  # three batches
    torch.testing.assert_close(scores["energy"], (x**2).sum(1) / 8)
    torch.testing.assert_close(scores["grad_norm"], x.norm(dim=1) / 4)


def test_auroc_exact_values():
    low, high = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([3.0, 4.0])
    assert auroc(low, high) == 1.0 and auroc(high, low) == 0.0
    assert auroc(torch.ones(4), torch.ones(3)) == 0.5  # ties count one half
    # 1 of the 2 x 2 pairs is ordered the OOD way, 1 tie -> (1 + 0.5) / 4
    assert auroc(torch.tensor([0.0, 1.0]), torch.tensor([1.0, -1.0])) == pytest.approx(0.375)


def test_auroc_separates_a_shifted_gaussian_by_its_energy():
    # in-distribution N(0, I) scored by its own energy vs. a far shift: AUROC near 1; vs. itself: near 0.5
    target = Gaussian.isotropic(4)
    g = torch.Generator().manual_seed(1)
    inside = ood_scores(target, target.sample(2000, generator=g))["energy"]
    far = ood_scores(target, target.sample(2000, generator=g) + 4.0)["energy"]
    same = ood_scores(target, target.sample(2000, generator=g))["energy"]
    assert auroc(inside, far) > 0.99
    # AUROC of two samples of one distribution: sd sqrt((n1 + n2 + 1) / (12 n1 n2)) = 0.0065; 4.5 sd
    assert abs(auroc(inside, same) - 0.5) < 4.5 * 0.0065


def test_auroc_refuses_nan_scores():
    with pytest.raises(ValueError, match="NaN"):
        auroc(torch.tensor([0.0, float("nan")]), torch.tensor([1.0]))
