"""Typed errors: every failure a user can cause is one of these, with a one-sentence message."""


class RelightVidError(Exception):
    """Base class of every user-facing failure in relightvid_core."""


class WeightFormatError(RelightVidError, ValueError):
    """A weight file (or state dict) is not what the slot it was given for expects."""


class InputError(RelightVidError, ValueError):
    """A tensor, frame sequence, image or setting handed to the library cannot be used."""


class MissingFileError(RelightVidError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class UnreadableFileError(RelightVidError, PermissionError):
    """A file exists but cannot be read (permissions, or a special file standing where a file should be)."""


class MissingDependencyError(RelightVidError, ImportError):
    """An optional package that one feature needs is not installed; the message names what to install."""


class SamplingInterrupted(RelightVidError):
    """The caller's interrupt check asked sampling to stop; no input tensor was changed."""
