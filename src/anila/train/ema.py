"""Exponential moving average of a model's weights: the model improved CD samples and evaluates with.

After each optimiser step ``update(model)`` sets, for every parameter,

    shadow ← decay · shadow + (1 - decay) · param

and copies every buffer (normalisation statistics, spectral-norm vectors) as they are. The shadow starts
as an exact copy of the model. The improved-CD paper evaluates with an EMA of weight 0.9999 (section 3.1;
the authors' code uses 0.99); 0.999 is the default here, a middle ground for shorter runs.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


class EMA:
    """A frozen shadow copy of ``model`` tracking its weights' exponential moving average.

    ``shadow`` (an ``nn.Module`` with ``requires_grad=False`` everywhere) is the model to sample or
    evaluate with; it stays on the device it was created on and in the train/eval mode the model had then.
    ``state_dict()`` / ``load_state_dict()`` hold the shadow's tensors only (ready for safetensors).

    >>> from anila.energies import MLPEnergy
    >>> from anila.samplers import Langevin, sample_chains
    >>> energy = MLPEnergy(dim=2)
    >>> optimizer = torch.optim.Adam(energy.parameters(), lr=1e-3)
    >>> ema = EMA(energy, decay=0.999)
    >>> energy(torch.randn(8, 2)).mean().backward(); optimizer.step(); ema.update(energy)
    >>> x = sample_chains(Langevin(step_size=0.01), ema.shadow, torch.randn(8, 2), 10)
    """

    def __init__(self, model: nn.Module, decay: float = 0.999):
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"decay must be in [0, 1], got {decay}")
        self.decay = decay
        self.shadow = copy.deepcopy(model)
        self.shadow.requires_grad_(False)
        for p in self.shadow.parameters():
            p.grad = None  # deepcopy also copies .grad

    def _pairs(self, model: nn.Module, kind: str) -> tuple[list[Tensor], list[Tensor]]:
        mine = dict(getattr(self.shadow, f"named_{kind}")())
        theirs = dict(getattr(model, f"named_{kind}")())
        if mine.keys() != theirs.keys():
            missing, extra = sorted(mine.keys() - theirs.keys()), sorted(theirs.keys() - mine.keys())
            raise ValueError(f"model {kind} do not match the EMA shadow: missing {missing}, unexpected {extra}")
        return [mine[k] for k in mine], [theirs[k] for k in mine]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One EMA step towards ``model``'s current parameters; buffers are copied."""
        shadow, live = self._pairs(model, "parameters")
        weight = 1.0 - self.decay
        floats = [(s, p) for s, p in zip(shadow, live, strict=True) if s.is_floating_point() or s.is_complex()]
        if floats:
            torch._foreach_lerp_([s for s, _ in floats], [p.detach() for _, p in floats], weight)
        for s, p in zip(shadow, live, strict=True):
            if not (s.is_floating_point() or s.is_complex()):
                s.copy_(p)
        for s, b in zip(*self._pairs(model, "buffers"), strict=True):
            s.copy_(b)

    def state_dict(self) -> dict[str, Tensor]:
        return {name: t.detach().clone() for name, t in self.shadow.state_dict().items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.shadow.load_state_dict(state)
        self.shadow.requires_grad_(False)
