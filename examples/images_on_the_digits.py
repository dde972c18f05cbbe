"""Train a short-run image EBM on scikit-learn's embedded 8×8 digits (nothing is downloaded).

    pip install "anila[images]"                      # scikit-learn ships the digits
    python examples/images_on_the_digits.py          # about 3 minutes on 2 CPU cores
    python examples/images_on_the_digits.py --tiny

Shows: the paper's ConvNet energy on ``(batch, 1, 8, 8)`` images in [-1, 1]; fresh uniform noise chains of
K AniLA steps of size 1 at a low temperature (``noise_scale`` 0.01), clamped to the pixel box; an EMA copy
of the weights to sample with. Longer runs (``configs/digits_anila.toml``: 4000 iterations) give readable
digits; this short one shows the set-up and writes a grid of samples.
"""

import torch
from _common import parse_args

import anila
from anila.train import TrainSettings, make_train_state, train
from anila.train.figures import plot_image_grid

out, tiny = parse_args("images_on_the_digits", __doc__)
digits = anila.data.image_dataset("digits")                       # images (1797, 1, 8, 8) in [-1, 1]
data = anila.data.batch_sampler(digits.images, noise_std=0.03)   # (batch_size, generator) -> a batch

settings = TrainSettings(iterations=5 if tiny else 600, batch_size=16 if tiny else 100,
                         num_steps=5 if tiny else 40, lr=3e-4, l2_reg=0.1, ema_decay=0.995, log_every=50)
chains = anila.chains.ChainInit(init="noise", noise="uniform", low=-1.0, high=1.0)
sampler = anila.samplers.AniLA(step_size=1.0, threshold=0.1, noise_scale=0.01, clamp=(-1.0, 1.0))
energy = anila.energies.ConvNetEnergy(in_channels=1, n_f=32, image_size=8)
state = make_train_state(energy, settings, chains, (1, 8, 8))
train(state, sampler, chains, data, settings, progress=not tiny,
      on_log=lambda r: print(f"iteration {r['iteration']}: energy gap {r['energy_gap']:.3f}, "
                             f"clip fraction {r['clip_fraction']:.2f}"))

g = torch.Generator().manual_seed(1)
x0 = chains.noise_init().sample(64, (1, 8, 8), generator=g)
samples = anila.samplers.sample_chains(sampler, state.eval_energy, x0, settings.num_steps, generator=g)
plot_image_grid(samples, out / "samples.png", f"AniLA samples after {settings.iterations} iterations")
plot_image_grid(digits.images[:64], out / "data.png", "data")
print(f"figures written to {out}/samples.png and data.png")
