"""What the explore page and the run report share: PNG inlining, template rendering, safe writing.

Pages are self-contained (figures inlined as base64 data URIs) so they open offline and travel as
one file.
"""

from __future__ import annotations

import base64
import functools
import io
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from matplotlib.figure import Figure

from skinpamper import __version__


def figure_png(figure: Figure, dpi: int = 110) -> bytes:
    """`figure` encoded as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()


def png_data_uri(png: bytes) -> str:
    """A data URI that embeds `png` in an <img> so the page needs no separate image files."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure_item(figure: Figure, title: str, caption: str) -> dict[str, str]:
    """What the templates' `figure` macro shows: a title, a caption and the figure inlined as PNG."""
    return {"title": title, "caption": caption, "uri": png_data_uri(figure_png(figure))}


@functools.cache
def _environment() -> Environment:
    # StrictUndefined: a misspelt variable fails the render instead of leaving a silent gap in the page.
    environment = Environment(
        loader=PackageLoader("skinpamper.reports", "templates"),
        autoescape=select_autoescape(("html",)),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals["version"] = __version__
    return environment


def render_template(name: str, **context: Any) -> str:
    """Render the packaged template `name` (in skinpamper/templates) with `context`."""
    return _environment().get_template(name).render(**context)


def write_files(out_dir: Path, files: Mapping[str, bytes]) -> None:
    """Write `files` (name -> content) into `out_dir` so that a failure leaves no half-written output.

    Everything is written first into a staging folder beside `out_dir`, where a full disk or a bad
    path fails with nothing published. A new `out_dir` is then renamed into place in one step; into an
    existing one (a run folder, or an earlier explore output) each file is renamed over its old
    version, so other files there are kept and no file is ever seen half-written.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        for name, content in files.items():
            (staging / name).write_bytes(content)
        if out_dir.exists():
            for name in files:
                (staging / name).replace(out_dir / name)
        else:
            staging.chmod(0o755)  # mkdtemp makes it private; the output is an ordinary folder
            staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
