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


class RunFolderBusy(AnilaError):
    """The run folder is locked by another training, or holds a run that would be mixed with a new one."""


class RunInterrupted(AnilaError):
    """SIGINT / SIGTERM stopped a run after a checkpoint at the current iteration: exit ``128 + signal``."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


class RankLost(AnilaError):
    """A multi-process run lost a rank: a collective failed (a process died) or timed out (one hung)."""

    exit_code = 4


class OutputError(AnilaError):
    """A file could not be written (full disk, read-only folder, a path that is a file)."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def describe_os_error(exc: OSError) -> str:
    """``PATH: problem`` for an ``OSError`` (e.g. ``runs/a: Not a directory``), with a hint for the common ones."""
    import errno

    where = exc.filename if exc.filename is not None else ""
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    problem = exc.strerror or str(exc)
    hint = {errno.ENOSPC: "free some space", errno.EACCES: "check the folder's permissions",
            errno.EROFS: "the file system is read-only; write elsewhere",
            errno.ENOTDIR: "a part of the path is a file, not a folder",
            errno.EEXIST: "a file of that name is in the way",
            errno.EISDIR: "it is a folder, not a file"}.get(exc.errno or 0)
    return f"{where}: {problem}" + (f" ({hint})" if hint else "") if where else problem
