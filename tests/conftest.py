"""Shared fixtures."""

import pytest

_PLUGIN_SOURCE = '''
import numpy as np
from minigrad.optim import Optimizer


class SignSGD(Optimizer):
    """w = w - lr * sign(g)."""

    def __init__(self, params, lr=0.01):
        super().__init__(params, lr=lr)

    def update(self, w, g, state):
        w -= self.lr * np.sign(g)
'''


@pytest.fixture
def plugin_source() -> str:
    """The source of a tiny plug-in optimizer, SignSGD (w = w - lr * sign(g)), to write to a file."""
    return _PLUGIN_SOURCE
