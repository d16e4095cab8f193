"""Tests of ``mg.nn``: layers, parameter discovery, losses and state dicts.

Every expected value is computed here, in plain numpy, from the equations:
the MLP's gradients by a hand-written forward and backward pass of the same
network, the losses from their textbook formulas (with log-sum-exp taken by
``np.logaddexp`` for large logits), and the losses' gradients also by
``mg.gradcheck`` (central differences in float64).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

import numpy as np
import pytest
from test_nn_layers import X

import minigrad as mg
from minigrad import nn

# ---------------------------------------------------------------------------
# A hand-written numpy MLP: forward and backward, float64
# ---------------------------------------------------------------------------

SIZES = [5, 7, 6, 3]
BATCH = 8

# activation name -> (f(z), f'(z)) written from the math
ACTIVATIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]] = {
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(np.float64)),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "sigmoid": (lambda z: 1.0 / (1.0 + np.exp(-z)), lambda z: np.exp(-z) / (1.0 + np.exp(-z)) ** 2),
}


def numpy_mlp(
    Ws: list[np.ndarray],
    bs: list[np.ndarray],
    x: np.ndarray,
    activation: str,
    loss: str,
    target: np.ndarray,
) -> tuple[float, list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Forward and backward of a Linear/activation stack in numpy.

    Returns (loss, dWs, dbs, dx). ``loss`` is "cross_entropy" (integer
    targets, mean over the batch) or "mse" (mean over every element).
    """
    f, df = ACTIVATIONS[activation]
    zs: list[np.ndarray] = []  # pre-activations of the hidden layers
    inputs: list[np.ndarray] = []  # the input of each Linear layer
    a = x
    for i, (W, b) in enumerate(zip(Ws, bs)):
        inputs.append(a)
        z = a @ W + b
        if i < len(Ws) - 1:
            zs.append(z)
            a = f(z)
        else:
            out = z
    n = out.shape[0]
    if loss == "cross_entropy":
        m = out.max(axis=1, keepdims=True)
        p = np.exp(out - m) / np.exp(out - m).sum(axis=1, keepdims=True)
        value = float(-np.log(p[np.arange(n), target]).mean())
        onehot = np.zeros_like(out)
        onehot[np.arange(n), target] = 1.0
        dout = (p - onehot) / n
    else:
        value = float(((out - target) ** 2).mean())
        dout = 2.0 * (out - target) / out.size
    dWs: list[np.ndarray] = [np.empty(0)] * len(Ws)
    dbs: list[np.ndarray] = [np.empty(0)] * len(Ws)
    g = dout
    for i in reversed(range(len(Ws))):
        dWs[i] = inputs[i].T @ g  # dW = xᵀ·dout
        dbs[i] = g.sum(axis=0)  # db = Σ_rows dout
        g = g @ Ws[i].T  # dx = dout·Wᵀ
        if i > 0:
            g = g * df(zs[i - 1])
    return value, dWs, dbs, g


def linear_layers(model: nn.MLP) -> list[nn.Linear]:
    """The Linear layers of an MLP, in order."""
    return [m for m in model.layers if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_mlp_dW_db_match_a_hand_written_numpy_backprop(activation: str, loss: str) -> None:
    """Every layer's W.grad and b.grad (and dx) equal numpy's backprop of the same net."""
    mg.manual_seed(0)
    model = nn.MLP(SIZES, activation=activation, dtype=np.float64)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(BATCH, SIZES[0]))
    if loss == "cross_entropy":
        target = rng.integers(0, SIZES[-1], size=BATCH)
    else:
        target = rng.normal(size=(BATCH, SIZES[-1]))
    layers = linear_layers(model)
    Ws = [layer.W.data.copy() for layer in layers]
    bs = [layer.b.data.copy() for layer in layers]
    want_loss, want_dW, want_db, want_dx = numpy_mlp(Ws, bs, x, activation, loss, target)

    xt = mg.Tensor(x, requires_grad=True)
    out = model(xt)
    value = nn.cross_entropy(out, target) if loss == "cross_entropy" else nn.mse_loss(out, target)
    value.backward()

    assert value.dtype == np.float64
    np.testing.assert_allclose(value.item(), want_loss, rtol=1e-12, atol=1e-14)
    for i, layer in enumerate(layers):
        assert layer.W.grad is not None and layer.b.grad is not None
        assert layer.W.grad.shape == layer.W.shape and layer.b.grad.shape == layer.b.shape
        assert layer.W.grad.dtype == np.float64 and layer.b.grad.dtype == np.float64
        np.testing.assert_allclose(layer.W.grad, want_dW[i], rtol=1e-10, atol=1e-13, err_msg=f"dW of layer {i}")
        np.testing.assert_allclose(layer.b.grad, want_db[i], rtol=1e-10, atol=1e-13, err_msg=f"db of layer {i}")
    np.testing.assert_allclose(xt.grad, want_dx, rtol=1e-10, atol=1e-13)
    # the weights themselves are untouched by forward/backward
    for layer, W, b in zip(layers, Ws, bs):
        assert np.array_equal(layer.W.data, W) and np.array_equal(layer.b.data, b)


def test_mlp_float32_gradients_are_float32_and_close_to_float64() -> None:
    """The default float32 MLP gives float32 gradients close to the float64 reference."""
    mg.manual_seed(3)
    model = nn.MLP(SIZES, activation="tanh")
    layers = linear_layers(model)
    assert all(layer.W.dtype == np.float32 for layer in layers)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(BATCH, SIZES[0])).astype(np.float32)
    target = rng.integers(0, SIZES[-1], size=BATCH)
    Ws = [layer.W.data.astype(np.float64) for layer in layers]
    bs = [layer.b.data.astype(np.float64) for layer in layers]
    _, want_dW, want_db, _ = numpy_mlp(Ws, bs, x.astype(np.float64), "tanh", "cross_entropy", target)
    nn.cross_entropy(model(mg.Tensor(x)), target).backward()
    for i, layer in enumerate(layers):
        assert layer.W.grad.dtype == np.float32 and layer.b.grad.dtype == np.float32
        np.testing.assert_allclose(layer.W.grad, want_dW[i], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(layer.b.grad, want_db[i], rtol=1e-4, atol=1e-6)


def test_readme_claim_linear_dW_is_xT_c_and_db_is_column_sum() -> None:
    """For out = x W + b and loss = (out * c).sum(): W.grad == xᵀ c and b.grad == Σ_rows c."""
    mg.manual_seed(0)
    layer = nn.Linear(4, 3, dtype=np.float64)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 4))
    c = rng.normal(size=(6, 3))
    out = layer(mg.Tensor(x))
    np.testing.assert_allclose(out.data, x @ layer.W.data + layer.b.data, rtol=1e-14, atol=1e-14)
    (out * mg.Tensor(c)).sum().backward()
    np.testing.assert_allclose(layer.W.grad, x.T @ c, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(layer.b.grad, c.sum(axis=0), rtol=1e-13, atol=1e-14)


def test_mlp_structure_has_no_activation_after_the_last_layer() -> None:
    """MLP([5, 7, 6, 3], "tanh") is Linear, Tanh, Linear, Tanh, Linear with those sizes."""
    model = nn.MLP(SIZES, activation="tanh")
    assert [type(m) for m in model.layers] == [nn.Linear, nn.Tanh, nn.Linear, nn.Tanh, nn.Linear]
    shapes = [m.W.shape for m in linear_layers(model)]
    assert shapes == [(5, 7), (7, 6), (6, 3)]
    assert [type(m) for m in nn.MLP([64, 64, 10]).layers] == [nn.Linear, nn.ReLU, nn.Linear]


def test_sequential_applies_modules_in_order() -> None:
    """Sequential(a, b)(x) equals b(a(x)); a non-module item is refused."""
    mg.manual_seed(0)
    a, b = nn.Linear(3, 4, dtype=np.float64), nn.Linear(4, 2, dtype=np.float64)
    x = np.random.default_rng(0).normal(size=(5, 3))
    seq = nn.Sequential(a, nn.Tanh(), b)
    want = np.tanh(x @ a.W.data + a.b.data) @ b.W.data + b.b.data
    np.testing.assert_allclose(seq(mg.Tensor(x)).data, want, rtol=1e-13, atol=1e-14)
    assert len(seq) == 3 and seq[2] is b
    with pytest.raises(TypeError):
        nn.Sequential(a, "relu")  # type: ignore[arg-type]


def test_an_mlp_chain_of_activations_takes_a_list() -> None:
    mlp = mg.nn.Sequential(mg.nn.Tanh(), mg.nn.ReLU())
    np.testing.assert_allclose(mlp([[-1.0, 1.0]]).data, [[0.0, np.tanh(1.0)]], rtol=1e-6)


# ---------------------------------------------------------------------------
# Parameter discovery
# ---------------------------------------------------------------------------


class Block(nn.Module):
    """A sub-module with a Linear layer and a bare Parameter."""

    def __init__(self) -> None:
        self.fc = nn.Linear(2, 3)
        self.scale = nn.Parameter(np.ones(3))

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        """fc(x) * scale."""
        return self.fc(x) * self.scale


class Net(nn.Module):
    """Nested modules in a list and a tuple, a Parameter attribute, and non-parameters."""

    def __init__(self) -> None:
        self.stem = nn.Linear(4, 2)
        self.blocks = [Block(), Block()]
        self.heads = (nn.Linear(3, 1), nn.Linear(3, 2, bias=False))
        self.temperature = nn.Parameter(np.array(1.0))
        self.plain = mg.Tensor(np.ones(2), requires_grad=True)  # not a Parameter: not reported
        self.config = {"width": 3}
        self.act = nn.ReLU()

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        """stem, the blocks in turn on the same features, the first head."""
        h = self.act(self.stem(x))
        h = self.blocks[0](h) + self.blocks[1](h)
        return self.heads[0](h) / self.temperature


NET_NAMES = [
    "stem.W",
    "stem.b",
    "blocks.0.fc.W",
    "blocks.0.fc.b",
    "blocks.0.scale",
    "blocks.1.fc.W",
    "blocks.1.fc.b",
    "blocks.1.scale",
    "heads.0.W",
    "heads.0.b",
    "heads.1.W",
    "temperature",
]


def test_mlp_parameter_names() -> None:
    """MLP parameters are named by their layer's index in ``layers``."""
    model = nn.MLP(SIZES)
    names = [name for name, _ in model.named_parameters()]
    assert names == ["layers.0.W", "layers.0.b", "layers.2.W", "layers.2.b", "layers.4.W", "layers.4.b"]
    layers = linear_layers(model)
    want = [p for layer in layers for p in (layer.W, layer.b)]
    got = model.parameters()
    assert len(got) == len(want) and all(g is w for g, w in zip(got, want))
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in got)


def test_nested_modules_lists_tuples_and_bare_parameters_are_found() -> None:
    """Parameters in sub-modules, lists and tuples of them, and as attributes, in set order."""
    net = Net()
    named = list(net.named_parameters())
    assert [name for name, _ in named] == NET_NAMES
    by_name = dict(named)
    assert by_name["blocks.1.fc.W"] is net.blocks[1].fc.W
    assert by_name["heads.1.W"] is net.heads[1].W
    assert by_name["temperature"] is net.temperature
    assert all(p is not net.plain for p in net.parameters())
    # the order is stable across calls and across instances
    assert [n for n, _ in net.named_parameters()] == NET_NAMES
    assert [n for n, _ in Net().named_parameters()] == NET_NAMES
    assert [id(p) for p in net.parameters()] == [id(p) for _, p in named]
    assert list(net.state_dict()) == NET_NAMES


def test_shared_parameter_and_shared_module_are_reported_once() -> None:
    """A parameter reachable by two paths appears once, under the first name."""

    class Tied(nn.Module):
        """Two layers sharing W, and one layer referenced twice."""

        def __init__(self) -> None:
            self.first = nn.Linear(3, 3)
            self.second = nn.Linear(3, 3)
            self.second.W = self.first.W
            self.again = self.first

        def forward(self, x: mg.Tensor) -> mg.Tensor:
            """second(first(x))."""
            return self.second(self.first(x))

    model = Tied()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["first.W", "first.b", "second.b"]
    params = model.parameters()
    assert len({id(p) for p in params}) == len(params) == 3
    assert list(model.state_dict()) == names


def test_no_layer_hand_writes_parameters() -> None:
    """Discovery lives in Module alone: no built-in layer defines its own parameters()."""
    for cls in (nn.Linear, nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Sequential, nn.MLP, Net, Block):
        for method in ("parameters", "named_parameters", "state_dict", "load_state_dict", "zero_grad"):
            assert method not in vars(cls), f"{cls.__name__} defines {method}()"
    assert nn.Module.parameters is nn.Linear.parameters


def test_a_parameter_owns_its_array() -> None:
    """Parameter(a) copies a: a step of the optimizer moves the parameter, not the caller's array.

    Guards the copy in Parameter.__init__: without it, a model built from
    another's arrays (Parameter(other.W.data)) trained both at once.
    """
    a = np.array([1.0, 2.0, 3.0])
    p = mg.nn.Parameter(a)
    assert not np.shares_memory(p.data, a)
    p.grad = np.array([1.0, 1.0, 1.0])
    mg.optim.SGD([p], lr=0.5).step()
    np.testing.assert_array_equal(p.data, [0.5, 1.5, 2.5])
    np.testing.assert_array_equal(a, [1.0, 2.0, 3.0])


def test_activation_modules_have_no_parameters() -> None:
    """ReLU, Tanh and Sigmoid hold no parameters and compute their functions."""
    x = np.linspace(-3, 3, 7)
    for module, want in (
        (nn.ReLU(), np.maximum(x, 0)),
        (nn.Tanh(), np.tanh(x)),
        (nn.Sigmoid(), 1 / (1 + np.exp(-x))),
    ):
        assert module.parameters() == []
        np.testing.assert_allclose(module(mg.Tensor(x)).data, want, rtol=1e-12, atol=1e-15)


@pytest.mark.filterwarnings("ignore:Linear.*float64")  # Net mixes float64 parameters into float32 layers
def test_module_zero_grad_clears_every_parameter() -> None:
    """After backward every parameter has a grad; Module.zero_grad clears all of them."""
    mg.manual_seed(0)
    net = Net()
    net(mg.Tensor(np.ones((2, 4)))).sum().backward()
    used = [p for name, p in net.named_parameters() if name != "heads.1.W"]  # heads.1 is unused
    assert all(p.grad is not None for p in used)
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_train_and_eval_propagate_to_every_submodule() -> None:
    """eval() and train() reach modules inside lists and tuples, and return the module."""
    net = Net()
    subs = [net, net.stem, net.act, net.blocks[0], net.blocks[1].fc, net.heads[0], net.heads[1]]
    assert all(m.training for m in subs)
    assert net.eval() is net
    assert not any(m.training for m in subs)
    assert net.train() is net
    assert all(m.training for m in subs)
    net.train(False)
    assert not any(m.training for m in subs)


def test_training_and_train_accept_only_bools() -> None:
    """``m.training = "False"`` is a TypeError, not a truthy string that keeps Dropout dropping; train() names itself.

    Guards the check_flag of the ``training`` setter (dropped, the string was
    stored and Dropout kept dropping in "evaluation") and the one of train()
    (dropped, the error named the setter, not the call the user made).
    """
    drop = mg.nn.Dropout(0.5)
    with pytest.raises(TypeError, match=r"training: mode must be True or False, got 'False'"):
        drop.training = "False"  # type: ignore[assignment]
    assert drop.training is True
    drop.training = np.bool_(False)
    assert drop.training is False  # stored as a Python bool
    model = mg.nn.Sequential(mg.nn.Linear(2, 2), mg.nn.Dropout(0.5))
    with pytest.raises(TypeError, match=r"^train: mode must be True or False, got 0$"):
        model.train(0)  # type: ignore[arg-type]
    assert all(m.training is True for m in model.modules())


def test_repr_is_nested_and_readable() -> None:
    """The repr names each child with its attribute path, indenting deeper levels."""
    text = repr(nn.MLP([5, 7, 3]))
    assert text.startswith("MLP(")
    assert "Linear(in_features=5, out_features=7, bias=True)" in text
    assert "ReLU()" in text
    assert "Linear(in_features=7, out_features=3, bias=True)" in text
    assert text.index("in_features=5") < text.index("ReLU()") < text.index("in_features=7")

    lines = repr(Net()).splitlines()

    def indent(line: str) -> int:
        return len(line) - len(line.lstrip())

    block = next(i for i, line in enumerate(lines) if "Block(" in line)
    fc = next(i for i, line in enumerate(lines) if i > block and "Linear(in_features=2, out_features=3" in line)
    assert "blocks.0" in lines[block] and "fc" in lines[fc]
    assert indent(lines[fc]) > indent(lines[block]) > indent(lines[0])
    assert any("bias=False" in line and "heads.1" in line for line in lines)


# ---------------------------------------------------------------------------
# Linear
# ---------------------------------------------------------------------------


def test_linear_shapes_and_forward() -> None:
    """W is (in, out), b is (out,), and forward is x @ W + b."""
    layer = nn.Linear(5, 3, dtype=np.float64)
    assert layer.W.shape == (5, 3) and layer.b.shape == (3,)
    assert layer.W.dtype == np.float64 and layer.b.dtype == np.float64
    x = np.random.default_rng(0).normal(size=(4, 5))
    out = layer(mg.Tensor(x))
    assert out.shape == (4, 3)
    np.testing.assert_allclose(out.data, x @ layer.W.data + layer.b.data, rtol=1e-14, atol=1e-14)
    one = layer(mg.Tensor(x[0]))
    assert one.shape == (3,)
    np.testing.assert_allclose(one.data, x[0] @ layer.W.data + layer.b.data, rtol=1e-14, atol=1e-14)


def test_linear_init_is_uniform_within_one_over_sqrt_fan_in() -> None:
    """Every entry of W and b lies in ±1/sqrt(in_features) and the range is used."""
    mg.manual_seed(0)
    layer = nn.Linear(64, 50, dtype=np.float64)
    bound = 1 / np.sqrt(64)
    for p in (layer.W.data, layer.b.data):
        assert np.all(np.abs(p) <= bound)
    W = layer.W.data
    assert W.max() > 0.95 * bound and W.min() < -0.95 * bound
    # a uniform on [-a, a] has standard deviation a/sqrt(3)
    assert abs(W.std() - bound / np.sqrt(3)) < 0.05 * bound
    assert abs(W.mean()) < 0.05 * bound


def test_same_seed_gives_bit_identical_layers() -> None:
    """mg.manual_seed(s) before construction fixes every parameter bit for bit."""
    mg.manual_seed(123)
    a = nn.MLP(SIZES)
    mg.manual_seed(123)
    b = nn.MLP(SIZES)
    mg.manual_seed(124)
    c = nn.MLP(SIZES)
    for (na, pa), (nb, pb), (_, pc) in zip(a.named_parameters(), b.named_parameters(), c.named_parameters()):
        assert na == nb
        assert pa.data.tobytes() == pb.data.tobytes()
        assert pa.data is not pb.data
        assert not np.array_equal(pa.data, pc.data)


def test_linear_without_bias() -> None:
    """bias=False: b is None, only W is a parameter, and forward is x @ W."""
    layer = nn.Linear(3, 2, bias=False, dtype=np.float64)
    assert layer.b is None
    assert [name for name, _ in layer.named_parameters()] == ["W"]
    x = np.random.default_rng(0).normal(size=(4, 3))
    out = layer(mg.Tensor(x))
    np.testing.assert_allclose(out.data, x @ layer.W.data, rtol=1e-14, atol=1e-14)
    out.sum().backward()
    np.testing.assert_allclose(layer.W.grad, x.T @ np.ones((4, 2)), rtol=1e-14)
    assert "bias=False" in repr(layer)


def test_linear_casts_an_array_input_to_its_dtype():
    layer = mg.nn.Linear(3, 2)
    out = layer(np.random.default_rng(0).random((4, 3)))  # float64 array
    assert out.dtype == np.float32


@pytest.mark.parametrize("shape", [(2, 9), (9,), (2, 3, 9)])
def test_linear_wrong_input_width_names_both_widths(shape: tuple[int, ...]) -> None:
    """An input of width 9 to Linear(6, ...) raises, naming 6 and 9."""
    layer = nn.Linear(6, 4)
    with pytest.raises(ValueError) as info:
        layer(mg.Tensor(np.ones(shape), dtype=np.float32))
    message = str(info.value)
    assert re.search(r"\b6\b", message), message
    assert re.search(r"\b9\b", message), message


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


@pytest.mark.parametrize("bad", [0, -2, 2.5, True, "3"])
def test_linear_refuses_bad_sizes(bad: object) -> None:
    """in_features and out_features must be positive integers."""
    with pytest.raises(ValueError):
        nn.Linear(bad, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        nn.Linear(3, bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------


def numpy_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """mean_i [logsumexp(logits_i) - logits_i[t_i]], log-sum-exp by np.logaddexp."""
    lse = np.logaddexp.reduce(logits.astype(np.float64), axis=1)
    return float((lse - logits[np.arange(len(targets)), targets]).mean())


def numpy_softmax(logits: np.ndarray) -> np.ndarray:
    """exp(z - logsumexp(z)) row by row, in float64."""
    z = logits.astype(np.float64)
    return np.exp(z - np.logaddexp.reduce(z, axis=1, keepdims=True))


def numpy_bce(z: np.ndarray, y: np.ndarray) -> float:
    """mean of -[y log σ(z) + (1 - y) log(1 - σ(z))], straight from the definition."""
    s = 1 / (1 + np.exp(-z))
    return float(-(y * np.log(s) + (1 - y) * np.log(1 - s)).mean())


def test_mse_loss_value_and_gradient() -> None:
    """mse_loss is mean((pred - target)²) with gradient 2 (pred - target) / n."""
    rng = np.random.default_rng(0)
    pred, target = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    p = mg.Tensor(pred, requires_grad=True)
    loss = nn.mse_loss(p, target)
    np.testing.assert_allclose(loss.item(), ((pred - target) ** 2).mean(), rtol=1e-14)
    loss.backward()
    np.testing.assert_allclose(p.grad, 2 * (pred - target) / pred.size, rtol=1e-13)
    # a Tensor target gives the same value
    np.testing.assert_allclose(nn.mse_loss(mg.Tensor(pred), mg.Tensor(target)).item(), loss.item(), rtol=1e-15)
    assert mg.gradcheck(lambda q: nn.mse_loss(q, target), mg.Tensor(pred, requires_grad=True))


def test_cross_entropy_value_and_gradient() -> None:
    """cross_entropy is the batch mean of -log softmax[target]; grad = (softmax - onehot) / N."""
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6, 4)) * 3
    targets = np.array([0, 3, 1, 1, 2, 0])
    # the textbook definition, with no shift
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    want = float(-np.log(p[np.arange(6), targets]).mean())
    z = mg.Tensor(logits, requires_grad=True)
    loss = nn.cross_entropy(z, targets)
    assert loss.shape == () and loss.dtype == np.float64
    np.testing.assert_allclose(loss.item(), want, rtol=1e-13)
    loss.backward()
    onehot = np.eye(4)[targets]
    np.testing.assert_allclose(z.grad, (p - onehot) / 6, rtol=1e-12, atol=1e-15)
    assert mg.gradcheck(lambda q: nn.cross_entropy(q, targets), mg.Tensor(logits, requires_grad=True))
    # unsigned and narrow integer targets are class indices too
    np.testing.assert_allclose(nn.cross_entropy(mg.Tensor(logits), targets.astype(np.uint8)).item(), want, rtol=1e-13)


def test_cross_entropy_of_one_batch_size_with_several_class_counts() -> None:
    """Logits (2, C) for C = 2, 3, 4, 5, 3 in turn: numpy's loss and (softmax - onehot)/N every time.

    Guards the cache of flat row offsets [0, C, 2C, ...], which must be keyed by
    (N, C): offsets made for another C pick the wrong logits.
    """
    rng = np.random.default_rng(1)
    targets = np.array([1, 0])
    for c in (2, 3, 4, 5, 3):
        z = rng.normal(size=(2, c))
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        t = mg.Tensor(z, requires_grad=True)
        loss = mg.nn.cross_entropy(t, targets)
        np.testing.assert_allclose(loss.data, -np.log(p[[0, 1], targets]).mean(), rtol=1e-12)
        loss.backward()
        np.testing.assert_allclose(t.grad, (p - np.eye(c)[targets]) / 2, rtol=1e-12, atol=1e-15)


def test_binary_cross_entropy_with_logits_value_and_gradient() -> None:
    """BCE-with-logits equals the definition through σ; grad = (σ(z) - y) / N."""
    rng = np.random.default_rng(2)
    z = rng.normal(size=(5, 2)) * 2
    y = rng.integers(0, 2, size=(5, 2)).astype(np.float64)
    logits = mg.Tensor(z, requires_grad=True)
    loss = nn.binary_cross_entropy_with_logits(logits, y)
    np.testing.assert_allclose(loss.item(), numpy_bce(z, y), rtol=1e-12)
    loss.backward()
    np.testing.assert_allclose(logits.grad, (1 / (1 + np.exp(-z)) - y) / z.size, rtol=1e-11, atol=1e-15)
    assert mg.gradcheck(lambda q: nn.binary_cross_entropy_with_logits(q, y), mg.Tensor(z, requires_grad=True))
    soft = rng.uniform(0, 1, size=(5, 2))  # probabilities in [0, 1] are accepted as targets
    np.testing.assert_allclose(nn.binary_cross_entropy_with_logits(mg.Tensor(z), soft).item(), numpy_bce(z, soft))
    assert mg.gradcheck(lambda q: nn.binary_cross_entropy_with_logits(q, soft), mg.Tensor(z, requires_grad=True))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_is_stable_for_logits_in_the_hundreds(dtype: type) -> None:
    """Logits of ±1000 give finite, correct loss and gradient (float64 log-sum-exp by hand)."""
    logits = np.array(
        [[800.0, 0.0, -300.0], [1000.0, 1000.0, 999.0], [-900.0, -950.0, -1000.0], [500.0, -500.0, 700.0]]
    )
    targets = np.array([1, 0, 2, 2])
    # row 0: 800 - 0 + log(1 + e^-800 + e^-1100) = 800 in float64; row 1: log(2 + e^-1)
    want_rows = np.array([800.0, np.log(2 + np.exp(-1.0)), 100.0 + np.log1p(np.exp(-50.0) + np.exp(-100.0)), 0.0])
    want = want_rows.mean()
    assert np.isclose(want, numpy_cross_entropy(logits, targets), rtol=1e-15)
    z = mg.Tensor(logits.astype(dtype), requires_grad=True)
    loss = nn.cross_entropy(z, targets)
    loss.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(z.grad))
    rtol = 1e-13 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(loss.item(), want, rtol=rtol)
    np.testing.assert_allclose(z.grad, (numpy_softmax(logits) - np.eye(3)[targets]) / 4, rtol=rtol, atol=1e-7)
    assert mg.gradcheck(lambda q: nn.cross_entropy(q, targets), mg.Tensor(logits, requires_grad=True))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bce_with_logits_is_stable_for_logits_in_the_hundreds(dtype: type) -> None:
    """z = ±500, ±300 give finite loss and gradient: softplus(z) - z·y taken by np.logaddexp."""
    z = np.array([500.0, -500.0, 300.0, -300.0, 200.0])
    y = np.array([0.0, 1.0, 1.0, 0.0, 0.0])
    want = float((np.logaddexp(0.0, z) - z * y).mean())  # = (500 + 500 + 0 + 0 + 200) / 5
    np.testing.assert_allclose(want, 240.0, rtol=1e-15)
    logits = mg.Tensor(z.astype(dtype), requires_grad=True)
    loss = nn.binary_cross_entropy_with_logits(logits, y)
    loss.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(logits.grad))
    np.testing.assert_allclose(loss.item(), want, rtol=1e-7)
    # σ(z) - y is exactly representable here: 1, -1, ~0, ~0, 1
    np.testing.assert_allclose(logits.grad, np.array([1.0, -1.0, 0.0, 0.0, 1.0]) / 5, atol=1e-12)


def test_cross_entropy_refuses_non_integer_targets() -> None:
    """Fractional targets raise, naming the offending value."""
    with pytest.raises(ValueError, match=r"1\.5"):
        nn.cross_entropy(mg.Tensor(np.zeros((3, 4))), np.array([0.0, 1.5, 2.0]))
    with pytest.raises(ValueError):
        nn.cross_entropy(mg.Tensor(np.zeros((2, 4))), np.array([True, False]))
    with pytest.raises(ValueError):
        nn.cross_entropy(mg.Tensor(np.zeros((2, 4))), np.array(["0", "1"]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e20])
def test_cross_entropy_refuses_non_finite_or_huge_float_targets_naming_them(bad: float) -> None:
    """A NaN, inf or 1e20 float target raises and the message shows that value."""
    with pytest.raises(ValueError) as info:
        nn.cross_entropy(mg.Tensor(np.zeros((2, 4))), np.array([0.0, bad]))
    assert str(bad) in str(info.value) or repr(bad) in str(info.value), str(info.value)


@pytest.mark.parametrize("bad", [7, -2])
def test_cross_entropy_refuses_out_of_range_targets(bad: int) -> None:
    """A target outside [0, C) raises, naming the offending value."""
    with pytest.raises(ValueError) as info:
        nn.cross_entropy(mg.Tensor(np.zeros((3, 4))), np.array([0, bad, 3]))
    assert re.search(rf"(?<![\d-]){bad}(?!\d)", str(info.value)), str(info.value)


@pytest.mark.parametrize(
    ("dtype", "bad"), [(np.uint64, 2**63 + 5), (np.uint8, 4), (np.int8, -1), (np.int16, -300), (np.int32, 2**31 - 1)]
)
def test_cross_entropy_names_out_of_range_targets_of_every_integer_dtype(dtype: type, bad: int) -> None:
    """Out-of-range targets of any integer dtype raise with their true value (no wrap-around in the message)."""
    with pytest.raises(ValueError) as info:
        nn.cross_entropy(mg.Tensor(np.zeros((3, 4))), np.array([0, bad, 3], dtype=dtype))
    assert re.search(rf"(?<![\d-]){bad}(?!\d)", str(info.value)), str(info.value)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint64, np.int8, np.int32, np.int64])
def test_cross_entropy_takes_targets_of_every_integer_dtype(dtype: type) -> None:
    """In-range targets of any integer dtype give the same loss: mean of log Σ e^z - z[target]."""
    z = np.array([[0.5, -1.0, 2.0], [0.0, 0.3, -0.2]])
    loss = nn.cross_entropy(mg.Tensor(z), np.array([2, 0], dtype=dtype))
    expected = np.mean(np.log(np.exp(z).sum(axis=1)) - z[[0, 1], [2, 0]])
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-14)


def test_cross_entropy_refuses_a_target_length_that_does_not_match_the_batch() -> None:
    """Three targets for a batch of four raise, showing both shapes."""
    with pytest.raises(ValueError) as info:
        nn.cross_entropy(mg.Tensor(np.zeros((4, 5))), np.array([0, 1, 2]))
    message = str(info.value)
    assert "(3,)" in message and re.search(r"\(4\b", message), message
    with pytest.raises(ValueError, match=r"targets must have shape \(4,\) to match the batch, got \(4, 1\); "
                                         r"flatten them with y.ravel\(\)"):  # a column of labels
        nn.cross_entropy(mg.Tensor(np.zeros((4, 5))), np.zeros((4, 1), dtype=int))
    with pytest.raises(ValueError, match=r"got \(3,\)$"):  # no hint where flattening would not help
        nn.cross_entropy(mg.Tensor(np.zeros((4, 5))), np.array([0, 1, 2]))


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4), ()])
def test_cross_entropy_refuses_logits_that_are_not_2d(shape: tuple[int, ...]) -> None:
    """Logits must be (N, C); other shapes raise, naming the shape."""
    with pytest.raises(ValueError) as info:
        nn.cross_entropy(mg.Tensor(np.zeros(shape)), np.zeros(shape[:1], dtype=int))
    assert str(shape) in str(info.value)


def test_cross_entropy_refuses_an_empty_batch():
    with pytest.raises(ValueError, match=r"cross_entropy: logits of shape \(0, 3\)"):
        mg.nn.cross_entropy(mg.Tensor(np.zeros((0, 3))), np.zeros(0, dtype=np.int64))


@pytest.mark.parametrize(("pred", "target"), [((4, 1), (4,)), ((4,), (4, 1)), ((3, 2), (2, 3))])
def test_mse_loss_refuses_shapes_that_differ(pred: tuple[int, ...], target: tuple[int, ...]) -> None:
    """Shapes must match exactly (no silent broadcast of (4, 1) against (4,))."""
    with pytest.raises(ValueError) as info:
        nn.mse_loss(mg.Tensor(np.zeros(pred)), np.zeros(target))
    assert str(pred) in str(info.value) and str(target) in str(info.value)


def test_bce_with_logits_error_cases() -> None:
    """Wrong target shape (both shapes named) and targets outside [0, 1] (value named) raise."""
    with pytest.raises(ValueError) as info:
        nn.binary_cross_entropy_with_logits(mg.Tensor(np.zeros((4, 1))), np.zeros(4))
    assert "(4, 1)" in str(info.value) and "(4,)" in str(info.value)
    with pytest.raises(ValueError, match=r"\b2\b"):
        nn.binary_cross_entropy_with_logits(mg.Tensor(np.zeros(3)), np.array([0, 2, 1]))
    with pytest.raises(ValueError, match=r"-0\.5"):
        nn.binary_cross_entropy_with_logits(mg.Tensor(np.zeros(3)), np.array([0.0, -0.5, 1.0]))


def test_bce_with_logits_refuses_nan_targets() -> None:
    """A NaN target is not in [0, 1] and must raise rather than turn the loss into NaN."""
    with pytest.raises(ValueError, match="nan"):
        nn.binary_cross_entropy_with_logits(mg.Tensor(np.zeros(2)), np.array([np.nan, 1.0]))


# ---------------------------------------------------------------------------
# state_dict / load_state_dict
# ---------------------------------------------------------------------------


def snapshot(model: nn.Module) -> dict[str, tuple[bytes, tuple[int, ...], np.dtype]]:
    """Each parameter's raw bytes, shape and dtype, to compare bit for bit."""
    return {name: (p.data.tobytes(), p.shape, p.dtype) for name, p in model.named_parameters()}


def test_state_dict_maps_names_to_copies() -> None:
    """state_dict holds copies: mutating it never touches the model."""
    mg.manual_seed(0)
    model = nn.MLP(SIZES, dtype=np.float64)
    before = snapshot(model)
    state = model.state_dict()
    assert list(state) == [name for name, _ in model.named_parameters()]
    for name, p in model.named_parameters():
        assert isinstance(state[name], np.ndarray)
        assert np.array_equal(state[name], p.data) and state[name].dtype == p.dtype
        assert not np.shares_memory(state[name], p.data)
    for array in state.values():
        array[...] = 42.0
    state["layers.0.W"] = np.zeros((5, 7))
    del state["layers.0.b"]
    assert snapshot(model) == before


def test_load_state_dict_round_trip_keeps_parameter_objects() -> None:
    """Loading copies values into the same Parameter objects, then owns no reference to the dict."""
    mg.manual_seed(0)
    source = nn.MLP(SIZES)
    mg.manual_seed(1)
    target = nn.MLP(SIZES)
    params_before = target.parameters()
    state = source.state_dict()
    target.load_state_dict(state)
    assert snapshot(target) == snapshot(source)
    assert all(a is b for a, b in zip(target.parameters(), params_before))
    for array in state.values():
        array[...] = -1.0
    assert snapshot(target) == snapshot(source)
    x = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    assert np.array_equal(target(mg.Tensor(x)).data, source(mg.Tensor(x)).data)


def bad_states() -> dict[str, tuple[Callable[[dict[str, np.ndarray]], None], list[str]]]:
    """name -> (how to spoil a good state dict, strings the error must contain)."""

    def wrong_shape(s: dict[str, np.ndarray]) -> None:
        s["layers.2.W"] = s["layers.2.W"].T.copy()  # (7, 6) -> (6, 7)

    def wrong_dtype(s: dict[str, np.ndarray]) -> None:
        s["layers.4.b"] = s["layers.4.b"].astype(np.float64)

    def missing(s: dict[str, np.ndarray]) -> None:
        del s["layers.4.W"]

    def extra(s: dict[str, np.ndarray]) -> None:
        s["layers.6.W"] = np.zeros((3, 3), dtype=np.float32)

    def everything(s: dict[str, np.ndarray]) -> None:
        wrong_shape(s)
        missing(s)
        extra(s)

    return {
        "wrong shape": (wrong_shape, ["layers.2.W", "(7, 6)", "(6, 7)"]),
        "wrong dtype": (wrong_dtype, ["layers.4.b", "float32", "float64"]),
        "missing key": (missing, ["missing", "layers.4.W"]),
        "extra key": (extra, ["unexpected", "layers.6.W"]),
        "all at once": (everything, ["missing", "layers.4.W", "unexpected", "layers.6.W", "(7, 6)", "(6, 7)"]),
    }


@pytest.mark.parametrize("case", list(bad_states()))
def test_load_state_dict_refuses_a_bad_state_and_changes_nothing(case: str) -> None:
    """A wrong shape or dtype, a missing or an extra key raise ValueError; the model is untouched."""
    spoil, expected = bad_states()[case]
    mg.manual_seed(0)
    model = nn.MLP(SIZES)
    mg.manual_seed(1)
    state = nn.MLP(SIZES).state_dict()  # every good entry differs from the model's
    spoil(state)
    before = snapshot(model)
    with pytest.raises(ValueError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"
    assert snapshot(model) == before


@pytest.mark.parametrize("layout", ["F", "transposed tensor"])
def test_cross_entropy_gradient_is_the_same_for_column_major_logits(layout: str) -> None:
    """A transposed z is column-major: -onehot(target) was subtracted from a copy and lost (rows summed to 1/N)."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, 3))
    t = np.array([0, 2, 1, 2])
    expected = (np.exp(z) / np.exp(z).sum(axis=1, keepdims=True) - np.eye(3)[t]) / 4
    if layout == "F":
        logits = mg.Tensor(np.asfortranarray(z), requires_grad=True)
        leaf = logits
    else:
        leaf = mg.Tensor(z.T.copy(), requires_grad=True)
        logits = leaf.T
    loss = nn.cross_entropy(logits, t)
    loss.backward()
    grad = leaf.grad if layout == "F" else leaf.grad.T
    np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-15)
    assert float(loss.data) == pytest.approx(float(nn.cross_entropy(mg.Tensor(z), t).data), rel=1e-15)


# ---------------------------------------------------------------------------
# Review of nn and data (helper 35)
# ---------------------------------------------------------------------------


def test_a_column_constant_up_to_rounding_is_not_scaled_by_its_rounding_error() -> None:
    """A training column of 0.1s has std 1.4e-15: a test value of 0.2 was scaled to 7e13 (scikit-learn: 0.1)."""
    from minigrad import data

    train = np.column_stack([np.arange(6.0), np.full(6, 0.1)])
    test = np.array([[1.0, 0.2]])
    train_s, test_s, mean, std = data.standardize(train, test)
    assert std[1] == 1.0 and std[0] == pytest.approx(np.arange(6.0).std(), rel=1e-15)
    assert test_s[0, 1] == pytest.approx(0.1, rel=1e-6)
    np.testing.assert_allclose(train_s[:, 1], 0.0, atol=1e-14)
    wide = np.column_stack([np.arange(6.0), 1e6 + np.arange(6.0) * 1e-3])  # tiny but real spread: scaled
    assert data.standardize(wide, wide)[3][1] == pytest.approx(np.std(np.arange(6.0) * 1e-3), rel=1e-6)


def test_a_module_that_refers_back_to_its_parent_can_switch_mode_and_print() -> None:
    """train(), eval() and repr() recursed forever; named_parameters() already took each module once."""

    class Child(mg.nn.Module):
        def __init__(self) -> None:
            self.w = mg.nn.Parameter(np.zeros(2))
            self.parent: mg.nn.Module | None = None

    class Parent(mg.nn.Module):
        def __init__(self) -> None:
            self.child = Child()
            self.child.parent = self
            self.drop = mg.nn.Dropout(0.5)

    model = Parent()
    assert [type(m).__name__ for m in model.modules()] == ["Parent", "Child", "Dropout"]
    model.eval()
    assert not model.training and not model.drop.training
    model.train()
    assert model.child.training and model.drop.training
    assert repr(model) == "Parent(\n  (child): Child(\n    (parent): Parent(...)\n  )\n  (drop): Dropout(p=0.5)\n)"


def test_named_parameters_survives_a_back_reference():
    model = mg.nn.MLP([2, 3, 1])
    model.layers[0].owner = model  # a cycle in the attribute graph
    assert [n for n, _ in model.named_parameters()] == ["layers.0.W", "layers.0.b", "layers.2.W", "layers.2.b"]


def test_layernorm_without_weights_gives_an_array_its_dtype() -> None:
    """LayerNorm(elementwise_affine=False, dtype=float64) gave float32 for a float32 array (BatchNorm1d: float64)."""
    x = np.ones((2, 3), dtype=np.float32)
    assert mg.nn.LayerNorm(3, elementwise_affine=False, dtype=np.float64)(x).dtype == np.float64
    assert mg.nn.LayerNorm(3, elementwise_affine=False)(x.astype(np.float64)).dtype == np.float32
    assert mg.nn.LayerNorm(3, elementwise_affine=False)(mg.Tensor(x, dtype=np.float64)).dtype == np.float64


def test_batches_take_lists() -> None:
    """y as a list raised numpy's "only integer scalar arrays can be converted to a scalar index"."""
    from minigrad import data

    got = list(data.batches([[0.0], [1.0], [2.0]], [0, 1, 2], batch_size=2, shuffle=False))
    assert [b[1].tolist() for b in got] == [[0, 1], [2]]


def test_a_slice_of_a_sequential_is_a_sequential_of_the_same_modules() -> None:
    a, b, c = mg.nn.Linear(2, 3), mg.nn.ReLU(), mg.nn.Linear(3, 1)
    head = mg.nn.Sequential(a, b, c)[0:2]
    assert isinstance(head, mg.nn.Sequential) and head.layers == [a, b] and head[0] is a


def test_mse_of_a_column_against_a_vector_says_how_to_line_them_up() -> None:
    column = re.escape("mse_loss: pred has shape (4, 1) but target has shape (4,) (no broadcasting")
    with pytest.raises(ValueError, match=column + r".*; reshape the target, target\.reshape\(\(4, 1\)\)$"):
        mg.nn.mse_loss(mg.Tensor(np.ones((4, 1))), np.ones(4))
    for pred, target in (((4, 1), (3,)), ((2, 3), (3, 2))):  # (a reshape would pair the wrong values here)
        with pytest.raises(ValueError, match=re.escape(f"target has shape {target}; give pred and target the same "
                                                       "shape") + "$"):
            mg.nn.mse_loss(mg.Tensor(np.ones(pred)), np.ones(target))


def test_batches_keep_tensors_and_name_a_ragged_list() -> None:
    from minigrad import data

    X = mg.Tensor(np.arange(8.0).reshape(4, 2), requires_grad=True)
    first = next(data.batches(X, np.arange(4), batch_size=2, shuffle=False))[0]
    assert isinstance(first, mg.Tensor) and first.requires_grad
    with pytest.raises(ValueError, match=r"^batches: X or y is a ragged list"):
        list(data.batches([[1.0], [2.0, 3.0]], [0, 1], batch_size=1))


def test_batches_take_any_sequence() -> None:
    """range(6) and array.array raised numpy's "only integer scalar arrays ..." once only lists were converted."""
    import array

    from minigrad import data

    X = np.arange(12.0).reshape(6, 2)
    for y in (range(6), array.array("l", range(6))):
        got = list(data.batches(X, y, batch_size=4, shuffle=False))
        assert [b[1].tolist() for b in got] == [[0, 1, 2, 3], [4, 5]]


class Heads(nn.Module):
    """Sub-modules and a parameter kept in dicts, beside a dict of plain settings."""

    def __init__(self) -> None:
        self.heads = {"mean": nn.Linear(3, 1), "log_std": nn.Linear(3, 1, bias=False)}
        self.scales = {0: nn.Parameter(np.array(2.0))}
        self.config = {"width": 3, "act": "relu"}

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        """The mean head scaled by the first scale."""
        return self.heads["mean"](x) * self.scales[0]


def test_modules_and_parameters_in_a_dict_are_found_and_named_by_key() -> None:
    """A dict of heads was not walked: its parameters were in no optimizer and no state dict, with no error."""
    net = Heads()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["heads.mean.W", "heads.mean.b", "heads.log_std.W", "scales.0"]
    assert dict(net.named_parameters())["heads.log_std.W"] is net.heads["log_std"].W
    assert list(net.state_dict()) == names
    assert [type(m).__name__ for m in net.modules()] == ["Heads", "Linear", "Linear"]
    assert "(heads.mean): Linear(in_features=3, out_features=1, bias=True)" in repr(net)
    other = Heads()
    other.load_state_dict(net.state_dict())
    assert np.array_equal(other.heads["log_std"].W.data, net.heads["log_std"].W.data)


@pytest.mark.parametrize("key", ["a.b", ""])
def test_a_dict_key_that_cannot_be_part_of_a_dotted_name_is_refused_by_name(key: object) -> None:
    net = Heads()
    net.heads[key] = nn.Linear(3, 1)  # type: ignore[index]
    with pytest.raises(ValueError, match=r"Heads\.heads: the dict key .* use a non-empty key without a dot"):
        net.parameters()


def test_two_dict_keys_that_make_one_name_are_refused() -> None:
    """{0: ..., "0": ...} named both heads heads.0: the state dict kept one, the other was never saved (h44)."""
    net = Heads()
    net.heads = {0: nn.Linear(3, 1), "0": nn.Linear(3, 2)}
    with pytest.raises(ValueError, match=r"the dict keys 0 and '0' both name heads\.0"):
        net.state_dict()


@pytest.mark.parametrize("key", [nn.Linear, 1.5, True, ("a",)])
def test_a_dict_keyed_by_anything_but_str_or_int_is_a_lookup_table_and_not_walked(key: object) -> None:
    """{nn.Linear: self.fc} (a table of parts registered elsewhere) made parameters() and repr raise (h44)."""
    net = Heads()
    net.by_kind = {key: net.heads["mean"]}
    assert [n for n, _ in net.named_parameters()] == ["heads.mean.W", "heads.mean.b", "heads.log_std.W", "scales.0"]
    assert "by_kind" not in repr(net)


def test_containers_nested_in_containers_are_walked_and_a_list_holding_itself_ends() -> None:
    """[[Linear]] and {"k": ({"j": Linear},)} were not walked: their parameters were never trained or saved."""

    class Grid(nn.Module):
        def __init__(self) -> None:
            self.grid = [[nn.Linear(2, 2)], (nn.Linear(2, 1, bias=False),)]
            self.deep = {"k": ({"j": nn.Parameter(np.zeros(1))},)}
            loop: list[object] = []
            loop.append(loop)
            self.loop = loop
            self.settings = {"a.b": 1, 2.5: [1, 2]}  # keys that name no parameter need not make names

    assert [n for n, _ in Grid().named_parameters()] == ["grid.0.0.W", "grid.0.0.b", "grid.1.0.W", "deep.k.0.j"]


def test_load_state_dict_of_arrays_that_are_the_models_own_swapped_loads_both() -> None:
    """Copied in order, layer 0 got layer 1's weights, then layer 1 got layer 0's new ones: layer 1's twice."""
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    live = {n: t.data for n, t in model.named_parameters()}
    old = {n: a.copy() for n, a in live.items()}
    model.load_state_dict({"layers.0.W": live["layers.1.W"], "layers.1.W": live["layers.0.W"],
                           "layers.0.b": live["layers.1.b"], "layers.1.b": live["layers.0.b"]})
    np.testing.assert_array_equal(model.layers[0].W.data, old["layers.1.W"])
    np.testing.assert_array_equal(model.layers[1].W.data, old["layers.0.W"])
    np.testing.assert_array_equal(model.layers[1].b.data, old["layers.0.b"])


def test_load_state_dict_into_a_read_only_parameter_is_refused_before_any_change() -> None:
    """The checks passed, the copy failed at the read-only array with numpy's message, the layers before it loaded."""
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    state = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3)).state_dict()
    model.layers[1].W.data = np.broadcast_to(np.float32(1.0), (3, 3))
    before = model.layers[0].W.data.copy()
    with pytest.raises(ValueError, match=r"read-only \['layers\.1\.W'\] .*p\.data = p\.data\.copy\(\)"):
        model.load_state_dict(state)
    np.testing.assert_array_equal(model.layers[0].W.data, before)


def test_load_state_dict_says_what_to_do_with_a_whole_checkpoint_or_another_precision() -> None:
    model = nn.MLP([3, 3, 3], dtype=np.float64)
    with pytest.raises(ValueError, match=r"entry 'model' is a mapping.*load_state_dict\(checkpoint\['model'\]\)"):
        model.load_state_dict({"model": model.state_dict(), "optim": {}})
    with pytest.raises(ValueError, match=r"the state is float32 and the model float64: build the model with "
                                         r"dtype=np\.float32, or cast the state"):
        model.load_state_dict(nn.MLP([3, 3, 3]).state_dict())


def test_a_part_under_a_key_that_makes_no_name_is_refused_unless_registered_elsewhere() -> None:
    """{np.int64(0): Linear} (keys from np.unique) and {1.5: Linear} were passed over: never trained, never saved."""
    net = Heads()
    net.by_label = {np.int64(0): nn.Linear(3, 1)}
    assert "by_label.0.W" in dict(net.named_parameters())  # a numpy integer is an int
    other = Heads()
    other.table = {1.5: nn.Linear(3, 2)}
    with pytest.warns(UserWarning, match=r"^Heads: table\[1\.5\] holds a Linear that is nowhere else in this module"):
        assert len(other.parameters()) == 4  # (left out: warned about, since a parent might hold it)
    other.table = {nn.Linear: other.heads["mean"], (1, 2): [other.scales[0]]}  # kept elsewhere: a lookup table
    assert len(other.parameters()) == 4


def test_load_state_dict_finds_shared_memory_whatever_holds_it() -> None:
    """Aliasing through a base that is no ndarray (as_strided, a memoryview) was missed: both got one value (h47)."""
    from numpy.lib.stride_tricks import as_strided

    for wrap in (as_strided, lambda a: np.asarray(memoryview(a)), lambda a: a[::-1][::-1]):
        model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False))
        w0, w1 = model.layers[0].W.data.copy(), model.layers[1].W.data.copy()
        model.load_state_dict({"layers.0.W": wrap(model.layers[1].W.data), "layers.1.W": wrap(model.layers[0].W.data)})
        np.testing.assert_array_equal(model.layers[0].W.data, w1)
        np.testing.assert_array_equal(model.layers[1].W.data, w0)


class _Views(mg.nn.Module):
    """Two parameters that are views of one buffer: a = buf[0::3] (elements 0, 3), b = buf[1:2] (element 1)."""

    def __init__(self) -> None:
        self.buf = np.arange(6.0)
        self.a = mg.nn.Parameter(np.zeros(2))
        self.b = mg.nn.Parameter(np.zeros(1))
        self.a.data = self.buf[0::3]
        self.b.data = self.buf[1:2]


def test_load_state_dict_copies_an_entry_that_overlaps_a_span_enclosing_a_later_one() -> None:
    """An entry reading buf[3] (inside a's span [0, 32), after b's [8, 16)) is copied before a is written.

    Guards the running maximum of the spans' ends: with each span's own end,
    the search saw only b's span (ending at 16 < 24) and missed a's, so b
    silently got a's new value 20 instead of the 3.0 it was given.
    """
    model = _Views()
    model.load_state_dict({"a": np.array([10.0, 20.0]), "b": model.buf[3:4]})
    np.testing.assert_array_equal(model.a.data, [10.0, 20.0])
    np.testing.assert_array_equal(model.b.data, [3.0])
    np.testing.assert_array_equal(model.buf, [10.0, 3.0, 2.0, 20.0, 4.0, 5.0])


def test_a_submodules_lookup_table_of_its_siblings_lists_its_own_parameters_with_a_warning_only() -> None:
    """router.parameters() raised: the router's table points at parts its parent holds (h49)."""

    class Router(nn.Module):
        def __init__(self, table: dict) -> None:
            self.table = table

    class Net(nn.Module):
        def __init__(self) -> None:
            self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 2)
            self.router = Router({nn.Linear: self.a, (0, 1): self.b})

    net = Net()
    assert len(net.parameters()) == 4
    with pytest.warns(UserWarning, match="if a module around this one holds it, this is as it should be"):
        assert net.router.parameters() == []
