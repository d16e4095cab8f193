"""mg.compile: a recorded training step replays bit for bit what the eager step computes."""

import numpy as np
import pytest

import minigrad as mg


def _setup(dtype, optimizer="sgd", zero="optimizer"):
    """A small MLP and its train_step, from a fixed seed (two calls give identical twins)."""
    mg.manual_seed(0)
    model = mg.nn.MLP([8, 16, 16, 4], dtype=dtype)
    if optimizer == "sgd":
        opt = mg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    else:
        opt = mg.optim.Adam(model.parameters(), lr=0.01)

    def train_step(x, y):
        (opt if zero == "optimizer" else model).zero_grad()
        loss = mg.nn.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return model, train_step


def _data(dtype, n=50):
    rng = np.random.default_rng(1)
    return rng.standard_normal((n, 8)).astype(dtype), rng.integers(0, 4, n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_replay_is_bit_identical_to_the_eager_step_over_epochs_and_a_shape_change(dtype, optimizer):
    X, Y = _data(dtype)
    eager_model, eager_step = _setup(dtype, optimizer)
    model, train_step = _setup(dtype, optimizer)
    step = mg.compile(train_step)
    for _ in range(3):
        for i in range(0, len(X), 16):  # batches of 16, 16, 16 and a last one of 2
            x, y = X[i : i + 16], Y[i : i + 16]
            expected = eager_step(mg.Tensor(x), y)
            got = step(mg.Tensor(x), y)
            assert got.data.dtype == dtype and np.array_equal(got.data, expected.data)
    for p, q in zip(model.parameters(), eager_model.parameters()):
        assert np.array_equal(p.data, q.data) and np.array_equal(p.grad, q.grad)
    assert len(step.records) == 2  # one record per batch shape


def test_replay_returns_a_new_tensor_without_a_graph_and_the_model_zero_grad_is_replayed():
    X, Y = _data(np.float64)
    _, eager_step = _setup(np.float64, zero="model")
    _, train_step = _setup(np.float64, zero="model")
    step = mg.compile(train_step)
    first = step(mg.Tensor(X[:16]), Y[:16])
    second = step(mg.Tensor(X[16:32]), Y[16:32])
    eager_step(mg.Tensor(X[:16]), Y[:16])
    expected = eager_step(mg.Tensor(X[16:32]), Y[16:32])
    assert second is not first and second.is_leaf and not second.requires_grad
    # Without the replayed zero_grad the second step's gradients would hold the first's too.
    assert np.array_equal(second.data, expected.data)


def test_the_loss_on_replay_is_computed_from_the_new_arguments():
    model, train_step = _setup(np.float64)
    step = mg.compile(train_step)
    X, Y = _data(np.float64)
    step(mg.Tensor(X[:16]), Y[:16])
    with mg.no_grad():
        logits = model(mg.Tensor(X[16:32])).data  # the weights the replay will use
    z = logits - logits.max(axis=1, keepdims=True)
    expected = np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(16), Y[16:32]])
    assert step(mg.Tensor(X[16:32]), Y[16:32]).item() == pytest.approx(expected, rel=1e-12)


def test_replay_still_checks_the_labels():
    _, train_step = _setup(np.float32)
    step = mg.compile(train_step)
    X, Y = _data(np.float32)
    step(mg.Tensor(X[:16]), Y[:16])
    bad = Y[16:32].copy()
    bad[3] = 4  # one class too many; in a middle row it would silently read the next row's logit
    with pytest.raises(ValueError, match="cross_entropy: targets must lie in"):
        step(mg.Tensor(X[16:32]), bad)


def test_an_array_made_inside_the_step_from_its_arguments_is_refused():
    model, _ = _setup(np.float32)

    def train_step(x, y):
        doubled = mg.Tensor(x.data * 2)  # made by plain numpy: a replay would reuse the old values
        return mg.nn.cross_entropy(model(doubled), y)

    X, Y = _data(np.float32)
    with pytest.raises(RuntimeError, match=r"compile: input 0 of linear \(shape \(16, 8\)\) is an array made"):
        mg.compile(train_step)(mg.Tensor(X[:16]), Y[:16])


def test_hooks_retain_graph_and_bad_arguments_are_refused():
    model, _ = _setup(np.float32)
    X, Y = _data(np.float32)

    def with_hook(x, y):
        out = model(x)
        out.retain_grad()
        mg.nn.cross_entropy(out, y).backward()

    def with_retain(x, y):
        mg.nn.cross_entropy(model(x), y).backward(retain_graph=True)

    with pytest.raises(RuntimeError, match="hooks"):
        mg.compile(with_hook)(mg.Tensor(X[:16]), Y[:16])
    with pytest.raises(RuntimeError, match="retain_graph"):
        mg.compile(with_retain)(mg.Tensor(X[:16]), Y[:16])
    with pytest.raises(TypeError, match="Tensors or numpy arrays, got a list"):
        mg.compile(with_retain)(mg.Tensor(X[:16]), list(Y[:16]))
    with pytest.raises(TypeError, match="must return None, a Tensor"):
        mg.compile(lambda x: 3.0)(mg.Tensor(X[:16]))
