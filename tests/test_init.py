"""Tests of ``mg.nn.init``: PyTorch's gains, the fan convention for W of shape (in, out), in-place fills.

Distributions are checked on large weights (10⁵ draws) by their bounds and
standard deviations, against the formulas written out here; a sample standard
deviation of n draws is within a few times std/√(2n) of the true one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import init

IN, OUT = 500, 200  # fan_in 500, fan_out 200 for W of shape (in_features, out_features)


def fresh(shape: tuple[int, ...] = (IN, OUT), dtype: type = np.float64) -> nn.Parameter:
    return nn.Parameter(np.full(shape, 123.0), dtype=dtype)


def assert_std(values: np.ndarray, std: float) -> None:
    """The sample standard deviation is std within 5 standard errors, std/√(2n) each."""
    assert abs(values.std() - std) < 5 * std / math.sqrt(2 * values.size), (values.std(), std)
    assert abs(values.mean()) < 5 * std / math.sqrt(values.size)


def assert_uniform(values: np.ndarray, bound: float) -> None:
    """Inside ±bound, reaching close to both ends, with the std of U(-bound, bound), bound/√3."""
    assert values.min() >= -bound and values.max() <= bound
    assert values.min() < -0.999 * bound and values.max() > 0.999 * bound
    assert_std(values, bound / math.sqrt(3))


@pytest.mark.parametrize(
    "nonlinearity, param, gain",
    [
        ("linear", None, 1.0),
        ("identity", None, 1.0),
        ("sigmoid", None, 1.0),
        ("tanh", None, 5 / 3),
        ("relu", None, math.sqrt(2)),
        ("leaky_relu", None, math.sqrt(2 / (1 + 0.01**2))),
        ("leaky_relu", 0.2, math.sqrt(2 / 1.04)),
        ("leaky_relu", math.sqrt(5), math.sqrt(1 / 3)),
        ("selu", None, 0.75),
    ],
)
def test_calculate_gain_is_pytorchs(nonlinearity: str, param: float | None, gain: float) -> None:
    """The gains of torch.nn.init.calculate_gain."""
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(gain, rel=1e-15)


def test_calculate_gain_refuses_unknown_nonlinearities() -> None:
    with pytest.raises(ValueError, match="gelu.*relu"):
        init.calculate_gain("gelu")


@pytest.mark.parametrize("mode, fan", [("fan_in", IN), ("fan_out", OUT)])
@pytest.mark.parametrize("nonlinearity, a", [("relu", 0.0), ("leaky_relu", 0.0), ("leaky_relu", 0.3), ("tanh", 0.0)])
def test_kaiming_uniform_and_normal_use_gain_over_sqrt_fan(mode: str, fan: int, nonlinearity: str, a: float) -> None:
    """kaiming_uniform_: U(±gain·√(3/fan)); kaiming_normal_: N(0, (gain/√fan)²); fan_in = W.shape[0]."""
    mg.manual_seed(0)
    gain = math.sqrt(2.0) if nonlinearity == "relu" else 5 / 3 if nonlinearity == "tanh" else math.sqrt(2 / (1 + a * a))
    w = init.kaiming_uniform_(fresh(), a=a, mode=mode, nonlinearity=nonlinearity)
    assert_uniform(w.data, gain * math.sqrt(3 / fan))
    w = init.kaiming_normal_(fresh(), a=a, mode=mode, nonlinearity=nonlinearity)
    assert_std(w.data, gain / math.sqrt(fan))


def test_kaiming_defaults_are_pytorchs() -> None:
    """Defaults a=0, mode='fan_in', nonlinearity='leaky_relu': gain √(2/(1 + 0²)) = √2 over √fan_in."""
    mg.manual_seed(0)
    assert_uniform(init.kaiming_uniform_(fresh()).data, math.sqrt(2) * math.sqrt(3 / IN))
    assert_std(init.kaiming_normal_(fresh()).data, math.sqrt(2 / IN))


@pytest.mark.parametrize("gain", [1.0, 5 / 3])
def test_xavier_uniform_and_normal(gain: float) -> None:
    """xavier_uniform_: U(±gain·√(6/(fan_in + fan_out))); xavier_normal_: std gain·√(2/(fan_in + fan_out))."""
    mg.manual_seed(0)
    assert_uniform(init.xavier_uniform_(fresh(), gain=gain).data, gain * math.sqrt(6 / (IN + OUT)))
    assert_std(init.xavier_normal_(fresh(), gain=gain).data, gain * math.sqrt(2 / (IN + OUT)))


def test_the_fans_follow_the_layer_not_the_array_layout() -> None:
    """For Linear(in, out), W has shape (in, out) and fan_in is in: the spread PyTorch gives the same layer."""
    mg.manual_seed(0)
    layer = nn.Linear(IN, OUT, dtype=np.float64)
    assert layer.W.shape == (IN, OUT)
    assert_std(init.kaiming_normal_(layer.W, nonlinearity="relu").data, math.sqrt(2 / IN))
    assert_std(init.kaiming_normal_(layer.W, mode="fan_out", nonlinearity="relu").data, math.sqrt(2 / OUT))
    # Linear's own default, U(±1/√fan_in), is kaiming_uniform_ with a = √5
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) * math.sqrt(3 / IN) == pytest.approx(1 / math.sqrt(IN))


def test_uniform_normal_zeros_ones() -> None:
    """The plain fills, on any shape (a bias too)."""
    mg.manual_seed(0)
    u = init.uniform_(fresh((100_000,)), a=-2.0, b=3.0).data
    assert u.min() >= -2.0 and u.max() <= 3.0
    assert_std(u - 0.5, 5 / math.sqrt(12))
    n = init.normal_(fresh((400, 250)), mean=1.5, std=0.2).data
    assert_std(n - 1.5, 0.2)
    assert np.array_equal(init.zeros_(fresh((3, 2))).data, np.zeros((3, 2)))
    assert np.array_equal(init.ones_(fresh((4,))).data, np.ones(4))
    u01 = init.uniform_(fresh((1000,))).data
    assert u01.min() >= 0 and u01.max() <= 1


def test_normal_with_std_0_and_uniform_with_a_equal_b_fill_a_constant() -> None:
    """std=0 and a=b are degenerate but valid (as in PyTorch): every element becomes the mean, or a.

    Guards the bounds of the argument checks: ``std <= 0`` or ``a >= b`` refused them.
    """
    w = mg.nn.Parameter(np.zeros((3, 2)))
    np.testing.assert_array_equal(mg.nn.init.normal_(w, mean=1.5, std=0.0).data, np.full((3, 2), 1.5))
    np.testing.assert_array_equal(mg.nn.init.uniform_(w, a=-2.0, b=-2.0).data, np.full((3, 2), -2.0))


INITS: dict[str, Callable[[nn.Parameter], object]] = {
    "uniform_": init.uniform_,
    "normal_": init.normal_,
    "zeros_": init.zeros_,
    "ones_": init.ones_,
    "xavier_uniform_": init.xavier_uniform_,
    "xavier_normal_": init.xavier_normal_,
    "kaiming_uniform_": init.kaiming_uniform_,
    "kaiming_normal_": init.kaiming_normal_,
}


@pytest.mark.parametrize("name", list(INITS))
def test_every_init_fills_in_place_keeps_the_dtype_and_returns_the_tensor(name: str) -> None:
    """The same Parameter and the same array come back, float32 stays float32, every element is overwritten."""
    w = fresh((30, 20), dtype=np.float32)
    array = w.data
    assert INITS[name](w) is w
    assert w.data is array and w.dtype == np.float32
    assert not np.any(w.data == 123.0)


@pytest.mark.parametrize("name", [n for n in INITS if n not in ("zeros_", "ones_")])
def test_every_random_init_is_drawn_from_minigrads_seeded_generator(name: str) -> None:
    """manual_seed repeats the draw; an explicit generator is used instead when given."""
    mg.manual_seed(5)
    first = INITS[name](fresh((20, 10))).data.copy()  # type: ignore[attr-defined]
    mg.manual_seed(5)
    assert np.array_equal(INITS[name](fresh((20, 10))).data, first)  # type: ignore[attr-defined]
    fn = getattr(init, name)
    a = fn(fresh((20, 10)), generator=np.random.default_rng(1)).data
    b = fn(fresh((20, 10)), generator=np.random.default_rng(1)).data
    assert np.array_equal(a, b) and not np.array_equal(a, first)


@pytest.mark.parametrize("name", ["xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_"])
@pytest.mark.parametrize("shape", [(5,), (2, 3, 4), ()])
def test_fan_based_inits_refuse_weights_that_are_not_2d(name: str, shape: tuple[int, ...]) -> None:
    """Fans are defined for W of shape (in_features, out_features); the message names the shape."""
    with pytest.raises(ValueError, match=rf"{name}.*{re.escape(str(shape))}"):
        getattr(init, name)(fresh(shape))


def test_bad_arguments_are_refused_naming_them() -> None:
    """Unknown mode or nonlinearity, non-Tensors, a > b, negative std, empty fans."""
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_uniform_(fresh(), mode="fan_avg")
    with pytest.raises(ValueError, match="nonlinearity"):
        init.kaiming_normal_(fresh(), nonlinearity="swish")
    with pytest.raises(TypeError, match="normal_.*ndarray"):
        init.normal_(np.zeros(3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a <= b"):
        init.uniform_(fresh(), a=1.0, b=0.0)
    with pytest.raises(ValueError, match="std"):
        init.normal_(fresh(), std=-1.0)
    with pytest.raises(ValueError, match="gain"):
        init.xavier_uniform_(fresh(), gain=float("nan"))
    with pytest.raises(ValueError, match=r"\(0, 3\)"):
        init.xavier_uniform_(fresh((0, 3)))
