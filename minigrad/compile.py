"""A captured training step: record the ops of one step once, then replay them (opt-in).

``step = mg.compile(train_step)`` returns a callable with ``train_step``'s
arguments. The first call with given argument shapes runs ``train_step`` as
usual (eagerly) while recording, in order, every op's ``forward`` call, the
``backward`` calls of ``loss.backward()`` with where each gradient went, and
the optimizer's ``zero_grad()`` and ``step()``. The second call with those
shapes records again, to confirm: the same ops in the same order, on the
same kinds of inputs, with the same fixed values (a number computed from
the data in Python, or a Python branch on it, changes them, and the call
raises; see the rules below). Later calls replay the record: the same numpy computations run on the new
arguments' arrays, in the same order, so the results are bit-identical to
the eager step's; what is skipped is the Python around them (modules,
Tensor objects, the graph, the backward walk's sorting and checks). New
shapes (the last, shorter batch) or dtypes record a new version, kept beside
the first.

Each record is turned into the source text of one Python function,
straight-line code with a few lines per event, compiled once with Python's
``compile()``: a replay calls each op's ``forward`` and ``backward`` and the
optimizer's methods directly, with no loop over the record and no lookups
of its own. The ops that dominate an MLP's step (``linear``, ``relu``,
``cross_entropy``) and SGD's update are written out instead, as the numpy
calls of their code with ``out=`` arrays the replay keeps from one call to
the next, so a replayed step allocates almost nothing
(:mod:`minigrad._written_out` says when, and how a ``.grad`` you keep is
never overwritten). The code can be read:

    for replay in step.records.values():  # one per argument shapes
        print(replay.source)

This is a speed device, not how minigrad works: the eager loop is the one to
read and to learn from. It is the idea of tinygrad's TinyJit and of CUDA
graphs, at the level of minigrad's ops.

The rules, since only the record is replayed:

- Array data must reach the ops through the step's arguments (Tensors or
  numpy arrays, alone or inside a tuple or list such as the index
  ``(rows, y)``), the model's parameters and buffers (each read as ``.data``
  at every replay, frozen ones included), other ops, or what minigrad itself
  derives from these, which a replay derives again: a cast to a tensor's
  dtype (a float64 argument into float32 ops, ``backward(grad)``), a whole
  view (``x.detach()``, ``Tensor(x)``) and a mask (``x > 0``, ``m & n``,
  ``~m``). An array made from the arguments by other code inside the step
  would be stale on replay, so recording refuses it (except 0-d constants:
  the numbers written in the code, as in ``2 * x``). Dropout's mask is such
  an array, and BatchNorm1d in training mode updates its running statistics
  outside the ops: both are refused while recording. Freezing or unfreezing
  a parameter, giving it a new array (one of another dtype or shape matters
  to every op), or a module whose mode the step read (Dropout, BatchNorm1d)
  being in another mode makes the next call record again. An op whose
  output shape depends on the data (``x[mask]``) raises in a replay that
  gives it another shape.
- Other Python in the step (printing, ``loss.item()``) runs only while
  recording (the first two calls); a step that reads a tensor's value with
  ``item()`` or ``bool()`` is told so once, with a warning naming the line. A number it computes from the data and
  passes to an op (``loss * loss.item()``) would be frozen into the replay,
  as would one path of a Python ``if`` on the data: when such a value or
  path differs between the first two calls, the second records something
  else and raises (after running eagerly, so its own results are right);
  use tensor ops instead (``loss * loss.detach()``). The second call also
  checks that the step's own Python changed no parameter's values or
  ``.grad``, no optimizer hyperparameter and no argument between minigrad's
  calls (``W.data -= lr * W.grad``, ``W.grad *= 0.5``, ``opt.lr = ...`` or
  ``x.data /= 4`` in the step raise), no fixed 0-d array or index list
  after an op read it, and no other parameter, buffer or
  tensor at all (an average of the weights kept in the step raises), since a replay
  would skip it. What two calls cannot show is
  frozen unnoticed: a value or branch that comes out the same on both
  (a rounded number, ``if math.isfinite(loss.item())`` on two finite
  losses), a counter (``opt.step()`` on every third call), a global changed
  later. Keep such logic outside the compiled step (two compiled steps, one
  with ``opt.step()`` and one without, say). A backward that returns None
  for some data is replayed from the record in which gradients reached
  furthest; a replay in which one reaches a node that got none in either
  record raises. What minigrad itself does to a step is replayed: the
  optimizer's ``zero_grad()`` and ``step()`` (``Optimizer.step`` itself, so
  a subclass's ``step()`` around ``super().step()`` is seen as it runs;
  what such a step changes itself raises), the model's ``zero_grad()``,
  a learning-rate scheduler's ``step()``, and ``clip_grad_norm_`` and
  ``clip_grad_value_`` (with the same arguments).
- Hooks, ``retain_graph``, ``create_graph`` and ``mg.autograd.grad`` are
  not recorded: recording raises; use the eager step for them. Neither is
  ``detect_anomaly``, which replays do not apply.
- The step returns None, a Tensor made by an op (the loss), or a tuple of
  these; a replay returns new Tensors (with no graph) holding the new values.
- A replay writes into arrays it keeps between calls, so one compiled step
  must not run in two threads at once (two compiled steps may).
"""

from __future__ import annotations

import builtins
import functools
import gc
import inspect
import keyword
import linecache
import math
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from minigrad import _written_out, engine, ops
from minigrad.engine import Function, Tensor, _accumulate
from minigrad.nn.losses import _class_indices
from minigrad.nn.module import Buffer, Parameter
from minigrad.optim.lr_scheduler import LRScheduler
from minigrad.optim.optimizer import Optimizer

__all__ = ["compile", "CompiledStep"]

# Where an op's argument comes from on replay: a step argument, an op's output, a parameter (read as
# .data at each replay), or a value fixed in the code (a number, an axis, a shape).
ARG, OUT, PARAM, FIXED = "arg", "out", "param", "fixed"
FROZEN = "frozen"  # a parameter that needs no gradient, or a module's buffer: read as .data at each replay
PACK = "pack"  # a tuple or list holding arrays (an index such as (rows, y)): rebuilt at each replay
CAST = "cast"  # an array minigrad cast to another dtype (a float64 argument into float32 ops): cast at each replay
CALL = "call"  # a mask minigrad computed from tensors (x > 0, m & n, ~m): computed again at each replay


class _Recorder:
    """Collects the events of one eager run of the step (engine._tape while it runs).

    Given ``watch`` (the parameters and optimizers of a first record of the
    step), it also checks, at every event, that the step's own Python has
    changed none of them since the previous event, except what that event
    may change: a backward or ``zero_grad()`` the gradients, ``opt.step()``
    the parameters' values, a scheduler the hyperparameters. The step's
    arguments may not change at all, an optimizer's state only in its
    ``step()``, and any other parameter or buffer (found with ``gc``) not
    during the step. A replay runs only the events, so such a change
    (``W.data -= lr * W.grad``, ``W.grad *= 0.5``, ``opt.lr = ...``,
    ``x.data /= 4``, an average of the weights) would be silently missing
    from it. The first change found is kept in :attr:`violation`.
    """

    def __init__(self, args: tuple[Any, ...], watch: tuple[list[Tensor], list[Optimizer]] | None = None) -> None:
        self.watch = watch
        self.violation: str | None = None
        # The arguments' arrays, by position: a replay reads them as they were passed, so the step may not change them.
        self._arg_arrays = [(k, a.data if isinstance(a, Tensor) else a) for k, a in enumerate(args)
                            if isinstance(a, (Tensor, np.ndarray))]
        if watch is not None:
            self._after = "the start of the step"  # the last event, and what it may change
            self._may_change: frozenset[str] = frozenset()
            self._state = self._snapshot()
            self._state_copies = self._states()
            # Every other parameter, buffer and leaf tensor that exists (a model's average, a target network): no
            # event of the step may change them, so they are compared once, at its end. (gc finds the deep copies
            # too.) A leaf tensor over the memory of what the step may change (W.detach(), Tensor(W.grad), an
            # optimizer's buffer) changes with it, and the arguments are checked at every event instead.
            params, optimizers = watch
            skipped = {id(p) for p in params} | {id(a) for a in args if isinstance(a, Tensor)}
            moving = [p.data for p in params] + [p.grad for p in params if p.grad is not None]
            moving += [v for opt in optimizers for st in opt.state for v in st.values() if isinstance(v, np.ndarray)]
            moving_memory = {id(_memory_of(a)) for a in moving}
            self._others = [(t, t.data, t.data.copy()) for t in gc.get_objects()
                            if isinstance(t, Tensor) and id(t) not in skipped
                            and (isinstance(t, (Parameter, Buffer))
                                 or (t._ctx is None and id(_memory_of(t.data)) not in moving_memory))]
        self._stepping = False  # whether the running call is an optimizer's step()
        self._depth = 0  # how many minigrad calls (opt.step(), clipping, ...) are running: only the outermost counts
        #: The modules whose mode the step read (Dropout, BatchNorm1d), with the mode it read first.
        self.modes: dict[int, tuple[Any, bool]] = {}
        #: Where the step first read a tensor's value into Python (t.item() at file:line), if it did.
        self.read: str | None = None
        self.events: list[tuple[Any, ...]] = []
        self.arg_arrays: dict[int, int] = {}  # id(array) -> position of the step argument holding it
        #: The values of the fixed 0-d arrays, lists and dicts the ops read, in order, as they were when read: the
        #: second call's must be the first's (a replay reads the live object, as the eager step does).
        self.fixed_values: list[tuple[Any, Any]] = []  # (the object, its values as read)
        self.arg_tensors: dict[int, int] = {}  # id(Tensor) -> position, for gradients of Tensor arguments
        for k, a in enumerate(args):
            if isinstance(a, Tensor):
                self.arg_arrays[id(a.data)] = k
                self.arg_tensors[id(a)] = k
            elif isinstance(a, np.ndarray):
                self.arg_arrays[id(a)] = k
        self.outputs: dict[int, int] = {}  # id(array an op made) -> its forward event's index
        #: id(array minigrad made by casting another) -> (the array it cast, the new one, kept so ids stay unique,
        #: and whether the cast was checked to be exact: integers into the default float32).
        self.casts: dict[int, tuple[np.ndarray, np.ndarray, bool]] = {}
        #: id(mask minigrad computed) -> (the numpy function, its inputs, the mask, kept so ids stay unique).
        self.masks: dict[int, tuple[Callable[..., Any], tuple[Any, ...], np.ndarray]] = {}
        self.nodes: dict[Tensor, int] = {}  # Tensor an op made -> its forward event's index
        #: Each op's output array and a copy of its values when the op made it: a change the step makes with
        #: numpy (h.data *= 2, or through a view) is one a replay would not repeat, so it is refused.
        self._made: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        #: The dL/dL = 1 arrays that backward() made when given no gradient, by id.
        self._unit_seeds: dict[int, np.ndarray] = {}
        #: id of the memory of every parameter and buffer an op read: an op's output over it (W.T) is a view of it.
        self._param_memory: set[int] = set()

    def on_derived(self, result: np.ndarray, fn: Callable[..., Any], inputs: tuple[Any, ...]) -> None:
        """minigrad computed the mask ``result = fn(*inputs)`` (a comparison, & | ^ ~): no op, but replayable."""
        self.masks[id(result)] = (fn, inputs, result)

    def on_unit_seed(self, g: np.ndarray) -> None:
        """``backward()`` without a gradient made ``g``, dL/dL = 1 (kept so that ids stay unique)."""
        self._unit_seeds[id(g)] = g

    def on_cast(self, original: np.ndarray, cast: np.ndarray, checked: bool) -> None:
        """minigrad made ``cast`` from ``original`` (``Tensor(x, dtype=...)``, a constant taking a tensor's dtype).

        ``checked``: integer data cast to the default float32 after a check that it is exact, which a replay
        makes again.
        """
        self.casts[id(cast)] = (original, cast, checked)

    def _traced(self, array: np.ndarray) -> bool:
        """Whether ``array`` is a step argument's, an op's output or derived from them (else, code's constant)."""
        return any(id(array) in known for known in (self.arg_arrays, self.outputs, self.casts, self.masks))

    def _derived(self, array: np.ndarray, op: str, i: int | str) -> tuple[str, Any] | None:
        """The source of an array minigrad derived from another: a cast of it, a mask, or a whole view (detach()).

        A cast or a mask is computed again where the op reads it, so it must still equal what its inputs give
        then (else the step changed it in place, or changed its inputs since), and it may not read a parameter,
        which an optimizer step in between would change in the replay.
        """
        if id(array) in self.casts:
            original, _, checked = self.casts[id(array)]
            if original.ndim == 0 and not self._traced(original):  # a 0-d array of the code (beta = np.array(0.1))
                # A replay casts the live array again, as the eager step does (the step's caller may anneal it
                # in place between calls); its value as read is kept, as for any 0-d constant.
                self.fixed_values.append((original, original.copy()))
                return CAST, ((FIXED, original), array.dtype, checked)
            derived: tuple[str, Any] = (CAST, (self.source(original, op, i), array.dtype, checked))
            read: list[Any] = [original]
            again = np.asarray(original, dtype=array.dtype)
        elif id(array) in self.masks:
            fn, inputs, _ = self.masks[id(array)]
            derived = (CALL, (fn, tuple(self.source(v, op, i) for v in inputs)))
            read = [v.data if isinstance(v, Tensor) else v for v in inputs]
            again = fn(*read)
        else:
            base = array.base
            if isinstance(base, np.ndarray) and _whole_view(array, base):  # x.detach(), Tensor(x): read anew
                if id(base) in self.arg_arrays:
                    return ARG, self.arg_arrays[id(base)]
                if id(base) in self.outputs:
                    return OUT, self.outputs[id(base)]
            return None
        what = "a cast" if derived[0] == CAST else "a mask"
        over_parameter = any(isinstance(a, np.ndarray) and id(_memory_of(a)) in self._param_memory for a in read)
        if _reads_parameter(derived) or over_parameter:  # (W > 0, or W.T > 0: an op's output that shows W's memory)
            raise RuntimeError(
                f"compile: input {i} of {op} is {what} of a parameter; a replay would compute it where {op} "
                "reads it, after anything that changed the parameter since (an optimizer step). Compute it from "
                "an op's output instead (W * 1.0 > 0), which the replay keeps as it was, or run this step without "
                "mg.compile"
            )
        if not np.array_equal(again, array, equal_nan=array.dtype.kind == "f"):
            raise RuntimeError(
                f"compile: input {i} of {op} is {what} that the step changed in place, or whose inputs it changed "
                "since; a replay would compute it anew. Make it with ops, or run this step without mg.compile"
            )
        return derived

    def source(self, value: Any, op: str, i: int | str) -> tuple[str, Any]:
        """Where argument ``i`` of ``op`` comes from: a step argument, an op's output, or a fixed value."""
        if isinstance(value, Tensor):
            array = value.data
            if id(array) in self.arg_arrays:
                return ARG, self.arg_arrays[id(array)]
            if id(array) in self.outputs:
                return OUT, self.outputs[id(array)]
            if value in self.nodes:  # an op's output given another array by the step (h.data = ...)
                raise self._given_new_array(self.nodes[value], f"{op} read it as input {i}")
            if value.requires_grad:  # a parameter: its current array at each replay
                self._param_memory.add(id(_memory_of(array)))
                return PARAM, value
            if isinstance(value, (Parameter, Buffer)):  # frozen, or a module's buffer: read at each replay
                self._param_memory.add(id(_memory_of(array)))
                return FROZEN, value
            owner = getattr(value, "_base", None)
            if isinstance(owner, Tensor) and _whole_view(array, owner.data):
                return self.source(owner, op, i)  # W.detach(), Tensor(W): W's values, read at each replay
            derived = self._derived(array, op, i)
            if derived is not None:
                return derived
            if array.ndim == 0:  # a number written in the step's code, as in 2 * x
                # Its value as read is kept too: the step may change the array in place (temp[...] *= 0.5), and
                # two records holding the one live array would look the same.
                self.fixed_values.append((array, array.copy()))
                return FIXED, array
            raise RuntimeError(
                f"compile: input {i} of {op} (shape {value.shape}) is a tensor that is not a step argument, a "
                "parameter, a buffer or an op's output: made inside the step by code that is not an op (as "
                "Dropout's mask in training mode), or a constant made outside it; a replay would reuse its old "
                "values. Pass it to the step as an argument, make a constant an nn.Buffer of the model, or run "
                "the step without mg.compile (or, for Dropout, compile only steps in eval mode)"
            )
        if isinstance(value, np.ndarray):
            if id(value) in self.arg_arrays:
                return ARG, self.arg_arrays[id(value)]
            if id(value) in self.outputs:
                return OUT, self.outputs[id(value)]
            derived = self._derived(value, op, i)
            if derived is not None:
                return derived
            hint = ""
            if op == "getitem":  # an index: np.arange(n) in logp[np.arange(n), y], or a Tensor index, cast
                hint = ("; an index such as np.arange(n) can also be written range(n), and a Tensor index is cast "
                        "to a new integer array, so pass an integer numpy array instead")
            raise RuntimeError(
                f"compile: argument {i} of {op} (an array of shape {value.shape}) was made inside the step; "
                f"pass it to the step as an argument (or run the step without mg.compile){hint}"
            )
        if isinstance(value, (tuple, list, dict)) and _holds_array(value):
            # An index such as x[rows, y]: each array in it comes from where an array passed alone may come
            # from (a step argument, read at each replay, or an op's output), and the container is rebuilt.
            if isinstance(value, dict) or _holds_array(value, Tensor):
                raise RuntimeError(
                    f"compile: argument {i} of {op} is a {type(value).__name__} holding "
                    f"{'a Tensor' if _holds_array(value, Tensor) else 'an array'}; pass each array or Tensor to "
                    "the op as an argument of its own (or run the step without mg.compile)"
                )
            where = f"{i} (item {{}} of its {type(value).__name__})"
            return PACK, (type(value), tuple(self.source(v, op, where.format(j)) for j, v in enumerate(value)))
        if isinstance(value, (list, dict, tuple)):  # (its values as read, compared as the 0-d arrays' are: a tuple
            self.fixed_values.append((value, _values_of(value)))  # may hold a list, as x[:, columns] does)
        return FIXED, value  # axes, shapes, flags, dtypes: part of the code

    # -- what the step's own Python changed between events -------------------

    def _snapshot(self) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]], list[Any]]:
        """Copies of the watched parameters' arrays and gradients, the optimizers' hyperparameters and the arguments."""
        assert self.watch is not None
        params, optimizers = self.watch
        tensors = [(p.data, p.data.copy(), p.grad, None if p.grad is None else p.grad.copy()) for p in params]
        return tensors, [opt.hyperparameters for opt in optimizers], [a.copy() for _, a in self._arg_arrays]

    def _states(self) -> list[list[Any]]:
        """Copies of the watched optimizers' states: step count and buffers (only their step() changes them)."""
        assert self.watch is not None
        optimizers = self.watch[1]
        return [[opt.step_count] + [{k: np.copy(v) for k, v in st.items()} for st in opt.state] for opt in optimizers]

    def _check_states(self, event: str) -> None:
        """Before an optimizer's step() and at the end: the states as the last step() left them?"""
        if self.watch is None:
            return
        if self.violation is None:
            for opt, now, before in zip(self.watch[1], self._states(), self._state_copies):
                if not _same(now, before):
                    self.violation = (
                        f"before {event}, the step's code changed {type(opt).__name__}'s state (a buffer such as "
                        "the velocity, or a step count) since its last step() or the start of the step"
                    )
                    break

    def check(self, event: str, may_change: frozenset[str] = frozenset()) -> None:
        """Before ``event``: compare with the snapshot taken after the last event; then take a new one."""
        if self.watch is None:
            return
        if self.violation is None:
            params, optimizers = self.watch
            tensors, hypers, arg_values = self._state
            allowed = self._may_change
            for (k, a), before in zip(self._arg_arrays, arg_values):
                if not _same(a, before):
                    self.violation = (
                        f"between {self._after} and {event}, the step's code changed argument {k} in place "
                        "(a replay reads the array as it was passed)"
                    )
                    break
            for p, (data, values, grad, grad_values) in zip(params, tensors):
                if self.violation is not None:
                    break
                what = None
                data_changed = p.data is not data or not _same(p.data, values)
                grad_changed = p.grad is not grad or (grad is not None and not _same(grad, grad_values))
                if data_changed and "data" not in allowed:
                    what = f"the values of a parameter of shape {values.shape}"
                elif grad_changed and "grad" not in allowed:
                    what = f"the .grad of a parameter of shape {values.shape}"
                if what is not None:
                    self.violation = f"between {self._after} and {event}, the step's code changed {what}"
                    break
            if self.violation is None and "hyper" not in allowed:
                for opt, before in zip(optimizers, hypers):
                    now = opt.hyperparameters
                    changed = [k for k in now if not _same(now[k], before[k])]
                    if changed:
                        self.violation = (
                            f"between {self._after} and {event}, the step's code set {type(opt).__name__}'s "
                            f"{changed[0]} (from {before[changed[0]]!r} to {now[changed[0]]!r})"
                        )
                        break
        self._after, self._may_change = event, may_change
        if self.violation is None:
            self._state = self._snapshot()

    # -- the engine's calls --------------------------------------------------

    def finish(self) -> None:
        """At the end of the step: the last check, and the parameters and buffers no event may change."""
        self.check("the end of the step")
        self._check_states("the end of the step")
        self._check_made("the end of the step")
        if self.violation is None and any(not _same(_values_of(obj), as_read) for obj, as_read in self.fixed_values):
            # A replay reads each fixed array or list as it is then: one the step changed after an op read it
            # (scratch = np.array(0.5) ... scratch[...] = 0) would give the replay the changed values.
            self.violation = ("during the step, its code changed a fixed array or list after an op read it (a "
                              "0-d array used as a number, an index list); a replay would read it as changed")
        if self.watch is None or self.violation is not None:
            return
        for t, data, values in self._others:
            if t.data is not data or not _same(t.data, values):
                kind = "parameter" if isinstance(t, Parameter) else "buffer" if isinstance(t, Buffer) else "tensor"
                self.violation = (
                    f"during the step, its code changed the values of a {kind} of shape {values.shape} that none "
                    "of its ops reads and none of its optimizers updates (an average of the weights, say)"
                )
                return

    def on_read(self, how: str) -> None:
        if self.read is None:
            self.read = f"{how} at {engine._user_frame()}"

    def on_mode(self, module: Any) -> None:
        self.modes.setdefault(id(module), (module, module._training))

    def before_forward(self, cls: type[Function]) -> None:
        # What the op's forward changes in place (a buffer) is redone by the replay, which calls it too.
        self.check(f"the op {cls.name}", frozenset({"data"}))

    def on_forward(self, cls: type[Function], ctx: Any, args: tuple[Any, ...], out: Tensor, needs: list[bool]) -> None:
        self.check(f"the end of the op {cls.name}")
        sources = tuple(self.source(a, cls.name, i) for i, a in enumerate(args))
        self._check_made(f"the op {cls.name} read it", _out_reads(sources))
        index = len(self.events)
        info = tuple(
            (a.data.shape, a.data.dtype) if isinstance(a, Tensor)
            else (a.shape, a.dtype) if isinstance(a, np.ndarray) else None
            for a in args
        )  # each argument's shape and dtype, for the ops written out
        self.events.append(("forward", cls, sources, tuple(needs), out.data.shape, out.data.dtype, info))
        self.outputs[id(out.data)] = index
        self.nodes[out] = index
        # Not an output that is a view of an input (W.T, W.reshape(...)): it shares a parameter's memory, which
        # opt.step() changes as a replay does, or another output's, whose copy covers it.
        if not any(isinstance(a, Tensor) and np.may_share_memory(out.data, a.data) for a in args):
            self._made[index] = (out.data, out.data.copy())

    def _check_made(self, where: str, ops: Iterable[int] | None = None) -> None:
        """Refuse an op's output whose values the step changed with numpy since the op made them.

        ``ops`` None: every output, and every op's output tensor must still hold the array its op made.
        """
        if ops is None:
            for node, k in self.nodes.items():
                if self.outputs.get(id(node.data)) != k:
                    raise self._given_new_array(k, where)
        for k in self._made if ops is None else ops:
            if k not in self._made:
                continue
            array, values = self._made[k]
            if not _same(array, values):
                raise RuntimeError(
                    f"compile: the output of a {self.events[k][1].name} (shape {array.shape}) was changed in place "
                    f"by the step's code before {where} (through .data, or a view such as h.detach()), "
                    "which a replay would not repeat; compute the new values with ops (h = h * 2.0), or run this "
                    "step without mg.compile"
                )

    def _given_new_array(self, k: int, where: str) -> RuntimeError:
        """The refusal of op ``k``'s output, given a new array by the step's code before ``where``."""
        return RuntimeError(
            f"compile: the output of a {self.events[k][1].name} was given a new array by the step's code "
            f"(h.data = ...) before {where}, which a replay would not repeat; compute the new values with ops "
            "(h = h * 2.0), or run this step without mg.compile"
        )

    def on_backward(self, roots: Any, root_grads: Any, retain_graph: bool, create_graph: bool, inputs: Any) -> None:
        self.check("backward()", frozenset({"grad"}))
        self._check_made("backward(), which reads the values the ops saved")
        if retain_graph or create_graph or inputs is not None:
            raise RuntimeError(
                "compile: retain_graph, create_graph and mg.autograd.grad are not recorded; "
                "run this step without mg.compile"
            )
        seeds: list[tuple[int, tuple[str, Any]]] = []
        for r, g in zip(roots, root_grads):
            if r not in self.nodes:
                raise RuntimeError("compile: backward() from a tensor no op of this step made is not recorded")
            if isinstance(g, np.ndarray) and id(g) in self.arg_arrays:
                seeds.append((self.nodes[r], (ARG, self.arg_arrays[id(g)])))
            elif isinstance(g, np.ndarray) and id(g) in self.casts:  # backward(grad) cast to the output's dtype
                seeds.append((self.nodes[r], self.source(g, "backward", "grad")))
            elif isinstance(g, np.ndarray) and id(g) in self._unit_seeds:  # dL/dL = 1 (backward() with no grad)
                seeds.append((self.nodes[r], (FIXED, g.copy())))
            elif isinstance(g, np.ndarray) and g.ndim == 0 and g.base is None and not self._traced(g):
                # A number written in the code (backward(1.0), backward(np.float32(2))): fixed, as the 2 in 2 * x
                # is, its value as read kept too.
                self.fixed_values.append((g, g.copy()))
                seeds.append((self.nodes[r], (FIXED, g)))
            else:
                raise RuntimeError(
                    "compile: backward(grad) with a gradient made inside the step (other than a number written in "
                    "the code) is not recorded; pass the gradient to the step as an argument, or call backward() "
                    "with no argument for dL/dL = 1"
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
            if t._ctx is not None and t not in self.nodes:  # made by ops before the step: no record reaches them
                raise RuntimeError(
                    f"compile: the step reads a tensor of shape {t.shape} that ops made before it (it has a graph), "
                    "so backward() would go on into them, which a replay cannot; use it detached (h.detach()), or "
                    "run those ops inside the step"
                )
            if t._ctx is not None:
                dests.append((i, OUT, self.nodes[t], t.data.dtype))
            elif id(t) in self.arg_tensors:
                dests.append((i, ARG, self.arg_tensors[id(t)], t.data.dtype))
            else:
                dests.append((i, FIXED, t, t.data.dtype))
        self.events.append(("backward", self.nodes[node], tuple(dests)))

    def on_backward_end(self) -> None:
        self.check("the end of backward()")

    def on_call(self, method: Callable[[], None]) -> None:
        self._depth += 1
        if self._depth > 1:  # inside another call (an optimizer wrapping another): the outer one is replayed
            return
        owner = getattr(method, "__self__", None)
        name = getattr(getattr(method, "func", method), "__qualname__", repr(method))
        if isinstance(owner, Optimizer) and method.__name__ == "step":
            may_change = frozenset({"data"})
            self._check_states(f"{name}()")
            self._stepping = True
        elif isinstance(owner, LRScheduler):
            may_change = frozenset({"hyper"})
        else:  # zero_grad() of an optimizer or a module, gradient clipping
            may_change = frozenset({"grad"})
        self.check(f"{name}()", may_change)
        self._call = name
        if isinstance(owner, LRScheduler):
            # What the schedule's step reads besides its count (base rates, settings): a change the step's code
            # makes to them (sched.base_lr *= 0.5) differs between the two records, and is refused.
            read = {k: v for k, v in owner.state_dict().items() if k not in ("last_epoch", "settings")}
            read["settings"] = owner._settings()  # (the live ones lr_at reads; the state's are those it was built with)
            self.events.append(("call", method, read))
        else:
            self.events.append(("call", method))

    def on_bump(self, tensors: list[Tensor]) -> None:
        """An in-place change through minigrad: refused unless a replayed call (an optimizer's step) makes it."""
        if self._depth == 0 and any(t in self.nodes or isinstance(getattr(t, "_base", None), engine._Memory)
                                    for t in tensors):  # (a parameter's change is the watcher's to find)
            raise RuntimeError(
                "compile: the step changes an op's output in place (nn.init, bump_version on it or on a view of "
                "it), which a replay would not repeat; compute the values with ops instead, or run this step "
                "without mg.compile"
            )

    def on_call_end(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.check(f"the end of {self._call}()")
            if self._stepping and self.watch is not None:  # the states as this step() leaves them
                self._state_copies = self._states()
            self._stepping = False


class _Replay:
    """One recorded step as a Python function generated from its record: :attr:`source` is its text.

    The record becomes straight-line code, a few lines per event, compiled
    once with ``compile()`` into :attr:`run`, so a replay has no dispatch of
    its own to do: no loop over events, no tests of what kind each one is, no
    dictionaries of contexts and gradients. ``print(replay.source)`` shows
    the code (and a traceback through a replay shows its lines). Its locals
    are ``t0`` (a Tensor argument) or ``x0`` (an array argument, or ``t0.data``)
    for the step's arguments, and ``c3``, ``o3`` and ``g3`` for op 3's
    context, output array and gradient dL/d(output). Its globals, listed in
    :attr:`namespace`, are the parameters ``p0, p1, ...`` (each read as
    ``.data`` where it is used, since the optimizer may replace it), the ops'
    classes, fixed values ``k0, k1, ...`` and the optimizer's methods.

    What the record fixes is decided here, once: which array each op reads;
    for each node, which gradient arrives first (``g2 = pg``) and which are
    added to it, in the eager walk's order; which leaf receives a gradient;
    and after which line each array and context is no longer needed
    (``del``), which is never later than in the eager step. What can change
    from one replay to the next is tested as the eager step tests it: whether
    a backward returned None for an input, a numpy scalar or another dtype
    (converted as ``run_backward`` does), whether a node received a gradient
    at all (if not, its backward is skipped), and whether a leaf may keep the
    gradient array as its ``.grad`` (the test of ``engine.run_backward``).
    """

    def __init__(
        self,
        events: list[tuple[Any, ...]],
        result: Any,
        nodes: dict[Tensor, int],
        args: tuple[Any, ...],
        grad_mode: bool,
        shared: tuple[list[np.ndarray], dict[Any, int]] | None = None,
        modes: Iterable[tuple[Any, bool]] = (),
    ) -> None:
        #: The globals of the generated function: helpers, then what the record refers to.
        self.namespace: dict[str, Any] = {
            "engine": engine,
            "ndarray": np.ndarray,
            "new": object.__new__,  # a fresh context, as Function.apply makes
            "Tensor": _wrap,  # (an op's output as a Tensor of its own dtype, as Function.apply makes it)
            "accumulate": _accumulate,
            "asarray": np.asarray,
            "exact_float32": _exact_float32,
            "own": None,  # (set once the kept arrays are known: see _result_source)
            "as_grad": _as_grad,
            # for the ops written out (minigrad._written_out)
            **{f: getattr(np, f) for f in ("matmul", "maximum", "multiply", "greater", "add", "subtract", "exp",
                                           "log", "divide", "empty", "uintp", "asfortranarray")},
            "getrefcount": sys.getrefcount,
            "class_indices": _class_indices,
            "STALE": _written_out.STALE,
            "missing_backward": _missing_backward,
            "other_shape": _other_shape,
        }
        self._names: dict[int, str] = {}  # id(object in the namespace) -> its name there
        self._events = events
        self._modes = list(modes)  # (module, the mode its forward read when recorded)
        #: Whether a second call recorded the same step: only then is this record replayed.
        self.confirmed = False
        forwards = [k for k, e in enumerate(events) if e[0] == "forward"]
        self._op = {k: i for i, k in enumerate(forwards)}  # forward event -> op number (the 3 of c3, o3, g3)
        self._args = args
        self._used_args: set[int] = set()  # Tensor arguments whose array is read (x0 = t0.data)
        self._first: set[int] = set()  # ops that have their first gradient in the current backward pass
        self._backwarded = {self._op[e[1]] for e in events if e[0] == "backward"}
        self._returned = set(_result_ops(result, nodes, self._op))  # ops whose outputs the step returns
        #: What the step returned, as the forward events of its tensors in its structure: a second call must match.
        self.returns = _result_events(result, nodes)
        #: The fixed 0-d arrays, lists and dicts its ops read when recorded, with their values (set by CompiledStep).
        self.fixed_values: list[tuple[Any, Any]] = []
        self._frees_after = self._last_reads(list(self._returned))
        self._forward_of = {i: k for k, i in self._op.items()}  # op number -> its forward event
        self._written: dict[int, str] = {}  # ops written out (minigrad._written_out) -> which kind
        self._buffers: set[str] = set()  # names of the arrays kept from one replay to the next
        self._guards: dict[str, str] = {}  # parameter's name -> the name of the array the record fixed
        self._trained: set[str] = set()  # parameters the ops read (they required grad when recorded)
        self._frozen: set[str] = set()  # frozen parameters the ops read (they did not)
        #: Each parameter's dtype and shape when recorded: a new array of another makes the step record again
        #: (the record casts gradients to the dtype it saw, and its buffers have the shapes it saw).
        self._kinds: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
        self._owned: dict[int, list[bool]] = {}  # op -> per gradient it receives: an array the replay keeps?
        self._shared, self._shared_keys = shared if shared is not None else ([], {})
        self.namespace["shared"] = self._shared

        body: list[str] = []
        for k, event in enumerate(events):
            if event[0] == "forward":
                body += self._forward(k)
            elif event[0] == "seed":
                body += self._seed(k)
            elif event[0] == "backward":
                body += self._backward(k)
            else:
                body += self._call(k)
        params = [f"t{k}" if isinstance(a, Tensor) else f"x{k}" for k, a in enumerate(args)]
        lines = [f"def replay({', '.join(params)}):"]
        changed = [f"{p}.data is not {a}" for p, a in self._guards.items()]
        changed += [f"{p}.data.dtype is not {self._bind(dtype, 'dt')} or {p}.data.shape != {shape!r}"
                    for p, (dtype, shape) in sorted(self._kinds.items()) if p not in self._guards]
        changed += [f"not {p}.requires_grad" for p in sorted(self._trained)]
        changed += [f"{p}.requires_grad" for p in sorted(self._frozen)]
        # A hook registered since the record would be skipped by the replay: record again (which refuses it).
        changed += [f"{p}._hooks" for p in sorted(self._trained)]
        changed += [f"t{k}._hooks" for k, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
        # A module in another mode than when recorded (Dropout, BatchNorm1d): its ops may be others: record again.
        changed += [f"{self._bind(m, 'm')}._training is not {mode}" for m, mode in self._modes]
        if changed:
            lines.append(f"    if {' or '.join(changed)}:")
            lines.append("        return STALE  # a new array, (un)freezing, hooks, another mode: record again")
        lines += [f"    x{k} = t{k}.data" for k in sorted(self._used_args) if isinstance(args[k], Tensor)]
        lines.append("    engine._state.grad_enabled = False  # ops run with recording off, as in the eager walk")
        lines.append("    try:")
        lines += ["        " + line for line in body]
        written = set(self._written) if self._buffers else None
        if written is not None:  # (see _result_source: a returned view of a kept array is copied, no other)
            self.namespace["own"] = functools.partial(_own_array, self.namespace, self._buffers, self._shared)
        lines.append(f"        return {_result_source(result, nodes, self._op, written)}")
        lines.append("    finally:")
        lines.append(f"        engine._state.grad_enabled = {grad_mode}  # the mode of the record (part of its key)")
        #: The generated function's text.
        self.source = "\n".join(lines) + "\n"
        global _count
        _count += 1
        filename = f"<mg.compile replay {_count}>"
        linecache.cache[filename] = (len(self.source), None, self.source.splitlines(True), filename)  # tracebacks
        exec(builtins.compile(self.source, filename, "exec"), self.namespace)
        #: The replay: call it with the step's arguments.
        self.run: Callable[..., Any] = self.namespace.pop("replay")

    @property
    def kept_nbytes(self) -> int:
        """Bytes of the arrays this replay alone keeps from one call to the next (outputs, inner gradients)."""
        return sum(self.namespace[name].nbytes for name in self._buffers)

    def _last_reads(self, kept: list[int]) -> dict[int, list[int]]:
        """For each forward event, the ops whose outputs no later forward reads (but not ``kept``: the results)."""
        last: dict[int, int] = {}  # op -> the last forward event that reads its output (or makes it)
        for k, event in enumerate(self._events):
            if event[0] == "forward":
                last.setdefault(self._op[k], k)
                for m in _out_reads(event[2]):
                    last[self._op[m]] = k
        # An output a backward's seed reads (t.backward(h > 0)) is kept too: the seed comes after the forwards.
        seeded = {self._op[m] for e in self._events if e[0] == "seed" for m in _out_reads([s for _, s in e[1]])}
        frees: dict[int, list[int]] = {}
        for i, k in last.items():
            if i not in kept and i not in seeded:
                frees.setdefault(k, []).append(i)
        return frees

    def _forward(self, k: int) -> list[str]:
        """Lines of one forward: a fresh context, the op's forward on its inputs' arrays, then what is freed."""
        _, cls, sources, needs, shape, dtype, info = self._events[k]
        i = self._op[k]
        written = _written_out.forward(self, k)
        if written is not None:
            frees = [f"o{m}" for m in self._frees_after.get(k, [])]
            return written + ([f"del {', '.join(frees)}"] if frees else [])
        inputs = [f"c{i}"] + [self.input(source) for source in sources]
        name = self._bind(cls, cls.__name__)
        if "inputs" in getattr(getattr(cls.backward, "__code__", None), "co_names", ()):
            # A backward that reads ctx.inputs (Function.apply's Tensors) gets them: the step's Tensor arguments
            # and the parameters themselves, other ops' outputs as new Tensors with no graph.
            tensors = [self._input_tensor(source) for source in sources]
            inputs_line = f"c{i}.inputs = ({''.join(t + ', ' for t in tensors)})"
        else:
            inputs_line = ""
        lines = [
            f"# op {i}: {cls.name} -> {tuple(shape)} {dtype}",
            f"c{i} = new({name})",
            f"c{i}.needs_input_grad = {tuple(needs)!r}",
            *([inputs_line] if inputs_line else []),
            f"o{i} = {name}.forward({', '.join(inputs)})",
            f"if type(o{i}) is not ndarray: o{i} = asarray(o{i})  # a numpy scalar, as Function.apply turns it",
            f"if o{i}.shape != {tuple(shape)!r}: other_shape({i}, {cls.name!r}, {tuple(shape)!r}, o{i}.shape)",
        ]
        frees = [f"o{m}" for m in self._frees_after.get(k, [])]
        if i not in self._backwarded:  # no backward will read this context
            frees.append(f"c{i}")
        if frees:
            lines.append(f"del {', '.join(frees)}")
        return lines

    def _seed(self, k: int) -> list[str]:
        """Lines that start a backward pass: every node it reaches starts with no gradient, the roots with theirs."""
        seeds = self._events[k][1]
        reached = [self._op[j] for j, _ in seeds]
        for event in self._events[k + 1 :]:
            if event[0] == "seed":
                break
            if event[0] == "backward":
                reached += [self._op[where] for _, dst, where, _ in event[2] if dst == OUT]
        seeded = {self._op[j] for j, _ in seeds}
        lines = ["# backward(): the roots' gradients (dL/dL = 1)"]
        rest = [f"g{i}" for i in dict.fromkeys(reached) if i not in seeded]
        if rest:
            lines.append(f"{' = '.join(rest)} = None")
        self._first = set()
        self._owned = {}
        for j, source in seeds:
            value = self.input(source)  # a step argument (cast, if backward() cast it), or dL/dL = 1
            if source[0] == FIXED:  # a new 1 for every pass, as backward() makes: a backward may scale its g in place
                value += ".copy()"
            i = self._op[j]
            lines.append(f"g{i} = g{i} + {value}" if i in self._first else f"g{i} = {value}")
            self._first.add(i)
            self._owned.setdefault(i, []).append(False)
        return lines

    def _backward(self, k: int) -> list[str]:
        """Lines of one node's backward: its gradients, each checked, then summed into a node or given to a leaf."""
        _, j, dests = self._events[k]
        i = self._op[j]
        cls = self._events[j][1]
        name = self._bind(cls, cls.__name__)
        written = _written_out.backward(self, k, i)
        if written is not None:
            return [
                f"# backward of op {i}: {cls.name}, written out",
                f"if g{i} is not None:",
                *("    " + line for line in written),
                f"    del g{i}",
            ]
        block = [f"pgs = {name}.backward(c{i}, g{i})", f"del c{i}", "if type(pgs) is not tuple: pgs = (pgs,)"]
        info = self._events[j][6]
        for pos, dst, where, dtype in dests:
            dt = self._bind(dtype, str(dtype))
            shape = tuple(info[pos][0])  # the input's: every gradient is checked against it, as run_backward does
            block += [
                f"pg = pgs[{pos}]",
                "if pg is not None:",
                f"    if type(pg) is not ndarray or pg.dtype is not {dt} or pg.shape != {shape!r}:",
                f"        pg = as_grad(pg, {dt}, {shape!r}, {cls.name!r}, {pos})",
            ]
            if dst == OUT and self._op[where] not in self._backwarded:
                # No gradient reached this input when the step was recorded, so the record has no backward for
                # it: a gradient now would be dropped, and the gradients below it with it.
                block.append(f"    missing_backward({i}, {self._op[where]}, {cls.name!r})")
                continue
            if dst == OUT:  # an inner node: its gradients summed over its uses
                m = self._op[where]
                self._owned.setdefault(m, []).append(False)
                if m in self._first:
                    block.append(f"    g{m} = pg if g{m} is None else g{m} + pg")
                else:
                    block.append(f"    g{m} = pg")
                    self._first.add(m)
            else:
                leaf = f"t{where}" if dst == ARG else self._bind(where, "p")
                # run_backward's test of whether a leaf may keep pg: pg is an array (the line above made
                # sure), no view, and nothing else holds it or its tuple (g{i}, the tuple twice, a user's
                # module), as the reference counts of this code's own shape show.
                block.append(
                    f"    if {leaf}.grad is None and pg.base is None and getrefcount(pg) <= {_ALONE_IN_REPLAY[0]} "
                    f"and getrefcount(pgs) <= {_ALONE_IN_REPLAY[1]}: {leaf}.grad = pg"
                )
                block.append(f"    else: accumulate({leaf}, pg)")
        block.append(f"del g{i}, pgs, pg")
        return [
            f"# backward of op {i}: {cls.name}",
            f"if g{i} is not None:  # (None if no gradient reached op {i}: then, as in the eager walk, skipped)",
            *("    " + line for line in block),
        ]

    # -- helpers of minigrad._written_out ------------------------------------

    def input(self, source: tuple[str, Any]) -> str:
        """The expression of an op's input in the replay: a step argument, an op's output, a parameter, a value."""
        src, where = source
        if src == ARG:
            self._used_args.add(where)
            return f"x{where}"
        if src == OUT:
            return f"o{self._op[where]}"
        if src == PARAM:
            name = self._bind(where, "p")
            self._trained.add(name)
            self._kinds[name] = (where.data.dtype, where.data.shape)
            return f"{name}.data"
        if src == FROZEN:
            name = self._bind(where, "frozen")
            self._frozen.add(name)
            self._kinds[name] = (where.data.dtype, where.data.shape)
            return f"{name}.data"
        if src == PACK:  # a tuple (or list) holding arrays, rebuilt from where each comes from
            kind, parts = where
            items = "".join(self.input(part) + ", " for part in parts)
            return f"({items})" if kind is tuple else f"[{items}]"
        if src == CAST:  # cast as minigrad cast it (np.asarray(x, dtype)), from where it comes from
            original, dtype, checked = where
            if checked:  # integers into float32, checked to be exact as Tensor(x) checks them
                return f"exact_float32({self.input(original)})"
            return f"asarray({self.input(original)}, {self._bind(dtype, 'dt')})"  # (np.asarray, in the namespace)
        if src == CALL:  # a mask, computed as minigrad computed it
            fn, parts = where
            return f"{self._bind(fn, fn.__name__)}({', '.join(self.input(part) for part in parts)})"
        return repr(where) if _is_literal(where) else self._bind(where, "k")

    def _input_tensor(self, source: tuple[str, Any]) -> str:
        """The expression of an op's input as the Tensor ``Function.apply`` would have put in ``ctx.inputs``."""
        src, where = source
        if src == ARG and isinstance(self._args[where], Tensor):
            return f"t{where}"
        if src in (PARAM, FROZEN):
            return self.input(source)[: -len(".data")]
        if src == OUT:
            return f"Tensor({self.input(source)})"
        return self.input(source)  # an array argument, or a fixed value, as the step passed it

    def fixed_param(self, source: tuple[str, Any]) -> str:
        """A parameter's array, which the record fixes (a replay whose parameter has a new one records again)."""
        src, where = source
        if src not in (PARAM, FROZEN):
            return self.input(source)
        expression = self.input(source)
        self._guards[expression[: -len(".data")]] = self._bind(where.data, "d")
        return expression

    def constant(self, value: Any, base: str) -> str:
        """The name of a fixed value in the namespace."""
        return self._bind(value, base)

    def buffer(self, shape: tuple[int, ...], dtype: np.dtype, share: Any = None) -> str:
        """The expression of a new array kept from one replay to the next, for one result.

        ``share``: a key for an array a replay may replace when it is held
        elsewhere (a ``.grad``), or one that every record of the step uses
        (a parameter's gradient, its update's scratch, of one shape in every
        record; records never run at the same time). It lives in the
        step's list ``shared`` (``shared[i]``).
        """
        if share is not None:
            index = self._shared_keys.setdefault((share, shape, dtype), len(self._shared))
            if index == len(self._shared):
                self._shared.append(np.empty(shape, dtype))
            return f"shared[{index}]"
        name = f"b{len(self._buffers)}"
        self.namespace[name] = np.empty(shape, dtype)
        self._buffers.add(name)
        return name

    def route(
        self, i: int, dst: str, where: Any, code: str, shape: tuple[int, ...], dtype: np.dtype, kept: bool = False
    ) -> list[str]:
        """Lines that compute a gradient of op ``i`` (``code``, with ``{out}`` for ``, out=B``) and deliver it.

        To an op: into a kept array, then summed over uses as in the eager
        walk. To a leaf with no ``.grad``: into a kept array that becomes the
        ``.grad``, unless last replay's is still held elsewhere (then a new
        one). To a leaf that has one: added to it. ``kept``: ``code`` names
        an array the op already holds (only copied into a leaf).
        """
        if dst == OUT:
            m = self._op[where]
            self._owned.setdefault(m, []).append(True)
            value = code if kept else code.format(out=f", out={self.buffer(shape, dtype)}")
            if m in self._first:
                return [f"pg = {value}", f"g{m} = pg if g{m} is None else g{m} + pg", "del pg"]
            self._first.add(m)
            return [f"g{m} = {value}"]
        leaf = f"t{where}" if dst == ARG else self._bind(where, "p")
        if kept:
            return [f"accumulate({leaf}, {code})  # a copy the first time"]
        # (a step argument's gradient is this record's own: its shape is part of the record's key)
        b = self.buffer(shape, dtype, share=("grad", id(where)) if dst != ARG else ("argument", where, id(self)))
        return [
            f"if {leaf}.grad is None:",
            f"    if getrefcount({b}) != {_FREE_REFS}: {b} = empty({b}.shape, {b}.dtype)  # last one held elsewhere",
            f"    {leaf}.grad = {code.format(out=f', out={b}')}",
            f"else: accumulate({leaf}, {code.format(out='')})",
        ]

    def _call(self, k: int) -> list[str]:
        """The line of an optimizer's (or the model's) ``zero_grad()`` or ``step()``, or its body written out."""
        method = self._events[k][1]
        owner = getattr(method, "__self__", None)
        func = getattr(method, "func", method)  # a functools.partial (clip_grad_norm_ and its arguments)
        base = f"{type(owner).__name__.lower()}_{method.__name__}" if owner is not None else func.__name__
        call = f"{self._bind(method, base)}()"
        if isinstance(owner, Optimizer) and func.__func__ is type(owner).step is Optimizer.step:
            if type(owner)._refuse_grads is Optimizer._refuse_grads:
                return _optimizer_step(self, self._bind(owner, type(owner).__name__.lower()), owner, call)
        if isinstance(owner, Optimizer) and func.__func__ is type(owner).zero_grad is Optimizer.zero_grad:
            return [f"for q in {self._bind(owner, type(owner).__name__.lower())}.params: q.grad = None  # {call}"]
        return [call]

    def _bind(self, obj: Any, base: str) -> str:
        """The name of ``obj`` in the namespace: ``base``, or ``base`` and a number (always, if one letter)."""
        name = self._names.get(id(obj))
        if name is not None:
            return name
        base = re.sub(r"\W", "_", base)
        if base in _LOCAL_LETTERS:  # (o3, g1, f2... are the generated code's own locals)
            base += "_"
        n = 0
        name = f"{base}{n}" if len(base) == 1 else base
        while (name in self.namespace or name in _LOCAL_NAMES or not name.isidentifier()
               or keyword.iskeyword(name)):
            name = f"{base}{n}"
            n += 1
        self.namespace[name] = obj
        self._names[id(obj)] = name
        return name


#: The words the generated code assigns as local names: an object bound under one of them (a Momentum optimizer
#: as "momentum") would be shadowed in the whole function, an UnboundLocalError before the assignment.
#: (One-letter locals need no entry: a one-letter base is always bound with a number.)
_LOCAL_NAMES = frozenset({"lr", "momentum", "plain", "states", "update", "edits", "ps", "pgs", "pg"})
#: The letters of the generated code's numbered names (o3 an op's output, g3 its gradient, f3 its flat positions,
#: b3 a kept array, ...): a bound name never has one of these letters and a number alone.
_LOCAL_LETTERS = frozenset("abcefgoqrstwx")


def _optimizer_step(replay: _Replay, opt: str, owner: Optimizer, call: str) -> list[str]:
    """``Optimizer.step()`` written out for one optimizer, parameter by parameter (same checks, same order).

    It reads the optimizer's ``params``, ``state`` and ``update`` at each
    replay, as ``step()`` does; if its parameters are not the recorded ones, it
    calls ``step()`` itself. Keep it in step with :meth:`Optimizer.step`.
    """
    n = len(owner.params)
    sgd = _written_out.is_plain_sgd(owner)
    if sgd:  # the update written out: the parameters' arrays are fixed by the record (their shapes, dtypes)
        for p in owner.params:
            replay._guards[replay._bind(p, "p")] = replay._bind(p.data, "d")
    qs = [f"q{i}" for i in range(n)]
    rs = [f"r{i}" for i in range(n)]
    same = " or ".join(f"ps[{i}] is not {replay._bind(p, 'p')}" for i, p in enumerate(owner.params))
    bad = " or ".join(
        f"({r} is not None and (type({r}) is not ndarray or {r}.shape != {q}.data.shape))" for q, r in zip(qs, rs)
    )
    lines = [
        f"# {call} written out (Optimizer.step): check every .grad, count, update each w, record the change",
        f"ps = {opt}.params",
        f"if len(ps) != {n} or {same}: {call}  # other parameters than recorded: the method itself",
        "else:",
        f"    {', '.join(qs)}, = ps",
        *(f"    {r} = {q}.grad" for q, r in zip(qs, rs)),
        f"    if {bad}: {opt}._refuse_grads()  # raises, naming the parameter",
        f'    {opt}.__dict__["step_count"] += 1',
        f"    states, update, s = {opt}.state, {opt}.update, None",
        *(["    v = w = None"] if sgd else []),
        *(
            [
                f"    lr, momentum = {opt}.lr, {opt}.momentum",
                # (a Python float lr: lr * v then has v's dtype, as multiply(v, lr, out=scratch) has; a numpy
                # float64 lr with float32 weights rounds once in SGD.update, so update() is called for it)
                f"    plain = momentum and not {opt}.weight_decay and not {opt}.nesterov and type(lr) is float"
                f" and 'update' not in {opt}.__dict__",  # (an update set on the object runs, as step() runs it)
            ]
            if sgd
            else []
        ),
        f"    edits = engine.bump_versions({opt}._shared)",
    ]
    for i, (p, q, r) in enumerate(zip(owner.params, qs, rs)):
        lines += [
            f"    if {r} is not None:",
            f"        s = states[{i}]",
            '        s["step"] = s.get("step", 0) + 1',
            *(
                [
                    "        " + line
                    for line in _written_out.sgd_update(
                        q, r, replay.buffer(p.data.shape, p.data.dtype, share=("scratch", id(p)))
                    )
                ]
                if sgd else [f"        update({q}.data, {r}, s)"]
            ),
            f"        {q}._version = edits",
        ]
    lines.append(f"    del {', '.join(qs)}, {', '.join(rs)}, states, update, s" + (", v, w" if sgd else ""))
    lines.append("del ps")
    return lines


def _free_refs(expression: str) -> int:
    """What ``getrefcount(expression)`` gives in a generated function when nothing else holds the array.

    Measured with code of the same form rather than assumed, since it depends on the interpreter (Python
    3.14 borrows some references on its stack, for instance); one more means the array is held elsewhere.
    """
    namespace: dict[str, Any] = {"getrefcount": sys.getrefcount, "shared": [np.empty(0)]}
    exec(f"def f():\n    return getrefcount({expression})\n", namespace)
    return int(namespace["f"]())


_FREE_REFS = _free_refs("shared[0]")  # for a kept array that may be held elsewhere: always an item of ``shared``

_count = 0  # replays generated so far, to give each its own file name in tracebacks


def _is_literal(value: Any) -> bool:
    """True for a value whose ``repr`` is Python for an equal value: None, a bool, int, str or finite float."""
    if value is None or type(value) in (bool, int, str):
        return True
    if type(value) is float:
        return math.isfinite(value)
    return type(value) is tuple and all(_is_literal(v) for v in value)


def _result_ops(result: Any, nodes: dict[Tensor, int], op_of: dict[int, int]) -> list[int]:
    """The ops whose outputs the step returns."""
    if isinstance(result, Tensor) and result in nodes:
        return [op_of[nodes[result]]]
    if isinstance(result, tuple):
        return [i for r in result for i in _result_ops(r, nodes, op_of)]
    return []


def _result_events(result: Any, nodes: dict[Tensor, int]) -> Any:
    """The step's result as the forward events of its tensors, in its structure (which outputs it returned)."""
    if isinstance(result, Tensor):
        return nodes.get(result, "a tensor made by no op")
    if isinstance(result, tuple):
        return tuple(_result_events(r, nodes) for r in result)
    return type(result).__name__


def _result_source(result: Any, nodes: dict[Tensor, int], op_of: dict[int, int], written: set[int] | None) -> str:
    """What a replay returns, as source: new Tensors of the outputs the step returned, in the same structure.

    ``written``: when the replay keeps arrays, the ops written out (whose
    returned outputs are new arrays); another op's output may be a view of
    a kept array, which the next replay overwrites, so it goes through
    :func:`_own_array`.
    """
    if result is None:
        return "None"
    if isinstance(result, Tensor) and result in nodes:
        i = op_of[nodes[result]]
        return f"Tensor(o{i})" if written is None or i in written else f"Tensor(own(o{i}))"
    if isinstance(result, tuple):
        return "(" + "".join(_result_source(r, nodes, op_of, written) + ", " for r in result) + ")"
    raise TypeError(
        "compile: the step must return None, a Tensor made by an op in it (e.g. the loss), or a tuple of "
        f"these; it returned a {type(result).__name__}"
    )


def _own_array(namespace: dict[str, Any], buffers: set[str], shared: list[np.ndarray], array: np.ndarray) -> Any:
    """A returned output as the eager step returns it: the op's own array, unless it shows a kept array's memory.

    Such a view is copied in its own layout (a transpose stays column-major, as the sums a caller takes of it
    round by it); a view of anything else, a parameter (W.T) say, stays a view, tracking it as eagerly.
    """
    if not isinstance(array, np.ndarray) or array.base is None:
        return array
    memory = id(_memory_of(array))
    if any(id(namespace[name]) == memory for name in buffers) or any(id(a) == memory for a in shared):
        return array.copy(order="K")
    return array


def _wrap(array: np.ndarray) -> Tensor:
    """A new Tensor of ``array`` without a graph, of its own dtype (Tensor() would make an integer count float32)."""
    t = Tensor.__new__(Tensor)
    t.data, t.grad, t.requires_grad, t._ctx, t._version, t._hooks = array, None, False, None, 0, None
    return t


def _references_of_a_fresh_gradient() -> tuple[int, int]:
    """How many references a replay's ``pgs = ...; pg = pgs[k]`` holds to a gradient no one else holds, and to
    its tuple (run_backward's own counts are engine._ALONE; these are the generated code's, counted alike)."""
    pgs = (np.empty(0),)
    pg = pgs[0]
    return sys.getrefcount(pg), sys.getrefcount(pgs)


_ALONE_IN_REPLAY = _references_of_a_fresh_gradient()


def _as_grad(pg: Any, dtype: np.dtype, shape: tuple[int, ...], name: str, i: int) -> np.ndarray:
    """A gradient as ``run_backward`` passes it on: an array (not a numpy scalar) of its input's dtype.

    It is checked as the eager walk checks it (engine._checked): one of the input's shape, of a floating dtype.
    A Tensor a user's backward returned gives a copy of its array, as the eager walk copies it into a leaf's
    ``.grad``: the Tensor may wrap an array that lives on (a module constant), which must not become a ``.grad``.
    """
    pg = engine._checked_gradient(name, i, pg, shape)
    if isinstance(pg, Tensor):
        return np.array(pg.data, dtype=dtype)
    return pg if pg.dtype == dtype else ops.cast(pg, dtype)


def _signature(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """What a record depends on: each argument's kind, shape and dtype (and requires_grad), and grad mode."""
    key: list[Any] = [engine._state.grad_enabled]
    # Which arguments share one array (step(mg.Tensor(a), a)): a record reads such an array as one argument.
    first: dict[int, int] = {}  # id(array) -> the first argument holding it
    aliases = []
    for k, a in enumerate(args):
        array = a.data if isinstance(a, Tensor) else a
        if isinstance(array, np.ndarray):
            aliases.append(first.setdefault(id(array), k))
    if len(first) < len(aliases):
        key.append(("aliases", tuple(aliases)))
    for a in args:
        if isinstance(a, Tensor):
            # Whether it has a graph (made by ops before the step) too: recording refuses a backward that goes on
            # into it, so a record of a leaf argument must not be replayed for one with a graph.
            key.append(("tensor", a.data.shape, a.data.dtype, a.requires_grad, a._ctx is not None))
        elif isinstance(a, np.ndarray):
            key.append(("array", a.shape, a.dtype))
        else:
            raise TypeError(
                f"compile: the step's arguments must be Tensors or numpy arrays, got a {type(a).__name__}; "
                "fixed values belong in the step's code"
            )
    return tuple(key)


class _Unreplayable(RuntimeError):
    """A replay met what its record cannot do (a gradient or a shape it never saw); the record is dropped."""


def _missing_backward(i: int, m: int, name: str) -> None:
    """Raise: op ``i`` gave op ``m`` a gradient in a replay, but none when the step was recorded."""
    raise _Unreplayable(
        f"compile: in this replay the backward of op {i} ({name}) returned a gradient for op {m}, which got none "
        f"when the step was recorded, so the record has no backward for op {m} and the gradients below it would "
        "be missing. A backward that returns None depending on the data cannot be replayed from such a record: "
        "run this step without mg.compile. (This call stopped in its backward pass: some .grad may hold part "
        "of its gradients, and its optimizer step did not run. The record is dropped: the next call records "
        "the step again.)"
    )


def _watched(events: list[tuple[Any, ...]]) -> tuple[list[Tensor], list[Optimizer]]:
    """The parameters the ops of a record read and the optimizers its calls use (with their parameters)."""
    params: dict[int, Tensor] = {}
    optimizers: dict[int, Optimizer] = {}
    for event in events:
        if event[0] == "forward":
            for src, where in event[2]:
                if src in (PARAM, FROZEN):
                    params.setdefault(id(where), where)
        elif event[0] == "call":
            owner = getattr(event[1], "__self__", None)
            if isinstance(owner, LRScheduler):
                owner = owner.optimizer
            if isinstance(owner, Optimizer):
                optimizers.setdefault(id(owner), owner)
                for p in owner.params:
                    params.setdefault(id(p), p)
    return list(params.values()), list(optimizers.values())


def _exact_float32(array: np.ndarray) -> np.ndarray:
    """Integer data cast to float32 in a replay, refused as ``Tensor(x)`` refuses it if float32 would round it."""
    engine._check_exact_in_float32(array)
    return np.asarray(array, dtype=np.float32)


def _memory_of(array: np.ndarray) -> np.ndarray:
    """The array that owns the memory ``array`` shows (itself, or the base of the views it is a view of)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _whole_view(array: np.ndarray, base: np.ndarray) -> bool:
    """Whether ``array`` shows all of ``base`` as it is: same start, shape, strides and dtype (not W.T, W[::-1])."""
    return (array.shape, array.strides, array.dtype) == (base.shape, base.strides, base.dtype) and (
        array.__array_interface__["data"][0] == base.__array_interface__["data"][0])


def _leaves(sources: Any) -> Iterator[tuple[str, Any]]:
    """The sources that ``sources`` read, looking inside tuples and lists (PACK), casts and masks."""
    for src, where in sources:
        if src == PACK or src == CALL:
            yield from _leaves(where[1])
        elif src == CAST:
            yield from _leaves([where[0]])
        else:
            yield src, where


def _reads_parameter(source: tuple[str, Any]) -> bool:
    """Whether a source reads a parameter or a buffer, directly or inside a cast, a mask or a tuple."""
    return any(src in (PARAM, FROZEN) for src, _ in _leaves([source]))


def _out_reads(sources: Any) -> list[int]:
    """The forward events whose outputs ``sources`` read, inside tuples, lists, casts and masks too."""
    return [where for src, where in _leaves(sources) if src == OUT]


def _holds_array(value: Any, kind: type | tuple[type, ...] = (np.ndarray, Tensor)) -> bool:
    """Whether ``value`` (a tuple, list or dict, at any depth) holds an array or a Tensor (or ``kind``)."""
    if isinstance(value, dict):
        value = tuple(value.values())
    return any(isinstance(v, kind) or (isinstance(v, (tuple, list, dict)) and _holds_array(v, kind)) for v in value)


def _other_shape(i: int, name: str, recorded: tuple[int, ...], got: tuple[int, ...]) -> None:
    """Raise: op ``i`` made an output of another shape than when recorded (a shape that depends on the data)."""
    raise _Unreplayable(
        f"compile: in this replay op {i} ({name}) made an output of shape {got}, but {recorded} when the step was "
        "recorded, with arguments of the same shapes: its shape depends on the data (a boolean mask, say), and "
        "the arrays the replay keeps have the recorded shapes. Run this step without mg.compile. (This call "
        "stopped in its forward pass; its optimizer step did not run. The record is dropped: the next call "
        "records the step again.)"
    )


def _difference(first: list[tuple[Any, ...]], second: list[tuple[Any, ...]]) -> str | None:
    """How two records of one step differ, in words (the first difference), or None if they are the same step.

    Backward events are left out: which nodes a gradient reaches may depend on the data (a backward that
    returns None), and a replay checks that as it runs.
    """
    first = [e for e in first if e[0] != "backward"]
    second = [e for e in second if e[0] != "backward"]
    op = 0  # the op number, as in the replay's source (c0, o0, ...)
    for k, (a, b) in enumerate(zip(first, second)):
        if a[0] != b[0] or (a[0] == "forward" and a[1] is not b[1]):
            return f"step {k} (ops, backward() and calls, in order) was {_event_name(a)}, then {_event_name(b)}"
        if a[0] == "forward":
            for i, (sa, sb) in enumerate(zip(a[2], b[2])):
                if not _same(sa, sb):
                    return f"input {i} of {a[1].name} (op {op}) was {_source_text(sa)}, then {_source_text(sb)}"
            if a[4] != b[4] and a[6] == b[6]:  # the same inputs, of the same shapes: another output shape
                return (f"the output of {a[1].name} (op {op}) had shape {a[4]}, then {b[4]}, from inputs of the "
                        "same shapes: its shape depends on the data (x[mask] with a mask whose count changes), "
                        "which no replay can repeat")
        if not _same(a, b):
            return f"step {k} (ops, backward() and calls, in order), {_event_name(a)}, differs"
        op += a[0] == "forward"
    if len(first) != len(second):
        return f"{_events_text(first)}, then {_events_text(second)}"
    return None


def _changed_in_place(first: list[tuple[Any, Any]], second: list[tuple[Any, Any]]) -> bool:
    """Whether one fixed object both records read (the same one, live) had other values in the second."""
    return any(a is b and not _same(va, vb) for (a, va), (b, vb) in zip(first, second))


def _values_of(value: Any) -> Any:
    """A copy of a list's or dict's values as they are now: containers and arrays copied, other objects kept
    (compared by identity, as in the record: a deep copy would make every object a new one)."""
    if isinstance(value, list):
        return [_values_of(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_values_of(v) for v in value)
    if isinstance(value, dict):
        return {k: _values_of(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.copy()
    return value


def _a_parameter_changed(first: list[tuple[Any, ...]], second: list[tuple[Any, ...]]) -> bool:
    """Whether two records differ in a parameter's kind (frozen or trained), dtype or shape, as they may in the
    ops' output shapes and dtypes that follow from it, and in nothing else."""
    first = [e for e in first if e[0] != "backward"]
    second = [e for e in second if e[0] != "backward"]
    if len(first) != len(second):
        return False
    changed = False
    for a, b in zip(first, second):
        if a[0] != b[0] or (a[0] == "forward" and a[1] is not b[1]):
            return False
        if a[0] != "forward":
            if not _same(a, b) and not (changed and a[0] == "seed"):  # (a seed of the loss's new dtype)
                return False
            continue
        for sa, sb, ia, ib in zip(a[2], b[2], a[6], b[6]):
            if _same(sa, sb) and (ia == ib or changed):  # (what follows a changed parameter may change dtype)
                continue
            if sa[0] in (PARAM, FROZEN) and sb[0] in (PARAM, FROZEN) and sa[1] is sb[1]:
                changed = True
                continue
            return False
    return changed


def _backwards(events: list[tuple[Any, ...]]) -> int:
    return sum(e[0] == "backward" for e in events)


def _same(a: Any, b: Any) -> bool:
    """Whether two parts of records are the same: arrays by value (NaN equals NaN), tensors and objects by identity."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and a.dtype == b.dtype and bool(
            np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
        )
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return a == b or (a != a and b != b)
    if isinstance(a, (int, str, bool, type(None), np.dtype, np.generic, slice, type, complex, range, frozenset)):
        return bool(a == b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, functools.partial):
        return a.func == b.func and _same(a.args, b.args) and _same(tuple(sorted(a.keywords.items())),
                                                                    tuple(sorted(b.keywords.items())))
    if inspect.ismethod(a):
        return a.__func__ is b.__func__ and a.__self__ is b.__self__
    return False  # Tensors, modules and other objects: the same one, or not the same


def _event_name(event: tuple[Any, ...]) -> str:
    if event[0] == "forward":
        return f"the op {event[1].name}"
    if event[0] == "call":
        method = event[1]
        return f"a call of {getattr(getattr(method, 'func', method), '__qualname__', repr(method))}"
    return f"a {event[0]} pass" if event[0] == "backward" else "backward()"


def _events_text(events: list[tuple[Any, ...]]) -> str:
    ops = sum(e[0] == "forward" for e in events)
    return f"{len(events)} events ({ops} ops)"


def _source_text(source: tuple[str, Any]) -> str:
    kind, value = source
    if kind == FIXED:
        shown = value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value
        return f"the fixed value {shown!r}"
    if kind == ARG:
        return f"argument {value}"
    if kind == PACK:
        return f"a {value[0].__name__} of " + ", ".join(_source_text(part) for part in value[1])
    if kind == CAST:
        return f"{_source_text(value[0])} cast to {value[1]}"
    if kind == CALL:
        return f"{value[0].__name__} of " + ", ".join(_source_text(part) for part in value[1])
    if kind == OUT:
        return f"the output of op {value}"
    return f"the {'parameter' if kind == PARAM else 'frozen tensor'} of shape {value.shape}"


class CompiledStep:
    """A training step that is recorded once per argument shape and replayed after (see :func:`compile`)."""

    def __init__(self, step: Callable[..., Any]) -> None:
        if not callable(step):
            raise TypeError(f"compile: expected a function, got a {type(step).__name__}")
        self.step = step
        self._warned = False  # about a value read into Python while recording (once per compiled step)
        self.records: dict[tuple[Any, ...], _Replay] = {}
        # Arrays of the same shape in every record (gradients of parameters, scratch), shared by the records.
        self._shared: tuple[list[np.ndarray], dict[Any, int]] = ([], {})

    def __call__(self, *args: Any) -> Any:
        """Run the step on ``args``: replay its record for these shapes, or record one (running it eagerly).

        A record is replayed only once a second call has recorded the same
        step: same ops in the same order, on the same kinds of inputs, with
        the same fixed values. A number the step computes from the data in
        Python (``float(loss.data)``, ``t.item()``) would be frozen into the
        replay, and a Python branch on the data would freeze one path; when
        the two records differ, the second call raises, instead of replays
        that silently reuse the first batch's values. The second call also
        raises if the step's own Python changed a parameter, a gradient or a
        hyperparameter between minigrad's calls, which a replay would skip.
        (A value that is the same on both calls cannot be told from a
        constant; see the module's rules.)
        """
        if engine._tape is not None:  # (a replay too: the recording step would not see its work, nor repeat it)
            raise RuntimeError(
                "compile: a compiled step cannot be called while another one is recording; inside a compiled step, "
                "call the function it compiles (its .step) instead"
            )
        key = _signature(args)
        replay = self.records.get(key)
        if replay is not None and replay.confirmed:
            try:
                result = replay.run(*args)
            except _Unreplayable:
                del self.records[key]  # so the step can go on (eagerly, then recorded anew) if the caller goes on
                raise
            if result is not _written_out.STALE:
                return result
            del self.records[key]  # a parameter was given a new array since the record: record again
            replay = None
        # The second record (replay is its first) also watches what the step's own Python changes.
        recorder = _Recorder(args, None if replay is None else _watched(replay._events))
        engine._tape = recorder
        try:
            result = self.step(*args)
        finally:
            engine._tape = None
        recorder.finish()
        if recorder.read is not None and not self._warned:
            self._warned = True
            warnings.warn(
                f"compile: the step reads a tensor's value in Python ({recorder.read}). Replays run only "
                "minigrad's ops and calls, not that code: what it prints is printed on the first two calls only, "
                "and what it decides or computes from the value (an if on loss.item(), a guard against NaN) "
                "stays as the recording calls found it. Keep such code outside the compiled step.",
                stacklevel=2,
            )
        if replay is None:
            self.records[key] = self._record(recorder, result, args, key)
            return result
        # The second record of these shapes: the same step, or no replay at all.
        del self.records[key]
        if recorder.violation is not None:
            raise RuntimeError(
                f"compile: {recorder.violation}. A replay runs only minigrad's ops and calls, so it would "
                "silently skip that change. Make it with minigrad's calls (opt.step(), opt.zero_grad(), a "
                "learning-rate scheduler, clip_grad_norm_), or between calls of the step, or run this step "
                "without mg.compile. (This call ran eagerly, so its results are right.)"
            )
        # First the values of the fixed arrays and lists the ops read: one live object in both records looks the
        # same to the comparison of events, whatever the step's code did to it in place.
        in_place = _changed_in_place(replay.fixed_values, recorder.fixed_values)
        difference = ("a fixed array or list an op reads had other values (the step's code changes it in place)"
                      if in_place else _difference(replay._events, recorder.events))
        if difference is not None and not in_place and _a_parameter_changed(replay._events, recorder.events):
            # A layer frozen or unfrozen, or a parameter given another dtype, between the two calls: the first
            # record is of another step. This one is recorded as a first again (its result is right: it ran).
            self.records[key] = self._record(recorder, result, args, key)
            return result
        if difference is None and _result_events(result, recorder.nodes) != replay.returns:
            difference = "the step returned other outputs of its ops (a Python choice of what to return)"
        if difference is not None:
            raise RuntimeError(
                f"compile: the step recorded something else on its second call than on its first ({difference}). "
                "A replay would repeat the first call's values: a number computed from the data in Python "
                "(float(t.data), t.item()) is frozen into it, and a Python branch on the data freezes one "
                "path. Compute such a number with tensor ops (loss * loss.detach(), not loss * loss.item()) "
                "or pass it to the step as a 0-d array argument, or run this step without mg.compile. "
                "(This call ran eagerly, so its results are right.)"
            )
        # The two may differ in which nodes a gradient reached (a backward that returned None): keep the one
        # in which more did, since a replay can skip a backward its record has but cannot run one it lacks.
        if _backwards(recorder.events) > _backwards(replay._events):
            replay = self._record(recorder, result, args, key)
        replay.confirmed = True
        self.records[key] = replay
        return result

    def _record(self, recorder: _Recorder, result: Any, args: tuple[Any, ...], key: tuple[Any, ...]) -> _Replay:
        """The replay of what ``recorder`` recorded (not yet confirmed), with the fixed values its ops read."""
        replay = _Replay(recorder.events, result, recorder.nodes, args, key[0], self._shared,
                         recorder.modes.values())
        replay.fixed_values = recorder.fixed_values
        return replay

    def reset(self) -> None:
        """Forget every record and its arrays (the next call records again)."""
        self.records.clear()
        self._shared = ([], {})

    @property
    def kept_nbytes(self) -> int:
        """Bytes of the arrays the records keep from one call to the next (outputs, gradients, scratch)."""
        return sum(r.kept_nbytes for r in self.records.values()) + sum(a.nbytes for a in self._shared[0])


def compile(step: Callable[..., Any]) -> CompiledStep:
    """Record ``step`` (forward, ``backward()``, optimizer update) once per argument shape; replay it after.

    Replays run the same ops' forward and backward code and the same
    optimizer calls, in the same order, so they give bit-identical results
    to calling ``step`` itself, with less Python around them. The rules are
    in the docstring of the module ``minigrad.compile`` (on the site's
    reference page; ``mg.compile`` is this function, which hides the module
    from ``help``, so read it with ``sys.modules["minigrad.compile"].__doc__``):
    data reaches the ops through the step's
    arguments, the parameters or other ops; only ops, backward and the
    optimizer's (and the model's) ``zero_grad``/``step`` are replayed. For example:

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
