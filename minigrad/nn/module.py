"""Parameter, Buffer and Module: the base of every layer.

A :class:`Module` finds its :class:`Parameter` s (what the optimizer trains)
and :class:`Buffer` s (state it does not train, such as BatchNorm's running
statistics) by walking its own attributes (sub-modules, and lists, tuples and
dicts of them, nested), so no layer hand-writes ``parameters()``;
:meth:`Module.named_parameters` and :meth:`Module.named_buffers` give the
stable dotted names the state dict uses.
"""

from __future__ import annotations

import bisect
import itertools
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from minigrad import engine
from minigrad.engine import ArrayLike, Tensor, check_flag

__all__ = ["Parameter", "Buffer", "Module"]


class Parameter(Tensor):
    """A Tensor that requires grad and that a Module reports as its own.

    The data is always copied, since optimizers update it in place.
    """

    __slots__ = ()

    def __init__(self, data: ArrayLike, dtype: Any = None) -> None:
        super().__init__(data, requires_grad=True, dtype=dtype)
        self.data = self.data.copy()

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor"):]


class Buffer(Tensor):
    """A Tensor that a Module keeps in its state dict but never trains (no grad, not in ``parameters()``).

    BatchNorm's running mean and variance are buffers: ``state_dict`` saves
    them and ``load_state_dict`` restores them, but an optimizer never sees
    them. The data is always copied, since the layer updates it in place.
    """

    __slots__ = ()

    def __init__(self, data: ArrayLike, dtype: Any = None) -> None:
        super().__init__(data, requires_grad=False, dtype=dtype)
        self.data = self.data.copy()

    def __repr__(self) -> str:
        return "Buffer" + super().__repr__()[len("Tensor"):]


class Module:
    """Base class of layers: write ``__init__`` and ``forward``; call the module.

    Parameters and buffers are found by walking attributes in the order they
    were set; their dotted names (``layers.0.W``, ``layers.1.running_mean``)
    key the state dict.
    """

    _training: bool = True  # the class's default; train(), eval() or an assignment set an instance's own

    @property
    def training(self) -> bool:
        """Whether the module is in training mode (Dropout drops, BatchNorm1d uses the batch's statistics)."""
        if engine._tape is not None:  # mg.compile is recording: a replay must run in the mode it recorded
            engine._tape.on_mode(self)
        return self._training

    @training.setter
    def training(self, mode: bool) -> None:
        self._training = check_flag("training", "mode", mode)

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        """The computation; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        """Run :meth:`forward`."""
        return self.forward(*args, **kwargs)

    def _children(self) -> Iterator[tuple[str, Any]]:
        """(name, value) for every attribute that holds parameters, buffers or modules.

        An attribute may hold one, or lists, tuples and dicts of them, nested: ``self.blocks =
        [Linear(...), ...]`` is named ``blocks.0``, ``blocks.1``; ``self.heads = {"mean": Linear(...)}``
        is named ``heads.mean``; ``self.grid = [[Linear(...)]]`` is named ``grid.0.0``. A dict's entries are
        named under str and int keys (numpy's integers too); one keyed by classes or tuples is a lookup
        table (as ``{nn.Linear: self.fc}``), whose parts are registered where else they are kept (a part
        found nowhere else in the module is warned about: neither trained nor saved through it).
        """
        for name, value in vars(self).items():
            if isinstance(value, _HOLDERS):
                yield from _held(type(self).__name__, name, value)

    def _submodules(self) -> Iterator[tuple[str, Module]]:
        """(name, module) for each sub-module this module holds under a name (not a lookup table's)."""
        for name, child in self._children():
            if isinstance(child, Module) and not isinstance(name, _Unnamed):
                yield name, child

    def _named_tensors(self, prefix: str = "") -> Iterator[tuple[str, Parameter | Buffer]]:
        """Yield (dotted name, parameter or buffer) in attribute order, each once."""
        seen: set[int] = set()  # tensors and modules already visited (shared, or back-references)
        stack: list[tuple[str, Any]] = [(prefix, self)]
        unnamed: list[tuple[str, Any]] = []  # parts under dict keys that make no name: registered elsewhere?
        while stack:
            path, node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, (Parameter, Buffer)):
                yield path, node
                continue
            children: list[tuple[str, Any]] = []
            for name, child in node._children():
                where = f"{path}.{name}" if path else name
                (unnamed if isinstance(name, _Unnamed) else children).append((where, child))
            stack.extend(reversed(children))
        for where, part in unnamed:
            lost = [p for _, p in _held("", "", part) if id(p) not in seen]
            if lost:  # (a warning: a module's lookup table may point at parts its parent holds, as a router's)
                warnings.warn(
                    f"{type(self).__name__}: {where} holds a {type(lost[0]).__name__} that is nowhere else in this "
                    "module, under a dict key that cannot be part of a name (a str or an int can), so this "
                    "module's parameters() and state_dict() leave it out; key it by a str or an int if it is this "
                    "module's part (if a module around this one holds it, this is as it should be)",
                    UserWarning,
                    stacklevel=engine._user_stacklevel(),  # (the user's line, through generators and calls)
                )

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Yield (dotted name, parameter) pairs, each parameter once."""
        for name, t in self._named_tensors(prefix):
            if isinstance(t, Parameter):
                yield name, t

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Buffer]]:
        """Yield (dotted name, buffer) pairs, each buffer once."""
        for name, t in self._named_tensors(prefix):
            if isinstance(t, Buffer):
                yield name, t

    def buffers(self) -> list[Buffer]:
        """Every buffer of this module and its sub-modules (state that is saved but not trained)."""
        return [b for _, b in self.named_buffers()]

    def parameters(self) -> list[Parameter]:
        """Every parameter of this module and its sub-modules."""
        return [p for _, p in self.named_parameters()]

    def modules(self) -> Iterator[Module]:
        """This module and every sub-module, depth first, each once (a shared one, or one referring back)."""
        seen: set[int] = set()
        stack: list[Module] = [self]
        while stack:
            module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield module
            stack.extend(reversed([child for _, child in module._submodules()]))

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None."""
        if engine._tape is not None:  # mg.compile is recording a step: replay this call too
            engine._tape.on_call(self.zero_grad)
        for p in self.parameters():
            p.grad = None
        if engine._tape is not None:
            engine._tape.on_call_end()

    def train(self, mode: bool = True) -> Module:
        """Put this module and its sub-modules in training mode (evaluation mode if ``mode`` is False); returns self."""
        mode = check_flag("train", "mode", mode)
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        """Put this module and its sub-modules in evaluation mode; returns self."""
        return self.train(False)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Map each parameter's and buffer's dotted name to a copy of its array, in attribute order."""
        return {name: t.data.copy() for name, t in self._named_tensors()}

    def load_state_dict(self, state: Mapping[str, ArrayLike]) -> None:
        """Copy ``state`` into the parameters and buffers after checking every entry.

        Keys, shapes and dtypes of parameters and buffers are all checked
        first; on any problem a ValueError lists the missing, unexpected and
        mismatched entries and no parameter or buffer has changed.
        """
        name = f"load_state_dict: {type(self).__name__}"
        if not isinstance(state, Mapping):
            raise TypeError(f"{name} needs a mapping of names to arrays, got {type(state).__name__}")
        own = dict(self._named_tensors())
        arrays: dict[Any, np.ndarray] = {}
        for k, v in state.items():
            if isinstance(v, Mapping):  # mg.load of a checkpoint: {"model": {...}, "optim": {...}}
                raise ValueError(
                    f"{name} refused the state: entry {k!r} is a mapping, not an array; if the state is a "
                    f"whole checkpoint, pass the model's part, load_state_dict(checkpoint[{k!r}])"
                )
            try:
                arrays[k] = np.asarray(v.data if isinstance(v, Tensor) else v)
            except Exception as e:  # a ragged list, an object numpy cannot read
                raise ValueError(f"{name} refused the state: entry {k!r} is not an array ({e})") from None
        missing = [k for k in own if k not in arrays]
        unexpected = sorted((k for k in arrays if k not in own), key=repr)
        mismatched = [
            f"{k}: expected {own[k].shape} {own[k].dtype}, got {arrays[k].shape} {arrays[k].dtype}"
            for k in own
            if k in arrays and (arrays[k].shape != own[k].shape or arrays[k].dtype != own[k].dtype)
        ]
        read_only = [k for k, t in own.items() if k in arrays and not t.data.flags.writeable]
        if missing or unexpected or mismatched or read_only:
            problems = []
            if missing:
                problems.append(f"missing {missing}")
            if unexpected:
                problems.append(f"unexpected {unexpected}")
            if mismatched:
                problems.append("mismatched [" + "; ".join(mismatched) + "]")
            if read_only:  # (p.data = np.broadcast_to(...), or an array marked read-only)
                problems.append(f"read-only {read_only} (their arrays cannot be written: give each its own "
                                "array, p.data = p.data.copy(), then load)")
            raise ValueError(f"{name} refused the state: " + ", ".join(problems) + _load_hint(arrays, own))
        # An entry that shares memory with one of the tensors (a state made of another model's live arrays, or
        # of this one's, swapped) is copied first: copying it in order would overwrite it before it is read.
        spans = sorted(_byte_bounds(t.data) for t in own.values() if t.data.size)  # (sorted: a search per entry)
        starts = [low for low, _ in spans]
        reach = list(itertools.accumulate((high for _, high in spans), max))  # the furthest end up to each span
        for k, v in arrays.items():
            if v.size:
                low, high = _byte_bounds(v)
                i = bisect.bisect_left(starts, high)  # spans that start before v ends...
                if i and reach[i - 1] > low:  # ...one of which ends after v starts: they overlap
                    arrays[k] = v.copy()
        # Every entry has the shape and dtype of its target, and every target is writable, so no copy below
        # can fail halfway.
        for k, t in own.items():
            t.data[...] = arrays[k]
            t.bump_version()  # a graph that saved the old values refuses to backpropagate through them

    def extra_repr(self) -> str:
        """The text inside this module's parentheses in its repr."""
        return ""

    def __repr__(self) -> str:
        children = list(self._submodules())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        if id(self) in _PRINTING:  # a module that refers back to one being printed: named, not printed again
            return f"{type(self).__name__}(...)"
        _PRINTING.add(id(self))
        try:
            lines = [f"{type(self).__name__}("]
            for name, child in children:
                body = repr(child).replace("\n", "\n  ")
                lines.append(f"  ({name}): {body}")
            lines.append(")")
        finally:
            _PRINTING.discard(id(self))
        return "\n".join(lines)


def _byte_bounds(a: np.ndarray) -> tuple[int, int]:
    """The first and one-past-last byte addresses ``a`` touches (numpy's byte_bounds, as may_share_memory uses)."""
    return _BYTE_BOUNDS(a)  # type: ignore[no-any-return]


# numpy 2 has it in numpy.lib.array_utils, numpy 1 as np.byte_bounds.
_BYTE_BOUNDS = getattr(getattr(np.lib, "array_utils", None), "byte_bounds", None) or getattr(np, "byte_bounds")  # noqa: B009  (absent from numpy 2)


def _load_hint(arrays: Mapping[Any, np.ndarray], own: Mapping[str, Tensor]) -> str:
    """What to do about a refused state, where it can be told: entries of the other floating precision."""
    floats = {(o.dtype, arrays[k].dtype) for k, o in own.items() if k in arrays and o.shape == arrays[k].shape
              and o.dtype != arrays[k].dtype and o.dtype.kind == arrays[k].dtype.kind == "f"}
    if len(floats) != 1:
        return ""
    ((mine, theirs),) = floats
    return (f"; the state is {theirs} and the model {mine}: build the model with dtype=np.{theirs}, or cast "
            f"the state ({{k: v.astype(np.{mine}) for k, v in state.items()}})")


_HOLDERS = (Parameter, Buffer, Module, list, tuple, dict)  # what may be, or hold, a parameter, buffer or module


class _Unnamed(str):
    """The place of a part under a dict key that makes no name (``heads[<class 'Linear'>]``), for messages."""


def _held(module: str, name: str, value: Any, within: tuple[int, ...] = ()) -> Iterator[tuple[str, Any]]:
    """(dotted name, item) for each parameter, buffer or module ``value`` is or holds in lists, tuples, dicts.

    A dict's entries under str and int keys are walked (``heads.mean``, ``heads.0``); an entry under any
    other key (a class, a tuple) belongs to a lookup table, not a container of the module's parts: it is
    yielded once, under an :class:`_Unnamed` place, for the module to check it holds the part elsewhere.
    ``within``: the ids of the containers above, so that a list holding itself is not walked forever.
    """
    if isinstance(value, (Parameter, Buffer, Module)):
        yield name, value
    elif id(value) not in within:  # a list, tuple or dict
        inner = (*within, id(value))
        if isinstance(value, dict):
            names: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(item, _HOLDERS):
                    continue
                if isinstance(key, (bool, np.bool_)) or not isinstance(key, (str, int, np.integer)):
                    # A lookup table ({nn.Linear: self.fc}): its parts are the module's only if kept elsewhere too.
                    if any(_held(module, name, item, inner)):
                        yield _Unnamed(f"{name}[{key!r}]"), item
                    continue
                key = int(key) if isinstance(key, np.integer) else key
                named = False
                for found in _held(module, f"{name}.{key}", item, inner):
                    if not named:  # (only a key that names something must make a name, and one of its own)
                        named = _dict_key(module, name, key, names)
                    yield found
        else:
            for i, item in enumerate(value):
                if isinstance(item, _HOLDERS):  # (a long list of numbers costs one test per item)
                    yield from _held(module, f"{name}.{i}", item, inner)


def _dict_key(module: str, attribute: str, key: str | int, names: dict[str, Any]) -> bool:
    """True if a dict key can be part of a dotted name, one no other key of the dict makes; else raise."""
    text = str(key)
    if "." in text or text == "":
        raise ValueError(
            f"{module}.{attribute}: the dict key {key!r} holds a parameter or module, and its key becomes part "
            f"of dotted names ({attribute}.{key}.W in parameters, state dicts and reprs), which must read back "
            "one way; use a non-empty key without a dot"
        )
    if text in names:
        raise ValueError(
            f"{module}.{attribute}: the dict keys {names[text]!r} and {key!r} both name {attribute}.{text}, so "
            "their parameters would share names in the state dict (one saved, the other lost); use keys of one kind"
        )
    names[text] = key
    return True


_PRINTING: set[int] = set()  # the modules whose repr is being made (a back-reference is not followed again)
