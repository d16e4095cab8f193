"""Review of mg.compile's written-out replays: adversarial comparisons of a replay with the eager step.

Each test runs one training step twice from the same seed, eagerly and through ``mg.compile``, and
compares everything a user can see (results, dtypes, parameters, ``.grad`` values and identity,
optimizer state and counts, versions, errors). Tests whose comment begins "Was a bug" failed before their fix.
"""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg

# -- the harness ------------------------------------------------------------------------------------


class Twin:
    """A model, its optimizer and a train_step; built twice from one seed, one eager, one compiled."""

    def __init__(self, sizes=(8, 16, 16, 4), dtype=np.float32, opt="sgd", step_body=None, **opt_kw):
        mg.manual_seed(0)
        self.model = mg.nn.MLP(list(sizes), dtype=dtype)
        params = self.model.parameters()
        if opt == "sgd":
            kw = {"lr": 0.1, "momentum": 0.9, **opt_kw}
            self.opt = mg.optim.SGD(params, **kw)
        else:
            self.opt = mg.optim.Adam(params, lr=0.01, **opt_kw)
        body = step_body or _plain_step
        model, o = self.model, self.opt

        def train_step(*args):
            return body(model, o, *args)

        self.step = train_step


def _plain_step(model, opt, x, y):
    opt.zero_grad()
    loss = mg.nn.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss


def _data(dtype=np.float32, n=50, d=8, c=4, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(dtype), rng.integers(0, c, n)


def _compare(eager: Twin, comp: Twin):
    for p, q in zip(comp.model.parameters(), eager.model.parameters()):
        assert p.data.dtype == q.data.dtype and np.array_equal(p.data, q.data)
        assert (p.grad is None) == (q.grad is None)
        if p.grad is not None:
            assert p.grad.dtype == q.grad.dtype and np.array_equal(p.grad, q.grad)
    assert comp.opt.step_count == eager.opt.step_count
    for s, t in zip(comp.opt.state, eager.opt.state):
        assert set(s) == set(t)
        for k in s:
            assert np.array_equal(np.asarray(s[k]), np.asarray(t[k])), k


def _results_equal(expected, got):
    expected = expected if isinstance(expected, tuple) else (expected,)
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(expected)
    for e, g in zip(expected, got):
        assert e.data.dtype == g.data.dtype and e.data.shape == g.data.shape
        assert np.array_equal(e.data, g.data)


def _run(eager: Twin, comp: Twin, batches, before=None, make_args=None):
    """Run both over ``batches``; ``before(k, twin)`` mutates each twin before step k."""
    compiled = mg.compile(comp.step)
    make_args = make_args or (lambda x, y: (mg.Tensor(x), y))
    for k, (x, y) in enumerate(batches):
        if before is not None:
            before(k, eager)
            before(k, comp)
        expected = eager.step(*make_args(x, y))
        got = compiled(*make_args(x, y))
        _results_equal(expected, got)
        _compare(eager, comp)
    return compiled


def _batches(X, Y, size=16, epochs=2):
    out = []
    for _ in range(epochs):
        for i in range(0, len(X), size):
            out.append((X[i : i + size], Y[i : i + size]))
    return out


# -- optimizer hyperparameters and state -------------------------------------------------------------


def test_numpy_float64_learning_rate_on_a_float32_model():
    # Was a bug: the written-out SGD update computes multiply(v, lr, out=<float32 scratch>) and then w -= scratch
    # in float32, while SGD.update computes w -= lr * v with a float64 temporary (np.float64 is a "strong"
    # scalar under NEP 50) and rounds once. opt.lr = np.float64(...) passes check_number.
    X, Y = _data()
    eager, comp = Twin(), Twin()

    def before(k, t):
        if k == 1:
            t.opt.lr = np.float64(0.1) / np.float64(3.0)

    _run(eager, comp, _batches(X, Y, epochs=3), before)


@pytest.mark.parametrize(
    "change",
    ["lr", "momentum0", "momentum_on", "weight_decay_on", "nesterov_on", "all"],
)
def test_hyperparameters_changed_between_replays(change):
    X, Y = _data()
    start = {"momentum": 0.0} if change == "momentum_on" else {}
    eager, comp = Twin(**start), Twin(**start)

    def before(k, t):
        if k != 2:
            return
        o = t.opt
        if change in ("lr", "all"):
            o.lr = 0.037
        if change == "momentum0":
            o.momentum = 0.0
        if change == "momentum_on":
            o.momentum = 0.5
        if change in ("weight_decay_on", "all"):
            o.weight_decay = 1e-3
        if change in ("nesterov_on", "all"):
            o.nesterov = True

    _run(eager, comp, _batches(X, Y, epochs=3), before)


def test_optimizer_load_state_dict_between_replays():
    X, Y = _data()
    eager, comp = Twin(), Twin()
    saved = {}

    def before(k, t):
        if k == 2:
            saved[id(t)] = t.opt.state_dict()
        if k == 5:
            t.opt.load_state_dict(saved[id(t)])

    _run(eager, comp, _batches(X, Y, epochs=3), before)


def test_model_load_state_dict_between_replays():
    X, Y = _data()
    eager, comp = Twin(), Twin()
    saved = {}

    def before(k, t):
        if k == 1:
            saved[id(t)] = t.model.state_dict()
        if k == 4:
            t.model.load_state_dict(saved[id(t)])

    _run(eager, comp, _batches(X, Y, epochs=3), before)


def test_adam_with_weight_decay_and_lr_change():
    X, Y = _data()
    eager, comp = Twin(opt="adam"), Twin(opt="adam")

    def before(k, t):
        if k == 3:
            t.opt.lr = 0.003

    _run(eager, comp, _batches(X, Y, epochs=2), before)


# -- gradients the user holds, accumulation --------------------------------------------------------


def _accumulating_step(model, opt, x, y):
    # no zero_grad: the gradients of successive steps add up (zero_grad is called every other step outside)
    loss = mg.nn.cross_entropy(model(x), y)
    loss.backward()
    return loss


def test_gradient_accumulation_without_zero_grad_over_two_shapes():
    X, Y = _data()
    eager, comp = Twin(step_body=_accumulating_step), Twin(step_body=_accumulating_step)

    def before(k, t):
        if k % 3 == 0:
            t.opt.step()
            t.opt.zero_grad()

    _run(eager, comp, _batches(X, Y, epochs=3), before)


def test_a_kept_grad_is_never_overwritten_across_records_of_two_shapes():
    X, Y = _data()
    eager, comp = Twin(), Twin()
    compiled = mg.compile(comp.step)
    kept_c, kept_e = [], []
    for k, (x, y) in enumerate(_batches(X, Y, epochs=3)):
        _results_equal(eager.step(mg.Tensor(x), y), compiled(mg.Tensor(x), y))
        if k % 2 == 0:  # keep every other step's gradients (the very arrays), and copies of their values
            kept_e.append([(p.grad, p.grad.copy()) for p in eager.model.parameters()])
            kept_c.append([(p.grad, p.grad.copy()) for p in comp.model.parameters()])
        _compare(eager, comp)
    for step_grads in kept_c:
        for g, copy in step_grads:
            assert np.array_equal(g, copy)
    # and no two kept steps share an array
    ids = [id(g) for step_grads in kept_c for g, _ in step_grads]
    assert len(ids) == len(set(ids))


def test_a_view_of_a_grad_kept_by_the_user_is_not_overwritten():
    X, Y = _data()
    comp = Twin()
    compiled = mg.compile(comp.step)
    compiled(mg.Tensor(X[:16]), Y[:16])
    compiled(mg.Tensor(X[16:32]), Y[16:32])
    view = comp.model.parameters()[0].grad[:, :2]  # a view: holds the array through .base
    copy = view.copy()
    compiled(mg.Tensor(X[32:48]), Y[32:48])
    compiled(mg.Tensor(X[:16]), Y[:16])
    assert np.array_equal(view, copy)


def test_two_compiled_steps_sharing_one_model():
    X, Y = _data()
    eager, comp = Twin(), Twin()

    def second_body(model, opt, x, y):
        opt.zero_grad()
        logits = model(x)
        loss = mg.nn.cross_entropy(logits, y) * 0.5
        loss.backward()
        opt.step()
        return logits, loss

    e2 = lambda x, y: second_body(eager.model, eager.opt, x, y)  # noqa: E731
    c2 = mg.compile(lambda x, y: second_body(comp.model, comp.opt, x, y))
    c1 = mg.compile(comp.step)
    kept = []
    for k, (x, y) in enumerate(_batches(X, Y, epochs=3)):
        if k % 2:
            _results_equal(eager.step(mg.Tensor(x), y), c1(mg.Tensor(x), y))
        else:
            _results_equal(e2(mg.Tensor(x), y), c2(mg.Tensor(x), y))
        kept.append([(p.grad, p.grad.copy()) for p in comp.model.parameters()])
        _compare(eager, comp)
    for grads in kept:
        for g, c in grads:
            assert np.array_equal(g, c)


# -- model structure -------------------------------------------------------------------------------


def test_tied_weights_same_linear_twice_relu_on_param_and_on_argument():
    mg.manual_seed(0)

    def make():
        rng = np.random.default_rng(0)
        W = mg.Tensor(rng.standard_normal((6, 6)).astype(np.float32) * 0.3, requires_grad=True)
        b = mg.Tensor(rng.standard_normal(6).astype(np.float32) * 0.1, requires_grad=True)
        V = mg.Tensor(rng.standard_normal((6, 3)).astype(np.float32) * 0.3, requires_grad=True)
        c = mg.Tensor(np.zeros(3, np.float32), requires_grad=True)
        opt = mg.optim.SGD([W, b, V, c], lr=0.05, momentum=0.9)

        def step(x, y):
            opt.zero_grad()
            h = mg.ops.linear(x.relu(), W, b).relu()  # relu on the argument
            h = mg.ops.linear(h, W, b).relu()  # the same weights again
            h = h + mg.ops.linear(h, W.relu(), b)  # relu on a parameter; W tied a third time
            loss = mg.nn.cross_entropy(mg.ops.linear(h, V, c), y)
            loss.backward()
            opt.step()
            return loss, h

        return [W, b, V, c], opt, step

    pe, oe, se = make()
    pc, oc, sc = make()
    compiled = mg.compile(sc)
    X, Y = _data(np.float32, d=6, c=3)
    held = []
    for k, (x, y) in enumerate(_batches(X, Y, size=7, epochs=3)):
        xe = mg.Tensor(x, requires_grad=True)
        xc = mg.Tensor(x, requires_grad=True)
        _results_equal(se(xe, y), compiled(xc, y))
        assert np.array_equal(xe.grad, xc.grad)
        if k % 2:  # an argument's .grad the user keeps is not reused by the next replay
            held.append((xc, xc.grad, xc.grad.copy()))
        for p, q in zip(pc, pe):
            assert np.array_equal(p.data, q.data) and np.array_equal(p.grad, q.grad)
        assert oc.step_count == oe.step_count
    for t, g, copy in held:
        assert t.grad is g and np.array_equal(g, copy)


def test_step_returning_logits_and_loss_and_hidden_layer():
    X, Y = _data()

    def body(model, opt, x, y):
        opt.zero_grad()
        h = model.layers[1](model.layers[0](x))
        logits = model.layers[4](model.layers[3](model.layers[2](h)))
        loss = mg.nn.cross_entropy(logits, y)
        loss.backward()
        opt.step()
        return logits, loss, h

    eager, comp = Twin(step_body=body), Twin(step_body=body)
    compiled = mg.compile(comp.step)
    held = []
    for x, y in _batches(X, Y, epochs=3):
        got = compiled(mg.Tensor(x), y)
        _results_equal(eager.step(mg.Tensor(x), y), got)
        held.append((got, [g.data.copy() for g in got]))
        _compare(eager, comp)
    for got, copies in held:  # returned tensors are never overwritten by later replays
        for g, c in zip(got, copies):
            assert np.array_equal(g.data, c)


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_other_float_dtypes(dtype):
    X, Y = _data(dtype)
    eager, comp = Twin(dtype=dtype), Twin(dtype=dtype)
    _run(eager, comp, _batches(X, Y, epochs=2))


def test_batch_of_one():
    X, Y = _data(n=5)
    eager, comp = Twin(), Twin()
    _run(eager, comp, [(X[i : i + 1], Y[i : i + 1]) for i in range(5)] * 2)


def test_fortran_ordered_and_strided_inputs():
    X, Y = _data(n=48, d=16)
    eager, comp = Twin(sizes=(8, 16, 4)), Twin(sizes=(8, 16, 4))
    batches = []
    for i in range(0, 48, 16):
        batches.append((np.asfortranarray(X[i : i + 16, :8]), Y[i : i + 16]))
        batches.append((X[i : i + 16, ::2], Y[i : i + 16]))
    _run(eager, comp, batches)


@pytest.mark.parametrize("kind", ["int32", "float", "tensor", "uint8", "int64_strided"])
def test_labels_of_other_kinds(kind):
    X, Y = _data()

    def convert(y):
        if kind == "int32":
            return y.astype(np.int32)
        if kind == "float":
            return y.astype(np.float64)
        if kind == "uint8":
            return y.astype(np.uint8)
        if kind == "int64_strided":
            return np.repeat(y, 2)[::2]
        return y

    def make_args(x, y):
        y = convert(y)
        return mg.Tensor(x), (mg.Tensor(y) if kind == "tensor" else y)

    eager, comp = Twin(), Twin()
    _run(eager, comp, _batches(X, Y, epochs=2), make_args=make_args)


def test_a_failed_replay_with_bad_labels_leaves_state_consistent():
    X, Y = _data()
    eager, comp = Twin(), Twin()
    compiled = mg.compile(comp.step)
    batches = _batches(X, Y, epochs=2)
    for k, (x, y) in enumerate(batches):
        if k in (2, 5):
            bad = y.copy()
            bad[-1] = -1 if k == 2 else 4
            with pytest.raises(ValueError) as e1:
                eager.step(mg.Tensor(x), bad)
            with pytest.raises(ValueError) as e2:
                compiled(mg.Tensor(x), bad)
            assert str(e1.value) == str(e2.value)
            assert mg.is_grad_enabled()
            _compare(eager, comp)
        _results_equal(eager.step(mg.Tensor(x), y), compiled(mg.Tensor(x), y))
        _compare(eager, comp)


def test_frozen_layer_and_a_new_parameter_array_after_the_record():
    X, Y = _data()
    eager, comp = Twin(), Twin()

    def before(k, t):
        if k == 2:
            for p in t.model.layers[2].parameters():
                p.requires_grad = False
                p.grad = None
        if k == 4:
            t.model.layers[0].W.data = t.model.layers[0].W.data.copy()

    _run(eager, comp, _batches(X, Y, epochs=2), before)


# -- user code in the step -------------------------------------------------------------------------


class _Scale(mg.Function):
    """A user op whose backward reads ctx.inputs (a documented attribute of the context)."""

    @staticmethod
    def forward(ctx, x, s):
        ctx.save_for_backward(x)
        return x * s

    @staticmethod
    def backward(ctx, g):
        x_t, s_t = ctx.inputs
        return g * s_t.data, (g * ctx.saved_tensors[0]).sum(keepdims=False).reshape(s_t.data.shape)


def test_user_function_whose_backward_reads_ctx_inputs():
    # Was a bug: a replay makes the context with object.__new__ and sets needs_input_grad only; ctx.inputs,
    # which Function.apply sets (and Function declares), is missing, so the replay raises AttributeError.
    X, Y = _data()

    def body(model, opt, x, y):
        opt.zero_grad()
        s = model.layers[0].b  # any trainable tensor: here a vector used as a scale
        h = model.layers[0](x)
        h = _Scale.apply(h, s)
        logits = model.layers[4](model.layers[3](model.layers[2](model.layers[1](h))))
        loss = mg.nn.cross_entropy(logits, y)
        loss.backward()
        opt.step()
        return loss

    class _ScaleVec(_Scale):
        @staticmethod
        def backward(ctx, g):
            x_t, s_t = ctx.inputs
            return g * s_t.data, (g * ctx.saved_tensors[0]).sum(axis=0)

    def body2(model, opt, x, y):
        opt.zero_grad()
        h = _ScaleVec.apply(model.layers[0](x), model.layers[0].b)
        logits = model.layers[4](model.layers[3](model.layers[2](model.layers[1](h))))
        loss = mg.nn.cross_entropy(logits, y)
        loss.backward()
        opt.step()
        return loss

    eager, comp = Twin(step_body=body2), Twin(step_body=body2)
    _run(eager, comp, _batches(X, Y, epochs=1))


def test_a_hook_registered_after_the_record_is_silently_skipped():
    # Was a bug: recording refuses hooks, but a hook registered on a parameter after the record is ignored by
    # every replay (no guard checks p._hooks), so the replay trains with the unhooked gradient.
    X, Y = _data()
    eager, comp = Twin(), Twin()

    def before(k, t):
        if k == 1:
            t.model.layers[0].W.register_hook(lambda g: g * 0)

    compiled = mg.compile(comp.step)
    for k, (x, y) in enumerate(_batches(X, Y, epochs=1)):
        before(k, eager)
        before(k, comp)
        try:
            got = compiled(mg.Tensor(x), y)
        except RuntimeError as e:  # refusing (hooks are not recorded) is an acceptable answer too
            assert "hook" in str(e)
            return
        _results_equal(eager.step(mg.Tensor(x), y), got)
        _compare(eager, comp)


def test_clip_grad_norm_and_scheduler_in_the_step():
    X, Y = _data()

    def make_body():
        sched = {}

        def body(model, opt, x, y):
            if "s" not in sched:
                sched["s"] = mg.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
            opt.zero_grad()
            loss = mg.nn.cross_entropy(model(x), y)
            loss.backward()
            mg.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            sched["s"].step()
            return loss

        return body

    eager, comp = Twin(step_body=make_body()), Twin(step_body=make_body())
    _run(eager, comp, _batches(X, Y, epochs=3))
    assert comp.opt.lr == eager.opt.lr
