"""JEM: a classifier is an energy-based model (Grathwohl et al. 2019, "Your classifier is secretly an energy
based model and you should treat it like one").

A classifier's logits ``f(x) ∈ R^C`` define a joint EBM ``p(x, y) ∝ exp(f(x)[y])`` (their eq. 4), whose
conditional is the usual softmax and whose marginal has the energy (eq. 5)

    p(y | x) = softmax(f(x))[y],        E(x) = -logsumexp_y f(x)[y].

Training maximises ``log p(x, y) = log p(y | x) + log p(x)`` (eq. 8): cross-entropy on the labelled batch plus
the contrastive-divergence estimate of ``∇ log p(x)`` (eq. 2) with negatives from SGLD chains on ``E(x)`` --
in the paper a persistent replay buffer with 5 % of the chains restarted from uniform noise each iteration,
20 steps (anila: ``chains.init = "replay"``, ``reinit_fraction = 0.05``, ``train.num_steps = 20``; their SGLD
step α = 1, noise 0.01 is ``sampler.name = "langevin"``, ``step_size = 2``, ``noise_scale = 0.01 / √2``, or the
low-temperature ``step_size = 1, noise_scale = 0.01`` of anila's image configs). With ``conditional_weight > 0``
the ``p(x | y)`` factorisation is added too (their appendix: ``log p(x | y) + log p(y)``): class-conditional
chains on ``E(x | y) = -f(x)[y]``, started from the marginal chains' output with the data's labels.

The model is any anila network with a class head: ``model.num_classes = C`` on ``mlp`` and ``convnet`` (their
``logits(x)`` and ``forward(x) = -logsumexp``), or :class:`ClassifierEnergy` around a network that returns
logits. Evaluation: :func:`classification_metrics` (accuracy, NLL, expected calibration error) and
:func:`reliability_diagram`; ``anila classify RUN`` (:mod:`anila.commands.classify`); OOD scores through
``anila ood`` (the logsumexp energy, and ``--score max_softmax`` for the baseline).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anila.objectives.base import Batch, Metrics, Objective, ObjectiveContext, ObjectiveSpec
from anila.objectives.contrastive import contrastive_divergence


class ClassifierEnergy(nn.Module):
    """A classifier read as an energy: ``forward(x) = -logsumexp_y f(x)[y]`` ``(batch,)`` and ``logits(x) = f(x)``
    ``(batch, C)``, where ``f`` is ``net.logits`` when ``net`` has one, else ``net`` itself.

    >>> energy = ClassifierEnergy(nn.Linear(2, 3))
    >>> x = torch.randn(5, 2)
    >>> bool(torch.allclose(energy(x), -torch.logsumexp(energy.logits(x), 1)))
    True
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def logits(self, x: Tensor) -> Tensor:
        logits = getattr(self.net, "logits", None)
        return logits(x) if callable(logits) else self.net(x)

    def forward(self, x: Tensor) -> Tensor:
        return -torch.logsumexp(self.logits(x), dim=1)


def has_class_head(energy: nn.Module) -> bool:
    """Whether ``energy`` is a classifier energy: a ``logits`` method and no ``num_classes = 0``."""
    return callable(getattr(energy, "logits", None)) and getattr(energy, "num_classes", 2) != 0


def logits_of(energy: nn.Module) -> Callable[[Tensor], Tensor]:
    """The ``logits(x)`` method of a classifier energy, or a ``ValueError`` naming the fix."""
    logits = getattr(energy, "logits", None)
    if not has_class_head(energy):
        raise ValueError("model.num_classes: jem needs a classifier head; set model.num_classes = C (the number of "
                         "classes, >= 2) on an mlp or convnet model")
    return logits  # type: ignore[return-value]


def class_conditional_langevin(energy: nn.Module, x0: Tensor, y: Tensor, *, num_steps: int, step_size: float,
                               noise_scale: float, generator: torch.Generator | None = None) -> Tensor:
    """Unadjusted Langevin on ``E(x | y) = -f(x)[y]`` from ``x0`` ``(n, *event)`` with labels ``y`` ``(n,)``:
    ``x' = x - h/2 ∇E + sqrt(h) · noise_scale · ξ``; returns the detached final state."""
    logits = logits_of(energy)
    x = x0.detach()
    for _ in range(num_steps):
        x = x.requires_grad_(True)
        e = -logits(x).gather(1, y.view(-1, 1)).sum()
        (grad,) = torch.autograd.grad(e, x)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x = (x - 0.5 * step_size * grad + (step_size**0.5) * noise_scale * noise).detach()
    return x


def jem_loss(energy: nn.Module, x_pos: Tensor, y: Tensor, x_neg: Tensor | None, *, generative_weight: float = 1.0,
             l2_reg: float = 0.0) -> tuple[Tensor, Metrics]:
    """JEM's loss (Grathwohl et al. 2019, eq. 8, as a loss to minimise):

        L = mean_i CE(f(x⁺_i), y_i) + w · [mean_i E(x⁺_i) - mean_j E(x⁻_j) + α · mean(E(x⁺)² + E(x⁻)²)]

    ``x_pos``: data ``(n, *event)``; ``y``: its labels ``(n,)`` int64 in ``[0, C)``; ``x_neg``: chain samples
    ``(m, *event)``, detached; ``w``: ``generative_weight`` (0: a plain classifier); ``α``: ``l2_reg``. The first
    term is ``-log p(y | x)``, the bracket is contrastive divergence on ``E(x) = -logsumexp f(x)``, the
    ``-log p(x)`` part (up to ``log Z``, whose gradient the negatives supply). Metrics: ``cross_entropy``,
    ``accuracy`` and CD's ``energy_pos`` / ``energy_neg`` / ``energy_gap`` (detached scalars)."""
    logits = logits_of(energy)(x_pos)
    ce = F.cross_entropy(logits, y)
    metrics = {"cross_entropy": ce.detach(), "accuracy": (logits.argmax(1) == y).float().mean().detach()}
    if generative_weight == 0 or x_neg is None:
        return ce, metrics
    cd, cd_metrics = contrastive_divergence(energy, x_pos, x_neg, l2_reg=l2_reg)
    return ce + generative_weight * cd, {**metrics, **cd_metrics}


class JEMLoss(Objective):
    """The JEM objective of a run: :func:`jem_loss` on the labelled batch against the loop's chains, plus (with
    ``conditional_weight``) CD on ``E(x | y)`` against class-conditional chains (:func:`class_conditional_langevin`
    from the marginal chains' output, with the batch's labels)."""

    needs_negatives = True

    def __init__(self, spec: JEM, l2_reg: float = 0.0):
        self.spec, self.l2_reg = spec, l2_reg

    def loss(self, energy: nn.Module, batch: Batch, generator: torch.Generator) -> tuple[Tensor, Metrics]:
        if batch.y is None or (self.needs_negatives and batch.x_neg is None):
            raise ValueError("jem needs labels and chain samples: Batch.y or Batch.x_neg is None (the run's data "
                             "sampler must return (x, y))")
        labels = batch.y
        spec = self.spec
        loss, metrics = jem_loss(energy, batch.x_pos, batch.y, batch.x_neg, generative_weight=spec.generative_weight,
                                 l2_reg=self.l2_reg)
        if spec.conditional_weight > 0:
            assert batch.x_neg is not None  # conditional chains need the sampler's negatives
            m = min(len(batch.x_neg), len(labels))
            y = labels[:m]
            x_cond = class_conditional_langevin(energy, batch.x_neg[:m], y, num_steps=spec.conditional_steps,
                                                step_size=spec.conditional_step_size,
                                                noise_scale=spec.conditional_noise_scale, generator=generator)
            logits = logits_of(energy)
            e_pos = -logits(batch.x_pos).gather(1, batch.y.view(-1, 1)).mean()
            e_neg = -logits(x_cond).gather(1, y.view(-1, 1)).mean()
            loss = loss + spec.conditional_weight * (e_pos - e_neg)
            metrics["conditional_gap"] = (e_pos - e_neg).detach()
        return loss, metrics


class ClassifierLoss(JEMLoss):
    """JEM with ``generative_weight = conditional_weight = 0``: cross-entropy alone, so no chains run."""

    needs_negatives = False


@dataclass(frozen=True)
class JEM(ObjectiveSpec):
    """JEM (Grathwohl et al. 2019): cross-entropy on ``p(y | x)`` plus ``generative_weight`` × CD on ``p(x)`` with
    the loop's sampler and chains (recommended: ``chains.init = "replay"``, ``reinit_fraction = 0.05``,
    ``train.num_steps = 20``), and ``conditional_weight`` × CD on ``p(x | y)`` with ``conditional_steps`` class-
    conditional Langevin steps (``conditional_step_size``, ``conditional_noise_scale``). Needs labels
    (``needs_labels``: the run's data sampler gives ``(x, y)``) and a class head (``model.num_classes``)."""

    generative_weight: float = 1.0
    conditional_weight: float = 0.0
    conditional_steps: int = 20
    conditional_step_size: float = 1.0
    conditional_noise_scale: float = 0.01
    uses_sampler: ClassVar[bool] = True
    needs_labels: ClassVar[bool] = True
    models: ClassVar[tuple[str, ...] | None] = ("mlp", "convnet")  #: the networks with a class head (num_classes)

    def __post_init__(self) -> None:
        if not (self.generative_weight >= 0 and self.conditional_weight >= 0):
            raise ValueError(f"generative_weight and conditional_weight must be >= 0; got {self.generative_weight}, "
                             f"{self.conditional_weight}")
        if self.conditional_steps < 1 or not self.conditional_step_size > 0 or not self.conditional_noise_scale >= 0:
            raise ValueError(f"conditional_steps must be >= 1, conditional_step_size > 0 and conditional_noise_scale "
                             f">= 0; got {self.conditional_steps}, {self.conditional_step_size}, "
                             f"{self.conditional_noise_scale}")

    def build(self, context: ObjectiveContext) -> Objective:
        """Check the class head (``model.num_classes``) against the data's labels (a probe batch drawn with its
        own generator, so the run's stream is untouched)."""
        from anila.errors import ConfigError

        try:
            logits_of(context.energy)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        num_classes = getattr(context.energy, "num_classes", None)
        drawn = context.data(256, torch.Generator(device=context.device).manual_seed(0))
        if not isinstance(drawn, tuple):
            raise ConfigError("objective.name: jem needs labelled data; the data sampler gave no labels")
        if num_classes is not None and int(drawn[1].max()) >= num_classes:
            raise ConfigError(f"model.num_classes = {num_classes}: the data have label {int(drawn[1].max())}; set "
                              f"model.num_classes to the number of classes")
        generative = self.generative_weight > 0 or self.conditional_weight > 0
        return (JEMLoss if generative else ClassifierLoss)(self, l2_reg=context.l2_reg)


# ------------------------------------------------------------------------------------------ evaluation


@torch.no_grad()
def predict(energy: nn.Module, x: Tensor, batch_size: int = 1000) -> Tensor:
    """Class probabilities ``softmax f(x)`` ``(n, C)`` of a classifier energy, in batches."""
    logits = logits_of(energy)
    return torch.cat([torch.softmax(logits(x[i:i + batch_size]), 1) for i in range(0, len(x), batch_size)])


@torch.no_grad()
def max_softmax_score(energy: nn.Module, x: Tensor) -> Tensor:
    """The max-softmax OOD baseline (Hendrycks & Gimpel 2017) as a score where higher means OOD:
    ``-max_y p(y | x)`` ``(n,)``."""
    return -predict(energy, x).max(1).values


def calibration_bins(probs: Tensor, y: Tensor, num_bins: int = 15) -> tuple[Tensor, Tensor, Tensor]:
    """Per confidence bin (``num_bins`` equal-width bins of ``max_y p(y | x)`` on ``[0, 1]``): the count, mean
    confidence and accuracy, each ``(num_bins,)`` (empty bins: count 0, the others 0)."""
    confidence, predicted = probs.max(1)
    correct = (predicted == y).to(probs.dtype)
    index = (confidence * num_bins).long().clamp(max=num_bins - 1)
    count = torch.zeros(num_bins, dtype=probs.dtype).index_add_(0, index.cpu(), torch.ones_like(confidence).cpu())
    conf_sum = torch.zeros(num_bins, dtype=probs.dtype).index_add_(0, index.cpu(), confidence.cpu())
    acc_sum = torch.zeros(num_bins, dtype=probs.dtype).index_add_(0, index.cpu(), correct.cpu())
    safe = count.clamp(min=1)
    return count, conf_sum / safe, acc_sum / safe


def expected_calibration_error(probs: Tensor, y: Tensor, num_bins: int = 15) -> float:
    """ECE (Guo et al. 2017): ``Σ_b (n_b / n) |acc_b - conf_b|`` over ``num_bins`` equal-width confidence bins.

    >>> probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    >>> round(expected_calibration_error(probs, torch.tensor([0, 0, 0, 1]), num_bins=10), 3)
    0.1
    """
    count, confidence, accuracy = calibration_bins(probs, y, num_bins)
    return float((count / count.sum() * (accuracy - confidence).abs()).sum())


def classification_metrics(energy: nn.Module, x: Tensor, y: Tensor, num_bins: int = 15) -> dict[str, float]:
    """``accuracy``, ``nll`` (mean ``-log p(y | x)``), ``ece`` and ``num`` of a classifier energy on ``(x, y)``."""
    probs = predict(energy, x)
    y = y.to(probs.device)
    nll = float(-torch.log(probs.gather(1, y.view(-1, 1)).clamp(min=1e-12)).mean())
    return {"accuracy": float((probs.argmax(1) == y).float().mean()), "nll": nll,
            "ece": expected_calibration_error(probs, y, num_bins), "num": int(len(y))}


def reliability_diagram(probs: Tensor, y: Tensor, path: str | Path, *, num_bins: int = 15,
                        title: str = "reliability") -> Path:
    """A reliability diagram PNG: accuracy against confidence per bin, with the diagonal and the ECE."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from anila.io import save_figure

    count, confidence, accuracy = calibration_bins(probs, y, num_bins)
    edges = torch.linspace(0, 1, num_bins + 1)
    fig, ax = plt.subplots(figsize=(4, 4))
    shown = count > 0
    ax.bar(edges[:-1][shown].numpy(), accuracy[shown].numpy(), width=1 / num_bins, align="edge", edgecolor="k",
           label="accuracy")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy",
           title=f"{title} (ECE {expected_calibration_error(probs, y, num_bins):.3f})")
    ax.legend(loc="upper left")
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)
