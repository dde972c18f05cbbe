"""Data: seeded 2-D toy generators with their true densities."""

from anila.data.toy import TOY_DATASETS, ToyDataset, toy_dataset

__all__ = ["TOY_DATASETS", "ToyDataset", "toy_dataset"]
