"""The chain loop never waits for the device: no ``.item()``, no ``bool(tensor)``, no copy to the host.

(The optional check of the chain start, ``check_start``, synchronises once before the loop: it is off here.)

On CPU the host-synchronising ``Tensor`` methods are patched to raise while the chains run; on a GPU the same
runs under ``torch.cuda.set_sync_debug_mode("error")``, which raises on any synchronising CUDA call."""

import contextlib

import pytest
import torch

from anila.energies import ConvNetEnergy, MLPEnergy
from anila.samplers import REGISTRY, DualAveraging, make, run_chains, sample_chains

NAMES = list(REGISTRY)  # every registered sampler, with its registry settings
SYNCING = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__")


class HostSync(AssertionError):
    pass


@contextlib.contextmanager
def host_sync_forbidden():
    """Within the block, every Tensor method that copies a value to the host raises :class:`HostSync`."""
    saved = {name: getattr(torch.Tensor, name) for name in SYNCING}

    def forbid(name):
        def raising(self, *args, **kwargs):
            raise HostSync(f"Tensor.{name} called inside the chain loop")
        return raising

    try:
        for name in SYNCING:
            setattr(torch.Tensor, name, forbid(name))
        yield
    finally:
        for name, method in saved.items():
            setattr(torch.Tensor, name, method)


def test_the_guard_catches_a_host_synchronisation():
    x = torch.ones(3)
    with host_sync_forbidden(), pytest.raises(HostSync):
        float(x.sum())
    with host_sync_forbidden(), pytest.raises(HostSync):
        bool((x > 0).all())
    assert x.sum().item() == 3.0  # restored afterwards


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("image", [False, True], ids=["points", "images"])
def test_chain_loop_never_synchronises_on_cpu(name, image):
    torch.manual_seed(0)
    sampler = make(name, image=image)
    energy = ConvNetEnergy(1, 4, 8) if image else MLPEnergy(dim=2, width=8, depth=2)
    x0 = torch.rand(4, 1, 8, 8) if image else torch.randn(6, 2)
    g = torch.Generator().manual_seed(1)
    with host_sync_forbidden():
        out = sample_chains(sampler, energy, x0, 3, generator=g, check_start=False)
        result = run_chains(sampler, energy, x0, 3, generator=g, check_start=False, record_info=True,
                            record_trajectory=True)
        last = sample_chains(sampler, energy, x0, 2, generator=g, check_start=False, differentiable_last_step=True)
        if sampler.is_exact:  # step-size adaptation during a warm-up stays on the device too
            adapted = run_chains(sampler, energy, x0, 2, generator=g, check_start=False, num_warmup=3,
                                 adaptation=DualAveraging())
            assert adapted.step_size.shape == (x0.shape[0],)
    assert out.shape == x0.shape and result.trajectory.shape == (4, *x0.shape) and last.shape == x0.shape


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (set_sync_debug_mode)")
@pytest.mark.parametrize("name", NAMES)
def test_chain_loop_never_synchronises_on_cuda(name):
    torch.manual_seed(0)
    sampler = make(name, image=True)
    energy = ConvNetEnergy(3, 8, 16).cuda()
    x0 = torch.rand(8, 3, 16, 16, device="cuda")
    g = torch.Generator(device="cuda").manual_seed(1)
    sample_chains(sampler, energy, x0, 2, generator=g)  # warm-up: lazy initialisation may synchronise
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = sample_chains(sampler, energy, x0, 5, generator=g, check_start=False)
        run_chains(sampler, energy, x0, 3, generator=g, check_start=False, record_info=True)
        if sampler.is_exact:
            run_chains(sampler, energy, x0, 2, generator=g, check_start=False, num_warmup=3, adaptation=DualAveraging())
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.shape == x0.shape
