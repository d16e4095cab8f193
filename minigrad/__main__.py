"""``python -m minigrad``: the convergence lab's command line (see :mod:`minigrad.cli`)."""

import sys

from minigrad.cli import main

if __name__ == "__main__":
    sys.exit(main())
