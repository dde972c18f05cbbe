"""Property-based tests (hypothesis): every sampler and objective, over random event shapes, float32 / float64,
batch size 1 and non-contiguous inputs, keeps shapes and dtypes and returns finite values, or raises a
ValueError that names the problem. Few examples per property, so that the file runs in seconds."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from anila.chains import NoiseInit, ReplayBuffer
from anila.objectives import (
    GaussianNoise,
    contrastive_divergence,
    denoising_score_matching,
    exact_score_matching,
    nce_loss,
    perturbation_nce,
    sliced_score_matching,
)
from anila.samplers import GRANULARITIES, SAMPLERS, make, sample_chains

PROPERTY = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
class SmoothWell(nn.Module):
    """``E(x) = ½ a ‖x‖² + Σ softplus(x)`` over the event axes: any shape, smooth, with one parameter."""

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(1.0))

    def forward(self, x):
        flat = x.flatten(1)
        return 0.5 * self.a * flat.pow(2).sum(1) + nn.functional.softplus(flat).sum(1)


@st.composite
def inputs(draw, max_event_dims: int = 3):
    """``(x, dtype)``: ``(batch, *event)`` with batch in 1..4, event sizes 1..3, maybe a non-contiguous view."""
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    batch = draw(st.integers(1, 4))
    event = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=max_event_dims)))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    if draw(st.booleans()):  # every other element of a wider tensor: strides of 2, not contiguous
        x = torch.randn(batch, *event, 2, generator=g, dtype=dtype)[..., 0]
    else:
        x = torch.randn(batch, *event, generator=g, dtype=dtype)
    return x, dtype


@PROPERTY
@given(name=st.sampled_from(sorted(SAMPLERS)), data=inputs(), num_steps=st.integers(1, 3))
def test_samplers_keep_shape_dtype_and_finite_values(name, data, num_steps):
    x0, dtype = data
    before = x0.clone()
    energy = SmoothWell().to(dtype)
    sampler = make(name)  # the registry's settings for unit-scale targets
    out = sample_chains(sampler, energy, x0, num_steps, generator=torch.Generator().manual_seed(0))
    assert out.shape == x0.shape and out.dtype == dtype
    assert torch.isfinite(out).all()
    assert torch.equal(x0, before)  # the start is not modified in place
    assert energy.a.grad is None  # no parameter gradient accumulated while sampling


@PROPERTY
@given(granularity=st.sampled_from(GRANULARITIES), data=inputs())
def test_anila_granularities_work_or_say_why(granularity, data):
    x0, dtype = data
    sampler = SAMPLERS["anila"](step_size=0.5, threshold=0.5, granularity=granularity)
    try:
        out = sample_chains(sampler, SmoothWell().to(dtype), x0, 2, generator=torch.Generator().manual_seed(0))
    except ValueError as exc:
        assert granularity == "pixel" and x0.dim() < 3 and "use 'elementwise' or 'sample'" in str(exc)
        return
    assert out.shape == x0.shape and out.dtype == dtype and torch.isfinite(out).all()


def _objective(name: str, energy: nn.Module, x: torch.Tensor, g: torch.Generator):
    if name == "cd":
        x_neg = torch.randn(x.shape, generator=g, dtype=x.dtype)
        return contrastive_divergence(energy, x, x_neg, l2_reg=0.1)
    if name == "sm":
        return exact_score_matching(energy, x)
    if name == "ssm":
        return sliced_score_matching(energy, x, num_projections=2, generator=g)
    if name == "ssm_vr":
        return sliced_score_matching(energy, x, variance_reduced=True, generator=g)
    if name == "dsm":
        return denoising_score_matching(energy, x, sigma=0.1, generator=g)
    if name == "perturbation_nce":
        return perturbation_nce(energy, x, scale=0.1, generator=g)
    dim = x[0].numel()
    noise = GaussianNoise(torch.zeros(dim, dtype=x.dtype), torch.eye(dim, dtype=x.dtype), tuple(x.shape[1:]))
    return nce_loss(energy, torch.zeros((), dtype=x.dtype), x, noise, generator=g)


@PROPERTY
@given(name=st.sampled_from(["cd", "sm", "ssm", "ssm_vr", "dsm", "perturbation_nce", "nce"]), data=inputs())
def test_objectives_return_a_finite_scalar_loss_and_gradient(name, data):
    x, dtype = data
    energy = SmoothWell().to(dtype)
    if name == "sm" and x[0].numel() > 20:  # exact score matching costs one backward pass per dimension
        with pytest.raises(ValueError, match="use sliced_score_matching"):
            _objective(name, energy, x, torch.Generator().manual_seed(0))
        return
    loss, metrics = _objective(name, energy, x, torch.Generator().manual_seed(0))
    assert loss.dim() == 0 and torch.isfinite(loss), (name, loss)
    assert all(torch.isfinite(v).all() for v in metrics.values())
    loss.backward()
    assert energy.a.grad is not None and torch.isfinite(energy.a.grad)


@PROPERTY
@given(capacity=st.integers(1, 20), num=st.integers(1, 25), data=inputs(max_event_dims=2))
def test_replay_buffer_keeps_shapes_or_asks_for_a_bigger_buffer(capacity, num, data):
    x, dtype = data
    event = tuple(x.shape[1:])
    buffer = ReplayBuffer(capacity, event, NoiseInit(), generator=torch.Generator().manual_seed(0), dtype=dtype)
    if num > capacity:
        with pytest.raises(ValueError, match="raise buffer_size"):
            buffer.sample(num)
        return
    x0, indices = buffer.sample(num, torch.Generator().manual_seed(1))
    assert x0.shape == (num, *event) and x0.dtype == dtype and indices.shape == (num,)
    buffer.push(x0 + 1, indices)
    assert torch.equal(buffer.chains[indices], x0 + 1)
