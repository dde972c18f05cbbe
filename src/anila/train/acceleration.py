"""The speed switches of ``[train]`` that change how the work runs, never what it computes.

- ``compile = true``: the sampler's energy evaluations (``K`` of the ``K + 2.5`` forward+backward passes of a
  training iteration) run through ``torch.compile(energy)``; the forward+backward is traced once, fused by
  Inductor and reused while the batch shape stays the same. The loss pass and improved CD's differentiable
  chain (which needs a double backward that compiled graphs do not support) stay eager. The compiled module
  shares the energy's parameters, so every optimizer step is seen by the next chain.
- ``cuda_graphs = true`` (CUDA only): the same, compiled with ``mode="reduce-overhead"``, which records the
  compiled forward and backward as CUDA graphs and replays them: one launch per graph instead of one per
  kernel. Only for unadjusted samplers (Langevin, AniLA): a replay overwrites the previous outputs, and
  Metropolis samplers and HMC keep the last energy and gradient across steps.
- On CUDA, Adam runs fused (one kernel for all parameters).

``precision = "bf16"`` and ``channels_last`` (in :mod:`anila.train.loop`) complete the set.

>>> from anila.energies import MLPEnergy
>>> energy = MLPEnergy(dim=2)
>>> sampling_energy(energy, False, False, torch.device("cpu")) is None    # no switch: the chains use ``energy``
True
>>> energy_for_chains = sampling_energy(energy, True, False, torch.device("cpu"))  # compiled on first call
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

#: The ``torch.compile`` backend; Inductor generates fused kernels (C++ on CPU, Triton on CUDA). The tests set
#: ``"aot_eager"``: the same tracing and forward/backward split, without the slow code generation.
BACKEND = "inductor"


def check_device_options(cuda_graphs: bool, device: torch.device) -> None:
    """Raise :class:`ValueError` when ``cuda_graphs`` is asked for off CUDA (``compile`` works anywhere)."""
    if cuda_graphs and device.type != "cuda":
        raise ValueError(f"cuda_graphs needs a CUDA device but the run is on {device}; run on CUDA or turn it off")


def sampling_energy(energy: nn.Module, compile_energy: bool, cuda_graphs: bool,
                    device: torch.device) -> Callable[[Tensor], Tensor] | None:
    """The energy the chains evaluate: ``torch.compile(energy)`` when asked, else ``None`` (use ``energy``)."""
    check_device_options(cuda_graphs, device)
    if not (compile_energy or cuda_graphs):
        return None
    if BACKEND != "inductor":
        return torch.compile(energy, backend=BACKEND, dynamic=False)
    return torch.compile(energy, mode="reduce-overhead" if cuda_graphs else None, dynamic=False)


def make_adam(energy: nn.Module, lr: float, betas: tuple[float, float], device: torch.device) -> torch.optim.Adam:
    """Adam over the energy's parameters; the fused kernel on CUDA (same update, fewer launches)."""
    return torch.optim.Adam(energy.parameters(), lr=lr, betas=betas, fused=device.type == "cuda" or None)
