"""Command line for pynet.datasets: ``python -m pynet.datasets COMMAND ...``.

  download NAME       fetch mnist or cifar10 from its canonical source, verifying checksums
  export-png NAME DIR write the homework's PNG tree, list files and labels file
  info                show where each dataset is found and what the image cache holds
  clear-cache         delete the cached decoded image lists
  make-sample         regenerate the bundled MNIST sample from the full set

Errors are reported in one line on stderr, with exit status 1.
"""
import argparse
import sys
from pathlib import Path

from . import (NAMES, SAMPLE_DIR, cache_dir, clear_cache, download, export_png, find_root, locate)
from . import _mnist, _sample


def _download(args):
    root, report = download(args.name, args.root, mirror=args.mirror, progress=False if args.quiet else None)
    for file, what in report:
        print("%-28s %s" % (file, what))
    print("%s is ready in %s" % (args.name, root))


def _export(args):
    splits = ["train", "test"] if args.split == "both" else [args.split]
    written = export_png(args.name, args.dir, root=args.root, splits=splits, limit=args.limit,
                         progress=False if args.quiet else None)
    for path in written:
        print("wrote %s" % path)


def _info(args):
    for name in NAMES:
        for split in ("train", "test"):
            try:
                folder, is_sample = locate(name, split)
                where = "%s%s" % (folder, " (the bundled sample)" if is_sample else "")
            except FileNotFoundError:
                where = "not found (python -m pynet.datasets download %s)" % name
            print("%-8s %-5s %s" % (name, split, where))
    images = cache_dir() / "images"
    entries = [p for p in images.glob("*.bin")] if images.is_dir() else []
    print("image cache: %s (%d list%s, %.1f MB)" % (images, len(entries), "" if len(entries) == 1 else "s",
                                                   sum(p.stat().st_size for p in entries) / 1e6))


def _clear(args):
    print("freed %.1f MB in %s" % (clear_cache() / 1e6, cache_dir() / "images"))


def _make_sample(args):
    folder = find_root("mnist", "train", args.root, _mnist.missing, _mnist.TITLE)
    if folder is None:
        raise FileNotFoundError("the full MNIST is needed to make the sample; pass --root or run: "
                                "python -m pynet.datasets download mnist")
    for path in _sample.make_sample(folder, args.out):
        print("wrote %s" % path)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pynet.datasets",
                                     description="Get, inspect and convert pynet's datasets (MNIST, CIFAR-10).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("download", help="fetch a dataset's standard files, verifying checksums")
    p.add_argument("name", choices=NAMES)
    p.add_argument("--root", type=Path, help="folder to put the files in (default: $PYNET_DATA/NAME, "
                                              "else ~/.cache/pynet/NAME)")
    p.add_argument("--mirror", metavar="URL", help="base URL to fetch the files from instead of the canonical "
                                                    "source (also $PYNET_MNIST_MIRROR, $PYNET_CIFAR10_MIRROR)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_download)

    p = commands.add_parser("export-png", help="write the homework's PNG tree, lists and labels file")
    p.add_argument("name", choices=NAMES)
    p.add_argument("dir", type=Path, help="folder to write into (created if missing; nothing is overwritten)")
    p.add_argument("--root", type=Path, help="folder holding the standard files (default: as load() finds them)")
    p.add_argument("--split", choices=["train", "test", "both"], default="both")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N images of each split")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_export)

    p = commands.add_parser("info", help="show where each dataset is found and the image cache's size")
    p.set_defaults(run=_info)

    p = commands.add_parser("clear-cache", help="delete the cached decoded image lists")
    p.set_defaults(run=_clear)

    p = commands.add_parser("make-sample", help="regenerate the bundled MNIST sample from the full set")
    p.add_argument("--root", type=Path, help="folder holding the full MNIST (default: as load() finds it)")
    p.add_argument("--out", type=Path, default=SAMPLE_DIR, help="output folder (default: %(default)s)")
    p.set_defaults(run=_make_sample)

    args = parser.parse_args(argv)
    try:
        args.run(args)
    except KeyboardInterrupt:
        parser.exit(130, "interrupted\n")
    except (OSError, ValueError) as e:   # our errors all say what is wrong and what to do; no traceback
        parser.exit(1, "%s: error: %s\n" % (parser.prog, e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
