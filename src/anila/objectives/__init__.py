"""Training objectives, each a function returning ``(loss, metrics)``."""

from anila.objectives.contrastive import contrastive_divergence

__all__ = ["contrastive_divergence"]
