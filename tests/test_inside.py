"""Tests of looking inside backprop (issue 14).

The graph drawing is checked by parsing its DOT source (a small regex parser:
node and edge statements only) and counting nodes and edges of expressions
whose graphs are known by hand: a diamond, a reused node, an MLP. Hooks,
retained gradients and retained graphs are checked against gradients worked
out by hand; anomaly mode, custom ops, the version counter and gradcheck by
the errors they must raise and what those errors must name.
"""

from __future__ import annotations

import math
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
import minigrad.graph
from minigrad import engine

# ---------------------------------------------------------------------------
# A tiny DOT parser: the statements draw_graph writes, nothing else
# ---------------------------------------------------------------------------

_NODE = re.compile(r'^\s*(n\d+) \[label="((?:[^"\\]|\\.)*)"(?:, [^\]]*)?\];$')
_EDGE = re.compile(r"^\s*(n\d+) -> (n\d+);$")
_ATTR = re.compile(r"^\s*(rankdir=\w+|node \[[^\]]*\]);$")


def parse_dot(source: str) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """Nodes (id -> label lines) and edges (from, to) of a digraph; any other statement fails the test."""
    lines = source.strip().splitlines()
    assert re.fullmatch(r"digraph \w+ \{", lines[0]), lines[0]
    assert lines[-1] == "}"
    nodes: dict[str, list[str]] = {}
    edges: list[tuple[str, str]] = []
    for line in lines[1:-1]:
        if m := _NODE.match(line):
            assert m.group(1) not in nodes, f"node {m.group(1)} declared twice"
            nodes[m.group(1)] = m.group(2).split("\\n")
        elif m := _EDGE.match(line):
            edges.append((m.group(1), m.group(2)))
        else:
            assert _ATTR.match(line), f"not a DOT statement draw_graph should write: {line!r}"
    for a, b in edges:
        assert a in nodes and b in nodes, f"edge {a} -> {b} to an undeclared node"
    return nodes, edges


def titles(nodes: dict[str, list[str]]) -> list[str]:
    """The first label line (op name or leaf name) of every node."""
    return sorted(label[0] for label in nodes.values())


def node_titled(nodes: dict[str, list[str]], title: str) -> str:
    (found,) = [k for k, label in nodes.items() if label[0] == title]
    return found


# ---------------------------------------------------------------------------
# draw_graph
# ---------------------------------------------------------------------------


def test_diamond_has_one_node_per_op_and_an_edge_per_input() -> None:
    x = mg.Tensor([0.5, 1.0], requires_grad=True)
    a = x.exp()
    d = a.sin() + a.cos()  # a feeds two ops that meet again: a diamond
    nodes, edges = parse_dot(mg.draw_graph(d))
    assert titles(nodes) == ["add", "cos", "exp", "leaf", "sin"]
    assert len(edges) == 5  # x->exp, exp->sin, exp->cos, sin->add, cos->add
    exp, sin, cos = (node_titled(nodes, t) for t in ("exp", "sin", "cos"))
    assert sorted(edges) == sorted(
        [(node_titled(nodes, "leaf"), exp), (exp, sin), (exp, cos), (sin, node_titled(nodes, "add")),
         (cos, node_titled(nodes, "add"))]
    )
    assert nodes[exp][1] == "(2,) float32"


def test_a_reused_node_is_drawn_once_with_an_edge_per_use() -> None:
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    nodes, edges = parse_dot(mg.draw_graph(x * x))
    assert titles(nodes) == ["leaf", "mul"]
    assert edges == [(node_titled(nodes, "leaf"), node_titled(nodes, "mul"))] * 2

    h = x.exp()
    z = (h * h + h).sum()
    nodes, edges = parse_dot(mg.draw_graph(z))
    assert titles(nodes) == ["add", "exp", "leaf", "mul", "sum"]
    exp, mul = node_titled(nodes, "exp"), node_titled(nodes, "mul")
    assert len(edges) == 6  # sum<-add, add<-mul, add<-exp, mul<-exp twice, exp<-x
    assert edges.count((exp, mul)) == 2


def _mlp_loss() -> tuple[mg.nn.MLP, mg.Tensor]:
    mg.manual_seed(0)
    model = mg.nn.MLP([2, 4, 3])
    x = np.array([[0.5, -1.0], [1.5, 2.0], [0.0, 1.0], [-2.0, 0.5], [1.0, 1.0]])
    loss = mg.nn.cross_entropy(model(x), np.array([0, 1, 2, 0, 1]))
    return model, loss


def test_mlp_graph_names_its_parameters_and_shows_gradient_norms_after_backward() -> None:
    model, loss = _mlp_loss()
    params = dict(model.named_parameters())
    nodes, edges = parse_dot(mg.draw_graph(loss, params=model.named_parameters()))
    # linear, relu, linear, cross_entropy; the input batch; W and b of both layers
    assert titles(nodes) == sorted(
        ["cross_entropy", "linear", "relu", "linear", "constant"] + list(params)
    )
    assert len(edges) == 8  # 3 into each linear, 1 into relu, 1 into cross_entropy
    assert nodes[node_titled(nodes, "layers.0.W")] == ["layers.0.W", "(2, 4) float32"]
    assert nodes[node_titled(nodes, "constant")] == ["constant", "(5, 2) float32"]
    assert nodes[node_titled(nodes, "cross_entropy")] == ["cross_entropy", "() float32"]

    loss.backward(retain_graph=True)
    nodes, edges = parse_dot(mg.draw_graph(loss, params=params))  # a dict of name to tensor
    assert len(nodes) == 9 and len(edges) == 8
    assert parse_dot(mg.draw_graph(loss, params=model)) == (nodes, edges)  # the Module itself
    for name, p in params.items():
        assert nodes[node_titled(nodes, name)][-1] == f"grad norm {np.linalg.norm(p.grad):.4g}"


def test_gradient_norm_in_the_label_is_the_l2_norm() -> None:
    x = mg.Tensor([3.0, 4.0], requires_grad=True)
    loss = (x * x).sum() * 0.5  # dloss/dx = x, whose norm is 5
    loss.backward(retain_graph=True)
    nodes, _ = parse_dot(mg.draw_graph(loss, params=[("x", x)]))
    assert nodes[node_titled(nodes, "x")] == ["x", "(2,) float32", "grad norm 5"]
    assert nodes[node_titled(nodes, "constant")] == ["constant", "() float32", "value 0.5"]


_LINE = re.compile(r'^\s*(n\d+) \[label="((?:[^"\\]|\\.)*)", (.*)\];$')


def styled(source):
    """title -> (label lines, attributes) of every node statement of a DOT source."""
    found = {}
    for line in source.splitlines():
        if m := _LINE.match(line):
            label = m.group(2).split("\\n")
            found[label[0]] = (label, m.group(3))
    return found


def test_dot_styles_layout_and_constant_values():
    """Leaves drawn grey like constants, rankdir=TB (the loss at the bottom, arrows pointing down), and a
    constant's value shown to 2 digits instead of 4."""
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    source = mg.draw_graph((x.exp() * 0.123456).sum(), params={"x": x})
    assert source.splitlines()[:2] == ["digraph minigrad {", "  rankdir=BT;"]
    nodes = styled(source)
    assert nodes["x"][1] == 'shape=ellipse, style=filled, fillcolor="#d9f0d3"'
    assert nodes["constant"] == (["constant", "() float32", "value 0.1235"],
                                 'shape=ellipse, style=filled, fillcolor="#eeeeee", fontcolor="#555555"')
    for op in ("exp", "mul", "sum"):
        assert nodes[op][1] == 'shape=box, style="rounded,filled", fillcolor="#dbe8f7"'


def test_an_intermediate_with_retain_grad_shows_its_gradient_norm():
    """An op node whose .grad was kept by retain_grad() lost its "grad norm" line: y = sum(a·b), dy/dh = (1, 1),
    of norm √2; dy/da = b = (3, 4), of norm 5."""
    a = mg.Tensor([1.0, 2.0], requires_grad=True)
    b = mg.Tensor([3.0, 4.0], requires_grad=True)
    h = a * b
    h.retain_grad()
    y = h.sum()
    y.backward(retain_graph=True)
    names = {"a": a, "b": b}
    assert y.graph(params=names).splitlines()[1:3] == ["  [1] mul: (2,) float32, grad norm 1.414",
                                                       "    [2] a: (2,) float32, grad norm 5"]
    assert styled(mg.draw_graph(y, params=names))["mul"][0] == ["mul", "(2,) float32", "grad norm 1.414"]


def test_names_with_quotes_and_backslashes_are_escaped() -> None:
    x = mg.Tensor([1.0], requires_grad=True)
    nodes, _ = parse_dot(mg.draw_graph(x.exp(), params={'my "w" \\ 1': x}))
    assert sorted(label[0] for label in nodes.values()) == ["exp", 'my \\"w\\" \\\\ 1']


def test_edges_go_from_input_to_op() -> None:
    x = mg.Tensor([1.0], requires_grad=True)
    nodes, edges = parse_dot(mg.draw_graph(x.tanh()))
    assert edges == [(node_titled(nodes, "leaf"), node_titled(nodes, "tanh"))]


def test_a_released_graph_is_reported_not_drawn_empty() -> None:
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match=r"draw_graph: .*released by backward\(\).*retain_graph=True"):
        mg.draw_graph(loss)
    with pytest.raises(RuntimeError, match=r"graph: .*released by backward\(\)"):
        loss.graph()


def test_a_node_released_by_another_backward_is_marked() -> None:
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    h = x.exp()
    h.sum().backward()  # releases h's graph, which y also uses
    y = h.sin()
    nodes, edges = parse_dot(mg.draw_graph(y))
    assert titles(nodes) == ["released", "sin"]
    assert nodes[node_titled(nodes, "released")] == ["released", "(2,) float32", "graph freed by backward()"]
    assert "released: (2,) float32, graph freed by backward()" in y.graph()


def test_long_chains_are_drawn_without_recursion() -> None:
    x = mg.Tensor([0.1], requires_grad=True)
    y = x
    for _ in range(3 * sys.getrecursionlimit()):
        y = y * 1.0
    n = 3 * sys.getrecursionlimit()
    nodes, edges = parse_dot(mg.draw_graph(y))
    assert len(nodes) == 1 + 2 * n  # the leaf, and per op the mul and its constant
    assert len(edges) == 2 * n
    assert len(y.graph().splitlines()) == 1 + 2 * n


def test_dot_path_writes_the_source(tmp_path: Path) -> None:
    x = mg.Tensor([1.0], requires_grad=True)
    source = mg.draw_graph(x.exp(), tmp_path / "g.dot")
    assert (tmp_path / "g.dot").read_text() == source


def _fake_dot(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "dot"
    script.write_text(f"#!{sys.executable}\nimport sys\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_svg_and_png_are_rendered_by_the_dot_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in for Graphviz's dot that records its format flag and the source it was given.
    fake = _fake_dot(
        tmp_path,
        'out = sys.argv[sys.argv.index("-o") + 1]\nopen(out, "w").write(sys.argv[1] + "\\n" + sys.stdin.read())',
    )
    monkeypatch.setattr(minigrad.graph.shutil, "which", lambda name: str(fake) if name == "dot" else None)
    x = mg.Tensor([1.0], requires_grad=True)
    for suffix in ("svg", "png"):
        source = mg.draw_graph(x.exp(), tmp_path / f"g.{suffix}")
        assert (tmp_path / f"g.{suffix}").read_text() == f"-T{suffix}\n" + source
    assert not (tmp_path / "g.dot").exists()


def test_a_failing_dot_program_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_dot(tmp_path, 'sys.stderr.write("syntax error in line 1")\nsys.exit(1)')
    monkeypatch.setattr(minigrad.graph.shutil, "which", lambda name: str(fake))
    x = mg.Tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="draw_graph: dot failed to render .*syntax error in line 1"):
        mg.draw_graph(x.exp(), tmp_path / "g.svg")


def test_without_graphviz_the_dot_file_is_written_and_one_line_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(minigrad.graph.shutil, "which", lambda name: None)
    x = mg.Tensor([1.0], requires_grad=True)
    source = mg.draw_graph(x.exp(), tmp_path / "g.png")
    assert not (tmp_path / "g.png").exists()
    assert (tmp_path / "g.dot").read_text() == source
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert "install Graphviz" in out and str(tmp_path / "g.dot") in out


def test_bad_paths_and_params_are_refused(tmp_path: Path) -> None:
    x = mg.Tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"draw_graph: path must end in \.dot, \.svg or \.png"):
        mg.draw_graph(x.exp(), tmp_path / "g.pdf")
    with pytest.raises(TypeError, match=r"draw_graph: params must give \(name, Tensor\) pairs"):
        mg.draw_graph(x.exp(), params=[x])
    with pytest.raises(TypeError, match="draw_graph: expected a Tensor, got ndarray"):
        mg.draw_graph(np.ones(2))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# The text view
# ---------------------------------------------------------------------------


def test_text_view_of_a_small_graph() -> None:
    x = mg.Tensor([3.0, 4.0], requires_grad=True)
    y = (x * x).sum()
    assert y.graph() == "\n".join(
        ["[0] sum: () float32", "  [1] mul: (2,) float32", "    [2] leaf: (2,) float32", "    [2] leaf (shown above)"]
    )
    y.backward(retain_graph=True)  # dy/dx = 2x = (6, 8), of norm 10
    assert y.graph(params={"x": x}).splitlines()[2] == "    [2] x: (2,) float32, grad norm 10"


def test_text_view_names_every_op() -> None:
    a = mg.Tensor(np.linspace(0.5, 2.0, 6).reshape(2, 3), requires_grad=True)
    b = mg.Tensor(np.linspace(-1.0, 1.0, 3), requires_grad=True)
    h = ((a + b) * 2 - b / 3).exp().log().tanh()
    z = (h @ h.T).relu().sigmoid().reshape(4).mean()
    ops = ["add", "mul", "sub", "div", "exp", "log", "tanh", "transpose", "matmul", "relu", "sigmoid", "reshape",
           "mean"]
    text = z.graph()
    named = [line.split("] ")[1].split(":")[0] for line in text.splitlines() if "(shown above)" not in line]
    assert sorted(n for n in named if n not in ("leaf", "constant")) == sorted(ops)
    nodes, _ = parse_dot(mg.draw_graph(z))
    assert titles(nodes) == sorted(named)  # the same nodes as the DOT drawing


def test_the_text_view_lists_an_ops_inputs_in_order():
    """The text view listed a - b as b, then a: the second input first."""
    a = mg.Tensor([1.0, 2.0], requires_grad=True)
    b = mg.Tensor([3.0, 4.0], requires_grad=True)
    assert (a - b).graph(params={"a": a, "b": b}).splitlines() == [
        "[0] sub: (2,) float32", "  [1] a: (2,) float32", "  [2] b: (2,) float32"]
    assert math.isclose(float((a - b).data.sum()), -4.0)


# ---------------------------------------------------------------------------
# Hooks and retained gradients
# ---------------------------------------------------------------------------


def test_hooks_fire_once_per_backward_from_the_loss_back() -> None:
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    a = x * 3
    b = a.sin() + a.cos()  # a is used twice: its hook sees the summed gradient, once
    c = b.sum()
    seen: list[tuple[str, np.ndarray]] = []
    for name, t in (("x", x), ("a", a), ("b", b), ("c", c)):
        t.register_hook(lambda g, name=name: seen.append((name, np.array(g))))
    c.backward(retain_graph=True)
    assert [n for n, _ in seen] == ["c", "b", "a", "x"]
    xs = np.array([1.0, 2.0])
    da = np.cos(3 * xs) - np.sin(3 * xs)  # d(sin a + cos a)/da
    np.testing.assert_allclose(seen[2][1], da, rtol=1e-6)
    np.testing.assert_allclose(seen[3][1], 3 * da, rtol=1e-5)
    c.backward()
    assert [n for n, _ in seen] == ["c", "b", "a", "x"] * 2

    y = mg.Tensor([1.0, 2.0], requires_grad=True)
    leaf_calls: list[np.ndarray] = []
    y.register_hook(lambda g: leaf_calls.append(np.array(g)))
    (y * y + y).sum().backward()  # a leaf used three times: one call, with the whole gradient 2y + 1
    assert len(leaf_calls) == 1
    np.testing.assert_array_equal(leaf_calls[0], [3.0, 5.0])


def test_a_hook_can_replace_the_gradient() -> None:
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    a = x * 3
    a.register_hook(lambda g: np.full(g.shape, 10.0))  # dL/da replaced by 10
    (a * a).sum().backward()
    np.testing.assert_array_equal(x.grad, [30.0, 30.0])  # 10 * da/dx

    y = mg.Tensor([1.0, 2.0], requires_grad=True)
    y.register_hook(lambda g: 2 * g)  # a leaf's hook changes what lands in .grad
    (y * y).sum().backward()
    np.testing.assert_array_equal(y.grad, [4.0, 8.0])  # 2 * 2y


def test_a_hook_that_changes_the_shape_is_refused() -> None:
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    a = x * 3
    a.register_hook(lambda g: g.sum())
    with pytest.raises(ValueError, match=r"register_hook: a hook returned shape \(\) for a gradient of shape \(2,\)"):
        a.sum().backward()


def test_handle_remove_stops_the_hook() -> None:
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    a = x * 3
    calls: list[int] = []
    handle = a.register_hook(lambda g: calls.append(1))
    doubling = a.register_hook(lambda g: 2 * g)
    a.sum().backward(retain_graph=True)
    assert calls == [1]
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])
    handle.remove()
    doubling.remove()
    handle.remove()  # twice is harmless
    x.grad = None
    a.sum().backward()
    assert calls == [1]
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_register_hook_needs_a_tensor_that_requires_grad_and_a_callable() -> None:
    with pytest.raises(RuntimeError, match="register_hook: this tensor does not require grad"):
        mg.Tensor([1.0]).register_hook(print)
    with pytest.raises(TypeError, match="register_hook: hook must be callable, got int"):
        mg.Tensor([1.0], requires_grad=True).register_hook(3)  # type: ignore[arg-type]


def _leaf_hooked_from_an_inner_hook(w_first: bool) -> tuple[mg.Tensor, list[np.ndarray]]:
    """loss = 5·Σw + 6·Σw: a hook on a = 2w registers a hook on w; the walk reaches w·5 first or last."""
    w = mg.Tensor([1.0, 2.0], requires_grad=True)
    a = w * 2
    seen: list[np.ndarray] = []
    a.register_hook(lambda g: w.register_hook(lambda gw: seen.append(gw.copy())) and None)
    b, c = (a * 3).sum(), (w * 5).sum()
    (c + b if w_first else b + c).backward()
    return w, seen


def test_a_leaf_hook_registered_from_a_hook_sees_the_whole_gradient_or_is_refused() -> None:
    # Reached from b first, w has no gradient yet when its hook comes: the hook sees all of it, 6 + 5, once.
    w, seen = _leaf_hooked_from_an_inner_hook(w_first=False)
    np.testing.assert_array_equal(w.grad, [11.0, 11.0])
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], [11.0, 11.0])
    # Reached from c first, 5 is already in w.grad: the hook would see only 6, so it is refused, naming why.
    with pytest.raises(RuntimeError, match=r"register_hook: a hook on a leaf of shape \(2,\) registered while "
                       r"backward\(\) runs \(from a hook or a Function's backward\).*only part.*register it before"):
        _leaf_hooked_from_an_inner_hook(w_first=True)
    # Outside a walk, and on a leaf whose .grad is set, registering is as always.
    w = mg.Tensor([1.0], requires_grad=True)
    w.grad = np.array([1.0], dtype=np.float32)
    w.register_hook(lambda g: 2 * g)
    (w * 3).sum().backward()
    np.testing.assert_array_equal(w.grad, [7.0])


def test_retain_grad_on_several_intermediates_matches_hand_gradients() -> None:
    xs = np.array([1.0, -2.0, 0.5])
    x = mg.Tensor(xs, requires_grad=True)
    a = x * 2  # a = 2x
    b = a * a  # b = 4x²
    c = b.exp()  # c = e^(4x²)
    loss = c.sum()
    for t in (a, b, c):
        t.retain_grad()
    d = x + 1  # an intermediate without retain_grad keeps no .grad
    (loss + d.sum()).backward()
    np.testing.assert_allclose(c.grad, np.ones(3))
    np.testing.assert_allclose(b.grad, np.exp(4 * xs**2))
    np.testing.assert_allclose(a.grad, np.exp(4 * xs**2) * 2 * (2 * xs))
    np.testing.assert_allclose(x.grad, np.exp(4 * xs**2) * 8 * xs + 1)
    assert d.grad is None
    assert a.retains_grad and not d.retains_grad


def test_retain_graph_allows_a_second_backward_that_doubles_the_gradients() -> None:
    xs = np.array([1.0, 2.0, 3.0])
    x = mg.Tensor(xs, requires_grad=True)
    h = x * x
    h.retain_grad()
    loss = (h * x).sum()  # Σ x³: dloss/dx = 3x², dloss/dh = x
    loss.backward(retain_graph=True)
    np.testing.assert_allclose(x.grad, 3 * xs**2)
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * 3 * xs**2)
    np.testing.assert_allclose(h.grad, 2 * xs)
    with pytest.raises(RuntimeError, match="released by an earlier backward"):
        loss.backward()


def test_retain_graph_then_a_second_backward_and_a_released_graph():
    x = mg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.copy()
    y.backward()
    assert np.array_equal(x.grad, first + first)
    with pytest.raises(RuntimeError, match="released"):
        y.backward()


# ---------------------------------------------------------------------------
# Anomaly mode
# ---------------------------------------------------------------------------


def test_anomaly_mode_names_the_op_that_made_a_nan_in_forward_and_the_users_line() -> None:
    x = mg.Tensor([1.0, 5.0], requires_grad=True)
    with mg.detect_anomaly(), np.errstate(invalid="ignore"):
        shifted = x - 3  # finite: not this op
        with pytest.raises(FloatingPointError) as info:
            shifted.log()  # marker: the NaN is made here
    message = str(info.value)
    assert message.startswith("detect_anomaly: log produced a NaN in its forward pass (input shapes (2,))")
    assert f"{__file__}:" in message and "shifted.log()  # marker: the NaN is made here" in message


def test_anomaly_mode_names_the_op_whose_backward_made_an_infinity() -> None:
    x = mg.Tensor([0.0, 4.0], requires_grad=True)
    with mg.detect_anomaly(), np.errstate(divide="ignore"):
        root = x.sqrt()  # marker: d√x/dx = 1/(2√x) is infinite at 0
        loss = (root * 2).sum()  # finite forward and finite gradients in mul and sum
        with pytest.raises(FloatingPointError) as info:
            loss.backward()
    message = str(info.value)
    assert message.startswith("detect_anomaly: sqrt produced an infinity in its backward pass (input shapes (2,))")
    assert "root = x.sqrt()  # marker" in message


def test_under_create_graph_anomaly_mode_names_the_op_whose_backward_made_it() -> None:
    """It named div, an op of sqrt's rule, as if its forward pass had made the infinity, at the grad() line."""
    x = mg.Tensor([0.0, 4.0], requires_grad=True)
    with mg.detect_anomaly(), np.errstate(divide="ignore"):
        root = x.sqrt()  # marker: d√x/dx = 1/(2√x) is infinite at 0
        with pytest.raises(FloatingPointError) as info:
            mg.autograd.grad(root.sum(), [x], create_graph=True)
    message = str(info.value)
    assert message.startswith("detect_anomaly: sqrt produced an infinity in its backward pass (in the div op its "
                              "gradient is built from, input shapes (2,), (2,), under create_graph)")
    assert "root = x.sqrt()  # marker" in message


def test_anomaly_mode_names_a_nan_that_no_op_made() -> None:
    """A NaN in backward()'s grad or a hook's return was blamed on the op below it."""
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    with mg.detect_anomaly():
        y = x * 3.0
        with pytest.raises(FloatingPointError, match=r"the gradient the backward pass starts from \(its grad "
                                                     r"argument\) holds a NaN \(shape \(2,\)\): no op's backward"):
            y.backward(np.array([np.nan, 1.0]), retain_graph=True)
        with pytest.raises(FloatingPointError, match=r"starts from \(grad_outputs\[0\] of mg.autograd.grad\) holds "
                                                     r"an infinity"):
            mg.autograd.grad([y], [x], grad_outputs=[np.array([np.inf, 1.0])], retain_graph=True)
        y.register_hook(lambda g: g * np.inf)
        with pytest.raises(FloatingPointError, match=r"the gradient a hook on mul's output returned holds an "
                                                     r"infinity"):
            y.sum().backward()


def test_a_backward_anomaly_of_an_op_recorded_outside_the_mode_says_how_to_find_its_line() -> None:
    x = mg.Tensor([0.0, 4.0], requires_grad=True)
    loss = x.sqrt().sum()  # recorded outside the mode: its line was not kept
    with mg.detect_anomaly(), np.errstate(divide="ignore"):
        with pytest.raises(FloatingPointError, match=r"sqrt produced an infinity in its backward pass .*"
                           r"run the forward pass inside detect_anomaly\(\) too"):
            loss.backward()


def test_the_users_line_is_found_in_a_folder_named_minigrad(tmp_path: Path) -> None:
    # A clone of this repository is often a folder named minigrad: scripts there are user code.
    script = tmp_path / "minigrad" / "examples" / "train.py"
    script.parent.mkdir(parents=True)
    script.write_text(
        "import minigrad as mg\n"
        "with mg.detect_anomaly():\n"
        "    try:\n"
        "        mg.Tensor([-1.0], requires_grad=True).log()  # the user's line\n"
        "    except FloatingPointError as err:\n"
        "        print(err)\n"
    )
    root = str(Path(mg.__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-W", "ignore", str(script)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": root}, timeout=60)
    assert f"the op was created at {script}:4: mg.Tensor([-1.0], requires_grad=True).log()" in done.stdout


def test_anomaly_mode_is_off_by_default_and_off_again_after_the_block() -> None:
    x = mg.Tensor([-1.0], requires_grad=True)
    with np.errstate(invalid="ignore"):
        assert np.isnan(x.log().item())  # no error without the mode
        with mg.detect_anomaly():
            with pytest.raises(FloatingPointError):
                x.log()
        assert np.isnan(x.log().item())


def test_anomaly_mode_checks_custom_ops_by_their_name() -> None:
    class Reciprocal(mg.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[no-untyped-def]
            return 1 / x

        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            raise AssertionError("not reached")

    with mg.detect_anomaly(), np.errstate(divide="ignore"):
        with pytest.raises(FloatingPointError, match="reciprocal produced an infinity in its forward pass"):
            Reciprocal.apply(mg.Tensor([0.0, 1.0], requires_grad=True))


# ---------------------------------------------------------------------------
# Custom ops: Function, and the gradient checks in the backward walk
# ---------------------------------------------------------------------------


class Sin(mg.Function):
    """sin x, written as a user would. d/dx sin x = cos x."""

    @staticmethod
    def forward(ctx, x):  # type: ignore[no-untyped-def]
        ctx.save_for_backward(x)
        return np.sin(x)

    @staticmethod
    def backward(ctx, g):  # type: ignore[no-untyped-def]
        (x,) = ctx.saved_tensors
        return g * mg.ops.cos(x)


def test_a_custom_sin_matches_its_derivative_and_passes_gradcheck_and_gradgradcheck() -> None:
    xs = np.array([-1.0, 0.0, 0.5, 2.0])
    x = mg.Tensor(xs, requires_grad=True)
    y = Sin.apply(x)
    assert y.op == "sin"
    np.testing.assert_allclose(y.data, np.sin(xs))
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.cos(xs))
    assert mg.gradcheck(Sin.apply, mg.Tensor(xs, requires_grad=True))
    assert mg.gradgradcheck(Sin.apply, mg.Tensor(xs, requires_grad=True))
    (dx,) = mg.autograd.grad(Sin.apply(x).sum(), [x], create_graph=True)
    (ddx,) = mg.autograd.grad(dx.sum(), [x])
    np.testing.assert_allclose(ddx.data, -np.sin(xs))


def test_gradcheck_catches_a_wrong_custom_backward() -> None:
    class WrongSin(Sin):
        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            (x,) = ctx.saved_tensors
            return g * -mg.ops.cos(x)

    with pytest.raises(mg.GradcheckError, match="gradcheck: input 0 \\(shape \\(3,\\)\\), element \\(0,\\)"):
        mg.gradcheck(WrongSin.apply, mg.Tensor([0.1, 0.2, 0.3], requires_grad=True))


@pytest.mark.parametrize("layout", ["C", "F", "transposed"])
def test_gradcheck_moves_inputs_of_any_memory_layout(layout: str) -> None:
    """A column-major or transposed input is perturbed in place too (every difference used to come out 0)."""
    values = np.arange(1.0, 7.0).reshape(2, 3) / 7
    data = {"C": values, "F": np.asfortranarray(values), "transposed": values.T.copy().T}[layout]
    assert mg.gradcheck(lambda t: (t * t * t).sum(), mg.Tensor(data, requires_grad=True))

    class Zero(mg.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[no-untyped-def]
            return x * x

        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            return g * 0

    with pytest.raises(mg.GradcheckError, match="backward gives 0.0, central difference gives"):
        mg.gradcheck(Zero.apply, mg.Tensor(data, requires_grad=True))


def test_gradgradcheck_catches_a_backward_that_treats_the_output_gradient_as_a_constant() -> None:
    """value(g) in a backward gives a wrong Hessian once composed (sin(x²) here); PyTorch's check finds it."""

    class Square(mg.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[no-untyped-def]
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            (x,) = ctx.saved_tensors
            return mg.ops.value(g) * 2 * x  # g cut off from the graph: its own derivative is lost

    x = mg.Tensor([0.3, 0.5, 0.7], requires_grad=True)
    assert mg.gradcheck(Square.apply, x)  # the first derivative is right
    with pytest.raises(mg.GradcheckError, match=r"input 1 \(shape \(3,\)\).*derivative with respect to the "
                                                r"output's gradient"):
        mg.gradgradcheck(Square.apply, x)
    (h,) = mg.func.hessian(lambda t: Square.apply(t).sin().sum())(mg.Tensor([0.5])).data.ravel()
    assert h != pytest.approx(2 * np.cos(0.25) - 4 * 0.25 * np.sin(0.25))  # what such a backward costs


def test_gradcheck_catches_a_gradient_off_by_a_thousandth() -> None:
    """A backward off by 1e-3 everywhere fails the default tolerance (atol 1e-5, rtol 1e-4).

    Guards the tolerance test ``error > 0``: with ``error > 1`` (or any slack of
    that size) a gradient wrong by less than 1 passed.
    """

    class AlmostSin(Sin):
        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            (x,) = ctx.saved_tensors
            return g * (mg.ops.cos(x) + 1e-3)

    xs = np.array([0.1, 0.2, 0.3])
    assert mg.gradcheck(Sin.apply, mg.Tensor(xs, requires_grad=True))
    with pytest.raises(mg.GradcheckError, match=r"input 0 \(shape \(3,\)\)"):
        mg.gradcheck(AlmostSin.apply, mg.Tensor(xs, requires_grad=True))


def test_gradcheck_relative_tolerance_is_taken_on_the_central_difference() -> None:
    """The rule is |analytic - numeric| <= atol + rtol·|numeric|: twice the gradient fails rtol=0.6, passes rtol=1.01.

    Guards the scale of rtol: taken on |analytic| instead, a backward that
    doubles the gradient passed rtol=0.6 (|2n - n| = n <= 0.6·2n).
    """

    class DoubleSin(Sin):
        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            (x,) = ctx.saved_tensors
            return 2 * g * mg.ops.cos(x)

    xs = np.array([0.1, 0.2, 0.3])
    assert mg.gradcheck(DoubleSin.apply, mg.Tensor(xs, requires_grad=True), atol=0.0, rtol=1.01)
    with pytest.raises(mg.GradcheckError):
        mg.gradcheck(DoubleSin.apply, mg.Tensor(xs, requires_grad=True), atol=0.0, rtol=0.6)


def test_a_leaf_hook_registered_from_a_functions_backward_is_refused_too() -> None:
    """The refusal covered hooks only: a Function's backward registering one mid-walk saw 6 of 11 (h75)."""
    w = mg.Tensor([1.0, 2.0], requires_grad=True)
    seen: list[np.ndarray] = []

    class Registers(mg.Function):
        @staticmethod
        def forward(ctx, a):  # type: ignore[no-untyped-def]
            return a * 3.0

        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            w.register_hook(lambda gw: seen.append(gw.copy()))
            return g * 3.0

    loss = (w * 5).sum() + Registers.apply(w * 2).sum()  # the walk reaches w·5 first
    with pytest.raises(RuntimeError, match=r"registered while backward\(\) runs \(from a hook or a Function's"):
        loss.backward()
    assert seen == []


def test_gradcheck_catches_a_backward_that_ignores_the_output_gradient() -> None:
    """A backward returning cos(x) instead of g·cos(x) is wrong for any g but ones: gradcheck must catch it.

    Guards the random weights of the output (of alternating signs, 0.5 to 2 in size): with weights of 1,
    backward is fed g = 1 and the missing factor g went unseen.
    """

    class SinWithoutG(Sin):
        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            (x,) = ctx.saved_tensors
            return mg.ops.cos(x)

    with pytest.raises(mg.GradcheckError, match="gradcheck: input 0"):
        mg.gradcheck(SinWithoutG.apply, mg.Tensor([0.1, 0.2, 0.3], requires_grad=True))


def test_gradcheck_catches_a_backward_wrong_only_for_negative_incoming_gradients() -> None:
    """abs(g)·cos(x), and a relu masking on the sign of g, passed both checks: every weight was positive (h72)."""

    class SinAbsG(Sin):
        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            (x,) = ctx.saved_tensors
            return abs(g) * mg.ops.cos(x)

    class ReLUOnTheSignOfG(mg.Function):
        @staticmethod
        def forward(ctx, a):  # type: ignore[no-untyped-def]
            ctx.save_for_backward(a)
            return np.maximum(a, 0.0)

        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            (a,) = ctx.saved_tensors
            return mg.ops.where(mg.ops.value(g) > 0, g, 0.0) * (mg.ops.value(a) > 0)

    x = mg.Tensor([0.3, 0.8, 2.0, 1.2, 0.5, 1.7], requires_grad=True)  # (away from relu's kink)
    for op in (SinAbsG, ReLUOnTheSignOfG):  # (gradgradcheck checks derivatives of the first derivative only)
        with pytest.raises(mg.GradcheckError, match=r"gradcheck: input 0"):
            mg.gradcheck(op.apply, x)


@pytest.mark.parametrize("name, value", [("atol", float("nan")), ("rtol", float("nan")), ("atol", -1.0),
                                         ("eps", 0.0), ("eps", float("nan")), ("rtol", float("inf"))])
def test_gradcheck_refuses_a_tolerance_or_eps_that_is_not_a_finite_number(name: str, value: float) -> None:
    """A NaN tolerance made every check pass (no error is > NaN); eps=0 was a bare ZeroDivisionError (h72)."""
    bound = "> 0" if name == "eps" else ">= 0"
    for check in (mg.gradcheck, mg.gradgradcheck):
        with pytest.raises(ValueError, match=rf"{check.__name__}: {name} must be a finite number {bound}, got"):
            check(Sin.apply, mg.Tensor([0.1, 0.2], requires_grad=True), **{name: value})


def test_a_large_output_element_the_input_does_not_move_adds_no_rounding_to_the_difference() -> None:
    """Central differences of Σ w·out: the 1e7 beside a 1 rounded the difference, and a right op failed (h72)."""
    big = mg.Tensor(np.array([1e7, 2e7, 3e7]))
    assert mg.gradcheck(lambda a, b: mg.concatenate([a, b]), big, mg.Tensor([1.0, 2.0, 3.0], requires_grad=True))
    rng = np.random.default_rng(0)
    a, b = mg.Tensor(rng.uniform(1e4, 2e4, 1000)), mg.Tensor(rng.uniform(-1, 1, 1000), requires_grad=True)
    assert mg.gradcheck(lambda a, b: a * b, a, b)


class Product(mg.Function):
    """out = x0·x1 (scalar) whose backward has the right value g·(x1, x0) but, written with value(),
    tells the engine the wrong second derivatives: ∂G_i/∂x_j = g·δ_ij instead of g·(1 - δ_ij).

    Its Hessian's row sums are right ([g, g]), so only weights that differ per element see it.
    """

    @staticmethod
    def forward(ctx, x):  # type: ignore[no-untyped-def]
        ctx.save_for_backward(x)
        return np.asarray(x[0] * x[1])

    @staticmethod
    def backward(ctx, g):  # type: ignore[no-untyped-def]
        (x,) = ctx.saved_tensors
        v = mg.ops.value
        return g * (x + v(x[::-1]) - v(x))


def test_gradgradcheck_catches_second_derivatives_put_on_the_wrong_elements() -> None:
    """The Product above passes gradcheck (its first derivative is right) and fails gradgradcheck.

    Guards the random weights v of the first derivative (d = Σ v·∂L/∂x): with
    v dropped (all ones), only the Hessian's row sums were compared and a
    backward with the mixed partials on the diagonal passed.
    """
    x = mg.Tensor([0.3, 0.7], requires_grad=True)
    assert mg.gradcheck(Product.apply, x)
    with pytest.raises(mg.GradcheckError, match=r"input 0 \(shape \(2,\)\).*second derivative"):
        mg.gradgradcheck(Product.apply, x)


def test_gradgradcheck_catches_a_dependence_on_the_output_gradient_that_is_right_only_at_one() -> None:
    """A backward h(g)·cos(x) with h(g) = g²/2 + value(g) - value(g)²/2 = g; the engine's dh/dg is g, not 1.

    gradcheck passes it (the values are right); gradgradcheck must not, since
    its derivative with respect to the output's gradient is wrong wherever g ≠ 1.
    Guards the random weights of gradgradcheck's cotangent: with weights of
    ones, g = 1 exactly where the two derivatives agree.
    """

    class HalfCutSin(Sin):
        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            (x,) = ctx.saved_tensors
            v = mg.ops.value(g)
            return (g * g / 2 + v - v * v / 2) * mg.ops.cos(x)

    x = mg.Tensor([0.1, 0.2, 0.3], requires_grad=True)
    assert mg.gradcheck(HalfCutSin.apply, x)
    with pytest.raises(mg.GradcheckError, match="derivative with respect to the output's gradient"):
        mg.gradgradcheck(HalfCutSin.apply, x)


def test_gradcheck_and_gradgradcheck_work_inside_no_grad() -> None:
    """Called under ``mg.no_grad()`` (as in an evaluation loop), both still build their graphs and check.

    Guards their ``enable_grad()``: without it the output had no graph and
    gradcheck refused a right op, gradgradcheck found no derivative to check.
    """
    with mg.no_grad():
        assert mg.gradcheck(Sin.apply, mg.Tensor([0.1, 0.2], requires_grad=True))
        assert mg.gradgradcheck(Sin.apply, mg.Tensor([0.1, 0.2], requires_grad=True))
        assert not mg.is_grad_enabled()


def _op(backward_result):  # type: ignore[no-untyped-def]
    """A custom op y = a * b whose backward returns ``backward_result(g, a, b)``."""

    class Custom(mg.Function):
        name = "custom"

        @staticmethod
        def forward(ctx, a, b):  # type: ignore[no-untyped-def]
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            return backward_result(g, *ctx.saved_tensors)

    return Custom


@pytest.mark.parametrize(
    ("backward_result", "message"),
    [
        (lambda g, a, b: (g.sum(), g * a), r"backward of custom: the gradient for input 0 has shape \(\), "
         r"but that input has shape \(2, 3\)"),
        (lambda g, a, b: (g * b, (g * a)[:1]), r"backward of custom: the gradient for input 1 has shape \(1, 3\), "
         r"but that input has shape \(3,\)"),
        (lambda g, a, b: (g * b, g * a), r"backward of custom: the gradient for input 1 has shape \(2, 3\), "
         r"but that input has shape \(3,\)"),  # forgot to undo broadcasting
        (lambda g, a, b: (g * b,), r"backward of custom returned 1 gradients for 2 inputs"),
        (lambda g, a, b: (g * b, g * a, g), r"backward of custom returned 3 gradients for 2 inputs"),
        (lambda g, a, b: ((g * b).astype(np.int64), mg.ops.sum_to(g * a, (3,))),
         r"backward of custom: the gradient for input 0 has dtype int64, not a float"),
        (lambda g, a, b: (g * b, (g * a).sum(0) > 0),
         r"backward of custom: the gradient for input 1 has dtype bool, not a float"),
    ],
    ids=["scalar", "short", "broadcast", "too-few", "too-many", "int", "bool"],
)
def test_every_wrong_gradient_from_a_custom_op_is_refused(backward_result, message) -> None:  # type: ignore[no-untyped-def]
    a = mg.Tensor(np.ones((2, 3)), requires_grad=True)
    b = mg.Tensor(np.arange(3.0), requires_grad=True)
    y = _op(backward_result).apply(a, b)
    with pytest.raises(RuntimeError, match=message):
        y.sum().backward()


def test_a_right_custom_op_leaves_correct_gradients() -> None:
    Custom = _op(lambda g, a, b: (g * b, mg.ops.sum_to(g * a, b.shape)))
    a = mg.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    b = mg.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    Custom.apply(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad, [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(b.grad, [3.0, 5.0, 7.0])  # column sums of a


def test_a_wrong_gradient_is_named_by_its_argument_when_a_tensor_is_passed_twice() -> None:
    Custom = _op(lambda g, a, b: (g * b, (g * a).sum()))
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"backward of custom: the gradient for input 1 has shape \(\)"):
        Custom.apply(x, x).sum().backward()


class _TensorBackward(mg.Function):
    """A user op whose first-order backward returns a Tensor (worked before 4656ba8)."""

    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return mg.Tensor(g * 2)


@pytest.mark.parametrize("uses", [1, 2])
def test_a_first_order_backward_that_returns_a_tensor_into_a_leaf(uses):
    # Was a bug: the leaf fast path read pg.base on the Tensor (AttributeError), or did ndarray += Tensor.
    x = mg.Tensor(np.ones(3), requires_grad=True)
    out = _TensorBackward.apply(x).sum()
    if uses == 2:
        out = out + _TensorBackward.apply(x).sum()
    out.backward()
    assert np.array_equal(x.grad, np.full(3, 2.0 * uses))


class _HalfNone(mg.Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + 0 * b

    @staticmethod
    def backward(ctx, g):
        return g, None


def test_a_backward_returning_none_for_an_inner_input():
    x = mg.Tensor(np.arange(3.0), requires_grad=True)
    a, b = x * 2, x.exp()
    y = _HalfNone.apply(a, b).sum()
    y.backward()
    assert np.array_equal(x.grad, np.full(3, 2.0))


# ---------------------------------------------------------------------------
# In-place changes: the version counter
# ---------------------------------------------------------------------------


def test_the_issues_in_place_case_raises() -> None:
    w = mg.Tensor([1.0, 2.0], requires_grad=True)
    opt = mg.optim.SGD([w], lr=0.1)
    loss1 = (w * w).sum()
    (w * w).sum().backward()
    opt.step()  # changes w in place: loss1's graph saved the old w
    opt.zero_grad()
    with pytest.raises(RuntimeError, match=r"backward of mul: input 0 \(shape \(2,\)\).*modified in place"):
        loss1.backward()


def test_an_optimizer_step_between_forward_and_backward_raises() -> None:
    model, loss = _mlp_loss()
    opt = mg.optim.Adam(model.parameters(), lr=0.01)
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match=r"backward of linear: input 1 \(shape \(4, 3\)\).*modified in place"):
        loss.backward()


@pytest.mark.parametrize("view", ["T", "reshape", "row", "detach", "broadcast"])
def test_a_step_that_changes_what_a_saved_view_shows_raises(view: str) -> None:
    """W.T, W.reshape, W[0], W.detach() share W's memory: opt.step() on W changes them too (PyTorch raises)."""
    W = mg.Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    x = mg.Tensor(np.array([[1.0, 1.0]]), requires_grad=True)
    opt = mg.optim.SGD([W], lr=1.0)
    seen = {"T": lambda: W.T, "reshape": lambda: W.reshape(2, 2), "row": lambda: W[0],
            "detach": lambda: W.detach(), "broadcast": lambda: W[0].broadcast_to((3, 2))}[view]()
    loss = (x * seen).sum() if view in ("row", "broadcast") else (x @ seen).sum()
    W.grad = np.ones((2, 2))
    opt.step()  # W changes in place after the forward pass
    with pytest.raises(RuntimeError, match=r"modified in place after the forward pass \(through a tensor that "
                                           r"shares its memory\)"):
        loss.backward()


@pytest.mark.parametrize("view", ["T", "row", "detach", "Tensor"])
def test_a_change_made_through_a_view_is_a_change_of_what_it_views(view: str) -> None:
    """nn.init or bump_version() on W.T, W[0], W.detach() or Tensor(W) writes W's memory: W's graph refuses.

    (It backpropagated silently with the new values: x.grad [0, 0] instead of the forward's [3, 7].)
    """
    W = mg.nn.Parameter(np.array([[1.0, 2.0], [3.0, 4.0]]))
    x = mg.Tensor(np.ones(2), requires_grad=True)
    loss = (x @ W).sum()
    seen = {"T": lambda: W.T, "row": lambda: W[0], "detach": lambda: W.detach(), "Tensor": lambda: mg.Tensor(W)}
    with mg.no_grad():
        mg.nn.init.zeros_(seen[view]())
    assert W.data.sum() < 10  # the change did reach W's memory
    with pytest.raises(RuntimeError, match=r"backward of matmul: input 1 \(shape \(2, 2\)\).*modified in place"):
        loss.backward()


@pytest.mark.parametrize("view", ["detach", "Tensor", "T"])
def test_a_change_through_a_view_of_an_ops_output_is_seen_by_its_backward(view: str) -> None:
    """y = x * 2 saved by y * y; zeros_ on y.detach() wrote y's memory: x.grad came out [0, 0], silently."""
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    z = (y * y).sum()
    with mg.no_grad():
        mg.nn.init.zeros_({"detach": lambda: y.detach(), "Tensor": lambda: mg.Tensor(y), "T": lambda: y.T}[view]())
    assert not y.data.any()
    with pytest.raises(RuntimeError, match=r"backward of mul: input 0 .*modified in place .*shares its memory"):
        z.backward()


@pytest.mark.parametrize("through", ["itself", "detach"])
def test_an_op_whose_saved_output_is_changed_in_place_refuses_to_backpropagate(through: str) -> None:
    """exp saves its output: zeros_ on it (or on its detach()) gave x.grad [0, 0] silently (PyTorch raises)."""
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    e = x.exp()
    with mg.no_grad():
        mg.nn.init.zeros_(e if through == "itself" else e.detach())
    with pytest.raises(RuntimeError, match=r"backward of exp: its output \(shape \(2,\)\), which it saved for "
                                           r"backward, was modified in place"):
        e.sum().backward()


def test_a_tensor_of_another_dtype_is_a_copy_not_a_view() -> None:
    """Tensor(W, dtype=float64) of a float32 W copies: a step on W does not concern it (it was refused)."""
    W = mg.nn.Parameter(np.array([1.0, 2.0], np.float32))
    x = mg.Tensor(np.ones(2), requires_grad=True)
    loss = (x * mg.Tensor(W, dtype=np.float64)).sum()
    W.grad = np.ones(2, np.float32)
    mg.optim.SGD([W], lr=0.5).step()
    loss.backward()
    np.testing.assert_array_equal(x.grad, [1.0, 2.0])


def test_a_step_between_the_forward_and_backward_of_a_tensor_of_a_parameter_raises() -> None:
    """Tensor(W) shares W's memory, so opt.step() on W changes it (it used the new W silently)."""
    W = mg.nn.Parameter(np.array([1.0, 2.0, 3.0]))
    x = mg.Tensor(np.ones(3), requires_grad=True)
    loss = (x * mg.Tensor(W)).sum()
    W.grad = np.ones(3)
    mg.optim.SGD([W], lr=0.1).step()
    with pytest.raises(RuntimeError, match=r"backward of mul: input 1 .*modified in place.*\(through a tensor that"):
        loss.backward()


def test_an_optimized_view_changes_the_version_of_what_it_views() -> None:
    """A parameter made as a view of W (W.detach() set to require grad) changes W's memory at every step."""
    W = mg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    V = W.detach()
    V.requires_grad = True
    x = mg.Tensor(np.ones(2), requires_grad=True)
    loss = (x * W).sum()
    V.grad = np.ones(2)
    mg.optim.SGD([V], lr=0.5).step()
    np.testing.assert_array_equal(W.data, [0.5, 1.5])
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_a_view_of_a_tensor_nobody_changed_backpropagates_as_before() -> None:
    W = mg.Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    x = mg.Tensor(np.array([[1.0, 1.0]]), requires_grad=True)
    other = mg.Tensor([0.0], requires_grad=True)
    loss = (x @ W.T).sum()
    other.bump_version()  # a change elsewhere: the check runs, and finds nothing
    loss.backward()
    np.testing.assert_array_equal(x.grad, [[4.0, 6.0]])  # ones · W
    np.testing.assert_array_equal(W.grad, [[1.0, 1.0], [1.0, 1.0]])


def test_a_saved_output_no_one_changed_backpropagates_in_a_process_with_no_change_before_it(monkeypatch):
    """Guards `_memory_version(node) > ctx._edits` (made `>=`): an op recorded before any in-place change
    (ctx._edits 0, as in a fresh process) whose output is saved (exp) refused to backpropagate once anything
    else was changed in place, though its output never was."""
    monkeypatch.setattr(engine, "_edits", 0)
    x = mg.Tensor(np.array([0.0, 1.0]), requires_grad=True)
    y = x.exp()
    other = mg.Tensor(np.zeros(2), requires_grad=True)
    other.bump_version()  # an unrelated change: the global count moves
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.exp([0.0, 1.0]), rtol=1e-15)


def test_steps_bump_versions_and_a_fresh_forward_pass_is_fine() -> None:
    model, _ = _mlp_loss()
    opt = mg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = np.array([[0.5, -1.0], [1.5, 2.0]])
    y = np.array([0, 2])
    versions = []
    for _ in range(3):  # the usual loop: forward, backward, step
        opt.zero_grad()
        mg.nn.cross_entropy(model(x), y).backward()
        opt.step()
        versions.append(model[0].W.version)
    assert versions[0] < versions[1] < versions[2]


def test_a_change_to_a_tensor_the_graph_did_not_save_is_not_an_error() -> None:
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    other = mg.Tensor([5.0], requires_grad=True)
    loss = (x * x).sum()
    other.bump_version()  # some other tensor changed in place
    x.bump_version()  # and x changed before the forward pass
    loss2 = (x * x).sum()
    loss2.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()  # x changed after this forward pass


def test_an_in_place_change_a_hook_makes_during_backward_is_caught_below_it():
    """A hook that changed w in place mid-walk went unnoticed: the edit count was read once, at the start of
    backward, so x.grad came out [10, 10] (the new w) where it is [1, 2], with no error (h54). PyTorch raises."""
    w = mg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    x = mg.Tensor(np.array([3.0, 4.0]), requires_grad=True)
    h = w * x
    s = h.sum()

    def change_w(g):
        w.data[...] = 10.0
        w.bump_version()

    h.register_hook(change_w)
    with pytest.raises(RuntimeError, match="modified in place|in place after the forward pass"):
        s.backward()
    assert x.grad is None


# ---------------------------------------------------------------------------
# gradcheck refuses non-finite values and gradients
# ---------------------------------------------------------------------------


def test_gradcheck_refuses_a_nan_value() -> None:
    with np.errstate(invalid="ignore"), pytest.raises(
        mg.GradcheckError, match=r"gradcheck: the function's value is not finite \(element \(0,\) is nan\)"
    ):
        mg.gradcheck(lambda v: v.log(), mg.Tensor([-1.0, 2.0], requires_grad=True))


def test_gradcheck_refuses_a_nan_gradient_from_backward() -> None:
    class NanGrad(mg.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[no-untyped-def]
            return 2 * x

        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            out = 2 * g
            out[1] = np.nan
            return out

    expected = r"input 0 \(shape \(3,\)\), element \(1,\): backward gives nan for the gradient"
    with pytest.raises(mg.GradcheckError, match=expected):
        mg.gradcheck(NanGrad.apply, mg.Tensor([1.0, 2.0, 3.0], requires_grad=True))


def test_gradcheck_refuses_a_nan_central_difference() -> None:
    class SqrtWithZeroGrad(mg.Function):
        """√x with a made-up finite backward: only the central difference sees the NaN at x = 0."""

        @staticmethod
        def forward(ctx, x):  # type: ignore[no-untyped-def]
            return np.sqrt(x)

        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            return g * 0

    with np.errstate(invalid="ignore"), pytest.raises(
        mg.GradcheckError, match=r"input 0 \(shape \(2,\)\), element \(0,\): the central difference gives nan "
        "for the gradient"
    ):
        mg.gradcheck(SqrtWithZeroGrad.apply, mg.Tensor([0.0, 1.0], requires_grad=True))


def test_a_backward_that_returns_one_array_for_two_inputs_gives_each_leaf_its_own_gradient() -> None:
    """The no-copy leaf path must not hand one array to two leaves: a later += into one would change the other."""

    class Both(mg.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, g):
            d = g * 1.0  # a new array, returned for both inputs
            return d, d

    a = mg.Tensor(np.zeros(3), requires_grad=True)
    b = mg.Tensor(np.zeros(3), requires_grad=True)
    Both.apply(a, b).sum().backward()
    assert a.grad is not b.grad
    (a * 5.0).sum().backward()
    np.testing.assert_array_equal(a.grad, [6.0, 6.0, 6.0])
    np.testing.assert_array_equal(b.grad, [1.0, 1.0, 1.0])


def test_a_hook_may_return_a_number_under_create_graph() -> None:
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.register_hook(lambda g: 2.0)  # a constant gradient: broadcast to y's shape by the shape check
    with pytest.raises(ValueError, match=r"register_hook: a hook returned shape \(\) for a gradient of shape \(2,\)"):
        mg.autograd.grad(y.sum(), x, create_graph=True)
    z = x * 3
    z.register_hook(lambda g: np.full(2, 2.0))
    (g,) = mg.autograd.grad(z.sum(), x, create_graph=True)
    np.testing.assert_array_equal(g.data, [6.0, 6.0])


def test_retain_grad_keeps_the_gradient_after_every_hook_wherever_it_was_registered() -> None:
    """As in PyTorch: .grad of a retained tensor is the gradient the hooks made, even a hook registered later."""
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    m = x * 1
    m.retain_grad()
    m.register_hook(lambda g: g * 10)
    m.sum().backward()
    np.testing.assert_array_equal(m.grad, [10.0, 10.0])
    np.testing.assert_array_equal(x.grad, [10.0, 10.0])
