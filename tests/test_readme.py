"""The README stays a two-minute read that starts with the two set-up commands, and links only to pages
that exist; the reference material lives in docs/ (built with `mkdocs build --strict` by scripts/test)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_readme_is_at_most_10_kb() -> None:
    assert README.stat().st_size <= 10 * 1024


def test_the_two_setup_commands_come_first() -> None:
    text = README.read_text(encoding="utf-8")
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    commands = [line for line in first_block.splitlines() if line and not line.startswith("#")]
    assert commands == ["bash scripts/quickstart --data path/to/ham10000", "bash scripts/test"]
    assert text.index("```bash") < text.index("## Results")
    assert all((ROOT / "scripts" / name).is_file() for name in ("quickstart", "test"))


def test_readme_links_and_pictures_exist() -> None:
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#]+)[^)]*\)", text) + re.findall(r'<img src="([^"]+)"', text)
    local = [t for t in targets if not t.startswith("http")]
    assert local and not [t for t in local if not (ROOT / t).exists()]
