"""How a run on the student's code is judged against pynet's C loop, in one place: the tolerance
and the sentences the report, tryhw4.py and the homework folder's tryhw4.py print for it (per run,
and the closing line). A leaf module, so the report can use it without importing the training loop.
loop.py's docstring says what "within rounding" means."""

TOLERANCE = 1e-9                   # relative, on every loss and on both accuracies


def verdict(impl):
    """A run's "implementation" entry as a phrase: whether it matches the C reference, agrees with
    it only within rounding (see loop.py), or does not, and why."""
    head = "matches the C reference within %g: " % TOLERANCE
    if impl["matches"]:
        return head + "yes (max rel. diff %.1g)" % impl["max_rel_diff"]
    steps, ulp = impl.get("steps"), impl.get("c_one_ulp")
    if impl.get("within_rounding"):
        return head + ("no, but within rounding: %s; every step agrees with pynet's C step from the same weights "
                       "(max rel. diff %.1g), and pynet's own C loop departs as far when its initial weights move "
                       "by one ulp (max rel. diff %.2g, past %g from iteration %s), so this run amplifies rounding"
                       % (impl["reason"], steps["max_rel_diff"], ulp["max_rel_diff"], TOLERANCE,
                          ulp["first_iteration"]))
    text = head + "NO: %s" % impl["reason"]
    if steps and steps.get("first"):
        f = steps["first"]
        text += "; the first step that differs from pynet's C step from the same weights: iteration %d, %s " \
                "(rel. diff %.2g)" % (f["iteration"], f["what"], f["rel_diff"])
    elif steps:
        text += "; every step agrees with pynet's C step from the same weights (max rel. diff %.1g)" % \
                steps["max_rel_diff"]
    return text


def describe(run):
    """One line for the report: the implementation, its check result, and whether the run matches
    the C reference; None for a run of pynet's own C loop."""
    impl = run.get("implementation")
    if not impl:
        return None
    check = impl.get("check")
    checked = "check: %d/%d passed" % (check["passed"], check["total"]) if check else "check: not run"
    return "%s: implementation %s (%s); %s." % (run["label"], impl["file"], checked, verdict(impl))


def summary(name, results):
    """The closing line over an experiments' results ({id: {"runs": [...]}}): how many runs match the
    C reference, agree with it only within rounding, or not (those named "2.2.2 rate=10")."""
    runs = [("%s %s" % (exp_id, r["label"]), r["implementation"]) for exp_id, result in results.items()
            for r in result["runs"]]
    rounding = [label for label, impl in runs if not impl["matches"] and impl.get("within_rounding")]
    bad = [label for label, impl in runs if not impl["matches"] and not impl.get("within_rounding")]
    text = "%s: %d of %d runs match the C reference within %g" % (
        name, len(runs) - len(rounding) - len(bad), len(runs), TOLERANCE)
    if rounding:
        text += "; %d agree%s only within rounding (every step agrees; the run amplifies rounding): %s" % (
            len(rounding), "s" if len(rounding) == 1 else "", ", ".join(rounding))
    if bad:
        text += "; not: " + ", ".join(bad)
    return text
