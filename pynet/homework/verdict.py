"""How a run on the student's code is judged against pynet's C loop, in one place: the tolerance
and the sentence the report and the homework folder's tryhw4.py print for it. A leaf module, so
the report can use it without importing the training loop."""

TOLERANCE = 1e-9                   # relative, on every loss and on both accuracies


def describe(run):
    """One line for the report: the implementation, its check result, and whether the run matches
    the C reference; None for a run of pynet's own C loop."""
    impl = run.get("implementation")
    if not impl:
        return None
    check = impl.get("check")
    checked = "check: %d/%d passed" % (check["passed"], check["total"]) if check else "check: not run"
    if impl["matches"]:
        verdict = "yes (max rel. diff %.1g)" % impl["max_rel_diff"]
    else:
        verdict = "NO: %s" % impl["reason"]
    return "%s: implementation %s (%s); matches the C reference within %g: %s." % (
        run["label"], impl["file"], checked, TOLERANCE, verdict)
