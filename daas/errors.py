"""Errors that DAAS reports to users as one line (the CLI prints them and exits 2)."""


class DaasError(Exception):
    """Base of every error a user can cause: bad input, missing files, bad configuration."""


class VideoError(DaasError):
    """A video could not be read or written (missing, empty, corrupt, unsupported, over the limits)."""
