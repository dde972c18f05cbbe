"""Out-of-distribution (OOD) detection with a trained energy: scores and AUROC.

An EBM assigns low energy to its training distribution, so the energy itself is an OOD score (Du & Mordatch
2019; improved CD, section 3.3, scores by ``log p_θ(x) = -E(x) - log Z``, a monotone function of ``E``). A
second score is the norm of the input gradient ``‖∇x E(x)‖₂``: the data sit near minima of a well-trained
energy where the gradient is small. Both scores are "higher = more anomalous"; AUROC (Hendrycks & Gimpel
2016) is the probability that a random OOD input scores higher than a random in-distribution input, with
ties counted one half (scikit-learn's ``roc_auc_score``). 0.5 is chance; below 0.5 the score ranks the sets
the wrong way round (reported as such).

>>> from anila.energies import Gaussian
>>> energy, g = Gaussian.isotropic(2), torch.Generator().manual_seed(0)
>>> scores_in = ood_scores(energy, torch.randn(200, 2, generator=g))    # {"energy": (n,), "grad_norm": (n,)}
>>> scores_out = ood_scores(energy, 3 + torch.randn(200, 2, generator=g))
>>> auroc(scores_in["energy"], scores_out["energy"]) > 0.95           # out-of-distribution inputs: higher energy
True
"""

from __future__ import annotations

import torch
from torch import Tensor

from anila.energies.base import Energy, energy_and_grad

SCORES = ("energy", "grad_norm")


def ood_scores(energy: Energy, x: Tensor, *, batch_size: int = 500) -> dict[str, Tensor]:
    """``{"energy": E(x), "grad_norm": ‖∇x E(x)‖₂}``, each ``(n,)``, for inputs ``x`` ``(n, *event)``.

    One forward and one backward pass per batch; the energy's parameters receive no gradient."""
    energies, norms = [], []
    for start in range(0, len(x), batch_size):
        e, g = energy_and_grad(energy, x[start:start + batch_size])
        energies.append(e)
        norms.append(torch.linalg.vector_norm(g.flatten(1), dim=1))
    return {"energy": torch.cat(energies), "grad_norm": torch.cat(norms)}


def auroc(scores_in: Tensor, scores_out: Tensor) -> float:
    """Area under the ROC curve for telling ``scores_out`` (positives) from ``scores_in``; higher = OOD.

    Raises ``ValueError`` on NaN scores (a broken model is reported, never scored)."""
    from sklearn.metrics import roc_auc_score

    scores = torch.cat([scores_in, scores_out]).detach().double().cpu()
    if torch.isnan(scores).any():
        raise ValueError("OOD scores contain NaN: the energy is not finite on these inputs")
    if len(scores_in) == 0 or len(scores_out) == 0:
        raise ValueError("AUROC needs at least one in-distribution and one OOD input")
    labels = torch.cat([torch.zeros(len(scores_in)), torch.ones(len(scores_out))])
    return float(roc_auc_score(labels.numpy(), scores.numpy()))
