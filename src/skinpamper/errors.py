"""Errors a user can act on.

Every message names the file (and row or column where it applies), says what is wrong and, where
possible, how to fix it. The CLI prints the message alone, with no traceback, and exits non-zero.
"""

from __future__ import annotations


class SkinPamperError(Exception):
    """Base class: an error caused by input or environment, not by a bug."""


class DataError(SkinPamperError):
    """A dataset file is missing, malformed, or disagrees with another file."""


class ImageError(DataError):
    """An image cannot be decoded, is truncated, or is larger than the pixel limit."""


class ImageTooLargeError(ImageError):
    """An image's header declares more pixels than the limit (a possible decompression bomb)."""


class DownloadError(SkinPamperError):
    """A download failed or did not match its checksum."""


class ConfigError(SkinPamperError):
    """A configuration file or option is invalid."""


class BusyError(SkinPamperError):
    """Another process is writing the same output (a scores file, a run folder)."""


class ExportError(SkinPamperError):
    """An export could not be made, or does not reproduce the model it was made from."""


class WeightsError(SkinPamperError):
    """Pretrained weights are missing, damaged, swapped for another file, or unsafe to load."""
