"""The objective protocol: what the training loop asks of every way of training an energy.

An objective comes in two parts, so that a config can be compared, printed and written back while the run's
state lives elsewhere:

- a **spec** (:class:`ObjectiveSpec`): a small frozen dataclass of settings, what ``[objective] name = ...``
  builds (``anila.objectives.OBJECTIVES`` maps names to specs). It says whether the sampler is needed
  (``uses_sampler``) and whether the energy must be twice differentiable (``needs_smooth_energy``), how the
  trained model is sampled (:meth:`ObjectiveSpec.sample`) and which energy is its density
  (:meth:`ObjectiveSpec.density_energy`), and :meth:`ObjectiveSpec.build` makes
- the **objective** (:class:`Objective`) of one run: the loss, its auxiliary modules (a learned ``log Z``, a
  flow, a generator, a critic) with their own optimizers, and any other state to checkpoint.

Each iteration the loop (:func:`anila.train.loop.train_step`) does, for every objective alike::

    x0, slots = objective.chain_starts(x_pos, chains, buffer, generator)     # needs_negatives only
    x_neg = run_chains(sampler, energy, x0, K, differentiable_last_step=objective.differentiable_negatives).x
    loss, metrics = objective.loss(energy, Batch(x_pos, x_neg, x0), generator)
    loss.backward()                                    # one backward: energy and auxiliary parameters
    check, clip; energy optimizer and every objective.optimizers() step
    objective.after_step(batch)                        # e.g. improved CD pushes x_neg into its bank

``loss`` is one scalar whose gradient with respect to each parameter is what that parameter's optimizer
should follow: a max-min objective (an adversarial sampler) writes its two halves so that each set of
parameters sees its own half (the other one through ``detach`` or a frozen-parameter surrogate). The
divergence guard checks that one loss, the energies and the gradient norm over all parameters, and on a
rollback it restores and shrinks every optimizer; checkpoints hold :meth:`Objective.modules`,
:meth:`Objective.optimizers` and :meth:`Objective.state_dict` (:mod:`anila.train.resume`).

A new objective is one file: a spec with ``build`` and an :class:`Objective` subclass (or
:class:`LossOnly` for a plain ``(energy, x, generator) -> (loss, metrics)`` function), plus one line in
``OBJECTIVES``. The contract test (``tests/objectives/test_objective_contract.py``) runs over every entry.

>>> import torch
>>> from anila.energies import MLPEnergy
>>> from anila.objectives import OBJECTIVES
>>> context = ObjectiveContext(energy=MLPEnergy(dim=2), data=lambda n, g: torch.randn(n, 2, generator=g),
...                            generator=torch.Generator().manual_seed(0))
>>> objective = OBJECTIVES["dsm"](sigma=0.1).build(context)
>>> loss, metrics = objective.loss(context.energy, Batch(torch.randn(64, 2)), context.generator)
>>> objective.needs_negatives, loss.shape
(False, torch.Size([]))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

Metrics = dict[str, Tensor]
#: The ``model.name`` values of noise-conditional energies ``E(x, σ)`` (registered in ``anila.config.ENERGIES``): the
#: ``models`` of every ``noise_conditional`` objective, and accepted by no other objective.
NOISE_CONDITIONAL_MODELS = ("noise_conditional_mlp", "noise_conditional_convnet")
DataSampler = Callable[[int, torch.Generator], Tensor]  #: ``data(n, generator) -> (n, *event)``
LossFunction = Callable[[nn.Module, Tensor, torch.Generator | None], tuple[Tensor, Metrics]]


@dataclass
class Batch:
    """What one iteration hands to :meth:`Objective.loss`.

    ``x_pos``: the data batch ``(n, *event)``. ``x_neg``: the chains' output ``(m, *event)`` when the objective
    ``needs_negatives`` (detached, unless ``differentiable_negatives``: then its last sampler step carries the
    graph), else ``None``. ``x_start``: the chains' starting points (those :meth:`Objective.chain_starts`
    returned), for objectives that learn from where the chains began (cooperative learning); ``None`` when no
    chains ran. ``y``: the data's integer class labels ``(n,)`` when the data sampler gives them (objectives with
    ``needs_labels``, e.g. a classifier-based energy), else ``None``."""

    x_pos: Tensor
    x_neg: Tensor | None = None
    x_start: Tensor | None = None
    y: Tensor | None = None


@dataclass
class ObjectiveContext:
    """What :meth:`ObjectiveSpec.build` may use: the ``energy`` being trained (already on its device), the data
    sampler ``data(n, generator) -> (n, *event)`` (e.g. to fit a noise density), the run's ``generator``, the
    optimizer settings of the energy (``lr``, ``betas``: auxiliary modules default to them) and ``l2_reg``, the
    L2 energy regulariser of contrastive divergence (``train.l2_reg``)."""

    energy: nn.Module
    data: DataSampler
    generator: torch.Generator
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    l2_reg: float = 0.0

    @property
    def device(self) -> torch.device:
        return self.generator.device

    def adam(self, module: nn.Module, lr: float | None = None) -> torch.optim.Optimizer:
        """Adam over ``module``'s parameters with the energy's betas and ``lr`` (default: the energy's)."""
        return torch.optim.Adam(module.parameters(), lr=self.lr if lr is None else lr, betas=self.betas)


class Objective:
    """The part of an objective that lives for one run. Subclasses override :meth:`loss` and whichever of the
    other methods they need; the defaults describe an objective without negatives, auxiliary modules or state.

    ``needs_negatives``: the loop runs the sampler and passes ``Batch.x_neg``. ``differentiable_negatives``:
    the sampler's last step keeps its graph to the energy's parameters (improved CD's KL term)."""

    needs_negatives: ClassVar[bool] = False
    differentiable_negatives: ClassVar[bool] = False

    def loss(self, energy: nn.Module, batch: Batch, generator: torch.Generator) -> tuple[Tensor, Metrics]:
        """The scalar loss of one iteration and its detached scalar metrics (``energy_pos`` / ``energy_neg``,
        when reported, are also checked by the divergence guard)."""
        raise NotImplementedError

    def chain_starts(self, x_pos: Tensor, chains: Any, buffer: Any,
                     generator: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """Where this iteration's chains start, and the buffer slots they came from (``None``: fresh chains).
        Default: the configured chain starts (:meth:`anila.chains.ChainInit.initial`)."""
        return chains.initial(x_pos, buffer, generator)

    def after_step(self, batch: Batch) -> None:
        """Called after the optimizers stepped (not after a rejected step)."""

    def modules(self) -> dict[str, nn.Module]:
        """Auxiliary modules with trainable parameters, by name (checkpointed as ``aux.<name>.*``)."""
        return {}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimizers of :meth:`modules`, by name; each steps with the energy's, after the same check."""
        return {}

    def state_dict(self) -> dict[str, Tensor]:
        """Other state to checkpoint (tensors only), e.g. a bank of past samples."""
        return {}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Inverse of :meth:`state_dict`."""

    def parameters(self) -> list[nn.Parameter]:
        """Every parameter of :meth:`modules` (for the gradient norm and clipping)."""
        return [p for module in self.modules().values() for p in module.parameters()]


class LossOnly(Objective):
    """An objective that is one stateless loss function ``fn(energy, x, generator) -> (loss, metrics)`` on the
    data batch: no negatives, no auxiliary modules (exact, denoising and sliced score matching, ...)."""

    def __init__(self, fn: LossFunction):
        self.fn = fn

    def loss(self, energy: nn.Module, batch: Batch, generator: torch.Generator) -> tuple[Tensor, Metrics]:
        loss, metrics = self.fn(energy, batch.x_pos, generator)
        return loss, dict(metrics)


@dataclass(frozen=True)
class ObjectiveSpec:
    """Base of the ``[objective]`` settings: frozen, compared and written back by the config.

    ``uses_sampler``: training needs MCMC negatives (the config then checks the sampler and chains).
    ``needs_smooth_energy``: the loss differentiates the energy twice (the config refuses a ReLU-like
    activation). ``models``: the ``model.name`` values this objective accepts (``None``: any model but a
    noise-conditional one). ``noise_conditional``: the energy is ``E(x, σ)``; such an objective names the
    noise-conditional models in ``models`` (:data:`NOISE_CONDITIONAL_MODELS`, point and image), and those models
    go with such objectives only (the config checks both ways). Subclasses are frozen dataclasses whose fields are
    the config keys, and implement :meth:`build`."""

    uses_sampler: ClassVar[bool] = False
    needs_smooth_energy: ClassVar[bool] = False
    needs_labels: ClassVar[bool] = False  #: the loss uses ``Batch.y``: the run's data sampler gives labels too
    supplies_chain_starts: ClassVar[bool] = False  #: its objective starts the chains (``chains.init = "generator"``)
    models: ClassVar[tuple[str, ...] | None] = None  #: the ``model.name`` values it accepts (None: any plain energy)
    noise_conditional: ClassVar[bool] = False  #: the energy is ``E(x, σ)``, not one energy of ``x``
    sampling: ClassVar[str | None] = None  #: the objective's own sampling procedure, by name (None: the sampler)

    def check(self, *, model_name: str, chain_init: str, is_points: bool, num_steps: int) -> None:
        """Raise ``ValueError`` when the rest of the config does not fit this objective, its message starting
        with the ``section.key`` to change (the config reports it as it is). Default: everything fits."""

    def build(self, context: ObjectiveContext) -> Objective:
        """The :class:`Objective` of one run."""
        raise NotImplementedError

    def sample(self, energy: nn.Module, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Samples of a trained model from starts ``x0`` by the objective's own procedure (when ``sampling`` names
        one; otherwise samples are drawn with the configured sampler and this is not called)."""
        raise NotImplementedError(f"{type(self).__name__} has no sampling procedure of its own")

    def density_energy(self, energy: nn.Module) -> nn.Module:
        """The energy whose ``exp(-E)`` is the trained model's density (default: ``energy`` itself)."""
        return energy

