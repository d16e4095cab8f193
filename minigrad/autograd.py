"""``mg.autograd.grad``: gradients returned as Tensors, differentiable again with ``create_graph=True``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from minigrad.engine import Function, Tensor, check_flag, run_backward

__all__ = ["grad", "Function"]


def _as_list(x: Any, what: str) -> list[Any]:
    if isinstance(x, Tensor):
        return [x]
    if isinstance(x, (list, tuple)):
        return list(x)
    raise TypeError(f"grad: {what} must be a Tensor or a sequence of Tensors, got {type(x).__name__}")


def _shape_of(value: Any) -> tuple[int, ...] | None:
    """The shape of a list read as an array ([3.0] meant as an array of shape (1,)), or None if it is not one."""
    if not isinstance(value, (list, tuple)):
        return None
    try:
        return np.shape(value)
    except ValueError:  # ragged
        return None


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    create_graph: bool = False,
    retain_graph: bool | None = None,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """The gradients of ``outputs`` with respect to ``inputs``, as a tuple of Tensors (PyTorch's autograd.grad).

    ``grad_outputs`` holds dL/d(output) for each output (it may be omitted
    for one-element outputs, where it is 1). No ``.grad`` is touched. With
    ``create_graph=True`` the returned gradients carry a graph of their own
    (every backward rule runs on Tensors), so they can be differentiated
    again, to any order; without it they are constants. ``retain_graph``
    defaults to ``create_graph``: the graph of ``outputs`` is released unless
    it is kept, and a later call whose walk reaches a released node raises,
    unless none of ``inputs`` can lie below it (each is that node or above
    it): a released node has let go of its inputs, so what lies below it
    cannot be told. (PyTorch keeps a released graph's shape, and refuses only
    a walk that needs a released node's backward; here the earlier call needs
    ``retain_graph=True`` in more cases, such as two heads on one trunk.) An
    input the outputs do not depend on raises, unless ``allow_unused=True``
    (its gradient is then None). An input given twice gets its gradient
    twice, as in PyTorch.
    """
    create_graph = check_flag("grad", "create_graph", create_graph)
    retain = create_graph if retain_graph is None else check_flag("grad", "retain_graph", retain_graph)
    check_flag("grad", "allow_unused", allow_unused)
    outs = _as_list(outputs, "outputs")
    ins = _as_list(inputs, "inputs")
    for i, t in enumerate(outs + ins):
        if not isinstance(t, Tensor):
            raise TypeError(f"grad: item {i} of outputs and inputs is a {type(t).__name__}, not a Tensor")
    for i, t in enumerate(ins):
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {i} (shape {t.shape}) does not require grad")
    if grad_outputs is None:
        seeds: list[Any] = [None] * len(outs)
    elif isinstance(outputs, (list, tuple)):
        seeds = _as_list(grad_outputs, "grad_outputs")
    elif isinstance(grad_outputs, (list, tuple)) and len(grad_outputs) == 1:
        # One output and a one-item list: the list of the outputs' gradients, as PyTorch reads it (so
        # [None], [3.0] and [g] are each that output's gradient). A longer list is the gradient as an array.
        seeds = list(grad_outputs)
    else:
        seeds = [grad_outputs]
    if len(seeds) != len(outs):
        raise ValueError(f"grad: {len(seeds)} grad_outputs for {len(outs)} outputs")
    roots, root_grads = [], []
    for i, (out, seed) in enumerate(zip(outs, seeds)):
        if not out.requires_grad:
            raise RuntimeError(f"grad: output {i} does not require grad (it depends on no input that does)")
        if seed is None:
            if out.size != 1:
                raise RuntimeError(f"grad: output {i} has shape {out.shape}; give grad_outputs for it")
            g: Any = np.ones(out.shape, dtype=out.dtype)
        else:
            g = np.asarray(seed.data if isinstance(seed, Tensor) else seed, dtype=out.dtype)
            if g.shape != out.shape:
                hint = ""
                if not isinstance(outputs, (list, tuple)) and _shape_of(grad_outputs) == out.shape:
                    hint = (" (a one-item list is read as the list of the outputs' gradients; pass this output's "
                            "gradient as an array, np.array([...]), or as a Tensor)")
                raise ValueError(
                    f"grad: grad_outputs[{i}] has shape {g.shape}, output {i} has shape {out.shape}; give each "
                    f"output a gradient of its own shape{hint}"
                )
        if create_graph:  # a seed that is itself a Tensor with a graph keeps it (as for hvp)
            g = seed if isinstance(seed, Tensor) and seed.requires_grad else Tensor(g)
        roots.append(out)
        root_grads.append(g)
    distinct = list(dict.fromkeys(ins))  # (an input given twice is walked to once)
    found = run_backward(roots, root_grads, retain_graph=retain, create_graph=create_graph, inputs=distinct)
    assert found is not None
    of = dict(zip(distinct, found))
    result: list[Tensor | None] = []
    for i, (t, g) in enumerate((t, of[t]) for t in ins):
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: input {i} (shape {t.shape}) was not used to compute the outputs; "
                    "pass allow_unused=True to get None for it"
                )
            result.append(None)
        elif isinstance(g, Tensor):
            result.append(g if create_graph else Tensor(g.data))
        else:
            result.append(Tensor(np.array(g, dtype=t.dtype)))
    return tuple(result)
