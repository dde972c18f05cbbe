"""How many model samples a digits classifier reads confidently, against real digits and uniform noise.

    anila sample runs/digits --num 1000 --seed 1 --out samples.npy
    python benchmarks/digits_readability.py samples.npy [more.npy ...] [--noisy-references 0.1,0.2]

A logistic regression is fitted on 70% of scikit-learn's digits (scaled to [-1, 1], as anila trains on them)
and scores the other 30%. For each set it prints the fraction of images whose most probable class has
probability >= 0.9, and the histogram of predicted classes (a collapsed model puts most samples in few
classes). References printed first: the held-out real digits and 1000 uniform[-1, 1] noise images. The
classifier is over-confident on noise, so read a set's fraction against both references, not alone.
``--noisy-references S1,S2,...`` adds the held-out digits with Gaussian pixel noise of each std (clipped to
[-1, 1], seed 0): how much a set's pixel noise alone would lower its fraction.
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split


def confident_fraction(classifier: LogisticRegression, images: np.ndarray, level: float = 0.9):
    """(fraction with max class probability >= level, counts of predicted classes) for images (n, ...)."""
    probs = classifier.predict_proba(images.reshape(len(images), -1))
    return float((probs.max(axis=1) >= level).mean()), np.bincount(probs.argmax(axis=1), minlength=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("samples", nargs="+", help=".npy files of shape (n, 1, 8, 8) in [-1, 1]")
    parser.add_argument("--noisy-references", default="", metavar="S1,S2",
                        help="also score the held-out digits plus N(0, S²) pixel noise, for each std S")
    args = parser.parse_args()
    digits = load_digits()
    x = digits.data / 16.0 * 2.0 - 1.0
    x_train, x_test, y_train, y_test = train_test_split(x, digits.target, test_size=0.3, random_state=0)
    classifier = LogisticRegression(max_iter=5000).fit(x_train, y_train)
    noise = np.random.default_rng(0).uniform(-1.0, 1.0, (1000, 64))
    print(f"classifier held-out accuracy {classifier.score(x_test, y_test):.3f}")
    sets = {"real digits (held out)": x_test, "uniform noise": noise}
    rng = np.random.default_rng(0)
    for std in [float(v) for v in args.noisy_references.split(",") if v.strip()]:
        noisy = np.clip(x_test + std * rng.standard_normal(x_test.shape), -1.0, 1.0)
        sets[f"real digits (held out) + N(0, {std:g}^2) noise"] = noisy
    sets.update({path: np.load(path) for path in args.samples})
    for name, images in sets.items():
        fraction, counts = confident_fraction(classifier, images)
        print(f"{name}: {fraction:.3f} read with p >= 0.9; predicted classes {counts.tolist()}")


if __name__ == "__main__":
    main()
