"""Looking at the graph behind a tensor: Graphviz DOT source, or indented text.

``mg.draw_graph(loss)`` returns the recorded graph as DOT source: one box per
op (its name, output shape and dtype), one ellipse per leaf (its shape, and
its gradient's norm once a backward has filled ``.grad``), and an arrow from
every input to the op that used it. ``loss.graph()`` gives the same graph as
indented text, with no dependency. Both walk the graph with an explicit
stack, so a chain of any length can be shown.

A backward without ``retain_graph=True`` releases the graph (the nodes forget
their inputs, to free memory); drawing a tensor whose graph was released
raises an error that says so, instead of drawing a lone box.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from minigrad.engine import _RELEASED, Tensor
from minigrad.nn.module import Module

__all__ = ["draw_graph", "graph_text"]

Params = Module | Iterable[tuple[str, Tensor]] | Mapping[str, Tensor] | None

_INSTALL = "install Graphviz (apt install graphviz, brew install graphviz or conda install graphviz)"


def _param_names(params: Params, op: str) -> dict[int, str]:
    """Map id(parameter) to its dotted name, checking every (name, tensor) pair."""
    if params is None:
        return {}
    if isinstance(params, Module):
        pairs: Iterable[Any] = params.named_parameters()
    elif isinstance(params, Mapping):
        pairs = params.items()
    else:
        pairs = params
    names: dict[int, str] = {}
    for item in pairs:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
                and isinstance(item[1], Tensor)):
            raise TypeError(
                f"{op}: params must give (name, Tensor) pairs, such as model.named_parameters(), "
                f"got an item {item!r:.60}"
            )
        names[id(item[1])] = item[0]
    return names


def _check_kept(t: Tensor, op: str) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(t).__name__}")
    if t._ctx is _RELEASED:
        raise RuntimeError(
            f"{op}: the graph behind this tensor (shape {t.shape}) was released by backward(), "
            "so there is nothing left to draw; draw it before backward(), or call "
            "backward(retain_graph=True) to keep it"
        )


def _nodes(root: Tensor) -> tuple[list[Tensor], list[tuple[Tensor, Tensor]]]:
    """Every tensor in the graph behind ``root`` (the root first, each once) and the (input, op) edges.

    An op that uses a tensor twice (``x * x``) has two edges from it, one per
    argument.
    """
    order: list[Tensor] = []
    edges: list[tuple[Tensor, Tensor]] = []
    seen: set[int] = {id(root)}
    stack = [root]
    while stack:
        node = stack.pop()
        order.append(node)
        ctx = node._ctx
        if ctx is None:
            continue
        inputs = [a for a in ctx.inputs if isinstance(a, Tensor)]
        for a in inputs:
            edges.append((a, node))
        for a in reversed(inputs):  # so the first input is visited first
            if id(a) not in seen:
                seen.add(id(a))
                stack.append(a)
    return order, edges


def _gradient(t: Tensor) -> list[str]:
    """["grad norm ..."] (the L2 norm of ``t.grad``) once a backward has filled it, else []."""
    return [] if t.grad is None else [f"grad norm {float(np.linalg.norm(t.grad)):.4g}"]


def _describe(t: Tensor, names: dict[int, str]) -> tuple[str, str, list[str]]:
    """(kind, title, details) of one node: kind is "op", "released", "leaf" or "constant"."""
    shape = f"{t.shape} {t.dtype}"
    if t._ctx is _RELEASED:
        return "released", "released", [shape, "graph freed by backward()"]
    if t._ctx is not None:
        return "op", t._ctx.name, [shape] + _gradient(t)  # an intermediate has .grad after retain_grad()
    if t.requires_grad:
        return "leaf", names.get(id(t), "leaf"), [shape] + _gradient(t)
    value = [f"value {t.data.reshape(()).item():.4g}"] if t.size == 1 and t.dtype.kind == "f" else []
    return "constant", "constant", [shape] + value


_STYLE = {
    "op": 'shape=box, style="rounded,filled", fillcolor="#dbe8f7"',
    "released": 'shape=box, style="dashed"',
    "leaf": 'shape=ellipse, style=filled, fillcolor="#d9f0d3"',
    "constant": 'shape=ellipse, style=filled, fillcolor="#eeeeee", fontcolor="#555555"',
}


def _escape(text: str) -> str:
    """Text as it may stand inside a double-quoted DOT string."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def draw_graph(t: Tensor, path: str | Path | None = None, params: Params = None) -> str:
    """Return the graph behind ``t`` as Graphviz DOT source; with ``path``, also write or render it.

    Ops are boxes (name, output shape, dtype). Leaves that require grad are
    green ellipses, with their gradient's norm after a backward, named by
    ``params`` (a Module, ``model.named_parameters()`` or a dict of name to
    tensor; "leaf" otherwise). Tensors that need no gradient (the input batch,
    constants) are grey. Every input of an op gets an arrow to it. A path ending in
    ``.dot`` gets the source; ``.svg`` or ``.png`` is rendered by Graphviz's
    ``dot`` program, or, when it is not installed, the source is written to
    the ``.dot`` file beside it and one line says how to install Graphviz.
    """
    _check_kept(t, "draw_graph")
    names = _param_names(params, "draw_graph")
    order, edges = _nodes(t)
    ids = {id(node): f"n{i}" for i, node in enumerate(order)}
    lines = ["digraph minigrad {", "  rankdir=BT;", '  node [fontname="Helvetica", fontsize=11];']
    for node in order:
        kind, title, details = _describe(node, names)
        label = "\\n".join(_escape(line) for line in [title] + details)
        lines.append(f'  {ids[id(node)]} [label="{label}", {_STYLE[kind]}];')
    for a, b in edges:
        lines.append(f"  {ids[id(a)]} -> {ids[id(b)]};")
    lines.append("}")
    source = "\n".join(lines) + "\n"
    if path is not None:
        _write(source, Path(path))
    return source


def _write(source: str, path: Path) -> None:
    """Write DOT source to a .dot file, or render it to .svg/.png with Graphviz."""
    suffix = path.suffix.lower()
    if suffix == ".dot":
        path.write_text(source)
        return
    if suffix not in (".svg", ".png"):
        raise ValueError(f"draw_graph: path must end in .dot, .svg or .png, got {str(path)!r}")
    dot = shutil.which("dot")
    if dot is None:
        dot_path = path.with_suffix(".dot")
        dot_path.write_text(source)
        print(
            f"draw_graph: Graphviz's dot program was not found, so the graph was written to {dot_path}; "
            f"{_INSTALL}, then run: dot -T{suffix[1:]} {dot_path} -o {path}"
        )
        return
    done = subprocess.run([dot, f"-T{suffix[1:]}", "-o", str(path)], input=source.encode(), capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"draw_graph: dot failed to render {path}: {done.stderr.decode().strip()}")


def graph_text(t: Tensor, params: Params = None) -> str:
    """The graph behind ``t`` as indented text: one line per op or leaf, inputs indented under their op.

    Each tensor gets a number ``[k]`` the first time it appears; a tensor
    used again (by the same or another op) is shown as ``[k] ...`` without
    repeating what lies below it.
    """
    _check_kept(t, "graph")
    names = _param_names(params, "graph")
    numbers: dict[int, int] = {}
    lines: list[str] = []
    stack: list[tuple[Tensor, int]] = [(t, 0)]
    while stack:
        node, depth = stack.pop()
        indent = "  " * depth
        if id(node) in numbers:
            lines.append(f"{indent}[{numbers[id(node)]}] {_describe(node, names)[1]} (shown above)")
            continue
        numbers[id(node)] = len(numbers)
        kind, title, details = _describe(node, names)
        lines.append(f"{indent}[{numbers[id(node)]}] {title}: " + ", ".join(details))
        if node._ctx is not None:
            inputs = [a for a in node._ctx.inputs if isinstance(a, Tensor)]
            stack.extend((a, depth + 1) for a in reversed(inputs))
    return "\n".join(lines)
