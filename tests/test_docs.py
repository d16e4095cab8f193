"""The docs run: every ```python block of README.md and docs/**/*.md, with its printed values checked.

The convention (docs/contributing.md):

- The ```python blocks of one file run in order, in one namespace, in a
  temporary working directory, with MPLBACKEND=Agg. Other blocks (``sh``,
  ``text``) are not run.
- Each top-level statement runs on its own. ``# -> text`` at the end of its
  last line (``# a remark -> text`` too: what follows the arrow counts), or
  on comment lines right after it (one ``# -> `` line per
  printed line), is what the statement must print; the comparison
  normalises whitespace (runs of blanks become one; numpy's padding inside
  brackets is ignored; blank lines do not count). A statement without
  ``# ->`` may print anything.

Also: every module a reference page names (``::: module``) has a docstring on
every public name, and every module of the package has a reference page.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import inspect
import io
import pkgutil
import re
from pathlib import Path

import pytest

import minigrad as mg
from minigrad import engine

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.S | re.M)
EXPECT = re.compile(r"#\s*->\s?(.*)$")
TRAILING_EXPECT = re.compile(r"^#.*?->\s?(.*)$")  # on a line of code: the first arrow, a remark before it or not

# Modules with no reference page, and why.
NOT_IN_REFERENCE = {
    "minigrad.__main__": "it only runs minigrad.cli",
    "minigrad.cli": "the command line: its --help and the lab page document it",
}


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """(line number of the block's first code line, code) for every ```python block of ``path``."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for m in FENCE.finditer(text):
        if m["lang"].strip().split(" ")[0] in ("python", "py"):
            indent = len(m["indent"])
            code = "\n".join(line[indent:] for line in m["body"].splitlines())
            blocks.append((text.count("\n", 0, m.start("body")) + 1, code))
    return blocks


def normalise(text: str) -> str:
    """``text`` with runs of whitespace as one blank, no blank inside brackets, blank lines dropped."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    joined = "\n".join(line for line in lines if line)
    return re.sub(r"\s+\]", "]", re.sub(r"\[\s+", "[", joined))


def expected_output(lines: list[str], stmt: ast.stmt, next_start: int) -> str | None:
    """The output a statement declares with ``# ->`` (on its last line, or comment lines after it), or None."""
    found = []
    last = lines[stmt.end_lineno - 1]  # type: ignore[operator]
    comment = _trailing_comment(last)
    if comment is not None and (m := TRAILING_EXPECT.search(comment)):  # "# why -> value" too
        found.append(m[1])
    for line in lines[stmt.end_lineno : next_start - 1]:  # the lines between this statement and the next
        m = EXPECT.match(line.strip())
        if m:
            found.append(m[1])
        elif line.strip() and not line.strip().startswith("#"):
            break
    return "\n".join(found) if found else None


def _trailing_comment(line: str) -> str | None:
    """The comment at the end of a line of code, found with the tokenizer's rules (not inside a string)."""
    import tokenize

    try:
        for tok in tokenize.generate_tokens(io.StringIO(line).readline):
            if tok.type == tokenize.COMMENT:
                return tok.string
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None  # a continuation line of a larger statement: no trailing comment to read here
    return None


def run_block(code: str, namespace: dict, where: str) -> None:
    """Run ``code`` statement by statement in ``namespace``, checking each declared output."""
    tree = ast.parse(code, filename=where)
    lines = code.splitlines()
    starts = [s.lineno for s in tree.body] + [len(lines) + 1]
    for stmt, next_start in zip(tree.body, starts[1:]):
        expected = expected_output(lines, stmt, next_start)
        source = ast.Module(body=[stmt], type_ignores=[])
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(source, where, "exec"), namespace)  # noqa: S102
        if expected is not None:
            got = normalise(out.getvalue())
            assert got == normalise(expected), (
                f"{where}:{stmt.lineno}: `{lines[stmt.lineno - 1].strip()}` printed\n{out.getvalue()}"
                f"but the docs say\n{expected}"
            )


@pytest.fixture
def keep_generator():
    """Put minigrad's generator back after the test, so a doc's manual_seed does not leak into other tests."""
    saved = engine._generator
    yield
    engine._generator = saved


def test_the_pages_that_teach_have_code_that_runs() -> None:
    """The README and every page outside the API reference hold python blocks (so the test below sees them)."""
    pages = [p for p in DOCS if "reference" not in p.relative_to(ROOT).parts]
    assert [p.name for p in pages if not python_blocks(p)] == ["lab.md"]  # the lab page shows commands only


@pytest.mark.parametrize("path", [p for p in DOCS if python_blocks(p)], ids=lambda p: str(p.relative_to(ROOT)))
# The README's detect_anomaly example takes the log of a negative number on purpose; numpy warns as it does so.
@pytest.mark.filterwarnings("ignore:invalid value encountered in log:RuntimeWarning")
def test_python_blocks_run_and_print_what_they_say(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep_generator: None
) -> None:
    blocks = python_blocks(path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__docs__"}
    for first_line, code in blocks:
        where = str(path.relative_to(ROOT))
        # Line numbers in errors point into the file: pad the block with the lines before it.
        run_block("\n" * (first_line - 1) + code, namespace, where)
        assert mg.is_grad_enabled(), f"{where}:{first_line}: the block left grad mode off"


def test_the_collector_reads_expectations_and_fences() -> None:
    """The convention itself, on a small document: a checked print, a multi-line one, an unchecked one."""
    code = "x = 2\nprint(x + 1)  # -> 3\nprint('a')\nprint('b\\n c')\n# -> b\n# ->   c\nprint('[ 1  2]')  # -> [1 2]\n"
    run_block(code, {}, "example")
    with pytest.raises(AssertionError, match="printed"):
        run_block("print(4)  # -> 5\n", {}, "example")
    run_block("print(4)  # a remark first -> 4\n", {}, "example")
    with pytest.raises(AssertionError, match="printed"):  # (a remark before the arrow once hid the check)
        run_block("print(4)  # a remark first -> 5\n", {}, "example")
    doc = "text\n```python\nprint(1)\n```\n```sh\nls\n```\n  ```python\n  y = 1\n  ```\n"
    assert python_blocks(Path(_write(doc))) == [(3, "print(1)"), (9, "y = 1")]


def _write(text: str) -> str:
    import tempfile

    f = tempfile.NamedTemporaryFile("w", suffix=".md", delete=False, encoding="utf-8")
    f.write(text)
    f.close()
    return f.name


def referenced_modules() -> list[str]:
    """Every module named by a ``::: module`` block of the reference pages."""
    found = []
    for page in sorted((ROOT / "docs" / "reference").rglob("*.md")):
        found += re.findall(r"^::: ([\w.]+)\s*$", page.read_text(encoding="utf-8"), re.M)
    return found


def public_names(module) -> list[str]:
    """``__all__``, or the names a module defines that do not start with an underscore."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [
        n for n, v in vars(module).items()
        if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__
        and (inspect.isclass(v) or inspect.isfunction(v))
    ]


@pytest.mark.parametrize("name", referenced_modules())
def test_every_public_name_of_a_referenced_module_has_a_docstring(name: str) -> None:
    module = importlib.import_module(name)
    assert inspect.getdoc(module), f"{name} has no module docstring"
    missing = []
    for attr in public_names(module):
        value = getattr(module, attr)
        if inspect.isclass(value) or inspect.isfunction(value):
            if not inspect.getdoc(value):
                missing.append(attr)
            if inspect.isclass(value):
                missing += [
                    f"{attr}.{m}" for m, f in vars(value).items()
                    if not m.startswith("_") and inspect.isfunction(f) and not inspect.getdoc(f)
                ]
    assert not missing, f"{name}: public names without a docstring: {missing}"


def test_every_module_of_the_package_has_a_reference_page() -> None:
    referenced = set(referenced_modules())
    modules = [m.name for m in pkgutil.walk_packages(mg.__path__, "minigrad.")]
    absent = [
        m for m in modules
        if m not in referenced and m not in NOT_IN_REFERENCE and not m.rsplit(".", 1)[-1].startswith("_")
    ]
    assert not absent, f"modules without a reference page (add docs/reference/<name>.md with `::: module`): {absent}"


def test_every_picture_a_page_shows_is_where_its_link_points() -> None:
    """The pages linked figures/<name>.png, which exists only in the built site: on GitHub they showed nothing."""
    links = [(page, link) for page in DOCS for link in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", page.read_text())]
    assert len(links) >= 10
    missing = [f"{page.relative_to(ROOT)}: {link}" for page, link in links if not (page.parent / link).is_file()]
    assert not missing


def test_the_reference_of_the_top_level_lists_every_name_of_mg() -> None:
    """docs/reference/minigrad.md's table is written by hand: a name added to mg.__all__ must get its row."""
    table = (ROOT / "docs" / "reference" / "minigrad.md").read_text()
    listed = set(re.findall(r"^\| \[?`mg\.(\w+)`", table, re.M))
    public = {n for n in mg.__all__ if not n.startswith("_")}
    assert public - listed == set() and listed - public == set()
