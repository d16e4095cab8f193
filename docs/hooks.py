"""MkDocs hooks: the example figures in the site, and Sphinx roles dropped.

- The figures live in ``examples/figures/`` (the examples write them there);
  they are added to the site as ``figures/<name>.png``, so the pages and the
  README show the same files. The pages link them as
  ``../examples/figures/<name>.png``, which is where they are in the
  repository (so a page read on GitHub shows them too); in the site that
  link becomes ``figures/<name>.png``.
- The docstrings use Sphinx roles (``:func:`fit```); rendered as Markdown, a
  role's name would show before its code span, so it is dropped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "examples" / "figures"
FIGURE_LINK = re.compile(r"\]\(\.\./examples/figures/([^)\s]+\.png)\)")
ROLE = re.compile(r":(?:func|class|mod|meth|data|attr|obj|exc):(?=<code>)")


def on_files(files: Files, config: Any) -> Files:
    """Add every PNG of examples/figures/ to the site as figures/<name>."""
    for png in sorted(FIGURES.glob("*.png")):
        files.append(File.generated(config, f"figures/{png.name}", abs_src_path=str(png)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Point the pages' links to ``../examples/figures/<name>.png`` at the site's copy, ``figures/<name>.png``."""
    return FIGURE_LINK.sub(r"](figures/\1)", markdown)


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    """Drop Sphinx role names (``:func:``) in front of code spans."""
    return ROLE.sub("", html)
