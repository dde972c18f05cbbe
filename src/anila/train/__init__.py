"""Training: the loop, checkpoints, figures and the config-driven run."""

from anila.train.checkpoint import load_checkpoint, save_checkpoint
from anila.train.ema import EMA
from anila.train.loop import TrainSettings, TrainState, make_train_state, train, train_step

__all__ = ["EMA", "TrainSettings", "TrainState", "load_checkpoint", "make_train_state", "save_checkpoint", "train",
           "train_step"]
