"""Optimizers: they read the gradients (dW, db) that backward left in ``.grad``.

Each optimizer is one class in its own file: its hyperparameter checks and
one rule, ``update(w, g, state)``, under its equations, one commented line
each. :class:`Optimizer` (``optimizer.py``) owns the rest: the parameter
list, per-parameter state, ``step()``, ``zero_grad()`` and the state dict.

- ``sgd.py``: :class:`SGD` (optionally with classic or Nesterov momentum) and
  :class:`Momentum` (momentum as an exponentially weighted average);
- ``adam.py``: :class:`Adam`, :class:`AdamW` (decoupled weight decay),
  :class:`NAdam` (Nesterov momentum);
- ``rmsprop.py``: :class:`RMSprop`; ``adagrad.py``: :class:`Adagrad`;
  ``lion.py``: :class:`Lion`;
- ``lr_scheduler.py``: learning-rate schedules with PyTorch's names, which
  set ``optimizer.lr`` once per ``scheduler.step()``.

Hyperparameters are attributes (``opt.lr = 0.01`` changes the rate, checked
as in the constructor), and ``repr``, ``hyperparameters`` and
``state_dict()`` read them.
"""

from minigrad.optim import lr_scheduler
from minigrad.optim.adagrad import Adagrad
from minigrad.optim.adam import Adam, AdamW, NAdam
from minigrad.optim.lion import Lion
from minigrad.optim.optimizer import Optimizer, check_betas, check_flag, check_number
from minigrad.optim.rmsprop import RMSprop
from minigrad.optim.sgd import SGD, Momentum

__all__ = [
    "Optimizer",
    "SGD",
    "Momentum",
    "Adam",
    "AdamW",
    "NAdam",
    "RMSprop",
    "Adagrad",
    "Lion",
    "check_number",
    "check_betas",
    "check_flag",
    "lr_scheduler",
]
