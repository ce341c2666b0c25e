"""pynet.report — turns experiment results into the homework's write-up: ``report.md``, the same as
a self-contained ``report.html``, and ``report.pdf``, with for each experiment a table, the loss
curves of its runs, accuracy against the swept value, and an answer to the homework's question
computed from the numbers. Plots need matplotlib (``pip install matplotlib``); without it the
report keeps its tables and answers and says how to get the plots.

The report is built once as a list of blocks (headings, paragraphs, tables, figures) and rendered
three ways, so the three files always say the same thing.
"""
import base64
import contextlib
import html
import io
import json
import math
import os
import re
import textwrap
import time

import numpy as np

from .datasets._common import atomic_file
from .homework.loop import describe as implementation_line

PLOT_HINT = "Plots need matplotlib: pip install matplotlib, then rerun."


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        return False


def _pct(x):
    return "%.2f%%" % (100 * x)


# ---- answers computed from the results ---------------------------------------------------------------
#
# Every comparison goes through one rule, stated once in the report (RULE): a test accuracy p on n
# images has binomial standard error sqrt(p(1-p)/n); differences under two of them are ties, a run
# within two of 1/k is at chance, a train-test gap over two standard errors of the gap is overfitting.

TIE_SE = 2.0


def _fmt_value(sweep, v):
    if sweep == "activation":
        return v
    if sweep == "grid":
        return "rate %g / decay %g" % tuple(v)
    return "%s %g" % (sweep, v)


def _classes(result):
    return int(result.get("classes") or 10)


def _n_test(result):
    return int(result.get("test_examples") or 10000)


def _n_train(result):
    return int(result.get("train_examples") or 60000)


def _se(p, n):
    return math.sqrt(max(p * (1.0 - p), 0.0) / n)


def _margin(a, b, result):
    """Two standard errors of a test accuracy, at the larger of a and b (the tie threshold)."""
    return TIE_SE * _se(max(a, b), _n_test(result))


def _tied(a, b, result):
    return abs(a - b) < _margin(a, b, result)


def _at_chance(run, result):
    """Test accuracy within two standard errors of 1/k: the run learnt nothing measurable."""
    p0 = 1.0 / _classes(result)
    return abs(run["test_accuracy"] - p0) < TIE_SE * _se(p0, _n_test(result))


def _overfit(run, result):
    """+1 if training accuracy exceeds test accuracy by more than two standard errors of the gap,
    -1 if the reverse, 0 if the gap is within them."""
    tr, te = run["train_accuracy"], run["test_accuracy"]
    se = math.sqrt(_se(tr, _n_train(result)) ** 2 + _se(te, _n_test(result)) ** 2)
    gap = tr - te
    return 1 if gap > TIE_SE * se else -1 if gap < -TIE_SE * se else 0


def _fit_words(run, result, verdict=True):
    """The train-test gap and (with ``verdict``) what the rule makes of it."""
    tr, te = run["train_accuracy"], run["test_accuracy"]
    o = _overfit(run, result)
    if o > 0:
        return "training accuracy is %.2f points above test accuracy, more than two standard errors%s" % (
            100 * (tr - te), ": it overfits" if verdict else "")
    if o < 0:
        return "test accuracy is %.2f points above training accuracy, more than two standard errors" % (
            100 * (te - tr))
    return "training and test accuracy differ by %.2f points, within two standard errors%s" % (
        100 * abs(tr - te), ": no measurable overfitting" if verdict else "")


def _loss_words(loss, k):
    lnk = math.log(k)
    if abs(loss - lnk) <= 0.01 * lnk:
        return "%.4f, about ln %d = %.4f, the loss of a uniform guess" % (loss, k, lnk)
    if loss > lnk:
        return "%.4f, above ln %d = %.4f (the loss of a uniform guess)" % (loss, k, lnk)
    return "%.4f, below ln %d = %.4f (the loss of a uniform guess)" % (loss, k, lnk)


def rule(results):
    """The one paragraph that says how the answers compare numbers."""
    n = max([_n_test(r) for r in results.values()] or [10000])
    k = max([_classes(r) for r in results.values()] or [10])
    return ("How the answers compare numbers: a test accuracy p measured on n test images has a binomial "
            "standard error of sqrt(p(1-p)/n), %.2f points at 91%% on %d images. Two test accuracies closer than "
            "two standard errors (at the higher one) are called tied: the test set cannot tell them apart. A run "
            "is at chance, and did not learn, when its test accuracy is within two standard errors of 1/k for k "
            "classes (%s +- %.2f points for %d classes on %d images). A model overfits when its training accuracy "
            "is above its test accuracy by more than two standard errors of that gap." % (
                100 * _se(0.91, n), n, _pct(1.0 / k),
                100 * TIE_SE * _se(1.0 / k, n), k, n))


def _same_settings_run(result, results, model, **changes):
    """A run of another experiment on the same data with ``model`` and this result's base settings
    (with ``changes``): the baseline a question needs, e.g. decay 0 for "does decay help?"."""
    want = {k: v for k, v in dict(result["base"], **changes).items()
            if k in ("batch", "iters", "rate", "momentum", "decay", "activation")}
    if model == "softmax":
        want.pop("activation", None)
    for exp_id, other in (results or {}).items():
        if other is result or other["model"] != model or other["dataset"] != result["dataset"]:
            continue
        for r in other["runs"]:
            if not r["diverged"] and all(r["setting"].get(k) == v for k, v in want.items()):
                return exp_id, r
    return None, None


def _compare(a, b, result):
    """'d points more/less than ..., more than two standard errors' or 'within two standard errors (m points)'."""
    d, m = a - b, _margin(a, b, result)
    if abs(d) < m:
        return "a difference of %.2f points, within two standard errors (%.2f points): a tie" % (100 * abs(d), 100 * m)
    return "%.2f points %s, more than two standard errors (%.2f points)" % (
        100 * abs(d), "more" if d > 0 else "less", 100 * m)


def answer(result, results=None):
    """A short answer to the experiment's question, computed from its runs. ``results`` (all the
    experiments) supplies the baselines some questions need (decay 0, softmax regression)."""
    runs, sweep = result["runs"], result["sweep"]
    k = _classes(result)
    parts = []
    if sweep is None:
        r = runs[0]
        parts.append("Training accuracy is %s and test accuracy %s: %s." % (
            _pct(r["train_accuracy"]), _pct(r["test_accuracy"]), _fit_words(r, result)))
        parts.append("Training accuracy says how well the model fits the examples it learnt from; test accuracy "
                     "estimates how it does on examples it has never seen, which is what we care about. Their gap "
                     "measures overfitting.")
        if _overfit(r, result) > 0:
            parts.append("Here the model fits peculiarities of the training set that do not carry over to new "
                         "examples.")
        else:
            bigger = [(i, o) for i, o in (results or {}).items()
                      if o["dataset"] == result["dataset"] and o["model"] != "softmax" and o["runs"]]
            better = [(i, max(o["runs"], key=lambda x: x["test_accuracy"])) for i, o in bigger]
            better = [(i, b) for i, b in better if b["test_accuracy"] - r["test_accuracy"]
                      >= _margin(b["test_accuracy"], r["test_accuracy"], result)]
            if better:
                i, b = max(better, key=lambda x: x[1]["test_accuracy"])
                parts.append("The model does not overfit; it underfits: it is linear in the pixels, and a network "
                             "with hidden layers reaches %s on the same test set (%s)." % (_pct(b["test_accuracy"]), i))
            else:
                parts.append("The model does not overfit.")
        return " ".join(parts)

    diverged = [r for r in runs if r["diverged"]]
    ok = [r for r in runs if not r["diverged"]]
    stuck = [r for r in ok if _at_chance(r, result)]
    ranked = sorted([r for r in ok if r not in stuck], key=lambda r: r["test_accuracy"], reverse=True)
    if not ok:
        return "Every run diverged (the loss became NaN or infinite): the settings tried are all too aggressive."
    if not ranked:
        parts.append("No run learnt: every run that did not diverge ended at chance.")
    else:
        best = ranked[0]
        ba = best["test_accuracy"]
        line = "Best: %s with test accuracy %s (training %s)" % (
            _fmt_value(sweep, best["value"]), _pct(ba), _pct(best["train_accuracy"]))
        ties = [r for r in ranked[1:] if _tied(ba, r["test_accuracy"], result)]
        if len(ranked) > 2 and len(ties) == len(ranked) - 1:
            line = ("All %d runs that learnt tie: their test accuracies, %s to %s, are within two standard errors "
                    "(%.2f points) of the highest, %s (training %s)" % (
                        len(ranked), _pct(ranked[-1]["test_accuracy"]), _pct(ba), 100 * _margin(ba, ba, result),
                        _fmt_value(sweep, best["value"]), _pct(best["train_accuracy"])))
        elif ties:
            line += "; tied with it (within two standard errors, %.2f points): %s" % (
                100 * _margin(ba, ba, result),
                ", ".join("%s %s" % (_fmt_value(sweep, r["value"]), _pct(r["test_accuracy"])) for r in ties))
        elif len(ranked) > 1:
            second = ranked[1]
            line += ", %.2f points ahead of the next, %s (%s), more than two standard errors (%.2f points)" % (
                100 * (ba - second["test_accuracy"]), _fmt_value(sweep, second["value"]),
                _pct(second["test_accuracy"]), 100 * _margin(ba, second["test_accuracy"], result))
        parts.append(line + ".")
        worst = ranked[-1]
        if len(ranked) > 2 and worst is not best and worst not in ties:
            near = worst["test_accuracy"] < (ba + 1.0 / k) / 2   # closer to chance than to the best
            parts.append("The worst run that learnt, %s, reached %s%s." % (
                _fmt_value(sweep, worst["value"]), _pct(worst["test_accuracy"]),
                " (%.2f points above chance, %s, more than two standard errors)" % (
                    100 * (worst["test_accuracy"] - 1.0 / k), _pct(1.0 / k)) if near else ""))
    for r in stuck:
        parts.append("%s did not learn: its test accuracy, %s, is within two standard errors of chance (%s), and its "
                     "loss ended at %s. It did not diverge (the loss stayed finite)." % (
                         _fmt_value(sweep, r["value"]).capitalize(), _pct(r["test_accuracy"]), _pct(1.0 / k),
                         _loss_words(r["final_loss"], k)))
    for r in diverged:
        parts.append("%s diverged: the loss became %s at iteration %d, the weights blew up (its accuracy, %s, is "
                     "meaningless)." % (_fmt_value(sweep, r["value"]).capitalize(), r["diverged_loss"],
                                        r["diverged_at"], _pct(r["test_accuracy"])))
    if not ranked:
        return " ".join(parts)
    parts.append("For the best run, %s." % _fit_words(best, result))

    if sweep == "rate":
        slowest = min(ranked, key=lambda r: r["setting"]["rate"])
        if (slowest is not best and slowest["setting"]["rate"] < best["setting"]["rate"]
                and slowest["final_loss"] > best["final_loss"]):
            parts.append("The smallest rate, %g, learns more slowly: after %d iterations its loss is %.3f against "
                         "%.3f for the best rate." % (slowest["setting"]["rate"], slowest["setting"]["iters"],
                                                      slowest["final_loss"], best["final_loss"]))
        above = [r for r in runs if r["setting"]["rate"] > best["setting"]["rate"]]
        if above:
            fates = []
            for r in sorted(above, key=lambda r: r["setting"]["rate"]):
                fate = ("diverged" if r["diverged"] else "did not learn" if r in stuck else
                        _pct(r["test_accuracy"]) + (" (tied with the best)" if r in ties else ""))
                fates.append("%g: %s" % (r["setting"]["rate"], fate))
            parts.append("Rates above the best: %s." % "; ".join(fates))
    elif sweep == "decay":
        base_id, base = _same_settings_run(result, results, result["model"], decay=0.0)
        if base is None:
            parts.append("No run without decay has these settings, so this sweep cannot say whether decay helps "
                         "over none; it compares decays only.")
        else:
            d = best["test_accuracy"] - base["test_accuracy"]
            verdict = ("Yes" if d >= _margin(best["test_accuracy"], base["test_accuracy"], result) else
                       "No" if -d >= _margin(best["test_accuracy"], base["test_accuracy"], result) else
                       "Not measurably")
            parts.append("Does decay help? %s: the best decay, %g, gives %s against %s without decay (%s, the same "
                         "model, settings and seed), %s." % (
                             verdict, best["setting"]["decay"], _pct(best["test_accuracy"]),
                             _pct(base["test_accuracy"]), base_id, _compare(best["test_accuracy"],
                                                                             base["test_accuracy"], result)))
            if verdict != "Yes":
                if _overfit(base, result) <= 0:
                    parts.append("Decay fights overfitting, and without decay this model does not overfit "
                                 "(%s), so it has little to fix." % _fit_words(base, result, verdict=False))
                else:
                    narrowed = ("; decay %g narrows the gap to %.2f points, within two standard errors," % (
                        best["setting"]["decay"], 100 * (best["train_accuracy"] - best["test_accuracy"]))
                        if _overfit(best, result) == 0 else "")
                    parts.append("Without decay the model overfits (%s)%s but no decay tried gives a measurably "
                                 "better test accuracy." % (_fit_words(base, result, verdict=False),
                                                            narrowed or ","))
        strongest = max(ok, key=lambda r: r["setting"]["decay"])
        if (strongest is not best and strongest in ranked and strongest not in ties
                and best["train_accuracy"] - strongest["train_accuracy"]
                >= _margin(best["train_accuracy"], strongest["train_accuracy"], result)):
            parts.append("The strongest decay, %g, underfits: training accuracy falls to %s (from %s for the best) "
                         "and test accuracy to %s: it pulls the weights towards zero harder than the data pull "
                         "them away." % (strongest["setting"]["decay"], _pct(strongest["train_accuracy"]),
                                         _pct(best["train_accuracy"]), _pct(strongest["test_accuracy"])))
    elif sweep == "activation":
        linear = next((r for r in ranked if r["value"] == "LINEAR"), None)
        if linear is not None:
            s_id, soft = _same_settings_run(result, results, "softmax")
            parts.append("A LINEAR hidden layer makes the network one linear map: the two weight matrices multiply "
                         "into one inputs x %d matrix, and every such matrix is such a product, so it represents "
                         "exactly the classifiers softmax regression does." % k)
            if soft is not None:
                c = _compare(linear["test_accuracy"], soft["test_accuracy"], result)
                parts.append("It reached %s against %s for softmax regression with the same settings (%s): %s." % (
                    _pct(linear["test_accuracy"]), _pct(soft["test_accuracy"]), s_id, c))
                if "a tie" not in c:
                    rate_id, rate_best = None, None
                    for i, o in (results or {}).items():
                        if o["model"] == "softmax" and o["sweep"] == "rate" and o["dataset"] == result["dataset"]:
                            rate_id = i
                            rate_best = max([x for x in o["runs"] if not x["diverged"]] or o["runs"],
                                            key=lambda x: x["test_accuracy"])
                    why = ("The difference is training, not capacity: the factored weights take different gradient "
                           "steps from the same rate")
                    if (rate_best is not None and rate_best["test_accuracy"] - soft["test_accuracy"]
                            >= _margin(rate_best["test_accuracy"], soft["test_accuracy"], result)):
                        why += (", and softmax regression is not at its best here: at rate %g it reaches %s (%s)" % (
                            rate_best["setting"]["rate"], _pct(rate_best["test_accuracy"]), rate_id))
                    parts.append(why + ".")
            nonlinear = [r for r in ranked if r["value"] != "LINEAR"]
            if nonlinear:
                top = nonlinear[0]
                if top["test_accuracy"] - linear["test_accuracy"] >= _margin(top["test_accuracy"],
                                                                            linear["test_accuracy"], result):
                    parts.append("The best nonlinear activation, %s, beats LINEAR by %.2f points: a nonlinearity "
                                 "lets the hidden layer represent more than a linear classifier." % (
                                     top["value"], 100 * (top["test_accuracy"] - linear["test_accuracy"])))
                else:
                    parts.append("No nonlinear activation beats LINEAR by more than two standard errors here.")
    elif sweep == "grid":
        mnist = [(i, max(o["runs"], key=lambda x: x["test_accuracy"])) for i, o in (results or {}).items()
                 if o["model"] == result["model"] and o["dataset"] != result["dataset"] and o["runs"]]
        line = "Chance is %s, and the best run reaches %s" % (_pct(1.0 / k), _pct(best["test_accuracy"]))
        if mnist:
            i, m = mnist[0]
            if m["test_accuracy"] - best["test_accuracy"] >= _margin(m["test_accuracy"], best["test_accuracy"], result):
                line = ("CIFAR-10 is far harder for this fully connected net that sees raw pixels: " + line[0].lower()
                        + line[1:] + ", against %s for the same network on %s (%s)" % (
                            _pct(m["test_accuracy"]), _DATASET_NAMES.get(results[i]["dataset"], results[i]["dataset"]), i))
        parts.append(line + ".")
    return " ".join(parts)


_DATASET_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR-10"}


# ---- figures ---------------------------------------------------------------------------------------------
#
# Each figure is a drawing function fig, rect -> None that draws into the rectangle rect (figure
# fractions) of any matplotlib figure: the same function makes the PNG for report.md/html and draws
# the figure as vector graphics on its page of report.pdf.

FIG_SIZE = (7.3, 2.9)        # inches, the PNGs (the PDF draws at its own size)


def _inner(rect, left, bottom, right, top):
    """A sub-rectangle of rect = [x, y, w, h], margins given as fractions of w and h."""
    x, y, w, h = rect
    return [x + left * w, y + bottom * h, w * (1 - left - right), h * (1 - bottom - top)]


def _draw_loss(exp_id, result):
    def draw(fig, rect):
        runs = result["runs"]
        ax = fig.add_axes(_inner(rect, 0.09, 0.16, 0.30 if len(runs) > 1 else 0.03, 0.11))
        for r in runs:
            curve = np.asarray(r["loss_curve"], dtype=float)
            if curve.size == 0:
                continue
            x = (np.arange(curve.size) + 0.5) * r["curve_step"]
            ax.plot(x, curve, label=r["label"] + (" (diverged)" if r["diverged"] else ""), lw=1.2)
        ax.set_xlabel("iteration", fontsize=8)
        ax.set_ylabel("training loss", fontsize=8)
        if all(min(r["loss_curve"] or [1]) > 0 for r in runs):
            ax.set_yscale("log")
        ax.tick_params(labelsize=7)
        ax.set_title("%s %s: loss (batch cross-entropy)" % (exp_id, result["title"]), fontsize=9)
        if len(runs) > 1:   # outside the axes, to the right: never over a curve
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False)
        ax.grid(alpha=0.3)
    return draw


def _cell_text_colour(rgba):
    """Black on light cells, white on dark ones (relative luminance of the cell colour)."""
    r, g, b = rgba[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


def _draw_accuracy(exp_id, result):
    def draw(fig, rect):
        runs, sweep = result["runs"], result["sweep"]
        if sweep == "grid":
            ax = fig.add_axes(_inner(rect, 0.12, 0.16, 0.30, 0.11))
            rates = sorted({r["value"][0] for r in runs}, reverse=True)
            decays = sorted({r["value"][1] for r in runs})
            grid = np.full((len(rates), len(decays)), np.nan)
            for r in runs:
                grid[rates.index(r["value"][0]), decays.index(r["value"][1])] = 100 * r["test_accuracy"]
            im = ax.imshow(grid, cmap="viridis", aspect="auto")
            ax.set_xticks(range(len(decays)), ["%g" % d for d in decays])
            ax.set_yticks(range(len(rates)), ["%g" % r for r in rates])
            ax.tick_params(labelsize=7)
            ax.set_xlabel("decay", fontsize=8)
            ax.set_ylabel("learning rate", fontsize=8)
            for i in range(len(rates)):
                for j in range(len(decays)):
                    if np.isfinite(grid[i, j]):
                        ax.text(j, i, "%.2f%%" % grid[i, j], ha="center", va="center", fontsize=8,
                                color=_cell_text_colour(im.cmap(im.norm(grid[i, j]))))
            x, y, w, h = _inner(rect, 0.12, 0.16, 0.30, 0.11)
            cb = fig.colorbar(im, cax=fig.add_axes([x + w + 0.02 * rect[2], y, 0.02 * rect[2], h]))
            cb.set_label("test accuracy (%)", fontsize=7)
            cb.ax.tick_params(labelsize=7)
            ax.set_title("%s test accuracy" % exp_id, fontsize=9)
            return
        ax = fig.add_axes(_inner(rect, 0.09, 0.16, 0.30, 0.11))
        x = np.arange(len(runs))
        train = [100 * r["train_accuracy"] for r in runs]
        test = [100 * r["test_accuracy"] for r in runs]
        if sweep == "activation":   # categories, not a continuum: bars
            ax.bar(x - 0.2, train, 0.4, label="training")
            ax.bar(x + 0.2, test, 0.4, label="test")
            for i, (a, b) in enumerate(zip(train, test)):
                ax.text(i - 0.2, a, "%.2f" % a, ha="center", va="bottom", fontsize=6)
                ax.text(i + 0.2, b, "%.2f" % b, ha="center", va="bottom", fontsize=6)
            lo = min(train + test)
            ax.set_ylim(max(0.0, math.floor(lo / 5) * 5 - 5), min(100.0, max(train + test) + 2))
            ax.set_xticks(x, [str(r["value"]) for r in runs])
        else:
            ax.plot(x, train, "o-", label="training")
            ax.plot(x, test, "s-", label="test")
            ax.set_xticks(x, ["%g" % r["value"] for r in runs])
        for i, r in enumerate(runs):
            if r["diverged"]:
                ax.annotate("diverged", (i, 100 * r["test_accuracy"]), fontsize=7, xytext=(3, 6),
                            textcoords="offset points")
        ax.tick_params(labelsize=7)
        ax.set_xlabel(sweep, fontsize=8)
        ax.set_ylabel("accuracy (%)", fontsize=8)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False)
        ax.grid(alpha=0.3, axis="y")
        ax.set_title("%s accuracy against %s" % (exp_id, sweep), fontsize=9)
    return draw


def _draw_weights(weights):
    w, classes, side = weights

    def draw(fig, rect):
        x0, y0, W, H = _inner(rect, 0.02, 0.02, 0.02, 0.14)
        fig.text(rect[0] + rect[2] / 2, rect[1] + rect[3] * 0.97, "Softmax weights per class (red: the pixel votes "
                 "for the class, blue: against)", ha="center", va="top", fontsize=9)
        cw, ch = W / 5, H / 2
        for k in range(min(10, w.shape[1])):
            r, c = divmod(k, 5)
            ax = fig.add_axes([x0 + c * cw + 0.05 * cw, y0 + (1 - r) * ch + 0.02 * ch, 0.9 * cw, 0.8 * ch])
            img = w[:side * side, k].reshape(side, side)
            lim = np.abs(img).max() or 1
            ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_title(classes[k] if k < len(classes) else str(k), fontsize=8)
            ax.axis("off")
    return draw


def _figures(results, out_dir, weights):
    """Writes the PNG figures (each atomically); returns ({key: filename}, {filename: draw})."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made, drawers = {}, {}
    for exp_id, result in results.items():
        stem = "fig_%s_" % exp_id.replace(".", "_")
        made[exp_id + ":loss"] = stem + "loss.png"
        drawers[stem + "loss.png"] = _draw_loss(exp_id, result)
        if result["sweep"] is not None:
            made[exp_id + ":accuracy"] = stem + "accuracy.png"
            drawers[stem + "accuracy.png"] = _draw_accuracy(exp_id, result)
    if weights is not None:
        made["weights"] = "fig_softmax_weights.png"
        drawers["fig_softmax_weights.png"] = _draw_weights(weights)
    for name, draw in drawers.items():
        fig = plt.figure(figsize=FIG_SIZE if name != "fig_softmax_weights.png" else (7.3, 3.4))
        draw(fig, [0.0, 0.0, 1.0, 1.0])
        with atomic_file(os.path.join(out_dir, name), durable=True) as f:
            fig.savefig(f, format="png", dpi=110)
        plt.close(fig)
    return made, drawers


# ---- the document ----------------------------------------------------------------------------------------

def _blocks(results, timings, meta, figures, plots_available):
    """The report as a list of (kind, payload)."""
    b = [("h1", "pynet: homework 4 experiments")]
    b.append(("p", "Data: %s. Seed %s. Model builders from tryhw4.py. pynet %s, %s thread(s)%s." % (
        meta.get("data", "?"), meta.get("seed"), meta.get("version", "?"), meta.get("threads", 1),
        " per run, on %d Dask workers" % meta["workers"] if meta.get("workers") else "")))
    if not plots_available:
        b.append(("p", PLOT_HINT))
    for exp_id, reason in (meta.get("skipped") or {}).items():
        b.append(("p", "Skipped: %s (%s)." % (exp_id, reason)))
    for f in meta.get("failed_runs") or []:
        b.append(("p", "Failed: the %s run of %s raised %s; the other runs went on without it." % (
            f["label"], f["experiment"], f["error"])))
    summary = [["experiment", "best setting", "test accuracy", "runs", "seconds"]]
    for exp_id, result in results.items():
        ok = [r for r in result["runs"] if not r["diverged"]] or result["runs"]
        best = max(ok, key=lambda r: r["test_accuracy"])
        summary.append([exp_id + " " + result["title"], best["label"], _pct(best["test_accuracy"]),
                        str(len(result["runs"])), "%.1f" % sum(timings.get(exp_id, []))])
    b.append(("table", summary))
    b.append(("p", rule(results)))
    b.append(("p", "Final loss is the mean training-batch loss over the last %d iterations. Accuracies are over "
                   "the whole training and test sets. Choosing settings by test accuracy follows the homework; "
                   "in real work a validation split should make that choice (see pynet.fit)." % 50))
    weights_shown = False
    for exp_id, result in results.items():
        b.append(("h2", "%s %s" % (exp_id, result["title"])))
        b.append(("p", "Question: " + result["question"]))
        base = result["base"]
        fixed = ", ".join("%s %s" % (k, base[k]) for k in ("batch", "iters", "rate", "momentum", "decay", "activation")
                          if k in base and k != result["sweep"] and not (result["sweep"] == "grid" and k in ("rate", "decay"))
                          and not (result["model"] == "softmax" and k == "activation"))
        b.append(("p", "Model: %s on %s; fixed: %s." % (result["model"], result["dataset"], fixed)))
        rows = [["setting", "final loss", "training accuracy", "test accuracy", "seconds"]]
        for r, secs in zip(result["runs"], timings.get(exp_id, [math.nan] * len(result["runs"]))):
            loss = ("diverged at iteration %d (%s)" % (r["diverged_at"], r["diverged_loss"]) if r["diverged"]
                    else "%.4f" % r["final_loss"])
            rows.append([r["label"], loss, _pct(r["train_accuracy"]), _pct(r["test_accuracy"]), "%.2f" % secs])
        b.append(("table", rows))
        b.extend(("p", line) for line in map(implementation_line, result["runs"]) if line)
        for key in (exp_id + ":loss", exp_id + ":accuracy"):
            if key in figures:
                b.append(("img", figures[key]))
        b.append(("p", "Answer: " + answer(result, results)))
        if result["model"] == "softmax" and "weights" in figures and not weights_shown:
            weights_shown = True   # the picture is of this experiment's model, so it goes on its page
            b.append(("p", "What the softmax model learnt: each class's column of the softmax weights, shown as "
                           "a 28x28 image (the bias row left out). Red pixels raise the class's score, blue ones "
                           "lower it: the model has learnt a blurry template of each digit."))
            b.append(("img", figures["weights"]))
    return b


def _markdown(blocks):
    out = []
    for kind, x in blocks:
        if kind == "h1":
            out.append("# " + x)
        elif kind == "h2":
            out.append("## " + x)
        elif kind == "p":
            out.append(x)
        elif kind == "table":
            out.append("| " + " | ".join(x[0]) + " |")
            out.append("|" + "---|" * len(x[0]))
            out.extend("| " + " | ".join(row) + " |" for row in x[1:])
        elif kind == "img":
            out.append("![%s](%s)" % (x, x))
        out.append("")
    return "\n".join(out)


def _html(blocks, out_dir):
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>pynet homework 4 report</title><style>",
             "body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;line-height:1.45}",
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.25em .6em;"
             "text-align:left}th{background:#eee}img{max-width:100%}</style></head><body>"]
    for kind, x in blocks:
        if kind in ("h1", "h2"):
            parts.append("<%s>%s</%s>" % (kind, html.escape(x), kind))
        elif kind == "p":
            parts.append("<p>%s</p>" % html.escape(x))
        elif kind == "table":
            parts.append("<table><tr>" + "".join("<th>%s</th>" % html.escape(c) for c in x[0]) + "</tr>")
            for row in x[1:]:
                parts.append("<tr>" + "".join("<td>%s</td>" % html.escape(c) for c in row) + "</tr>")
            parts.append("</table>")
        elif kind == "img":
            with open(os.path.join(out_dir, x), "rb") as f:
                data = base64.b64encode(f.read()).decode("ascii")
            parts.append("<img alt='%s' src='data:image/png;base64,%s'>" % (html.escape(x), data))
    parts.append("</body></html>")
    return "\n".join(parts)


def _pdf(blocks, drawers, f):
    """report.pdf into the open file f: A4 pages, each section (a heading to the next) kept on one
    page with its figures drawn as vector graphics, sections packed onto pages in order."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    width, height = 8.27, 11.69      # A4 portrait, inches
    top, bottom, line = 0.955, 0.035, 0.0128
    chart = 2.75 / height            # a figure's height on the page, before shrinking to fit

    def wrapped(x):
        return textwrap.wrap(x, 118)

    def fixed_height(kind, x):
        if kind == "h1":
            return 0.04
        if kind == "h2":
            return 0.03
        if kind == "p":
            return line * len(wrapped(x)) + 0.008
        if kind == "table":
            return 0.0165 * len(x) + 0.012
        return 0.012

    units = []
    for kind, x in blocks:
        if kind in ("h1", "h2") or not units:
            units.append([])
        units[-1].append((kind, x))

    def unit_height(unit, fig_h):
        return sum(fixed_height(k, x) + (fig_h if k == "img" else 0) for k, x in unit)

    with PdfPages(f) as pdf:
        fig, y = None, top

        def new_page():
            nonlocal fig, y
            if fig is not None:
                pdf.savefig(fig)
                plt.close(fig)
            fig, y = plt.figure(figsize=(width, height)), top

        for unit in units:
            n_img = sum(k == "img" for k, _ in unit)
            fixed = unit_height(unit, 0.0)
            # figures shrink to as little as 0.55 of their size to keep a section on a part-filled page
            fig_h = min(chart, (y - bottom - fixed) / n_img) if n_img else 0.0
            if fig is None or y - fixed < bottom or (n_img and fig_h < 0.55 * chart):
                new_page()
                fig_h = min(chart, (top - bottom - fixed) / n_img) if n_img else 0.0
            for kind, x in unit:
                h = fixed_height(kind, x)
                if kind == "h1":
                    fig.text(0.06, y, x, fontsize=15, weight="bold", va="top")
                elif kind == "h2":
                    fig.text(0.06, y, x, fontsize=12, weight="bold", va="top")
                elif kind == "p":
                    fig.text(0.06, y, "\n".join(wrapped(x)), fontsize=8, va="top", linespacing=1.35)
                elif kind == "table":
                    ax = fig.add_axes([0.06, y - h + 0.006, 0.88, h - 0.012])
                    ax.axis("off")
                    chars = [max(len(row[j]) for row in x) + 3 for j in range(len(x[0]))]
                    t = ax.table(cellText=x[1:], colLabels=x[0], loc="upper left", cellLoc="left",
                                 bbox=[0, 0, 1, 1], colWidths=[c / sum(chars) for c in chars])
                    t.auto_set_font_size(False)
                    t.set_fontsize(7)
                    for (row, _), cell in t.get_celld().items():
                        cell.set_linewidth(0.4)
                        if row == 0:
                            cell.set_facecolor("#eeeeee")
                elif kind == "img":
                    drawers[x](fig, [0.06, y - fig_h, 0.88, fig_h])
                    h += fig_h
                y -= h
        if fig is not None:
            pdf.savefig(fig)
            plt.close(fig)


STALE_AFTER = 3600   # seconds without a write after which a temporary file is a killed writer's
_STALE_PART = re.compile(r"^\.(.+)\.[0-9a-f]{8}\.part$")   # atomic_file's temporary names (temp_name)
_OUR_FILES = re.compile(r"^(report\.(md|html|pdf)|results\.json|timings\.json|fig_.+\.png)$")


def clean_stale_parts(out_dir):
    """Delete temporary files of the report's own naming that a killed writer left in out_dir,
    untouched for STALE_AFTER seconds (a live writer's are newer, other programs' are not ours)."""
    now = time.time()
    for name in os.listdir(out_dir):
        m = _STALE_PART.match(name)
        if m and _OUR_FILES.match(m.group(1)):
            p = os.path.join(out_dir, name)
            with contextlib.suppress(OSError):
                if os.path.isfile(p) and now - os.stat(p).st_mtime > STALE_AFTER:
                    os.unlink(p)


def _atomic_write(path, data):
    """Write str or bytes to path atomically and durably (pynet.datasets' atomic_file: a unique
    temporary name in the same folder, fsync, rename; usual permissions; removed on error)."""
    with atomic_file(path, durable=True) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def write_json(path, obj):
    _atomic_write(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")


def write_report(out_dir, results, timings, meta, weights=None):
    """Write report.md, report.html and (with matplotlib) report.pdf and the figures into out_dir,
    every file atomically (several reports may write the same folder at once; a killed one leaves
    the previous files whole). ``weights`` is (w, class names, side) for the softmax weights
    picture, or None. Returns the list of files written."""
    plots = have_matplotlib()
    figures, drawers = _figures(results, out_dir, weights) if plots else ({}, {})
    blocks = _blocks(results, timings, meta, figures, plots)
    written = []
    _atomic_write(os.path.join(out_dir, "report.md"), _markdown(blocks))
    written.append("report.md")
    _atomic_write(os.path.join(out_dir, "report.html"), _html(blocks, out_dir))
    written.append("report.html")
    if plots:
        with atomic_file(os.path.join(out_dir, "report.pdf"), durable=True) as f:
            _pdf(blocks, drawers, f)
        written.append("report.pdf")
        written.extend(sorted(figures.values()))
    clean_stale_parts(out_dir)
    return written
