"""pynet.report — turns experiment results into the homework's write-up: ``report.md``, the same as
a self-contained ``report.html``, and ``report.pdf``, with for each experiment a table, the loss
curves of its runs, accuracy against the swept value, and an answer to the homework's question
computed from the numbers. Plots need matplotlib (``pip install matplotlib``); without it the
report keeps its tables and answers and says how to get the plots.

The report is built once as a list of blocks (headings, paragraphs, tables, figures) and rendered
three ways, so the three files always say the same thing.

Modules: ``answers`` (the comparison rule and the computed answers), ``figures`` (the plots),
``document`` (the blocks, their three renderings and the atomic writes); ``extras`` and
``extras_figures``: the same for experiments 4.1-4.5 (pynet.extras).
"""
import os

from .._files import atomic_file
from .answers import TIE_SE, answer, rule
from .document import STALE_AFTER, atomic_write, build_blocks, render_html, render_markdown, render_pdf, clean_stale_parts, write_json
from .figures import FIG_SIZE, PLOT_HINT, make_figures, have_matplotlib  # noqa: F401  FIG_SIZE: as before
from ..homework.verdict import describe as implementation_line  # noqa: F401  as before the split

__all__ = ["answer", "rule", "TIE_SE", "write_report", "write_json", "clean_stale_parts", "STALE_AFTER",
           "PLOT_HINT", "have_matplotlib"]


def write_report(out_dir, results, timings, meta, weights=None, extras=None, extras_timings=None):
    """Write report.md, report.html and (with matplotlib) report.pdf and the figures into out_dir,
    every file atomically (several reports may write the same folder at once; a killed one leaves
    the previous files whole). ``weights`` is (w, class names, side) for the softmax weights
    picture, or None. ``extras`` are the results of experiments 4.x (pynet.extras) and
    ``extras_timings`` their seconds: their sections (pynet.report.extras) follow the homework's.
    Returns the list of files written."""
    plots = have_matplotlib()
    figures, drawers = make_figures(results, out_dir, weights) if plots else ({}, {})
    blocks = build_blocks(results, timings, meta, figures, plots, extras)
    if extras:
        from . import extras as extra_answers, extras_figures
        extra_figures, extra_drawers = (extras_figures.write_figures(extras, extras_timings, out_dir) if plots
                                        else ({}, {}))
        drawers.update(extra_drawers)
        figures.update({name: name for names in extra_figures.values() for name in names})
        blocks += extra_answers.blocks(extras, extras_timings, extra_figures)
    written = []
    atomic_write(os.path.join(out_dir, "report.md"), render_markdown(blocks))
    written.append("report.md")
    atomic_write(os.path.join(out_dir, "report.html"), render_html(blocks, out_dir))
    written.append("report.html")
    if plots:
        with atomic_file(os.path.join(out_dir, "report.pdf"), durable=True) as f:
            render_pdf(blocks, drawers, f)
        written.append("report.pdf")
        written.extend(sorted(figures.values()))
    clean_stale_parts(out_dir)
    return written
