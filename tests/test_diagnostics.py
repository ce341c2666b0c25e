"""Diagnostics while training (pynet.diagnostics): each statistic against NumPy computed here from
the layers' own dw, out and w at the recorded steps, models forced into dead or saturated units,
and diagnostics off leaving training bit-identical."""
import json

import numpy as np
import pytest

import pynet
from pynet import LOGISTIC, RELU, SOFTMAX, TANH, fit, make_data, make_layer, make_model, train_model
from pynet.diagnostics import diagnostics_every, plot_diagnostics, to_json


def data(rows=300, features=12, classes=3, seed=0):
    rng = np.random.RandomState(seed)
    return make_data(rng.randn(rows, features), rng.randint(0, classes, rows))


def model(acts=(RELU, LOGISTIC), features=12, hidden=(10, 8), classes=3, bias=False):
    sizes = (features,) + tuple(hidden)
    layers = [make_layer(a, b, act, bias=bias) for a, b, act in zip(sizes, sizes[1:], acts)]
    return make_model(layers + [make_layer(sizes[-1], classes, SOFTMAX, bias=bias)])


def run_in_pieces(pieces, batch, rate=0.1, momentum=0.9, decay=1e-4):
    """Train a fresh seeded model piece by piece with diagnostics off, collecting after each piece
    what NumPy says of its last step: ‖dw‖/batch per layer, w before that step and after."""
    pynet.set_seed(7)
    m, d = model(), data()
    out = []
    for n in pieces:
        train_model(m, d, batch, n - 1, rate, momentum, decay, progress=False)
        before = [l.w.data.copy() for l in m.layers]
        train_model(m, d, batch, 1, rate, momentum, decay, progress=False)
        out.append({"grad": [np.linalg.norm(l.dw.data) / batch for l in m.layers],
                    "ratio": [np.linalg.norm(l.w.data - w0) / np.linalg.norm(w0) for l, w0 in zip(m.layers, before)],
                    "out": [l.out.data.copy() for l in m.layers]})
    return m, out


def test_grad_norm_and_update_ratio_equal_numpy_at_the_recorded_steps():
    batch = 32
    pynet.set_seed(7)
    m, d = model(), data()
    losses, diag = train_model(m, d, batch, 12, 0.1, 0.9, 1e-4, progress=False, diagnostics=4)
    assert list(diag["step"]) == [4, 8, 12]
    assert diag["activations"] == ["RELU", "LOGISTIC", "SOFTMAX"]
    ref_model, ref = run_in_pieces([4, 4, 4], batch)
    for k, r in enumerate(ref):
        for i in range(3):
            assert diag["grad_norm"][i][k] == pytest.approx(r["grad"][i], rel=1e-12)
            assert diag["update_ratio"][i][k] == pytest.approx(r["ratio"][i], rel=1e-12)
            assert diag["grad_norm"][i][k] > 0 and diag["update_ratio"][i][k] > 0
    # the reference's pieces are the same C steps: same weights at the end
    assert all(np.array_equal(a.w.data, b.w.data) for a, b in zip(m.layers, ref_model.layers))


def test_dead_fraction_counts_relu_units_zero_for_every_row():
    pynet.set_seed(3)
    m, d = model(acts=(RELU, RELU), bias=True), data()
    b = m.layers[0].b.data.copy()
    b[0, :4] = -1e6                      # 4 of the 10 units can never fire (and get no gradient)
    m.layers[0].b = b
    _, diag = train_model(m, d, 32, 10, 0.01, 0.0, 0.0, progress=False, diagnostics=5)
    for i in (0, 1):
        out = m.layers[i].out.data
        expected = np.mean(np.all(out == 0, axis=0))
        assert diag["dead"][i][-1] == expected
    assert diag["dead"][0][-1] >= 0.4
    assert diag["saturated"][0] is None and diag["dead"][2] is None


def test_saturated_fraction_on_a_logistic_layer_with_huge_weights_and_on_tanh():
    pynet.set_seed(4)
    m, d = model(acts=(LOGISTIC, TANH)), data()
    m.layers[0].w = m.layers[0].w.data * 1000
    m.layers[1].w = m.layers[1].w.data * 1000
    _, diag = train_model(m, d, 32, 3, 0.01, 0.0, 0.0, progress=False, diagnostics=3)
    y0, y1 = m.layers[0].out.data, m.layers[1].out.data
    assert diag["saturated"][0][0] == np.mean(np.abs(y0 - 0.5) > 0.49)
    assert diag["saturated"][1][0] == np.mean(np.abs(y1) > 0.98)
    assert diag["saturated"][0][0] > 0.9
    assert diag["dead"][0] is None and diag["dead"][1] is None


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_fit_counts_steps_over_the_whole_run_and_off_is_bit_identical(optimizer):
    runs = {}
    for diagnostics in (None, 7):
        pynet.set_seed(11)
        m, d = model(bias=True), data()
        h = fit(m, d, epochs=3, batch=32, optimizer=optimizer, rate=0.01, clip=1.0, progress=False,
                diagnostics=diagnostics)
        runs[diagnostics] = (h, [l.w.data.copy() for l in m.layers], m)
    (h0, w0, _), (h1, w1, m1) = runs[None], runs[7]
    assert h0.diagnostics is None
    assert np.array_equal(h0.losses, h1.losses)
    assert all(np.array_equal(a, b) for a, b in zip(w0, w1))
    assert [{k: v for k, v in e.items() if k != "seconds"} for e in h0.epochs] == \
           [{k: v for k, v in e.items() if k != "seconds"} for e in h1.epochs]
    # 300 rows, batch 32: 9 steps an epoch, 27 in all; records at 7, 14, 21 cross epoch boundaries
    assert list(h1.diagnostics["step"]) == [7, 14, 21]
    assert h1.diagnostics["grad_norm"][-1][-1] > 0
    # after the run the layers still hold step 27's gradient, so step 21's value is not a copy of it
    assert h1.diagnostics["grad_norm"][0][-1] != np.linalg.norm(m1.layers[0].dw.data) / 32


def test_train_model_off_returns_the_same_losses_and_weights():
    results = []
    for diagnostics in (None, False, 1):
        pynet.set_seed(5)
        m, d = model(), data()
        r = train_model(m, d, 16, 9, 0.1, 0.9, 0.0, progress=False, diagnostics=diagnostics)
        results.append((r, [l.w.data.copy() for l in m.layers]))
    assert isinstance(results[0][0], np.ndarray) and isinstance(results[1][0], np.ndarray)
    losses, diag = results[2][0]
    assert list(diag["step"]) == list(range(1, 10))
    for r, w in results[1:]:
        assert np.array_equal(r if isinstance(r, np.ndarray) else r[0], results[0][0])
        assert all(np.array_equal(a, b) for a, b in zip(w, results[0][1]))


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-3, ValueError), (2.5, TypeError), ("10", TypeError)])
def test_diagnostics_must_be_a_positive_integer(bad, error):
    m, d = model(), data()
    with pytest.raises(error, match="diagnostics must be"):
        train_model(m, d, 16, 5, 0.1, 0.9, 0.0, progress=False, diagnostics=bad)
    with pytest.raises(error, match="^fit: diagnostics must be"):
        fit(m, d, epochs=1, progress=False, diagnostics=bad)
    assert diagnostics_every(True) == 10 and diagnostics_every(None) is None and diagnostics_every(3) == 3


def test_json_form_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    pynet.set_seed(2)
    m, d = model(), data()
    _, diag = train_model(m, d, 16, 20, 0.1, 0.9, 0.0, progress=False, diagnostics=5)
    j = json.loads(json.dumps(to_json(diag)))
    assert j["step"] == [5, 10, 15, 20] and j["dead"][1] is None and len(j["grad_norm"][0]) == 4
    assert j["grad_norm"][0] == [float(x) for x in diag["grad_norm"][0]]
    for record, name in ((diag, "a.png"), (j, "b.png")):
        fig = plot_diagnostics(record, tmp_path / name, title="t")
        assert (tmp_path / name).stat().st_size > 1000
        assert fig.axes[0].get_yscale() == "log" and len(fig.axes[0].lines) == 3 and len(fig.axes[1].lines) == 1


def test_a_diverging_run_keeps_what_was_recorded():
    pynet.set_seed(8)
    m, d = model(acts=(RELU,), hidden=(16,)), data()
    with pytest.raises(pynet.DivergedError) as info:
        train_model(m, d, 32, 1000, 1e6, 0.9, 0.0, progress=False, diagnostics=1)
    e = info.value
    assert e.iteration >= 1 and list(e.diagnostics["step"]) == list(range(1, e.iteration + 1))
    with pytest.raises(pynet.DivergedError) as info:
        train_model(m, d, 32, 1000, 1e6, 0.9, 0.0, progress=False)
    assert info.value.diagnostics is None


def test_experiment_runs_keep_diagnostics_in_their_results_only_when_asked():
    from pynet.experiments import Runner
    builders = {"softmax": lambda i, o: make_model([make_layer(i, o, SOFTMAX)])}
    train, test = data(seed=1), data(seed=2)
    runs = []
    for diagnostics in (None, 25):
        r = Runner(builders, lambda name: (train, test), seed=3, iters=100, progress=False, diagnostics=diagnostics)
        runs.append(r.run("2.2.1")["runs"][0])
    plain, recorded = runs
    assert "diagnostics" not in plain
    diag = recorded.pop("diagnostics")
    assert plain == recorded                      # the run itself is unchanged
    assert diag["step"] == [25, 50, 75, 100] and diag["activations"] == ["SOFTMAX"]
    json.dumps(diag, allow_nan=False)
    with pytest.raises(ValueError, match="Runner: diagnostics must be a positive integer"):
        Runner(builders, lambda name: (train, test), diagnostics=0)
