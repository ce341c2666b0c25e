"""pynet.report.extras — the answers to experiments 4.1–4.5 (pynet.extras), computed from their
numbers, and their sections of the report.

Each answer says whether the lecture's claim held here, held in part, or did not hold, and by how
much. Accuracies are compared by the report's one rule (pynet.report.rule, TIE_SE): a test accuracy
p on n images has binomial standard error sqrt(p(1-p)/n); two closer than TIE_SE of them (at the
higher) are tied; a run within TIE_SE standard errors of 1/k is at chance; training above test by
more than TIE_SE standard errors of the gap is overfitting. Gradient norms and dead fractions are
reported as measured, compared only by which is larger, never against a threshold of our own.
"""
import math

from .answers import TIE_SE, at_chance, compare, margin, overfits, pct, standard_error  # noqa: F401

HELD, PARTLY, NOT_HELD = "held", "held in part", "did not hold"


def _ab(a, b, n, a_name, b_name):
    """'A is d points more accurate than B, more than two standard errors (m points)' or a tie."""
    m, c = margin(a, b, n), compare(a, b, n)
    if c == 0:
        return "%s %s against %s %s, a difference of %.2f points, within two standard errors (%.2f points): a tie" % (
            a_name, pct(a), b_name, pct(b), 100 * abs(a - b), 100 * m)
    hi, lo = (a_name, b_name) if c > 0 else (b_name, a_name)
    return "%s %s against %s %s: %s is %.2f points more accurate, more than two standard errors (%.2f points)" % (
        a_name, pct(a), b_name, pct(b), hi, 100 * abs(a - b), 100 * m)


def _n(result):
    return int(result["test_examples"]), int(result["classes"])


def trained(run, result):
    """Neither diverged nor at chance."""
    n, k = _n(result)
    return not run["diverged"] and not at_chance(run["test_accuracy"], k, n)


def _fate(run, result):
    """'diverged at step s' / 'at chance (p)' / 'p' for a run."""
    n, k = _n(result)
    if run["diverged"]:
        return "diverged at step %d" % run["diverged_at"]
    if at_chance(run["test_accuracy"], k, n):
        return "%s, at chance (within two standard errors of %s)" % (pct(run["test_accuracy"]), pct(1.0 / k))
    return pct(run["test_accuracy"])


def _claim(result, verdict, details):
    return "The lecture's claim, that %s, %s here. %s" % (result["claim"], verdict, details)


def _verdict(parts):
    return HELD if all(parts) else NOT_HELD if not any(parts) else PARTLY


# ---- the five answers -----------------------------------------------------------------------------

def one_vs_rest(result, seconds):
    n, k = _n(result)
    soft, ovr = result["runs"]
    worse = compare(soft["test_accuracy"], ovr["test_accuracy"], n) > 0
    s_sec, o_sec = seconds if seconds else (None, None)
    slower = s_sec is not None and o_sec > s_sec
    text = ["Each one-vs-rest model is logistic regression for one digit against the rest (written as a two-class "
            "softmax, the same model), trained for %d iterations like the softmax model; the ten predict the digit "
            "whose model is the most confident." % result["settings"]["iters"]]
    c = compare(ovr["test_accuracy"], soft["test_accuracy"], n)
    text.append("Accuracy: %s%s." % (_ab(ovr["test_accuracy"], soft["test_accuracy"], n, "one-vs-rest", "softmax"),
                                     "" if worse else ", so one-vs-rest was not measurably worse" if c == 0 else
                                     ", so one-vs-rest was better, not worse"))
    for run in (soft, ovr):
        if not trained(run, result):
            text.append("The %s run %s." % (run["label"], _fate(run, result)))
    if s_sec is None:
        text.append("Training time: not measured (no timings given), so whether one-vs-rest is slower is not known.")
    else:
        text.append("Training time: the ten models took %.2f s against %.2f s for the softmax model, %.1f times as "
                    "long%s." % (o_sec, s_sec, o_sec / s_sec if s_sec > 0 else math.inf,
                                 "" if slower else ": one-vs-rest was not slower"))
    v = _verdict([worse, slower])
    return v, _claim(result, v, " ".join(text))


def _series(runs, act):
    return sorted([r for r in runs if r["activation"] == act], key=lambda r: r["depth"])


def _ratio(r):
    return "undefined" if r["start_ratio"] is None else "%.3g" % r["start_ratio"]


def vanishing(result, seconds=None):
    n, k = _n(result)
    logi, relu = _series(result["runs"], "LOGISTIC"), _series(result["runs"], "RELU")
    text = ["At the start of training (the mean-loss gradient over %d training rows, before any update) the first "
            "layer's gradient norm divided by the last layer's is, for depth %s: LOGISTIC %s; RELU %s." % (
                min(1000, int(result["train_examples"])), ", ".join(str(r["depth"]) for r in logi),
                ", ".join(_ratio(r) for r in logi), ", ".join(_ratio(r) for r in relu))]
    ok = all(r["start_ratio"] is not None for r in logi + relu)
    zero = [r for r in logi + relu if r["start_ratio"] == 0]   # the first layer's gradient vanished completely
    vanish = False
    if ok and zero:   # no factor to give: the deepest nets decide
        vanish = logi[-1]["start_ratio"] == 0 and relu[-1]["start_ratio"] > 0
        text.append("The first layer's gradient was exactly zero at the start for %s: %s." % (
            ", ".join(r["label"] for r in zero),
            "the logistic gradient vanished towards the input, the ReLU one did not" if vanish else
            "the gradients vanished in a way that does not separate LOGISTIC from RELU here"))
    elif ok:
        falls = lambda s: s[0]["start_ratio"] / s[-1]["start_ratio"]
        fl, fr = falls(logi), falls(relu)
        monotone = all(a["start_ratio"] > b["start_ratio"] for a, b in zip(logi, logi[1:]))
        vanish = monotone and fl > fr
        word = lambda f: "falls by a factor of %.3g" % f if f > 1 else "rises by a factor of %.3g" % (1 / f)
        text.append("From depth %d to %d the LOGISTIC ratio %s%s, the RELU ratio %s: %s." % (
            logi[0]["depth"], logi[-1]["depth"], word(fl), "" if monotone else " (not at every added depth)", word(fr),
            "the logistic gradient vanishes towards the input, the ReLU one does not as much" if vanish else
            "the logistic gradient does not vanish faster than the ReLU one here"))
    else:
        text.append("A last layer's gradient was zero, so a ratio is undefined and the gradients cannot be compared.")
    deep_l, deep_r = logi[-1], relu[-1]
    better = compare(deep_r["test_accuracy"], deep_l["test_accuracy"], n) > 0 and trained(deep_r, result)
    text.append("After %d iterations at depth %d: %s." % (
        result["settings"]["iters"], deep_l["depth"],
        _ab(deep_r["test_accuracy"], deep_l["test_accuracy"], n, "RELU", "LOGISTIC")))
    for r in logi + relu:
        if not trained(r, result):
            text.append("%s %s: it did not learn." % (r["label"], _fate(r, result)))
    if compare(relu[0]["test_accuracy"], deep_r["test_accuracy"], n) > 0:
        kept = ok and relu[-1]["start_ratio"] >= relu[0]["start_ratio"] > 0
        text.append("RELU too trains worse deeper: %s at depth %d against %s at depth %d%s." % (
            pct(deep_r["test_accuracy"]), deep_r["depth"], pct(relu[0]["test_accuracy"]), relu[0]["depth"],
            ", although its first layer's gradient did not shrink relative to the last's" if kept else ""))
    v = _verdict([vanish, better])
    return v, _claim(result, v, " ".join(text))


def dying(result, seconds=None):
    n, k = _n(result)
    relu = sorted([r for r in result["runs"] if r["activation"] == "RELU"], key=lambda r: r["rate"])
    lrelu = {r["rate"]: r for r in result["runs"] if r["activation"] == "LRELU"}
    known = [r for r in relu if r["final_dead"] is not None]
    text, dies = [], False
    if len(known) >= 2:
        lo, hi = known[0], known[-1]
        dies = hi["final_dead"] > lo["final_dead"]
        text.append("RELU's dead units (output 0 for every row of the batch, averaged over the hidden layers at the "
                    "last recorded step) %s from %s at rate %g to %s at rate %g%s." % (
                        "rise" if dies else "do not rise" if hi["final_dead"] == lo["final_dead"] else "fall",
                        pct(lo["final_dead"]), lo["rate"], pct(hi["final_dead"]), hi["rate"],
                        "" if not hi["diverged"] else " (recorded before it diverged)"))
        text.append("On %d training rows at the end, the units that are 0 for every row: %s." % (
            min(1000, int(result["train_examples"])),
            ", ".join("%s at rate %g" % (pct(r["final_silent"]), r["rate"]) for r in relu)))
    else:
        text.append("Too few RELU runs recorded a dead fraction to compare rates.")
    text.append("An LRELU unit cannot die: its output is 0.01·z rather than 0 and it passes 0.01 of the gradient.")
    costs = []
    for r in relu:
        l = lrelu.get(r["rate"])
        if l is None:
            continue
        if not trained(l, result) or not trained(r, result):
            costs.append("rate %g: RELU %s, LRELU %s" % (r["rate"], _fate(r, result), _fate(l, result)))
        else:
            c = compare(l["test_accuracy"], r["test_accuracy"], n)
            costs.append("rate %g: RELU %s, LRELU %s (%s)" % (
                r["rate"], pct(r["test_accuracy"]), pct(l["test_accuracy"]),
                "a tie" if c == 0 else "LRELU +%.2f points" % (100 * (l["test_accuracy"] - r["test_accuracy"]))
                if c > 0 else "RELU +%.2f points" % (100 * (r["test_accuracy"] - l["test_accuracy"]))))
    text.append("Test accuracy, " + "; ".join(costs) + ".")
    rescued = False
    if known:
        worst = max(known, key=lambda r: (r["final_dead"], r["rate"]))
        l = lrelu.get(worst["rate"])
        if l is not None:
            rescued = trained(l, result) and compare(l["test_accuracy"], worst["test_accuracy"], n) > 0
            text.append("Where RELU lost the most units (rate %g, %s dead), LRELU %s." % (
                worst["rate"], pct(worst["final_dead"]),
                "kept training and scored %.2f points higher, more than two standard errors" % (
                    100 * (l["test_accuracy"] - worst["test_accuracy"])) if rescued else
                "did not do better: it %s" % _fate(l, result) if not trained(l, result) else
                "did not score measurably higher (%s)" % _ab(l["test_accuracy"], worst["test_accuracy"], n,
                                                            "LRELU", "RELU")))
    v = _verdict([dies, rescued])
    return v, _claim(result, v, " ".join(text))


def exploding(result, seconds=None):
    n, k = _n(result)
    runs = {r["variant"]: r for r in result["runs"]}
    plain = runs["plain"]
    s = result["settings"]
    text = ["A RELU net of %d layers (width %d) at rate %g, momentum %g, for %d epoch%s." % (
        s["depth"], s["width"], s["rate"], s["momentum"], s["epochs"], "" if s["epochs"] == 1 else "s")]
    grew = (plain["nonfinite_grad"] or (plain["first_grad_norm"] is not None
                                        and plain["max_grad_norm"] > plain["first_grad_norm"]))
    if plain["first_grad_norm"] is not None:
        f, top = plain["first_grad_norm"], plain["max_grad_norm"]
        text.append("Plain, the gradient norm (over all layers) went from %.3g at the first record to a largest "
                    "%s%.3g%s%s." % (
            f, "finite " if plain["nonfinite_grad"] else "", top, ", %.3g times as large" % (top / f) if f > 0 else "",
            "; it then became infinite or NaN" if plain["nonfinite_grad"] else ""))
        if plain["grad_norm"] and plain["grad_norm"][-1] is not None and plain["grad_norm"][-1] < f:
            text.append("By the last record it was %.3g, below where it started%s." % (
                plain["grad_norm"][-1], "" if plain["final_dead"] is None else
                ", with %s of the hidden units dead" % pct(plain["final_dead"])))
    failed = not trained(plain, result)
    text.append("The plain net %s%s." % ("did not train: " if failed else "trained: ", _fate(plain, result)))
    fixes = []
    for name in ("clip", "layer norm"):
        r = runs.get(name)
        if r is None:
            continue
        fixed = trained(r, result) and (failed or compare(r["test_accuracy"], plain["test_accuracy"], n) > 0)
        fixes.append(fixed)
        norm_words = ("" if r["max_grad_norm"] is None else
                      "; its largest gradient norm was %.3g%s" % (
                          r["max_grad_norm"], " (with clipping at %g)" % s["clip"] if name == "clip" else ""))
        text.append("With %s: %s%s, %s." % (
            "clipping at global norm %g" % s["clip"] if name == "clip" else "layer normalisation of the hidden layers",
            _fate(r, result), norm_words,
            "so it fixed the plain net's failure" if fixed and failed else
            "better than plain (%s)" % _ab(r["test_accuracy"], plain["test_accuracy"], n, name, "plain") if fixed else
            "so it did not make the net train" if failed and not trained(r, result) else
            "not measurably better than plain"))
    if not failed and grew:
        text.append("The plain net's gradient grew but it trained anyway, so the growth did not stop training and "
                    "there was no failure for the fixes to cure.")
    elif not failed:
        text.append("At this rate the plain net's gradient did not grow and it trained, so there was no explosion "
                    "for the fixes to cure.")
    v = NOT_HELD if not (failed and grew) else (HELD if fixes and all(fixes) else PARTLY if any(fixes) else NOT_HELD)
    return v, _claim(result, v, " ".join(text))


def dropout(result, seconds=None):
    n, k = _n(result)
    n_train = int(result["train_examples"])
    plain, drop = result["runs"]
    gap = lambda r: r["train_accuracy"] - r["test_accuracy"]
    o_plain = overfits(plain["train_accuracy"], n_train, plain["test_accuracy"], n)
    o_drop = overfits(drop["train_accuracy"], n_train, drop["test_accuracy"], n)
    words = lambda o: ("more than two standard errors of the gap: it overfits" if o > 0 else
                       "within two standard errors of the gap: no measurable overfitting" if o == 0 else
                       "test above training by more than two standard errors")
    text = ["On %d training examples, after %d epochs: without dropout training accuracy is %s and test %s, a gap of "
            "%.2f points, %s; with dropout %g, %s and %s, a gap of %.2f points, %s." % (
                n_train, result["settings"]["epochs"], pct(plain["train_accuracy"]), pct(plain["test_accuracy"]),
                100 * gap(plain), words(o_plain), drop["dropout"], pct(drop["train_accuracy"]),
                pct(drop["test_accuracy"]), 100 * gap(drop), words(o_drop))]
    better = compare(drop["test_accuracy"], plain["test_accuracy"], n) > 0 and trained(drop, result)
    text.append("Test accuracy: %s." % _ab(drop["test_accuracy"], plain["test_accuracy"], n, "dropout", "no dropout"))
    if gap(drop) < gap(plain):
        text.append("Dropout narrowed the gap by %.2f points%s." % (
            100 * (gap(plain) - gap(drop)), ", to within two standard errors: it no longer measurably overfits"
            if o_plain > 0 and o_drop == 0 else ""))
    else:
        text.append("Dropout did not narrow the gap.")
    if o_plain <= 0:
        text.append("Without dropout the net did not overfit, so dropout had no overfitting to fight.")
        v = NOT_HELD
    else:   # measured: a better test accuracy, or an overfitting gap closed to within the rule's errors
        v = HELD if better else PARTLY if o_drop <= 0 else NOT_HELD
    return v, _claim(result, v, " ".join(text))


ANSWERS = {"4.1": one_vs_rest, "4.2": vanishing, "4.3": dying, "4.4": exploding, "4.5": dropout}


def answer(result, seconds=None):
    """(verdict, text): HELD, PARTLY or NOT_HELD, and the answer, for an extras result (4.1 needs
    the seconds of its two runs)."""
    return ANSWERS[result["id"]](result, seconds)


# ---- the report's sections ------------------------------------------------------------------------

def _loss(r):
    if r["diverged"]:
        return "diverged at step %d" % r["diverged_at"]
    return "-" if r["final_loss"] is None else "%.4f" % r["final_loss"]


def _g(x):
    return "-" if x is None else "%.3g" % x


def _opt_pct(x):
    return "-" if x is None else pct(x)


def table(result, seconds=None):
    """The rows of an extras result's table, header first."""
    runs, exp_id = result["runs"], result["id"]
    secs = list(seconds) if seconds else [None] * len(runs)
    sec = lambda s: "-" if s is None else "%.2f" % s
    if exp_id == "4.1":
        rows = [["model", "final loss", "training accuracy", "test accuracy", "training seconds"]]
        rows += [[r["label"], _loss(r) + (" (mean of the ten two-class losses)" if i else ""),
                  pct(r["train_accuracy"]), pct(r["test_accuracy"]), sec(s)]
                 for i, (r, s) in enumerate(zip(runs, secs))]
    elif exp_id == "4.2":
        rows = [["net", "first / last layer gradient at start", "final loss", "training accuracy", "test accuracy",
                 "seconds"]]
        rows += [[r["label"], _g(r["start_ratio"]), _loss(r), pct(r["train_accuracy"]), pct(r["test_accuracy"]),
                  sec(s)] for r, s in zip(runs, secs)]
    elif exp_id == "4.3":
        rows = [["net", "dead at the last record", "0 on every probe row at the end", "final loss",
                 "training accuracy", "test accuracy"]]
        rows += [[r["label"], _opt_pct(r["final_dead"]) if r["activation"] == "RELU" else "cannot die",
                  pct(r["final_silent"]), _loss(r), pct(r["train_accuracy"]), pct(r["test_accuracy"])] for r in runs]
    elif exp_id == "4.4":
        rows = [["variant", "first gradient norm", "largest", "last", "dead at the end", "final loss",
                 "training accuracy", "test accuracy"]]
        rows += [[r["label"], _g(r["first_grad_norm"]), _g(r["max_grad_norm"]),
                  _g(r["grad_norm"][-1] if r["grad_norm"] else None), _opt_pct(r["final_dead"]), _loss(r),
                  pct(r["train_accuracy"]), pct(r["test_accuracy"])] for r in runs]
    else:
        rows = [["run", "training accuracy", "test accuracy", "gap (points)", "best test accuracy (epoch)"]]
        for r in runs:
            best = max(range(len(r["test_curve"])), key=lambda i: r["test_curve"][i]) if r["test_curve"] else None
            rows.append([r["label"], pct(r["train_accuracy"]), pct(r["test_accuracy"]),
                         "%.2f" % (100 * (r["train_accuracy"] - r["test_accuracy"])),
                         "-" if best is None else "%s (%d)" % (pct(r["test_curve"][best]), best + 1)])
    return rows


def settings_line(result):
    s = result["settings"]
    keys = [k for k in ("iters", "epochs", "rate", "batch", "momentum", "width", "widths", "depth", "clip", "subset",
                        "dropout") if k in s]
    return "MNIST, %d training and %d test examples; %s." % (
        result["train_examples"], result["test_examples"], ", ".join("%s %s" % (k, s[k]) for k in keys))


def blocks(extras, timings=None, figures=None):
    """The report's blocks (as pynet.report builds them: ("h2", text), ("p", text), ("table", rows),
    ("img", file name)) for the extras results, each section with its question, settings, table,
    figures and answer."""
    timings, figures = timings or {}, figures or {}
    b = []
    for exp_id, result in extras.items():
        b.append(("h2", "%s %s" % (exp_id, result["title"])))
        b.append(("p", "Question: " + result["question"]))
        b.append(("p", "Settings: " + settings_line(result)))
        b.append(("table", table(result, timings.get(exp_id))))
        b.extend(("img", name) for name in figures.get(exp_id, []))
        b.append(("p", "Answer: " + answer(result, timings.get(exp_id))[1]))
    return b
