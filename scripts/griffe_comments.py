"""Griffe extension for the API reference (mkdocs.yml): a dataclass field's comments become its docs.

The code states each default with its reason beside it (`epochs: int = 25  # as the original`) and
any measurement above it, in comments, not attribute docstrings; mkdocstrings shows only docstrings.
This gives a class attribute without one a docstring made of its trailing comment, then the comment
block right above it, so that `TrainConfig`, `Prediction`, `Dataset` and the rest list their fields
with what they mean.
"""

from __future__ import annotations

import io
import tokenize
from typing import Any

import griffe


def field_comments(lines: list[str], first: int, last: int) -> str:
    """The trailing comment of lines[first..last] (1-based), then the comment block just above them."""
    source = "\n".join(lines[first - 1 : last]) + "\n"
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        tokens = []
    trailing = [t.string.lstrip("#").strip() for t in tokens if t.type == tokenize.COMMENT]
    above: list[str] = []
    row = first - 2
    while row >= 0 and lines[row].strip().startswith("#"):
        above.insert(0, lines[row].strip().lstrip("#").strip())
        row -= 1
    parts = [" ".join(trailing), " ".join(above)]
    return "\n\n".join(_sentence(part) for part in parts if part)


def _sentence(text: str) -> str:
    return text if text.endswith((".", ")", ":")) else text + "."


class FieldComments(griffe.Extension):
    """Attach `field_comments` as the docstring of class attributes that have none."""

    def on_attribute_instance(self, *, node: Any, attr: griffe.Attribute, agent: Any, **kwargs: Any) -> None:
        code = getattr(agent, "code", None)
        if attr.docstring is not None or code is None or not attr.parent or not attr.parent.is_class:
            return
        text = field_comments(code.splitlines(), attr.lineno, attr.endlineno or attr.lineno)
        if text:
            attr.docstring = griffe.Docstring(text, parent=attr)
