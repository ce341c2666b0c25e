"""pynet.report — turns experiment results into the homework's write-up: ``report.md``, the same as
a self-contained ``report.html``, and ``report.pdf``, with for each experiment a table, the loss
curves of its runs, accuracy against the swept value, and an answer to the homework's question
computed from the numbers. Plots need matplotlib (``pip install matplotlib``); without it the
report keeps its tables and answers and says how to get the plots.

The report is built once as a list of blocks (headings, paragraphs, tables, figures) and rendered
three ways, so the three files always say the same thing.
"""
import base64
import html
import io
import json
import math
import os
import textwrap

import numpy as np

from ._files import atomic_file

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

def _fmt_value(sweep, v):
    if sweep == "activation":
        return v
    if sweep == "grid":
        return "rate %g / decay %g" % tuple(v)
    return "%s %g" % (sweep, v)


def _classes(result):
    return int(result.get("classes") or 10)


def _did_not_learn(run, result):
    """A run that ends at chance level: test accuracy under twice chance, loss near ln(classes)."""
    k = _classes(result)
    return (run["test_accuracy"] < 2.0 / k and run["final_loss"] is not None
            and run["final_loss"] > 0.9 * math.log(k))


def _gap_words(gap):
    if abs(gap) < 0.00005:
        return "the two are equal"
    if gap > 0:
        return "training accuracy is %.2f points above test accuracy" % (100 * gap)
    return "test accuracy is %.2f points above training accuracy" % (-100 * gap)


def answer(result):
    """A short answer to the experiment's question, computed from its runs."""
    runs, sweep = result["runs"], result["sweep"]
    ok = [r for r in runs if not r["diverged"]]
    parts = []
    if sweep is None:
        r = runs[0]
        gap = r["train_accuracy"] - r["test_accuracy"]
        parts.append("Training accuracy is %s and test accuracy %s: %s." % (
            _pct(r["train_accuracy"]), _pct(r["test_accuracy"]), _gap_words(gap)))
        parts.append("Training accuracy says how well the model fits the examples it learnt from; test accuracy "
                     "estimates how it does on digits it has never seen, which is what we care about. Their gap "
                     "measures overfitting.")
        if abs(gap) < 0.02:
            parts.append("Here the two are close: the model is not overfitting. A softmax model is linear in the "
                         "pixels, so it underfits rather than overfits; more capacity (hidden layers) is what "
                         "would help.")
        else:
            parts.append("The gap is large enough that the model is fitting peculiarities of the training set.")
        return " ".join(parts)

    stuck = [r for r in ok if _did_not_learn(r, result)]
    ok = [r for r in ok if r not in stuck] or ok   # rank the runs that learnt, if any did
    ranked = sorted(ok, key=lambda r: r["test_accuracy"], reverse=True)
    if not ranked:
        return "Every run diverged (the loss became NaN or infinite); the settings tried are all too aggressive."
    best = ranked[0]
    line = "Best: %s with test accuracy %s (training %s)" % (
        _fmt_value(sweep, best["value"]), _pct(best["test_accuracy"]), _pct(best["train_accuracy"]))
    if len(ranked) > 1:
        second = ranked[1]
        margin = 100 * (best["test_accuracy"] - second["test_accuracy"])
        if margin < 0.005:   # the same test accuracy to the digits shown
            tied = [_fmt_value(sweep, r["value"]) for r in ranked[1:]
                    if 100 * (best["test_accuracy"] - r["test_accuracy"]) < 0.005]
            line += ", tied with %s" % ", ".join(tied)
        else:
            line += ", %.2f points ahead of %s (%s)" % (margin, _fmt_value(sweep, second["value"]),
                                                      _pct(second["test_accuracy"]))
    parts.append(line + ".")
    if len(ranked) > 2:
        worst = ranked[-1]
        parts.append("The worst run that trained, %s, reached %s." % (_fmt_value(sweep, worst["value"]),
                                                                      _pct(worst["test_accuracy"])))
    for r in stuck:
        if r in ranked:
            continue
        parts.append("%s did not learn: its loss ended at %.4f, about ln %d = %.4f, the loss of a uniform guess, "
                     "and its test accuracy (%s) is chance. It did not diverge (the loss stayed finite); its first "
                     "steps were so large that the network was thrown where the gradient vanishes (dead ReLU "
                     "units or saturated logistic ones) and it now predicts about the same for every input." % (
                         _fmt_value(sweep, r["value"]).capitalize(), r["final_loss"], _classes(result),
                         math.log(_classes(result)), _pct(r["test_accuracy"])))
    diverged = [r for r in runs if r["diverged"]]
    for r in diverged:
        parts.append("%s diverged: the loss became %s at iteration %d, because steps that large overshoot the "
                     "minimum and the weights blow up (its accuracy, %s, is meaningless)." % (
                         _fmt_value(sweep, r["value"]).capitalize(), r["diverged_loss"], r["diverged_at"],
                         _pct(r["test_accuracy"])))
    gap = best["train_accuracy"] - best["test_accuracy"]
    parts.append("For the best run, %s%s." % (_gap_words(gap), " (little overfitting)" if abs(gap) < 0.02 else
                                              " (it overfits)"))

    if sweep == "rate":
        slowest = min(ok, key=lambda r: r["setting"]["rate"])
        if slowest is not best and slowest["final_loss"] is not None and best["final_loss"] is not None:
            parts.append("The smallest rate, %g, learns slowly: after %d iterations its loss is %.3f against %.3f "
                         "for the best rate." % (slowest["setting"]["rate"], slowest["setting"]["iters"],
                                                 slowest["final_loss"], best["final_loss"]))
        parts.append("Too small a rate wastes iterations; too large a rate makes the loss jump around or explode; "
                     "the best rate is the largest one that still trains stably.")
    elif sweep == "decay":
        strongest = max(ok, key=lambda r: r["setting"]["decay"]) if ok else None
        weakest = min(ok, key=lambda r: r["setting"]["decay"]) if ok else None
        if strongest is not None and weakest is not None and strongest is not weakest:
            parts.append("Strong decay (%g) gives %s against %s with the weakest (%g): %s" % (
                strongest["setting"]["decay"], _pct(strongest["test_accuracy"]), _pct(weakest["test_accuracy"]),
                weakest["setting"]["decay"],
                "it pulls the weights towards zero so hard that the model underfits." if
                strongest["test_accuracy"] < weakest["test_accuracy"] - 0.005 else
                "the difference is small."))
        spread = max(r["test_accuracy"] for r in ok) - min(r["test_accuracy"] for r in ok)
        small = [r for r in ok if r["setting"]["decay"] <= 1e-3]
        if small:
            s_spread = max(r["test_accuracy"] for r in small) - min(r["test_accuracy"] for r in small)
            parts.append("Decays of 0.001 and below %s (the whole sweep spans %.2f): this model %s, so decay, "
                         "which fights overfitting, has little to fix." % (
                             "give the same test accuracy to two decimals" if s_spread < 0.00005 else
                             "change test accuracy by at most %.2f points" % (100 * s_spread), 100 * spread,
                             "does not overfit in %d iterations" % best["setting"]["iters"]
                             if abs(gap) < 0.02 else "overfits a little"))
    elif sweep == "activation":
        order = ", ".join("%s %s" % (r["value"], _pct(r["test_accuracy"])) for r in ranked)
        parts.append("Ranking by test accuracy: %s." % order)
        linear = next((r for r in ok if r["value"] == "LINEAR"), None)
        if linear is not None and linear is not best:
            parts.append("A LINEAR hidden layer makes the whole network linear (a product of matrices), so it can "
                         "do no better than softmax regression; the nonlinear activations can.")
    elif sweep == "grid":
        parts.append("CIFAR-10's photos are far harder than MNIST's digits for a small fully connected network "
                     "that sees raw pixels: chance is 10%%, and this net reaches %s." % _pct(best["test_accuracy"]))
    return " ".join(parts)


# ---- figures ---------------------------------------------------------------------------------------------

def _figures(results, out_dir, weights):
    """Writes the PNG figures; returns {key: filename}."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = {}
    for exp_id, result in results.items():
        runs = result["runs"]
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
        for r in runs:
            curve = np.asarray(r["loss_curve"], dtype=float)
            if curve.size == 0:
                continue
            x = (np.arange(curve.size) + 0.5) * r["curve_step"]
            ax.plot(x, curve, label=r["label"] + (" (diverged)" if r["diverged"] else ""), lw=1.3)
        ax.set_xlabel("iteration")
        ax.set_ylabel("training loss (batch cross-entropy)")
        if any(min(r["loss_curve"] or [1]) > 0 for r in runs):
            ax.set_yscale("log")
        ax.set_title("%s %s: loss" % (exp_id, result["title"]))
        if len(runs) > 1:
            ax.legend(fontsize=7, ncol=2)
        ax.grid(alpha=0.3)
        name = "fig_%s_loss.png" % exp_id.replace(".", "_")
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, name), dpi=110)
        plt.close(fig)
        made[exp_id + ":loss"] = name

        if result["sweep"] is None:
            continue
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        if result["sweep"] == "grid":
            rates = sorted({r["value"][0] for r in runs}, reverse=True)
            decays = sorted({r["value"][1] for r in runs})
            grid = np.full((len(rates), len(decays)), np.nan)
            for r in runs:
                grid[rates.index(r["value"][0]), decays.index(r["value"][1])] = 100 * r["test_accuracy"]
            im = ax.imshow(grid, cmap="viridis", aspect="auto")
            ax.set_xticks(range(len(decays)), ["%g" % d for d in decays])
            ax.set_yticks(range(len(rates)), ["%g" % r for r in rates])
            ax.set_xlabel("decay")
            ax.set_ylabel("learning rate")
            for i in range(len(rates)):
                for j in range(len(decays)):
                    ax.text(j, i, "%.1f%%" % grid[i, j], ha="center", va="center", color="w", fontsize=9)
            fig.colorbar(im, ax=ax, label="test accuracy (%)")
            ax.set_title("%s test accuracy" % exp_id)
        else:
            x = np.arange(len(runs))
            ax.plot(x, [100 * r["train_accuracy"] for r in runs], "o-", label="training")
            ax.plot(x, [100 * r["test_accuracy"] for r in runs], "s-", label="test")
            for i, r in enumerate(runs):
                if r["diverged"]:
                    ax.annotate("diverged", (i, 100 * r["test_accuracy"]), fontsize=7, xytext=(3, 6),
                                textcoords="offset points")
            ax.set_xticks(x, [str(r["value"]) if result["sweep"] == "activation" else "%g" % r["value"]
                              for r in runs])
            ax.set_xlabel(result["sweep"])
            ax.set_ylabel("accuracy (%)")
            ax.legend()
            ax.grid(alpha=0.3)
            ax.set_title("%s accuracy against %s" % (exp_id, result["sweep"]))
        fig.tight_layout()
        name = "fig_%s_accuracy.png" % exp_id.replace(".", "_")
        fig.savefig(os.path.join(out_dir, name), dpi=110)
        plt.close(fig)
        made[exp_id + ":accuracy"] = name

    if weights is not None:
        w, classes, side = weights
        fig, axes = plt.subplots(2, 5, figsize=(8, 3.6))
        for k, ax in enumerate(axes.flat):
            if k >= w.shape[1]:
                ax.axis("off")
                continue
            img = w[:side * side, k].reshape(side, side)
            lim = np.abs(img).max() or 1
            ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_title(classes[k] if k < len(classes) else str(k), fontsize=9)
            ax.axis("off")
        fig.suptitle("Softmax weights per class (red: pixel votes for the class, blue: against)", fontsize=10)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "fig_softmax_weights.png"), dpi=110)
        plt.close(fig)
        made["weights"] = "fig_softmax_weights.png"
    return made


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
        for key in (exp_id + ":loss", exp_id + ":accuracy"):
            if key in figures:
                b.append(("img", figures[key]))
        b.append(("p", "Answer: " + answer(result)))
    if "weights" in figures:
        b.append(("h2", "What the softmax model learnt"))
        b.append(("p", "Each class's column of the softmax weights, shown as a 28x28 image (the bias row left "
                       "out). Red pixels raise the class's score, blue ones lower it: the model has learnt a "
                       "blurry template of each digit."))
        b.append(("img", figures["weights"]))
    b.append(("p", "Final loss is the mean training-batch loss over the last %d iterations. Accuracies are over "
                   "the whole training and test sets. Choosing settings by test accuracy follows the homework; "
                   "in real work a validation split should make that choice (see pynet.fit)." % 50))
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


def _pdf(blocks, out_dir, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    width, height = 8.27, 11.69      # A4 portrait, inches
    with PdfPages(path) as pdf:
        fig, y = None, 0.0

        def new_page():
            nonlocal fig, y
            if fig is not None:
                pdf.savefig(fig)
                plt.close(fig)
            fig = plt.figure(figsize=(width, height))
            y = 0.95

        def need(h):
            if fig is None or y - h < 0.04:
                new_page()

        for kind, x in blocks:
            if kind == "h1":
                need(0.05)
                fig.text(0.06, y, x, fontsize=16, weight="bold", va="top")
                y -= 0.045
            elif kind == "h2":
                new_page() if fig is not None and y < 0.9 else need(0.05)
                fig.text(0.06, y, x, fontsize=13, weight="bold", va="top")
                y -= 0.035
            elif kind == "p":
                lines = textwrap.wrap(x, 105)
                h = 0.0155 * len(lines) + 0.008
                need(h)
                fig.text(0.06, y, "\n".join(lines), fontsize=8, va="top", family="sans-serif")
                y -= h
            elif kind == "table":
                h = 0.018 * len(x) + 0.01
                need(h)
                ax = fig.add_axes([0.06, y - h, 0.88, h])
                ax.axis("off")
                t = ax.table(cellText=x[1:], colLabels=x[0], loc="upper left", cellLoc="left")
                t.auto_set_font_size(False)
                t.set_fontsize(7)
                t.auto_set_column_width(list(range(len(x[0]))))
                y -= h + 0.01
            elif kind == "img":
                img = mpimg.imread(os.path.join(out_dir, x))
                aspect = img.shape[0] / img.shape[1]
                w = 0.7
                h = w * aspect * width / height
                need(h)
                ax = fig.add_axes([0.15, y - h, w, h])
                ax.imshow(img)
                ax.axis("off")
                y -= h + 0.01
        if fig is not None:
            pdf.savefig(fig)
            plt.close(fig)


def _atomic_write(path, data):
    """Write str or bytes to path atomically (pynet._files' atomic_file: usual permissions, no
    half-written file on error)."""
    with atomic_file(path) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def write_json(path, obj):
    _atomic_write(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")


def write_report(out_dir, results, timings, meta, weights=None):
    """Write report.md, report.html and (with matplotlib) report.pdf and the figures into out_dir.
    ``weights`` is (w, class names, side) for the softmax weights picture, or None. Returns the
    list of files written."""
    plots = have_matplotlib()
    figures = _figures(results, out_dir, weights) if plots else {}
    blocks = _blocks(results, timings, meta, figures, plots)
    written = []
    _atomic_write(os.path.join(out_dir, "report.md"), _markdown(blocks))
    written.append("report.md")
    _atomic_write(os.path.join(out_dir, "report.html"), _html(blocks, out_dir))
    written.append("report.html")
    if plots:
        pdf_path = os.path.join(out_dir, "report.pdf")
        tmp = pdf_path + ".part"
        _pdf(blocks, out_dir, tmp)
        os.replace(tmp, pdf_path)
        written.append("report.pdf")
        written.extend(sorted(figures.values()))
    return written
