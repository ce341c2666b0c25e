"""``python -m pynet``: the command line (train, eval, predict); see pynet.cli."""
import sys

from .cli import main

sys.exit(main())
