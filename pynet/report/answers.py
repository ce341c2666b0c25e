"""The answers in the report, computed from the numbers: the one rule for comparing test accuracies
(binomial standard errors, stated once in the report by ``rule``) and ``answer``, a short answer to
each experiment's question that is true of its runs."""
import math

from ..datasets import TITLES
from ..experiments import best_run

def pct(x):
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


# The rule on plain numbers (the experiments beyond the homework, pynet.report.extras, use these too).

def standard_error(p, n):
    """The binomial standard error of an accuracy p measured on n examples."""
    return math.sqrt(max(p * (1.0 - p), 0.0) / n)


def margin(a, b, n):
    """The tie threshold for test accuracies a and b on n images: TIE_SE standard errors at the higher."""
    return TIE_SE * standard_error(max(a, b), n)


def compare(a, b, n):
    """+1 if a beats b by at least the margin, -1 if b beats a, 0 for a tie."""
    d = a - b
    return 0 if abs(d) < margin(a, b, n) else (1 if d > 0 else -1)


def at_chance(p, k, n):
    """A test accuracy p on n images within TIE_SE standard errors of 1/k: nothing measurable learnt."""
    return abs(p - 1.0 / k) < TIE_SE * standard_error(1.0 / k, n)


def overfits(train_acc, n_train, test_acc, n_test):
    """+1 if training accuracy is above test accuracy by more than TIE_SE standard errors of the gap,
    -1 if below by as much, 0 within."""
    se = math.sqrt(standard_error(train_acc, n_train) ** 2 + standard_error(test_acc, n_test) ** 2)
    gap = train_acc - test_acc
    return 1 if gap > TIE_SE * se else -1 if gap < -TIE_SE * se else 0


# ... and on the homework's results (a run dict and its experiment's result dict).

_se = standard_error


def _margin(a, b, result):
    return margin(a, b, _n_test(result))


def _tied(a, b, result):
    return compare(a, b, _n_test(result)) == 0


def _at_chance(run, result):
    return at_chance(run["test_accuracy"], _classes(result), _n_test(result))


def _overfit(run, result):
    return overfits(run["train_accuracy"], _n_train(result), run["test_accuracy"], _n_test(result))


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
                100 * _se(0.91, n), n, pct(1.0 / k),
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
            pct(r["train_accuracy"]), pct(r["test_accuracy"]), _fit_words(r, result)))
        parts.append("Training accuracy says how well the model fits the examples it learnt from; test accuracy "
                     "estimates how it does on examples it has never seen, which is what we care about. Their gap "
                     "measures overfitting.")
        if _overfit(r, result) > 0:
            parts.append("Here the model fits peculiarities of the training set that do not carry over to new "
                         "examples.")
        else:
            bigger = [(i, o) for i, o in (results or {}).items()
                      if o["dataset"] == result["dataset"] and o["model"] != "softmax" and o["runs"]]
            better = [(i, best_run(o)) for i, o in bigger]
            better = [(i, b) for i, b in better if b["test_accuracy"] - r["test_accuracy"]
                      >= _margin(b["test_accuracy"], r["test_accuracy"], result)]
            if better:
                i, b = max(better, key=lambda x: x[1]["test_accuracy"])
                parts.append("The model does not overfit; it underfits: it is linear in the pixels, and a network "
                             "with hidden layers reaches %s on the same test set (%s)." % (pct(b["test_accuracy"]), i))
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
            _fmt_value(sweep, best["value"]), pct(ba), pct(best["train_accuracy"]))
        ties = [r for r in ranked[1:] if _tied(ba, r["test_accuracy"], result)]
        if len(ranked) > 2 and len(ties) == len(ranked) - 1:
            line = ("All %d runs that learnt tie: their test accuracies, %s to %s, are within two standard errors "
                    "(%.2f points) of the highest, %s (training %s)" % (
                        len(ranked), pct(ranked[-1]["test_accuracy"]), pct(ba), 100 * _margin(ba, ba, result),
                        _fmt_value(sweep, best["value"]), pct(best["train_accuracy"])))
        elif ties:
            line += "; tied with it (within two standard errors, %.2f points): %s" % (
                100 * _margin(ba, ba, result),
                ", ".join("%s %s" % (_fmt_value(sweep, r["value"]), pct(r["test_accuracy"])) for r in ties))
        elif len(ranked) > 1:
            second = ranked[1]
            line += ", %.2f points ahead of the next, %s (%s), more than two standard errors (%.2f points)" % (
                100 * (ba - second["test_accuracy"]), _fmt_value(sweep, second["value"]),
                pct(second["test_accuracy"]), 100 * _margin(ba, second["test_accuracy"], result))
        parts.append(line + ".")
        worst = ranked[-1]
        if len(ranked) > 2 and worst is not best and worst not in ties:
            near = worst["test_accuracy"] < (ba + 1.0 / k) / 2   # closer to chance than to the best
            parts.append("The worst run that learnt, %s, reached %s%s." % (
                _fmt_value(sweep, worst["value"]), pct(worst["test_accuracy"]),
                " (%.2f points above chance, %s, more than two standard errors)" % (
                    100 * (worst["test_accuracy"] - 1.0 / k), pct(1.0 / k)) if near else ""))
    for r in stuck:
        parts.append("%s did not learn: its test accuracy, %s, is within two standard errors of chance (%s), and its "
                     "loss ended at %s. It did not diverge (the loss stayed finite)." % (
                         _fmt_value(sweep, r["value"]).capitalize(), pct(r["test_accuracy"]), pct(1.0 / k),
                         _loss_words(r["final_loss"], k)))
    for r in diverged:
        parts.append("%s diverged: the loss became %s at iteration %d, the weights blew up (its accuracy, %s, is "
                     "meaningless)." % (_fmt_value(sweep, r["value"]).capitalize(), r["diverged_loss"],
                                        r["diverged_at"], pct(r["test_accuracy"])))
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
                        pct(r["test_accuracy"]) + (" (tied with the best)" if r in ties else ""))
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
                             verdict, best["setting"]["decay"], pct(best["test_accuracy"]),
                             pct(base["test_accuracy"]), base_id, _compare(best["test_accuracy"],
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
                         "them away." % (strongest["setting"]["decay"], pct(strongest["train_accuracy"]),
                                         pct(best["train_accuracy"]), pct(strongest["test_accuracy"])))
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
                    pct(linear["test_accuracy"]), pct(soft["test_accuracy"]), s_id, c))
                if "a tie" not in c:
                    rate_id, rate_best = None, None
                    for i, o in (results or {}).items():
                        if o["model"] == "softmax" and o["sweep"] == "rate" and o["dataset"] == result["dataset"]:
                            rate_id = i
                            rate_best = best_run(o)
                    why = ("The difference is training, not capacity: the factored weights take different gradient "
                           "steps from the same rate")
                    if (rate_best is not None and rate_best["test_accuracy"] - soft["test_accuracy"]
                            >= _margin(rate_best["test_accuracy"], soft["test_accuracy"], result)):
                        why += (", and softmax regression is not at its best here: at rate %g it reaches %s (%s)" % (
                            rate_best["setting"]["rate"], pct(rate_best["test_accuracy"]), rate_id))
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
        mnist = [(i, best_run(o)) for i, o in (results or {}).items()
                 if o["model"] == result["model"] and o["dataset"] != result["dataset"] and o["runs"]]
        line = "Chance is %s, and the best run reaches %s" % (pct(1.0 / k), pct(best["test_accuracy"]))
        if mnist:
            i, m = mnist[0]
            if m["test_accuracy"] - best["test_accuracy"] >= _margin(m["test_accuracy"], best["test_accuracy"], result):
                line = ("CIFAR-10 is far harder for this fully connected net that sees raw pixels: " + line[0].lower()
                        + line[1:] + ", against %s for the same network on %s (%s)" % (
                            pct(m["test_accuracy"]), TITLES.get(results[i]["dataset"], results[i]["dataset"]), i))
        parts.append(line + ".")
    return " ".join(parts)


