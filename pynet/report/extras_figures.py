"""pynet.report.extras_figures — the plots of experiments 4.1–4.5 (pynet.extras) for the report.

As in pynet.report, each figure is a drawing function ``draw(fig, rect)`` that draws into the
rectangle rect (figure fractions) of any matplotlib figure, so the same function makes the PNG
for report.md/html and the vector drawing on report.pdf's page. Besides each experiment's own
numbers they plot its diagnostics (pynet.diagnostics): weight-gradient norm per layer against the
step on a log scale, and the fraction of dead ReLU units against the step.
"""
import os

import numpy as np

from .._files import atomic_file
from .figures import FIG_SIZE


def _axes(fig, rect, n, right=0.03):
    """n side-by-side axes inside rect, with room for labels."""
    x, y, w, h = rect
    gap = 0.10 * w
    inner = w * (1 - 0.08 - right) - gap * (n - 1)
    return [fig.add_axes([x + 0.08 * w + i * (inner / n + gap), y + 0.17 * h, inner / n, h * 0.70])
            for i in range(n)]


def _style(ax, title, xlabel, ylabel, legend=True):
    ax.set_title(title, fontsize=8)
    ax.set_xlabel(xlabel, fontsize=7)
    ax.set_ylabel(ylabel, fontsize=7)
    ax.tick_params(labelsize=6)
    ax.grid(alpha=0.3)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, frameon=False)


def _values(xs):
    return np.asarray([np.nan if x is None else x for x in xs], dtype=float)


def _positive(xs):
    v = _values(xs)
    return np.where(v > 0, v, np.nan)


def _per_layer_grad(ax, run, title):
    """Diagnostics: each layer's weight-gradient norm against the step, log scale."""
    d = run["diagnostics"]
    if not d or not d["step"]:
        ax.text(0.5, 0.5, "no step recorded", ha="center", va="center", transform=ax.transAxes, fontsize=7)
    else:
        for i, g in enumerate(d["grad_norm"]):
            ax.plot(d["step"], _positive(g), lw=0.9, label="layer %d" % i)
        ax.set_yscale("log")
    _style(ax, title, "step", "‖∂L/∂w‖", legend=False)
    if d and d["step"]:
        ax.legend(fontsize=5, frameon=False, ncol=2)


def _dead(ax, runs, title):
    """Diagnostics: the fraction of dead ReLU units (mean over RELU layers) against the step."""
    for r in runs:
        d = r["diagnostics"]
        if not d or not d["step"]:
            continue
        dead = [_values(x) for x in d["dead"] if x is not None]
        if dead:
            ax.plot(d["step"], np.mean(dead, axis=0), lw=1.0, label=r["label"])
    ax.set_ylim(-0.02, 1.02)
    _style(ax, title, "step", "dead fraction")


def draw_4_1(result, seconds):
    def draw(fig, rect):
        acc, sec = _axes(fig, rect, 2)
        names = [r["label"].split(" (")[0] for r in result["runs"]]
        x = np.arange(len(names))
        for off, key, lab in ((-0.2, "train_accuracy", "training"), (0.2, "test_accuracy", "test")):
            vals = [100 * r[key] for r in result["runs"]]
            acc.bar(x + off, vals, 0.4, label=lab)
            for i, v in enumerate(vals):
                acc.text(i + off, v, "%.2f" % v, ha="center", va="bottom", fontsize=6)
        lo = min(100 * r[k] for r in result["runs"] for k in ("train_accuracy", "test_accuracy"))
        acc.set_ylim(max(0, lo - 5), 100)
        acc.set_xticks(x, names, fontsize=7)
        _style(acc, "4.1 accuracy", "", "accuracy (%)")
        sec.bar(x, seconds or [0, 0], 0.5, color="tab:gray")
        for i, s in enumerate(seconds or []):
            sec.text(i, s, "%.2f s" % s, ha="center", va="bottom", fontsize=6)
        sec.set_xticks(x, names, fontsize=7)
        _style(sec, "4.1 training time (%d iterations each model)" % result["settings"]["iters"], "", "seconds")
    return draw


def draw_4_2(result):
    def draw(fig, rect):
        ratio, acc = _axes(fig, rect, 2)
        for act in sorted({r["activation"] for r in result["runs"]}):
            runs = sorted([r for r in result["runs"] if r["activation"] == act], key=lambda r: r["depth"])
            depths = [r["depth"] for r in runs]
            ratio.plot(depths, _positive([r["start_ratio"] for r in runs]), "o-", label=act)
            acc.plot(depths, [100 * r["test_accuracy"] for r in runs], "o-", label=act)
            ratio.set_xticks(depths)
            acc.set_xticks(depths)
        ratio.set_yscale("log")
        _style(ratio, "4.2 first / last layer gradient at the start", "depth (layers)", "ratio of norms")
        acc.axhline(100.0 / result["classes"], color="gray", ls=":", lw=0.8, label="chance")
        _style(acc, "4.2 test accuracy after training", "depth (layers)", "test accuracy (%)")
    return draw


def draw_4_2_diagnostics(result):
    def draw(fig, rect):
        deepest = max(r["depth"] for r in result["runs"])
        runs = [r for r in result["runs"] if r["depth"] == deepest]
        for ax, r in zip(_axes(fig, rect, len(runs)), runs):
            _per_layer_grad(ax, r, "4.2 %s: gradient norm per layer" % r["label"])
    return draw


def draw_4_3(result):
    def draw(fig, rect):
        dead, acc = _axes(fig, rect, 2)
        _dead(dead, [r for r in result["runs"] if r["activation"] == "RELU"], "4.3 RELU: dead units while training")
        for act in ("RELU", "LRELU"):
            runs = sorted([r for r in result["runs"] if r["activation"] == act], key=lambda r: r["rate"])
            x = [r["rate"] for r in runs]
            acc.plot(x, [100 * r["test_accuracy"] for r in runs], "o-", label=act)
            for r in runs:
                if r["diverged"]:
                    acc.annotate("diverged", (r["rate"], 100 * r["test_accuracy"]), fontsize=6, xytext=(-14, 6),
                                 textcoords="offset points")
        acc.set_xscale("log")
        acc.axhline(100.0 / result["classes"], color="gray", ls=":", lw=0.8, label="chance")
        _style(acc, "4.3 test accuracy against learning rate", "learning rate", "test accuracy (%)")
    return draw


def draw_4_4(result):
    def draw(fig, rect):
        norms, dead = _axes(fig, rect, 2)
        for r in result["runs"]:
            d = r["diagnostics"]
            if d and d["step"]:
                norms.plot(d["step"], _positive(r["grad_norm"]), lw=1.0, label=r["label"])
        norms.set_yscale("log")
        _style(norms, "4.4 gradient norm, all layers (clip: after clipping)", "step", "‖∂L/∂w‖")
        _dead(dead, result["runs"], "4.4 dead units while training")
    return draw


def draw_4_4_diagnostics(result):
    def draw(fig, rect):
        runs = result["runs"]
        for ax, r in zip(_axes(fig, rect, len(runs)), runs):
            _per_layer_grad(ax, r, "4.4 %s: per layer" % r["label"])
    return draw


def draw_4_5(result):
    def draw(fig, rect):
        ax, = _axes(fig, rect, 1, right=0.30)
        for r, colour in zip(result["runs"], ("tab:red", "tab:blue")):
            epochs = np.arange(1, len(r["train_curve"]) + 1)
            ax.plot(epochs, [100 * a for a in r["train_curve"]], "--", color=colour, label=r["label"] + ", training")
            ax.plot(epochs, [100 * a for a in r["test_curve"]], "-", color=colour, label=r["label"] + ", test")
        _style(ax, "4.5 accuracy per epoch (%d training examples; dropout off when measuring)"
               % result["train_examples"], "epoch", "accuracy (%)", legend=False)
        ax.legend(fontsize=6, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return draw


def drawers(exp_id, result, seconds=None):
    """[(file name, draw)] of one extras result."""
    stem = "fig_%s_" % exp_id.replace(".", "_")
    if exp_id == "4.1":
        return [(stem + "accuracy_time.png", draw_4_1(result, seconds))]
    if exp_id == "4.2":
        return [(stem + "ratio_accuracy.png", draw_4_2(result)), (stem + "gradients.png", draw_4_2_diagnostics(result))]
    if exp_id == "4.3":
        return [(stem + "dead_accuracy.png", draw_4_3(result))]
    if exp_id == "4.4":
        return [(stem + "norms_dead.png", draw_4_4(result)), (stem + "gradients.png", draw_4_4_diagnostics(result))]
    if exp_id == "4.5":
        return [(stem + "accuracy_epochs.png", draw_4_5(result))]
    raise ValueError("no figures for experiment %r" % exp_id)


def write_figures(extras, timings, out_dir):
    """Writes every extras result's PNGs into out_dir (each atomically); returns
    ({exp_id: [file names]}, {file name: draw}) for the report's documents."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    made, draws = {}, {}
    for exp_id, result in extras.items():
        for name, draw in drawers(exp_id, result, (timings or {}).get(exp_id)):
            made.setdefault(exp_id, []).append(name)
            draws[name] = draw
            fig = plt.figure(figsize=FIG_SIZE)
            draw(fig, [0.0, 0.0, 1.0, 1.0])
            with atomic_file(os.path.join(out_dir, name), durable=True) as f:
                fig.savefig(f, format="png", dpi=110)
            plt.close(fig)
    return made, draws
