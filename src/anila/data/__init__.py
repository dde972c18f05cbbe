"""Data: seeded 2-D toy generators with their true densities, and image sets read from local files."""

from anila.data.images import (
    IMAGE_DATASETS,
    ImageDataset,
    batch_sampler,
    dequantize,
    image_dataset,
    load_cifar10,
    load_digits,
    load_image_folder,
    load_mnist,
)
from anila.data.toy import TOY_DATASETS, ToyDataset, toy_dataset
from anila.data.validate import validate_batch, validate_images, validate_points

__all__ = [
    "IMAGE_DATASETS", "TOY_DATASETS", "ImageDataset", "ToyDataset", "batch_sampler", "dequantize", "image_dataset",
    "load_cifar10", "load_digits", "load_image_folder", "load_mnist", "toy_dataset",
    "validate_batch", "validate_images", "validate_points",
]
