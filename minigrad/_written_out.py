"""The ops a training step spends most of its time in, written out for :mod:`minigrad.compile`'s replays.

A replay normally calls each op's ``forward`` and ``backward``. For the ops
of an MLP trained with cross-entropy (``linear``, ``relu``,
``cross_entropy``) and for ``SGD``'s update it can instead inline the same
numpy calls, on the same arrays, in the same order, writing each result into
an array kept from one replay to the next (numpy's ``out=``): the values are
bit for bit the eager step's, with no context objects, no calls, no checks
that the record already settled, and no new arrays to allocate. Each writer
below says which code it copies; keep the two in step (``tests/test_compile.py``
compares replays with eager steps bit for bit).

An op is written out only when its record is the plain case the copy covers
(two-dimensional input, a bias of shape (out_features,), a relu over a
linear's output, one floating dtype, integer class indices of numpy's index
type). Every other op, and every op
of another class, is replayed by calling its ``forward`` and ``backward``.

Which arrays are kept, and when a new one is made:

- an op's output, and each gradient an op sends to another op, are internal
  to the replay: kept, unless the step returns that output (then a new
  array each replay, since the caller holds it);
- a gradient given to a leaf as its ``.grad`` is kept only while nothing
  else holds last replay's array (``sys.getrefcount``): a user who stored
  ``p.grad`` finds it unchanged, and this replay writes into a new array.

The parameters' arrays are fixed by the record (their shapes and dtypes
decide the code): a replay whose parameter was given a new array
(``p.data = ...``) returns without running, and the step is recorded again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from minigrad import ops
from minigrad.nn.losses import CrossEntropy
from minigrad.optim.sgd import SGD

if TYPE_CHECKING:
    from minigrad.compile import _Replay

#: What a replay returns when a parameter's array was replaced since the record: record the step again.
STALE = object()


def forward(replay: _Replay, k: int) -> list[str] | None:
    """The lines of forward event ``k`` written out, or None if its op is not one written out here."""
    _, cls, sources, needs, shape, dtype, info = replay._events[k]
    if dtype.kind != "f" or any(s is not None and s[1] != dtype and s[1].kind == "f" for s in info):
        return None  # mixed precision: the ops' own code converts
    i = replay._op[k]
    if cls is ops.Linear and _linear_fits(info, sources):
        replay._written[i] = "linear"
        return _linear_forward(replay, k, i)
    if cls is ops.ReLU and sources[0][0] == "out" and replay._written.get(replay._op[sources[0][1]]) == "linear":
        # Only over a linear's output, which is row-major as the kept array is: numpy's max(a, 0) keeps a's
        # layout, and a column-major a (x.T, a Fortran-ordered batch) would give sums that round otherwise.
        replay._written[i] = "relu"
        return _relu_forward(replay, k, i)
    if cls is CrossEntropy and _cross_entropy_fits(info, sources):
        replay._written[i] = "cross_entropy"
        return _cross_entropy_forward(replay, k, i)
    return None


def _linear_fits(info: tuple[Any, ...], sources: tuple[Any, ...]) -> bool:
    x, W, b = info
    return (x is not None and len(x[0]) == 2 and b is not None and b[0] == (W[0][1],) and sources[2][0] != "fixed"
            and x[1] == W[1] == b[1])  # (mixed precision promotes in Linear.forward; the written-out += would not)


def _cross_entropy_fits(info: tuple[Any, ...], sources: tuple[Any, ...]) -> bool:
    t = info[1]
    return t is not None and t[1] == np.dtype(np.intp) and len(t[0]) == 1 and sources[1][0] == "arg"


def _out(replay: _Replay, i: int, shape: tuple[int, ...], dtype: np.dtype) -> str:
    """``, out=B`` for an array kept for op ``i``'s output, or nothing if the step returns it."""
    if i in replay._returned:
        return ""
    return f", out={replay.buffer(shape, dtype)}"


def _linear_forward(replay: _Replay, k: int, i: int) -> list[str]:
    # ops.Linear.forward: out = x @ W; out += b
    _, _, sources, _, shape, dtype, _ = replay._events[k]
    x, W, b = (replay.fixed_param(src) for src in sources)
    return [
        f"# op {i}: linear -> {tuple(shape)} {dtype}, written out (ops.Linear: out = x·W + b)",
        f"a{i}, w{i} = {x}, {W}",
        f"o{i} = matmul(a{i}, w{i}{_out(replay, i, shape, dtype)})",
        f"o{i} += {b}",
    ]


def _relu_forward(replay: _Replay, k: int, i: int) -> list[str]:
    # ops.ReLU.forward: np.maximum(a, 0)
    _, _, sources, _, shape, dtype, _ = replay._events[k]
    zero = replay.constant(ops.zero_of(dtype), "zero")
    src, where = sources[0]
    if src == "out" and i not in replay._returned and _only_reader(replay, replay._op[where], k):
        # The input is a linear's output, kept by the replay and read by nothing else: max(a, 0) can overwrite
        # it, as numpy written by hand does. Backward then takes its mask from the output: out > 0 exactly
        # where a > 0 (NaN stays NaN, and NaN > 0 is False).
        m = replay._op[where]
        return [
            f"# op {i}: relu -> {tuple(shape)} {dtype}, written out (ops.ReLU: max(a, 0)), over its input",
            f"o{i} = a{i} = maximum(o{m}, {zero}, out=o{m})",
        ]
    return [
        f"# op {i}: relu -> {tuple(shape)} {dtype}, written out (ops.ReLU: max(a, 0))",
        f"a{i} = {replay.fixed_param(sources[0])}",
        f"o{i} = maximum(a{i}, {zero}{_out(replay, i, shape, dtype)})",
    ]


def _only_reader(replay: _Replay, m: int, k: int) -> bool:
    """True if op ``m`` is a linear written out, not returned, whose output forward event ``k`` alone reads."""
    from minigrad.compile import _out_reads  # (here: compile imports this module)

    if replay._written.get(m) != "linear" or m in replay._returned:
        return False
    # Every read counts, one inside a tuple argument too (an op given (h.data,) would see h overwritten).
    readers = [j for j, e in enumerate(replay._events) if e[0] == "forward" for w in _out_reads(e[2])
               if replay._op[w] == m]
    return readers == [k]


def _cross_entropy_forward(replay: _Replay, k: int, i: int) -> list[str]:
    # nn.losses.CrossEntropy.forward, with the labels' shape and dtype settled by the record
    _, _, sources, _, _, dtype, info = replay._events[k]
    n, c = info[0][0]
    z, t = replay.fixed_param(sources[0]), replay.input(sources[1])
    offsets = replay.constant(np.arange(0, n * c, c), "offsets")
    return [
        f"# op {i}: cross_entropy -> () {dtype}, written out (nn.losses.CrossEntropy)",
        f"u = {t}.view(uintp)  # one look at both ends: a negative label is huge as unsigned",
        f'if u[u.argmax()] >= {c}: class_indices({t}, {n}, {c}, "cross_entropy")  # raises, naming the labels',
        f"f{i} = add({offsets}, {t}, out={replay.buffer((n,), np.dtype(np.intp))})  # each target's flat position",
        f"e{i} = subtract({z}, asfortranarray({z}).max(axis=1, keepdims=True), out={replay.buffer((n, c), dtype)})",
        f"p = e{i}.reshape(-1)[f{i}]",
        f"exp(e{i}, out=e{i})",
        f"s{i} = e{i}.sum(axis=1, keepdims=True, out={replay.buffer((n, 1), dtype)})",
        f"o{i} = asarray((log(s{i}[:, 0]) - p).sum() / {n}, dtype={replay.constant(dtype, str(dtype))})",
        "del u, p",
    ]


def backward(replay: _Replay, k: int, i: int) -> list[str] | None:
    """The body of op ``i``'s backward (event ``k``) written out, or None if its forward was not."""
    kind = replay._written.get(i)
    if kind is None:
        return None
    dests = replay._events[k][2]
    _, _, _, _, shape, dtype, info = replay._events[replay._forward_of[i]]
    lines: list[str] = []
    if kind == "linear":
        (n, m), (_, width) = info[0][0], info[1][0]
        code = {  # ops.Linear.backward: dx = g @ W.T, dW = x.T @ g, db = g.sum(axis=0)
            0: (f"matmul(g{i}, w{i}.T{{out}})", (n, m)),
            1: (f"matmul(a{i}.T, g{i}{{out}})", (m, width)),
            2: (f"g{i}.sum(axis=0{{out}})", (width,)),
        }
        lines.append("# ops.Linear.backward: dx = g·Wᵀ, dW = xᵀ·g, db = Σ_rows g")
        for pos, dst, where, _ in dests:
            lines += replay.route(i, dst, where, *code[pos], dtype)
        lines.append(f"del a{i}, w{i}")
    elif kind == "relu":
        zero = replay.constant(ops.zero_of(dtype), "zero")
        mask = replay.buffer(shape, np.dtype(bool))
        lines.append("# ops.ReLU.backward: g · (a > 0)")
        owned = replay._owned.get(i) == [True]  # g is one array the replay keeps, which nothing else reads
        for _, dst, where, _ in dests:
            if owned:  # multiplied in place
                rule = f"multiply(g{i}, greater(a{i}, {zero}, out={mask}), out=g{i})"
                lines += replay.route(i, dst, where, rule, shape, dtype, kept=True)
            else:
                rule = f"multiply(g{i}, greater(a{i}, {zero}, out={mask}){{out}})"
                lines += replay.route(i, dst, where, rule, shape, dtype)
        lines.append(f"del a{i}")
    else:  # nn.losses.CrossEntropy.backward: d = e / total; d[target] -= 1; d *= g / N, here in e's own array
        lines += [
            "# nn.losses.CrossEntropy.backward: (softmax(z) - onehot(target)) · g / N",
            f"divide(e{i}, s{i}, out=e{i})",
            f"e{i}.reshape(-1)[f{i}] -= 1",
            f"e{i} *= float(g{i}) / {info[0][0][0]}",
        ]
        for _, dst, where, _ in dests:
            lines += replay.route(i, dst, where, f"e{i}", info[0][0], dtype, kept=True)
        lines.append(f"del e{i}, s{i}, f{i}")
    return lines


def is_plain_sgd(opt: Any) -> bool:
    """True for an SGD whose ``update`` is :meth:`SGD.update` itself (not a subclass's, nor one set on the object)."""
    return isinstance(opt, SGD) and type(opt).update is SGD.update and "update" not in vars(opt)


def sgd_update(q: str, r: str, scratch: str) -> list[str]:
    """``SGD.update`` with momentum, no weight decay and no Nesterov, on parameter ``q`` with gradient ``r``.

    The replay reads ``lr``, ``momentum`` and whether the case is plain
    (``plain``) from the optimizer at each replay; other cases, the first
    step (which creates the velocity), and a velocity of another dtype than
    the parameter's (set by hand, or kept when the parameter was cast: the
    eager ``lr * v`` is then computed in the velocity's dtype, not rounded
    into the parameter's first) call ``update`` itself.
    """
    return [
        "v = s.get('v') if plain else None",
        f"if v is None or v.dtype is not {q}.data.dtype: update({q}.data, {r}, s)",
        "else:  # SGD.update: v = β·v + g; w = w - α·v",
        "    v *= momentum",
        f"    v += {r}",
        f"    w = {q}.data",
        f"    w -= multiply(v, lr, out={scratch})",
    ]
