"""From Python, a chain start with NaN / inf values or another dtype than the energy is refused with a clear
ValueError before any step (``check_start``, on by default); a state to continue is not re-checked."""

import pytest
import torch

from anila.energies import MLPEnergy
from anila.samplers import MALA, ChainState, Langevin, run_chains, sample_chains


@pytest.mark.parametrize("bad,message", [
    (float("nan"), "x0 holds 1 NaN or infinite values"),
    (float("inf"), "x0 holds 1 NaN or infinite values"),
])
def test_a_non_finite_start_is_refused(bad, message):
    x0 = torch.zeros(4, 2)
    x0[2, 1] = bad
    for sampler in (Langevin(0.01), MALA(0.01)):
        with pytest.raises(ValueError, match=message):
            sample_chains(sampler, MLPEnergy(dim=2), x0, 3)
    out = sample_chains(Langevin(0.01), MLPEnergy(dim=2), x0, 3, check_start=False)  # off: NaN goes through
    assert not torch.isfinite(out[2]).all() and torch.isfinite(out[0]).all()


def test_a_start_of_another_dtype_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"x0 is torch.float64 but the energy's parameters are torch.float32; pass "
                                         r"x0.to\(torch.float32\)"):
        run_chains(Langevin(0.01), MLPEnergy(dim=2), torch.zeros(4, 2, dtype=torch.float64), 3)
    with pytest.raises(ValueError, match="x0 must be a floating-point tensor"):
        run_chains(Langevin(0.01), MLPEnergy(dim=2), torch.zeros(4, 2, dtype=torch.int64), 3)
    double = MLPEnergy(dim=2).double()
    assert run_chains(Langevin(0.01), double, torch.zeros(4, 2, dtype=torch.float64), 3).x.dtype == torch.float64


def test_a_state_to_continue_is_not_checked_again():
    energy = MLPEnergy(dim=2)
    state = run_chains(Langevin(0.01), energy, torch.zeros(4, 2), 2).state
    assert isinstance(state, ChainState)
    assert run_chains(Langevin(0.01), energy, state, 2).x.shape == (4, 2)
