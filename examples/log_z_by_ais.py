"""``log Z`` by annealed importance sampling (AIS), checked against an exact answer, then a test log-likelihood.

    python examples/log_z_by_ais.py           # about 30 s on 2 CPU cores
    python examples/log_z_by_ais.py --tiny

Shows: ``ais_log_partition`` on an energy whose normaliser is known (a Gaussian mixture with its log Z shifted
by +3), so the estimate can be compared with the truth; then ``log_likelihood`` of test points. AIS walks from
a normalised base (here ``N(0, 2² I)``) to ``exp(-E)`` through tempered densities with a Metropolis-adjusted
kernel (MALA): plain Langevin and AniLA are refused, since they do not leave each density invariant.
For a trained run: ``anila eval RUN --metrics loglik`` (docs/evaluation.md).
"""

import math

import torch
from _common import parse_args

import anila
from anila.energies import Gaussian, GaussianMixture
from anila.metrics import ais_log_partition, log_likelihood

out, tiny = parse_args("log_z_by_ais", __doc__)
mixture = GaussianMixture(torch.tensor([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.0]]), stds=0.5)
energy = lambda x: mixture(x) - 3.0  # noqa: E731  exp(-E) = e³ · p, so log Z = 3 exactly

g = torch.Generator().manual_seed(0)
result = ais_log_partition(energy, anila.samplers.MALA(step_size=0.05), base=Gaussian.isotropic(2, std=2.0),
                           num_chains=64 if tiny else 512, num_temperatures=50 if tiny else 1000, generator=g)
print(f"AIS log Z = {result.log_z:.3f} ± {result.stderr:.3f} (exact 3.000), ESS {result.ess:.0f}, "
      f"acceptance {result.accept_prob:.2f}")

test = mixture.sample(2000, generator=g)
loglik, stderr = log_likelihood(energy, test, log_z=result.log_z, log_z_stderr=result.stderr)
exact = float(mixture.log_prob(test).mean())
print(f"test log-likelihood = {loglik:.3f} ± {stderr:.3f} nats (with the exact log Z: {exact:.3f})")
(out / "ais.txt").write_text(f"log_z {result.log_z:.6f}\nstderr {result.stderr:.6f}\nloglik {loglik:.6f}\n"
                             f"exact_log_z 3.0\nexact_loglik {exact:.6f}\n")
assert math.isfinite(result.log_z)
