"""A captured training step: record the ops of one step once, then replay them (opt-in).

``step = mg.compile(train_step)`` returns a callable with ``train_step``'s
arguments. The first call with given argument shapes runs ``train_step`` as
usual (eagerly) while recording, in order, every op's ``forward`` call, the
``backward`` calls of ``loss.backward()`` with where each gradient went, and
the optimizer's ``zero_grad()`` and ``step()``. Later calls with the same
shapes replay that record: the very same ``forward``, ``backward`` and update
code runs on the new arguments' arrays, in the same order, so the results are
bit-identical to the eager step's; what is skipped is the Python around it
(modules, Tensor objects, the graph, the backward walk's sorting and checks).
New shapes (the last, shorter batch) or dtypes record a new version, kept
beside the first.

This is a speed device, not how minigrad works: the eager loop is the one to
read and to learn from. It is the idea of tinygrad's TinyJit and of CUDA
graphs, at the level of minigrad's ops.

The rules, since only the record is replayed:

- Array data must reach the ops through the step's arguments (Tensors or
  numpy arrays), the parameters (tensors that require grad) or other ops;
  an array made from the arguments by other code inside the step would be
  stale on replay, so recording refuses it (except 0-d constants: the
  numbers written in the code, as in ``2 * x``).
- Other Python in the step (printing, ``loss.item()``, a scheduler's
  ``step()``) runs only while recording. The optimizer's ``zero_grad()`` and
  ``step()``, and the model's ``zero_grad()``, are replayed.
- Hooks, ``retain_graph``, ``create_graph`` and ``mg.autograd.grad`` are
  not recorded: recording raises; use the eager step for them. Neither is
  ``detect_anomaly``, which replays do not apply.
- The step returns None, a Tensor made by an op (the loss), or a tuple of
  these; a replay returns new Tensors (with no graph) holding the new values.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

import numpy as np

from minigrad import engine
from minigrad.engine import Function, Tensor, _accumulate

__all__ = ["compile", "CompiledStep"]

# Where an op's argument comes from on replay: a step argument, an op's output, a parameter (read as
# .data at each replay), or a value fixed in the code (a number, an axis, a shape).
ARG, OUT, PARAM, FIXED = "arg", "out", "param", "fixed"
# The kinds of step in a replay's program.
FORWARD, BACKWARD, SEED, CALL = "forward", "backward", "seed", "call"


class _Recorder:
    """Collects the events of one eager run of the step (engine._tape while it runs)."""

    def __init__(self, args: tuple[Any, ...]) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.arg_arrays: dict[int, int] = {}  # id(array) -> position of the step argument holding it
        self.arg_tensors: dict[int, int] = {}  # id(Tensor) -> position, for gradients of Tensor arguments
        for k, a in enumerate(args):
            if isinstance(a, Tensor):
                self.arg_arrays[id(a.data)] = k
                self.arg_tensors[id(a)] = k
            elif isinstance(a, np.ndarray):
                self.arg_arrays[id(a)] = k
        self.outputs: dict[int, int] = {}  # id(array an op made) -> its forward event's index
        self.nodes: dict[Tensor, int] = {}  # Tensor an op made -> its forward event's index

    def source(self, value: Any, op: str, i: int) -> tuple[str, Any]:
        """Where argument ``i`` of ``op`` comes from: a step argument, an op's output, or a fixed value."""
        if isinstance(value, Tensor):
            array = value.data
            if id(array) in self.arg_arrays:
                return ARG, self.arg_arrays[id(array)]
            if value in self.nodes or id(array) in self.outputs:
                return OUT, self.outputs[id(array)]
            if value.requires_grad:  # a parameter: its current array at each replay
                return PARAM, value
            if array.ndim == 0:  # a number written in the step's code, as in 2 * x
                return FIXED, array
            raise RuntimeError(
                f"compile: input {i} of {op} (shape {value.shape}) is an array made inside the step by code "
                "that is not an op; a replay would reuse its old values. Pass it to the step as an argument "
                "(or run the step without mg.compile)"
            )
        if isinstance(value, np.ndarray):
            if id(value) in self.arg_arrays:
                return ARG, self.arg_arrays[id(value)]
            if id(value) in self.outputs:
                return OUT, self.outputs[id(value)]
            raise RuntimeError(
                f"compile: argument {i} of {op} (an array of shape {value.shape}) was made inside the step; "
                "pass it to the step as an argument (or run the step without mg.compile)"
            )
        return FIXED, value  # axes, shapes, flags, dtypes: part of the code

    # -- the engine's calls --------------------------------------------------

    def on_forward(self, cls: type[Function], ctx: Any, args: tuple[Any, ...], out: Tensor, needs: list[bool]) -> None:
        sources = tuple(self.source(a, cls.name, i) for i, a in enumerate(args))
        index = len(self.events)
        self.events.append(("forward", cls, sources, tuple(needs), out.data.shape, out.data.dtype))
        self.outputs[id(out.data)] = index
        self.nodes[out] = index

    def on_backward(self, roots: Any, root_grads: Any, retain_graph: bool, create_graph: bool, inputs: Any) -> None:
        if retain_graph or create_graph or inputs is not None:
            raise RuntimeError(
                "compile: retain_graph, create_graph and mg.autograd.grad are not recorded; "
                "run this step without mg.compile"
            )
        seeds = []
        for r, g in zip(roots, root_grads):
            if r not in self.nodes:
                raise RuntimeError("compile: backward() from a tensor no op of this step made is not recorded")
            if isinstance(g, np.ndarray) and id(g) in self.arg_arrays:
                seeds.append((self.nodes[r], (ARG, self.arg_arrays[id(g)])))
            elif isinstance(g, np.ndarray) and np.all(g == 1):  # dL/dL = 1 (backward() with no grad)
                seeds.append((self.nodes[r], (FIXED, g.copy())))
            else:
                raise RuntimeError(
                    "compile: backward(grad) with a gradient made inside the step is not recorded; "
                    "pass the gradient to the step as an argument"
                )
        self.events.append(("seed", tuple(seeds)))

    def on_node(self, node: Tensor) -> None:
        ctx: Any = node._ctx
        if node._hooks or any(isinstance(t, Tensor) and t._hooks for t in ctx.inputs):
            raise RuntimeError("compile: tensor hooks (register_hook, retain_grad) are not recorded")
        dests = []
        for i, (t, need) in enumerate(zip(ctx.inputs, ctx.needs_input_grad)):
            if not need:
                continue
            if t._ctx is not None:
                dests.append((i, OUT, self.nodes[t], t.data.dtype))
            elif id(t) in self.arg_tensors:
                dests.append((i, ARG, self.arg_tensors[id(t)], t.data.dtype))
            else:
                dests.append((i, FIXED, t, t.data.dtype))
        self.events.append(("backward", self.nodes[node], tuple(dests)))

    def on_call(self, method: Callable[[], None]) -> None:
        self.events.append(("call", method))


class _Replay:
    """One recorded step as a program over a list of slots, ``env``: replayed by :meth:`run`.

    ``env`` holds the step's arguments' arrays, then the parameters' arrays
    (read again at each replay), then the fixed values, then one slot per op
    output. Each forward reads its arguments from ``env`` with one
    ``itemgetter`` call; each output is let go after its last use, and each
    op's context after its backward, as the eager step does.
    """

    def __init__(self, events: list[tuple[Any, ...]], result: Any, nodes: dict[Tensor, int], n_args: int) -> None:
        self.params: list[Tensor] = []
        slot_of_param: dict[int, int] = {}
        fixed: list[Any] = []
        forwards = [k for k, e in enumerate(events) if e[0] == "forward"]
        # Slots: arguments, parameters, fixed values, then outputs. Parameters and fixed values are
        # numbered first and shifted once all of them are known.
        sources: dict[int, list[tuple[str, int]]] = {}
        for k in forwards:
            spec = []
            for src, where in events[k][2]:
                if src == PARAM:
                    if id(where) not in slot_of_param:
                        slot_of_param[id(where)] = len(self.params)
                        self.params.append(where)
                    spec.append((PARAM, slot_of_param[id(where)]))
                elif src == FIXED:
                    spec.append((FIXED, len(fixed)))
                    fixed.append(where)
                else:
                    spec.append((src, where))
            sources[k] = spec
        first_param = n_args
        first_fixed = first_param + len(self.params)
        first_out = first_fixed + len(fixed)
        out_slot = {k: first_out + i for i, k in enumerate(forwards)}
        self.template: list[Any] = [None] * (first_out + len(forwards))
        self.template[first_fixed:first_out] = fixed
        self.first_param = first_param

        def slot(src: str, where: int) -> int:
            if src == ARG:
                return where
            if src == PARAM:
                return first_param + where
            if src == FIXED:
                return first_fixed + where
            return out_slot[where]

        # When each output slot and each context is used last.
        last_slot: dict[int, int] = {}
        last_ctx: dict[int, int] = {}
        for k, event in enumerate(events):
            if event[0] == "forward":
                for src, where in sources[k]:
                    if src == OUT:
                        last_slot[out_slot[where]] = k
                last_slot.setdefault(out_slot[k], k)
                last_ctx[k] = k
            elif event[0] == "backward":
                last_ctx[event[1]] = k
        self.result = self._result_spec(result, nodes, out_slot)
        for s in self._result_slots(self.result):
            last_slot[s] = len(events)  # kept to the end
        frees_at: list[list[int]] = [[] for _ in events]
        ctx_frees_at: list[list[int]] = [[] for _ in events]
        for s, k in last_slot.items():
            if k < len(events):
                frees_at[k].append(s)
        for j, k in last_ctx.items():
            ctx_frees_at[k].append(j)

        self.program: list[tuple[Any, ...]] = []
        for k, event in enumerate(events):
            frees = (tuple(frees_at[k]), tuple(ctx_frees_at[k]))
            if event[0] == "forward":
                _, cls, _, needs, _, _ = event
                slots = [slot(src, where) for src, where in sources[k]]
                getter = itemgetter(*slots) if slots else None
                self.program.append((FORWARD, cls, getter, len(slots), needs, out_slot[k], k, frees))
            elif event[0] == "seed":
                seeds = tuple((j, (src, where)) for j, (src, where) in event[1])
                self.program.append((SEED, seeds, frees))
            elif event[0] == "backward":
                self.program.append((BACKWARD, event[1], event[2], frees))
            else:
                self.program.append((CALL, event[1], frees))

    @staticmethod
    def _result_spec(result: Any, nodes: dict[Tensor, int], out_slot: dict[int, int]) -> Any:
        if result is None:
            return None
        if isinstance(result, Tensor) and result in nodes:
            return ("tensor", out_slot[nodes[result]])
        if isinstance(result, tuple):
            return ("tuple", tuple(_Replay._result_spec(r, nodes, out_slot) for r in result))
        raise TypeError(
            "compile: the step must return None, a Tensor made by an op in it (e.g. the loss), or a tuple of "
            f"these; it returned a {type(result).__name__}"
        )

    @staticmethod
    def _result_slots(spec: Any) -> list[int]:
        if spec is None:
            return []
        if spec[0] == "tensor":
            return [spec[1]]
        return [s for sub in spec[1] for s in _Replay._result_slots(sub)]

    def run(self, args: tuple[Any, ...]) -> Any:
        """Replay the record on ``args``, with recording off (as backward rules run in the eager walk)."""
        recording = engine._state.grad_enabled
        engine._state.grad_enabled = False
        try:
            return self._run(args)
        finally:
            engine._state.grad_enabled = recording

    def _run(self, args: tuple[Any, ...]) -> Any:
        env = self.template.copy()
        for k, a in enumerate(args):
            env[k] = a.data if isinstance(a, Tensor) else a
        first = self.first_param
        for k, p in enumerate(self.params):
            env[first + k] = p.data
        ctxs: dict[int, Any] = {}  # forward event -> its context, until its backward has run
        grads: dict[int, Any] = {}  # forward event -> dL/d(its output), summed over uses
        for op in self.program:
            kind = op[0]
            if kind is FORWARD:
                _, cls, getter, n, needs, out, k, frees = op
                ctx = object.__new__(cls)  # a fresh context, as Function.apply makes
                ctx.needs_input_grad = needs
                if n == 1:
                    data = cls.forward(ctx, getter(env))
                else:
                    data = cls.forward(ctx, *getter(env)) if n else cls.forward(ctx)
                env[out] = data if type(data) is np.ndarray else np.asarray(data)
                ctxs[k] = ctx
            elif kind is BACKWARD:
                _, j, dests, frees = op
                ctx = ctxs[j]
                g = grads.pop(j)
                pgs = ctx.backward(ctx, g)
                if type(pgs) is not tuple:
                    pgs = (pgs,)
                for i, dst, where, dtype in dests:
                    pg = pgs[i]
                    if pg is None:
                        continue
                    if type(pg) is not np.ndarray:  # a numpy scalar, turned into an array as run_backward does
                        pg = np.asarray(pg)
                    if pg.dtype is not dtype and pg.dtype != dtype:
                        pg = pg.astype(dtype)
                    if dst == OUT:
                        grads[where] = grads[where] + pg if where in grads else pg
                        continue
                    leaf = args[where] if dst == ARG else where
                    if leaf.grad is None and engine.owns_array(pg, g, pgs):
                        leaf.grad = pg  # the same choice as run_backward: a new array becomes .grad as it is
                    else:
                        _accumulate(leaf, pg)
            elif kind is SEED:
                _, seeds, frees = op
                for j, (src, where) in seeds:
                    grads[j] = args[where].data if src == ARG and isinstance(args[where], Tensor) else (
                        args[where] if src == ARG else where
                    )
            else:  # the optimizer's (or the model's) step() or zero_grad()
                _, method, frees = op
                method()
            slots, contexts = frees
            for s in slots:
                env[s] = None
            for j in contexts:
                del ctxs[j]
        return self._build(self.result, env)

    def _build(self, spec: Any, env: list[Any]) -> Any:
        if spec is None:
            return None
        if spec[0] == "tensor":
            return Tensor(env[spec[1]])
        return tuple(self._build(s, env) for s in spec[1])


def _signature(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """What a record depends on: each argument's kind, shape and dtype (and requires_grad), and grad mode."""
    key: list[Any] = [engine._state.grad_enabled]
    for a in args:
        if isinstance(a, Tensor):
            key.append(("tensor", a.data.shape, a.data.dtype, a.requires_grad))
        elif isinstance(a, np.ndarray):
            key.append(("array", a.shape, a.dtype))
        else:
            raise TypeError(
                f"compile: the step's arguments must be Tensors or numpy arrays, got a {type(a).__name__}; "
                "fixed values belong in the step's code"
            )
    return tuple(key)


class CompiledStep:
    """A training step that is recorded once per argument shape and replayed after (see :func:`compile`)."""

    def __init__(self, step: Callable[..., Any]) -> None:
        if not callable(step):
            raise TypeError(f"compile: expected a function, got a {type(step).__name__}")
        self.step = step
        self.records: dict[tuple[Any, ...], _Replay] = {}

    def __call__(self, *args: Any) -> Any:
        """Run the step on ``args``: replay its record for these shapes, or record one (running it eagerly)."""
        key = _signature(args)
        replay = self.records.get(key)
        if replay is not None:
            return replay.run(args)
        if engine._tape is not None:
            raise RuntimeError("compile: a compiled step cannot be called while another one is recording")
        recorder = _Recorder(args)
        engine._tape = recorder
        try:
            result = self.step(*args)
        finally:
            engine._tape = None
        self.records[key] = _Replay(recorder.events, result, recorder.nodes, len(args))
        return result

    def reset(self) -> None:
        """Forget every record (the next call records again): after changing which parameters require grad."""
        self.records.clear()


def compile(step: Callable[..., Any]) -> CompiledStep:
    """Record ``step`` (forward, ``backward()``, optimizer update) once per argument shape; replay it after.

    Replays run the same ops' forward and backward code and the same
    optimizer calls, in the same order, so they give bit-identical results
    to calling ``step`` itself, with less Python around them. The rules are
    in this module's docstring: data reaches the ops through the step's
    arguments, the parameters or other ops; only ops, backward and the
    optimizer's (and the model's) ``zero_grad``/``step`` are replayed. ::

        def train_step(x, y):
            opt.zero_grad()
            loss = mg.nn.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        step = mg.compile(train_step)
        for xb, yb in batches:
            loss = step(mg.Tensor(xb), yb)
    """
    return CompiledStep(step)
