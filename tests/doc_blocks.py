"""The code blocks of a doc page, with the file each one is and the output it shows.

A python block is introduced by a paragraph naming its file in backticks
("`weather/tasks.py`:", "`chain.py` starts ..."). A script's expected output is a
`text` block introduced by "prints:" before the next python block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
_FILE = re.compile(r"`([\w/]+\.py)`")


@dataclass
class Block:
    lang: str
    code: str
    lead: str          # the prose between the previous block and this one
    file: str | None   # the file a python block is, named in the last paragraph of its lead
    prints: str | None = None


def blocks(doc: Path) -> list[Block]:
    text = doc.read_text()
    found: list[Block] = []
    end = 0
    for match in _BLOCK.finditer(text):
        lead = text[end:match.start()]
        end = match.end()
        paragraphs = [p for p in re.split(r"\n\s*\n", lead.strip()) if p.strip()]
        named = _FILE.findall(paragraphs[-1]) if paragraphs else []
        block = Block(match.group(1), match.group(2), lead,
                      named[-1] if match.group(1) == "python" and named else None)
        if (block.lang == "text" and found and found[-1].lang == "python"
                and lead.strip().endswith("prints:")):
            found[-1].prints = block.code
        found.append(block)
    return found


def python_blocks(doc: Path) -> list[Block]:
    return [b for b in blocks(doc) if b.lang == "python"]


def write_files(doc: Path, root: Path) -> list[Block]:
    """Write every named python block under `root`; return the scripts (top-level
    files), in order of the page."""
    scripts = []
    for block in python_blocks(doc):
        assert block.file, f"a python block names no file: {block.code[:80]!r}"
        path = root / block.file
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent != root and not (path.parent / "__init__.py").exists():
            (path.parent / "__init__.py").write_text("")
        path.write_text(block.code)
        if "/" not in block.file:
            scripts.append(block)
    return scripts
