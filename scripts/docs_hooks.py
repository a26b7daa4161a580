"""MkDocs hooks: generated content, and mends for the command-line reference (docs/reference/cli.md).

docs/training.md lists a run folder's files from the code that writes them: the marker
RUN_FOLDER_MARKER is replaced with the table of `skinpamper.runfolder.files.RUN_FOLDER_FILES`.

mkdocs-click 0.9 predates click 8.2's `UNSET` sentinel for options without a default, so its Default
column read "Sentinel.UNSET"; it also prints an unbounded number as "number (None and below)" and
runs each command's "Examples:" lines into one paragraph. Our help texts state the real defaults as
"[default: X]" (they come from the training config), so this hook, run on the rendered page, puts that
default in the column (a flag's is False, else "-"), drops the meaningless range, and shows the
examples as a code block.
"""

from __future__ import annotations

import re
from typing import Any

ROW = re.compile(
    r"<tr>\s*<td>(?P<names>.*?)</td>\s*<td>(?P<kind>.*?)</td>\s*<td>(?P<text>.*?)</td>\s*"
    r"<td>(?P<default>.*?)</td>\s*</tr>",
    re.DOTALL,
)
STATED_DEFAULT = re.compile(r"\[default: ([^\]]+)\]")
UNSET = {"<code>Sentinel.UNSET</code>", "None"}
EXAMPLES = re.compile(r"<p>(Examples?:)\n(.*?)</p>", re.DOTALL)
RUN_FOLDER_MARKER = "<!-- run-folder-files -->"


def _row(match: re.Match) -> str:
    kind = match["kind"].replace(" (<code>None</code> and below)", "")
    default = match["default"]
    if default in UNSET:
        stated = STATED_DEFAULT.search(match["text"])
        default = (
            f"<code>{stated[1]}</code>" if stated else "<code>False</code>" if kind == "boolean" else "-"
        )
    cells = (match["names"], kind, match["text"], default)
    return "<tr>\n" + "".join(f"<td>{cell}</td>\n" for cell in cells) + "</tr>"


def _examples(match: re.Match) -> str:
    lines = "\n".join(line.strip() for line in match[2].splitlines() if line.strip())
    return f"<p>{match[1]}</p>\n<pre><code>{lines}\n</code></pre>"


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Put the generated table of a run folder's files where docs/training.md marks it."""
    if RUN_FOLDER_MARKER not in markdown:
        return markdown
    from skinpamper.runfolder.files import run_folder_table

    return markdown.replace(RUN_FOLDER_MARKER, run_folder_table())


def on_page_content(html: str, page: Any, **kwargs: Any) -> str:
    """Mend the CLI reference page; leave every other page as it is."""
    if page.file.src_uri != "reference/cli.md":
        return html
    return EXAMPLES.sub(_examples, ROW.sub(_row, html))
