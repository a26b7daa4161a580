"""Tables as Markdown, for summary files a reader pastes into a README and for the model card."""

from __future__ import annotations

from skinpamper.data.summary import Table


def markdown_table(table: Table, note: bool = True) -> str:
    """`table` as a Markdown table (numbers right-aligned), its note after it."""
    lines = [
        "| " + " | ".join(table.columns) + " |",
        "|" + "|".join(":--" if a == "l" else "--:" for a in table.align) + "|",
        *("| " + " | ".join(row) + " |" for row in table.rows),
    ]
    return "\n".join(lines) + (f"\n\n{table.note}\n" if note and table.note else "\n")
