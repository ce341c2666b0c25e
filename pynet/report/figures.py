"""The report's figures: for each experiment its loss curves and accuracy against the swept value,
and the softmax weights picture, written as PNGs and drawn again as vector graphics into the PDF."""
import math
import os

import numpy as np

from .._files import atomic_file

PLOT_HINT = "Plots need matplotlib: pip install matplotlib, then rerun."


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        return False


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


def make_figures(results, out_dir, weights):
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
