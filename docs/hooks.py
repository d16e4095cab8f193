"""MkDocs hooks: the example figures in the site, Sphinx roles dropped, and modules still on other branches.

- The figures live in ``examples/figures/`` (the examples write them there);
  they are added to the site as ``figures/<name>.png``, so the pages and the
  README show the same files.
- The docstrings use Sphinx roles (``:func:`fit```); rendered as Markdown, a
  role's name would show before its code span, so it is dropped.
- ``PENDING`` modules are not on this branch yet; a reference page that
  names one says so instead of failing the build. Once the module exists,
  its page renders as every other.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "examples" / "figures"
PENDING = ("minigrad.paths", "minigrad.compile")
ROLE = re.compile(r":(?:func|class|mod|meth|data|attr|obj|exc):(?=<code>)")


def module_file(module: str) -> Path:
    """The source file of ``module`` in this checkout (where mkdocstrings reads it, not what Python imports)."""
    return ROOT / (module.replace(".", "/") + ".py")


def on_files(files: Files, config: Any) -> Files:
    """Add every PNG of examples/figures/ to the site as figures/<name>."""
    for png in sorted(FIGURES.glob("*.png")):
        files.append(File.generated(config, f"figures/{png.name}", abs_src_path=str(png)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Replace the reference block of a module that is not on this branch yet with a note saying so."""
    for module in PENDING:
        if f"::: {module}" in markdown and not module_file(module).exists():
            markdown = markdown.replace(
                f"::: {module}",
                f'!!! note "Not in this build"\n    `{module}` is not in this checkout yet; its reference appears '
                "here once the module is.",
            )
    return markdown


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    """Drop Sphinx role names (``:func:``) in front of code spans."""
    return ROLE.sub("", html)
