"""Edge cases found in review: each test pins one behaviour that once went wrong."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import cli


def test_no_grad_decorator_is_reentrant():
    @mg.no_grad()
    def countdown(n: int) -> bool:
        inside = mg.is_grad_enabled()
        if n:
            countdown(n - 1)
        return inside

    assert countdown(3) is False
    assert mg.is_grad_enabled() is True


def test_np_array_of_a_tensor_copies():
    t = mg.Tensor(np.zeros(3, dtype=np.float32))
    a = np.array(t)
    a[0] = 99
    assert t.data[0] == 0
    assert np.asarray(t) is t.data
    assert np.asarray(t, dtype=np.float64).dtype == np.float64


def test_transpose_refuses_out_of_range_axes():
    t = mg.Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"transpose: axes \(3, 0\)"):
        t.transpose(3, 0)


def test_max_backward_keeps_float32():
    x = mg.Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]], dtype=np.float32), requires_grad=True)
    y = x * 1
    (y.max(axis=1) * 2).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [[0, 1, 1], [2, 0, 0]])


def test_linear_casts_an_array_input_to_its_dtype():
    layer = mg.nn.Linear(3, 2)
    out = layer(np.random.default_rng(0).random((4, 3)))  # float64 array
    assert out.dtype == np.float32


def test_named_parameters_survives_a_back_reference():
    model = mg.nn.MLP([2, 3, 1])
    model.layers[0].owner = model  # a cycle in the attribute graph
    assert [n for n, _ in model.named_parameters()] == ["layers.0.W", "layers.0.b", "layers.2.W", "layers.2.b"]


def test_resume_keeps_momentum_of_a_zero_dim_parameter():
    def run(split: bool) -> float:
        w = mg.nn.Parameter(np.float32(1.0))
        opt = mg.optim.Momentum([w], lr=0.1, beta=0.9)
        for step in range(6):
            if split and step == 1:
                state = opt.state_dict()
                opt = mg.optim.Momentum([w], lr=0.1, beta=0.9)
                opt.load_state_dict(state)
            w.grad = np.array(2 * w.data, dtype=np.float32)  # d(w²)/dw
            opt.step()
        return float(w.data)

    assert run(split=True) == run(split=False)


def test_hyperparameter_names_cannot_shadow_the_base_class():
    class Bad(mg.optim.Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, lr=lr, state=0.5)

    with pytest.raises(ValueError, match=r"\['state'\]"):
        Bad([mg.nn.Parameter(np.zeros(2))])


def test_negative_step_count_is_refused_and_nothing_changes():
    p = mg.nn.Parameter(np.ones(2))
    opt = mg.optim.Adam([p])
    state = opt.state_dict()
    state["step_count"] = -5
    with pytest.raises(ValueError, match="step_count"):
        opt.load_state_dict(state)
    assert opt.step_count == 0


def test_cli_refuses_a_plugin_without_update_and_a_bad_out(tmp_path, capsys):
    assert cli.main(["--datasets", "iris", "--optimizers", "minigrad.optim:Optimizer", "--lr", "Optimizer=0.1",
                     "--epochs", "1", "--seeds", "1", "--out", str(tmp_path)]) == 2
    assert "does not define update" in capsys.readouterr().err
    assert cli.main(["--datasets", "iris", "--epochs", "1", "--seeds", "1", "--out", "/dev/null/x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("minigrad: error: cannot use output directory") and "\n" not in err


def test_no_leaf_gradient_shares_memory_with_another_array():
    """backward keeps an op's new array as a leaf's .grad without a copy; nothing may alias it."""
    rng = np.random.default_rng(0)
    a, b, c = (mg.Tensor(rng.standard_normal((3, 4)), requires_grad=True) for _ in range(3))
    W = mg.Tensor(rng.standard_normal((4, 2)), requires_grad=True)
    bias = mg.Tensor(rng.standard_normal(2), requires_grad=True)
    logits = mg.Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    seed = np.ones(3)
    out = (
        mg.linear(a + b, W, bias)                        # add hands one gradient to two leaves
        + (c.reshape(4, 3).T * 2)[:, :2]                 # views on the way back
        + mg.stack([logits, logits]).sum(axis=0)         # one leaf used twice
    ).sum(axis=1) + mg.nn.cross_entropy(logits, [0, 1, 1])
    out.backward(seed)
    leaves = [a, b, c, W, bias, logits]
    arrays = [t.grad for t in leaves] + [t.data for t in leaves] + [seed]
    for i, x in enumerate(arrays):
        for y in arrays[i + 1:]:
            assert not np.shares_memory(x, y)
    np.testing.assert_array_equal(a.grad, b.grad)


@pytest.mark.parametrize("op", ["exp", "tanh", "square", "sum", "relu"])
def test_the_gradient_of_a_0d_leaf_is_a_0d_array(op: str):
    """numpy ufuncs return scalars for 0-d inputs; a leaf's .grad is still an ndarray (0-d), of its dtype."""
    for dtype in (np.float32, np.float64):
        t = mg.Tensor(np.array(0.5, dtype=dtype), requires_grad=True)
        out = t * t if op == "square" else getattr(t, op)()
        out.backward()
        assert type(t.grad) is np.ndarray and t.grad.shape == () and t.grad.dtype == dtype
        expected = {"exp": np.exp(0.5), "tanh": 1 - np.tanh(0.5) ** 2, "square": 1.0, "sum": 1.0, "relu": 1.0}[op]
        np.testing.assert_allclose(t.grad, expected, rtol=1e-6)


def test_a_tensor_index_must_hold_whole_numbers():
    t = mg.Tensor([10.0, 20.0, 30.0])
    assert t[mg.Tensor([2.0, 0.0])].data.tolist() == [30.0, 10.0]
    with pytest.raises(IndexError, match="whole numbers"):
        t[mg.Tensor([1.7])]


def test_cross_entropy_refuses_an_empty_batch():
    with pytest.raises(ValueError, match=r"cross_entropy: logits of shape \(0, 3\)"):
        mg.nn.cross_entropy(mg.Tensor(np.zeros((0, 3))), np.zeros(0, dtype=np.int64))


def test_stable_sigmoid_matches_the_formula_and_never_overflows():
    from minigrad.engine import stable_sigmoid

    x = np.linspace(-30, 30, 61)
    np.testing.assert_allclose(stable_sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-12, atol=1e-15)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # (e^-1000 underflows to 0, as it should)
        np.testing.assert_array_equal(stable_sigmoid(np.array([-1000.0, 1000.0])), [0.0, 1.0])
