"""Plot training curves from the per-epoch CSV logs that ``python -m pynet train --log`` writes.

    python recipes/plot.py OUT.png LOG.csv[=LABEL] ...

Draws validation accuracy (solid) and training-batch accuracy (dotted, measured with dropout on)
per epoch, one colour per log, and the training loss below. Needs matplotlib (pip install
matplotlib)."""
import csv
import sys


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SystemExit("%s: no epochs in the log" % path)
    return rows


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out, logs = argv[0], argv[1:]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    for i, spec in enumerate(logs):
        path, _, label = spec.partition("=")
        rows = read(path)
        epochs = [int(r["epoch"]) for r in rows]
        colour = "C%d" % i
        label = label or path
        if rows[0].get("val_accuracy"):
            top.plot(epochs, [100 * float(r["val_accuracy"]) for r in rows], "-", color=colour, label=label + " (validation)")
        top.plot(epochs, [100 * float(r["train_accuracy"]) for r in rows], ":", color=colour, label=label + " (training batches)")
        bottom.plot(epochs, [float(r["train_loss"]) for r in rows], "-", color=colour, label=label)
    top.set_ylabel("accuracy (%)")
    top.grid(alpha=0.3)
    top.legend(fontsize=8)
    lows = [line.get_ydata() for line in top.get_lines()]
    top.set_ylim(max(0, min(min(y[len(y) // 4:]) for y in lows) - 1), min(100, max(max(y) for y in lows) + 0.5))
    bottom.set_xlabel("epoch")
    bottom.set_ylabel("training loss")
    bottom.set_yscale("log")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1:])
