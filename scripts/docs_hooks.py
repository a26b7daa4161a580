"""MkDocs hooks: lists the code holds, put into the pages, and the command-line reference mended.

`<!-- evaluate-outputs -->` in a page becomes the list of the files `skinpamper evaluate` writes, from
`skinpamper.evaluation.outputs`, and `<!-- run-folder-files -->` the table of a run folder's files, from
`skinpamper.runfolder.files`, so that the pages cannot disagree with the code.

The command-line reference is rendered by mkdocs-click (docs/reference/cli.md). mkdocs-click 0.9
predates click 8.2's `UNSET` sentinel for options without a default, so its Default column read
"Sentinel.UNSET"; it also prints an unbounded number as "number (None and below)" and runs each
command's "Examples:" lines into one paragraph. Our help texts state the real defaults as
"[default: X]" (they come from the training config), so this hook, run on the rendered page, puts that
default in the column (a flag's is False, else "-"), drops the meaningless range, and shows the
examples as a code block.
"""

from __future__ import annotations

import re
from typing import Any

from skinpamper.evaluation.outputs import outputs_markdown
from skinpamper.runfolder.files import run_folder_table

ROW = re.compile(
    r"<tr>\s*<td>(?P<names>.*?)</td>\s*<td>(?P<kind>.*?)</td>\s*<td>(?P<text>.*?)</td>\s*"
    r"<td>(?P<default>.*?)</td>\s*</tr>",
    re.DOTALL,
)
STATED_DEFAULT = re.compile(r"\[default: ([^\]]+)\]")
UNSET = {"<code>Sentinel.UNSET</code>", "None"}
EXAMPLES = re.compile(r"<p>(Examples?:)\n(.*?)</p>", re.DOTALL)
GENERATED = {  # marker -> its Markdown
    "<!-- evaluate-outputs -->": outputs_markdown,
    "<!-- run-folder-files -->": run_folder_table,
}


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


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Put each generated list where its marker stands."""
    for marker, render in GENERATED.items():
        if marker in markdown:
            markdown = markdown.replace(marker, render())
    return markdown


def on_page_content(html: str, page: Any, **kwargs: Any) -> str:
    """Mend the CLI reference page; leave every other page as it is."""
    if page.file.src_uri != "reference/cli.md":
        return html
    return EXAMPLES.sub(_examples, ROW.sub(_row, html))
