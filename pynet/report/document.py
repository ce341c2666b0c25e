"""The report as a document: built once as a list of blocks (headings, paragraphs, tables, figures)
and rendered three ways — report.md, a self-contained report.html, report.pdf — so the three files
always say the same thing; every file is written atomically."""
import base64
import contextlib
import html
import json
import math
import os
import re
import textwrap
import time

from .._files import atomic_file
from ..experiments import FINAL_WINDOW, best_run
from ..homework.verdict import describe as implementation_line
from .answers import pct, answer, rule
from .figures import PLOT_HINT

# ---- the document ----------------------------------------------------------------------------------------

def build_blocks(results, timings, meta, figures, plots_available, extras=None):
    """The report as a list of (kind, payload); ``extras`` (experiments 4.x) only for the rule."""
    b = [("h1", "pynet: homework 4 experiments")]
    b.append(("p", "Data: %s. Seed %s.%s pynet %s, %s thread(s)%s." % (
        meta.get("data", "?"), meta.get("seed"), " Model builders from tryhw4.py." if results else "",
        meta.get("version", "?"), meta.get("threads", 1),
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
        best = best_run(result)
        summary.append([exp_id + " " + result["title"], best["label"], pct(best["test_accuracy"]),
                        str(len(result["runs"])), "%.1f" % sum(timings.get(exp_id, []))])
    if results:
        b.append(("table", summary))
    b.append(("p", rule(dict(results, **(extras or {})))))
    b.append(("p", "Final loss is the mean training-batch loss over the last %d iterations. Accuracies are over "
                   "the whole training and test sets%s." % (FINAL_WINDOW, ". Choosing settings by test accuracy "
                   "follows the homework; in real work a validation split should make that choice (see pynet.fit)"
                   if results else "")))
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
            rows.append([r["label"], loss, pct(r["train_accuracy"]), pct(r["test_accuracy"]), "%.2f" % secs])
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


def render_markdown(blocks):
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


def render_html(blocks, out_dir):
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


def render_pdf(blocks, drawers, f):
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


def atomic_write(path, data):
    """Write str or bytes to path atomically and durably (pynet.datasets' atomic_file: a unique
    temporary name in the same folder, fsync, rename; usual permissions; removed on error)."""
    with atomic_file(path, durable=True) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def write_json(path, obj):
    atomic_write(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")
