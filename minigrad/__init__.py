"""minigrad: reverse-mode automatic differentiation on numpy, from scratch.

``import minigrad as mg``; ``mg.Tensor`` records operations, ``backward()``
fills ``.grad``; ``mg.nn`` has layers and losses, ``mg.optim`` the optimizers,
``mg.data`` scikit-learn's toy datasets and ``mg.lab`` the convergence lab.
"""

# data and lab import scikit-learn, matplotlib and tqdm only when they are used.
from minigrad import data, lab, nn, optim
from minigrad.checkpoint import load, save
from minigrad.engine import (
    GradcheckError,
    Tensor,
    concatenate,
    get_generator,
    gradcheck,
    is_grad_enabled,
    linear,
    manual_seed,
    no_grad,
    stack,
)

__version__ = "0.1.0"

__all__ = [
    "GradcheckError",
    "Tensor",
    "concatenate",
    "data",
    "get_generator",
    "gradcheck",
    "is_grad_enabled",
    "lab",
    "linear",
    "load",
    "manual_seed",
    "nn",
    "no_grad",
    "optim",
    "save",
    "stack",
]
