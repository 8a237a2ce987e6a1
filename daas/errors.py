"""Errors that DAAS reports to users as one line (the CLI prints them and exits 2)."""


class DaasError(Exception):
    """Base of every error a user can cause: bad input, missing files, bad configuration."""


class VideoError(DaasError):
    """A video could not be read or written (missing, empty, corrupt, unsupported, over the limits)."""


def without_path(message: str, path) -> str:
    """An error's message without the file's name in front (errors about a file start with it): for reports and
    lines that name the file already."""
    return message.removeprefix(f"{path}: ")
