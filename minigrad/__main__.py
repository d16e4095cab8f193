"""``python -m minigrad``: the convergence lab's command line (see :mod:`minigrad.cli`)."""

from minigrad.cli import run

if __name__ == "__main__":
    run()
