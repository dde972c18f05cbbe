"""Data: seeded 2-D toy generators with their true densities, your own point clouds of any dimension
(:mod:`anila.data.points`), and image sets read from local files (:mod:`anila.data.images`,
:mod:`anila.data.mnist5k`)."""

from anila.data.images import (
    IMAGE_DATASETS,
    ImageDataset,
    batch_sampler,
    build_dataset,
    dequantize,
    image_dataset,
    load_cifar10,
    load_digits,
    load_image_folder,
    load_mnist,
)
from anila.data.mnist5k import load_mnist5k
from anila.data.points import PointCloud, PointDataError, load_points, point_metrics
from anila.data.toy import TOY_DATASETS, ToyDataset, toy_dataset
from anila.data.validate import validate_batch, validate_images, validate_points

__all__ = [
    "IMAGE_DATASETS", "TOY_DATASETS", "ImageDataset", "ToyDataset", "batch_sampler", "build_dataset", "dequantize",
    "image_dataset",
    "load_cifar10", "load_digits", "load_image_folder", "load_mnist", "load_mnist5k", "load_points", "point_metrics",
    "PointCloud", "PointDataError", "toy_dataset", "validate_batch", "validate_images", "validate_points",
]
