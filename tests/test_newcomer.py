"""The mistakes a newcomer makes first get a message that says what to do.

An activation given a numpy array works as Linear does; an optimizer given
the bound method ``model.parameters`` asks "did you mean model.parameters()";
float64 data into a float32 model warns once per layer that it runs at
float64 speed.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import minigrad as mg

X = np.array([[-1.5, 0.0, 2.0], [0.5, -0.25, 3.0]])  # float64, as numpy makes it


@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        (mg.nn.ReLU(), np.maximum(X, 0)),
        (mg.nn.Tanh(), np.tanh(X)),
        (mg.nn.Sigmoid(), 1 / (1 + np.exp(-X))),
        (mg.nn.LeakyReLU(0.1), np.where(X > 0, X, 0.1 * X)),
        (mg.nn.GELU("tanh"), 0.5 * X * (1 + np.tanh(np.sqrt(2 / np.pi) * (X + 0.044715 * X**3)))),
        (mg.nn.Softmax(), np.exp(X) / np.exp(X).sum(axis=1, keepdims=True)),
        (mg.nn.Identity(), X),
        (mg.nn.Flatten(), X),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, mg.nn.Module) else "",
)
def test_activations_accept_numpy_arrays_as_linear_does(layer: mg.nn.Module, expected: np.ndarray) -> None:
    out = layer(X)
    assert isinstance(out, mg.Tensor)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)


def test_dropout_accepts_a_numpy_array() -> None:
    drop = mg.nn.Dropout(0.5)
    drop.eval()
    np.testing.assert_array_equal(drop(X).data, X)
    drop.train()
    mg.manual_seed(0)
    out = drop(X).data
    assert set(np.unique(out[X != 0] / X[X != 0])) <= {0.0, 2.0}  # dropped, or kept and scaled by 1/(1-p)


def test_an_mlp_chain_of_activations_takes_a_list() -> None:
    mlp = mg.nn.Sequential(mg.nn.Tanh(), mg.nn.ReLU())
    np.testing.assert_allclose(mlp([[-1.0, 1.0]]).data, [[0.0, np.tanh(1.0)]], rtol=1e-6)


def test_optimizer_given_the_method_not_its_result_says_call_it() -> None:
    model = mg.nn.MLP([2, 3, 2])
    with pytest.raises(TypeError, match=r"did you mean model\.parameters\(\)"):
        mg.optim.SGD(model.parameters, lr=0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"did you mean model\.parameters\(\)"):
        mg.optim.Adam(model.named_parameters, lr=0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"pass model\.parameters\(\)"):
        mg.optim.SGD(model.named_parameters(), lr=0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"iterable of Tensors .*got int"):
        mg.optim.SGD(3, lr=0.1)  # type: ignore[arg-type]


def test_float64_tensor_into_a_float32_model_warns_once_per_layer() -> None:
    mg.manual_seed(0)
    model = mg.nn.MLP([3, 4, 2])  # float32 weights
    with pytest.warns(UserWarning) as caught:
        out = model(mg.Tensor(X))  # a float64 Tensor: numpy's default dtype
        model(mg.Tensor(X))  # the second batch says nothing more
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2  # one per Linear: the first one's float64 output reaches the second
    assert "Linear(3, 4)" in messages[0] and "Linear(4, 2)" in messages[1]
    assert all("float64" in m and "dtype=np.float32" in m for m in messages)
    assert out.dtype == np.float64  # it says what happens: the computation ran in float64


def test_arrays_and_float32_tensors_do_not_warn() -> None:
    model = mg.nn.MLP([3, 4, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model(X).dtype == np.float32  # a numpy array takes the layer's dtype
        assert model(mg.Tensor(X, dtype=np.float32)).dtype == np.float32
        assert mg.nn.MLP([3, 2], dtype=np.float64)(mg.Tensor(X)).dtype == np.float64
