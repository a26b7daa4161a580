"""Errors a user can act on.

Every message names the file (and row or column where it applies), says what is wrong and, where
possible, how to fix it. The CLI prints the message alone, with no traceback, and exits non-zero.
`describe` words every declared file and setting's problems alike: a run folder's JSON files
(runfolder.schemas) and the training configuration (training.config).
"""

from __future__ import annotations

import reprlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError
    from pydantic_core import ErrorDetails


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


# pydantic's wording where a plainer one exists; its other messages are clear as they stand.
_UNKNOWN_KEY = {"extra_forbidden", "unexpected_keyword_argument"}
_NO_VALUE = {"missing", "missing_keyword_argument"}  # the input there is the whole object: nothing to show
_SHORT = reprlib.Repr()  # a value as Python writes it, long ones cut short
_SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 4, 3, 40, 40


def describe(error: ValidationError) -> str:
    """The first problems of a pydantic ValidationError on one line, each `field.path: what is wrong,
    got value`, so that a message can name its file, then the field, then the value."""
    problems = [_problem(e) for e in error.errors()[:3]]
    more = error.error_count() - len(problems)
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


def _problem(error: ErrorDetails) -> str:
    """One problem; a rule across fields (no location) is its own message, which names the fields."""
    if error["type"] in _UNKNOWN_KEY:
        what = "unknown key"
    elif error["type"] == "value_error":  # raised by a validator: its message without "Value error, "
        what = str(error["ctx"]["error"])
    else:
        what = error["msg"][0].lower() + error["msg"][1:]
    if not error["loc"]:
        return what
    got = "" if error["type"] in _NO_VALUE else f", got {_SHORT.repr(error['input'])}"
    return f"{'.'.join(map(str, error['loc']))}: {what}{got}"
