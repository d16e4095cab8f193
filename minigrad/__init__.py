"""minigrad: reverse-mode automatic differentiation on numpy, from scratch.

``import minigrad as mg``; ``mg.Tensor`` records operations, ``backward()``
fills ``.grad``; every op is an ``mg.Function`` (:mod:`minigrad.ops`);
``mg.autograd.grad`` returns gradients that can be differentiated again;
``mg.nn`` has layers and losses, ``mg.optim`` the optimizers, ``mg.data``
scikit-learn's toy datasets and ``mg.lab`` the convergence lab.
"""

# data and lab import scikit-learn, matplotlib and tqdm only when they are used.
from minigrad import autograd, curvature, data, func, lab, nn, ops, optim
from minigrad.checkpoint import load, save
from minigrad.compile import CompiledStep, compile
from minigrad.engine import (
    Function,
    GradcheckError,
    Tensor,
    concatenate,
    detect_anomaly,
    enable_grad,
    get_generator,
    get_rng_state,
    gradcheck,
    gradgradcheck,
    is_grad_enabled,
    linear,
    manual_seed,
    no_grad,
    set_rng_state,
    stack,
)
from minigrad.graph import draw_graph
from minigrad.ops import maximum, minimum, where

__version__ = "0.1.0"

__all__ = [
    "CompiledStep",
    "Function",
    "GradcheckError",
    "Tensor",
    "autograd",
    "compile",
    "concatenate",
    "curvature",
    "data",
    "detect_anomaly",
    "draw_graph",
    "enable_grad",
    "func",
    "get_generator",
    "get_rng_state",
    "gradcheck",
    "gradgradcheck",
    "is_grad_enabled",
    "lab",
    "linear",
    "load",
    "manual_seed",
    "maximum",
    "minimum",
    "nn",
    "no_grad",
    "ops",
    "optim",
    "save",
    "set_rng_state",
    "stack",
    "where",
]
