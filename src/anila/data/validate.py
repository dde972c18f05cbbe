"""Data validation at the boundary: a training run checks its data once, before the first iteration.

Each check raises :class:`~anila.errors.DataError` with one line that names the data, the problem and the fix:

- :func:`validate_images`: a non-empty ``(N, C, H, W)`` floating-point tensor, every value finite and in
  ``value_range`` (the loaders map pixels to ``[-1, 1]``), of the expected event shape;
- :func:`validate_points`: a non-empty ``(N, d)`` floating-point tensor of finite values (the 2-D toys);
- :func:`validate_batch`: a batch drawn from a data sampler has the shape, dtype and device the run expects.

>>> images = validate_images(torch.rand(10, 1, 8, 8) * 2 - 1, name="digits", event_shape=(1, 8, 8))
>>> points = validate_points(torch.randn(100, 2), name="rings", dim=2)
>>> validate_points(torch.full((3, 2), float("nan")), name="rings", dim=2)
Traceback (most recent call last):
    ...
anila.errors.DataError: ...
"""

from __future__ import annotations

import torch
from torch import Tensor

from anila.errors import DataError


def _finite_and_typed(x: Tensor, name: str, what: str) -> None:
    if not isinstance(x, Tensor):
        raise DataError(f"{name}: {what} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 0 or x.numel() == 0:
        raise DataError(f"{name}: no {what} (shape {tuple(x.shape)}); check the data set's files or root folder")
    if not x.is_floating_point():
        raise DataError(f"{name}: {what} have dtype {x.dtype}, expected a floating-point dtype; convert them "
                        "with .float() (images scaled to [-1, 1])")
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        raise DataError(f"{name}: {bad} of {x.numel()} values are NaN or infinite; fix or drop those items")


def validate_images(images: Tensor, *, name: str, event_shape: tuple[int, ...] | None = None,
                    value_range: tuple[float, float] = (-1.0, 1.0)) -> Tensor:
    """Check an image set ``(N, C, H, W)``; returns it unchanged."""
    if isinstance(images, Tensor) and images.dim() != 4:
        raise DataError(f"{name}: images must be a (N, C, H, W) tensor, got shape {tuple(images.shape)}")
    _finite_and_typed(images, name, "images")
    if event_shape is not None and tuple(images.shape[1:]) != tuple(event_shape):
        raise DataError(f"{name}: images are {tuple(images.shape[1:])}, the config expects {tuple(event_shape)}; "
                        "set data.image_size to match or use other files")
    low, high = float(images.min()), float(images.max())
    if low < value_range[0] or high > value_range[1]:
        raise DataError(f"{name}: image values span [{low:.4g}, {high:.4g}], outside [{value_range[0]}, "
                        f"{value_range[1]}]; scale pixels p in 0..255 as p / 127.5 - 1")
    return images


def validate_points(points: Tensor, *, name: str, dim: int | None = None) -> Tensor:
    """Check a set of points ``(N, d)``; returns it unchanged."""
    if isinstance(points, Tensor) and points.dim() != 2:
        raise DataError(f"{name}: points must be a (N, d) tensor, got shape {tuple(points.shape)}")
    _finite_and_typed(points, name, "points")
    if dim is not None and points.shape[1] != dim:
        raise DataError(f"{name}: points have {points.shape[1]} coordinates, the model expects {dim}")
    return points


def validate_batch(batch: Tensor, *, name: str, batch_size: int, event_shape: tuple[int, ...],
                   device: torch.device | None = None) -> Tensor:
    """Check one batch of a data sampler against the run's batch size, event shape and device."""
    expected = (batch_size, *event_shape)
    if not isinstance(batch, Tensor) or tuple(batch.shape) != expected:
        shape = tuple(batch.shape) if isinstance(batch, Tensor) else type(batch).__name__
        raise DataError(f"{name}: the data sampler returned {shape}, expected {expected}")
    _finite_and_typed(batch, name, "batch values")
    if device is not None and batch.device.type != torch.device(device).type:
        raise DataError(f"{name}: the data sampler returned a batch on {batch.device}, the run is on {device}")
    return batch
