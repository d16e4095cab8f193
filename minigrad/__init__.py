"""minigrad: reverse-mode automatic differentiation on numpy, from scratch.

``import minigrad as mg``; ``mg.Tensor`` records operations, ``backward()``
fills ``.grad``; ``mg.nn`` has layers and losses, ``mg.optim`` the optimizers,
``mg.data`` scikit-learn's toy datasets and ``mg.lab`` the convergence lab.
"""

from minigrad import nn, optim  # noqa: E402  (nn and optim build on the engine)
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
from minigrad.nn import load, save

__version__ = "0.1.0"

__all__ = [
    "GradcheckError",
    "Tensor",
    "concatenate",
    "get_generator",
    "gradcheck",
    "is_grad_enabled",
    "linear",
    "load",
    "manual_seed",
    "nn",
    "no_grad",
    "optim",
    "save",
    "stack",
]
