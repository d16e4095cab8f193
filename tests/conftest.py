"""Shared fixtures."""

import os

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


@pytest.fixture(autouse=True, scope="session")
def _dataset_cache(tmp_path_factory: pytest.TempPathFactory):
    """Keep the dataset cache of the test run in a temporary folder (subprocesses inherit it)."""
    previous = os.environ.get("MINIGRAD_CACHE")
    os.environ["MINIGRAD_CACHE"] = str(tmp_path_factory.mktemp("dataset-cache"))
    yield
    if previous is None:
        del os.environ["MINIGRAD_CACHE"]
    else:
        os.environ["MINIGRAD_CACHE"] = previous
