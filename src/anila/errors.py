"""Errors meant for users: the CLI prints their one-line message and exits with ``exit_code``."""


class AnilaError(Exception):
    """Base of user-facing errors (bad config, missing data, diverged run)."""

    exit_code = 2


class ConfigError(AnilaError, ValueError):
    """An invalid config: unknown key, wrong type or out-of-range value."""


class DataError(AnilaError):
    """Missing or malformed input data or checkpoint files."""


class TrainingDiverged(AnilaError):
    """A non-finite loss: the step is not applied."""

    exit_code = 3
