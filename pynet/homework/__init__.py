"""pynet.homework — the student's own homework: ``homework init DIR`` writes a skeleton folder,
``homework check [FILE]`` checks the five functions in it (see docs/HOMEWORK.md)."""
import argparse


def register(subparsers):
    """Add the ``homework`` command (init, check) to the CLI's subparsers."""
    hw = subparsers.add_parser("homework", help="write a homework folder, or check your classifier.py",
                               description="The homework on pynet: init writes the folder, check checks your "
                                           "five functions.")
    sub = hw.add_subparsers(dest="homework_command", metavar="{init,check}")
    sub.required = True
    i = sub.add_parser("init", help="write classifier.py (to fill in), tryhw4.py and README.md into DIR")
    i.add_argument("dir", metavar="DIR")
    i.add_argument("--force", action="store_true", help="overwrite existing files")
    i.set_defaults(func=_init)
    c = sub.add_parser("check", help="check the five functions in FILE (exit status 0 iff all pass)")
    c.add_argument("file", nargs="?", default="classifier.py", metavar="FILE",
                   help="default: ./classifier.py")
    c.add_argument("--json", action="store_true", help="print the results as JSON")
    c.add_argument("--gradescope", metavar="PATH", help="also write Gradescope's results.json to PATH")
    c.set_defaults(func=_check)
    return hw


def _init(args):
    from .init import init
    try:
        paths = init(args.dir, args.force)
    except (FileExistsError, OSError) as e:
        print(e if isinstance(e, FileExistsError) else "homework init: %s" % e, file=__import__("sys").stderr)
        return 1
    for p in paths:
        print("wrote %s" % p)
    print("next: write the five functions in classifier.py, then run `python -m pynet homework check` there")
    return 0


def _check(args):
    from .runner import main
    return main(args.file, as_json=args.json, gradescope_path=args.gradescope)


def run(args):
    """Run the parsed ``homework`` command; returns the exit status."""
    return args.func(args)
