"""Argument checks shared by the layers and initializers: each names the op and the argument it refuses."""

from __future__ import annotations

from typing import Any

import numpy as np


def check_real(op: str, name: str, value: Any) -> float:
    """``value`` as a float if it is a finite real number (not a bool), else a ValueError naming it."""
    real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not real or not np.isfinite(value):
        raise ValueError(f"{op}: {name} must be a finite number, got {value!r}")
    return float(value)


def check_int(op: str, name: str, value: Any) -> int:
    """``value`` as an int if it is an integer (not a bool), else a ValueError naming it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{op}: {name} must be an integer, got {value!r}")
    return int(value)
