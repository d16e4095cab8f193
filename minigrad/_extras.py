"""What to type to install a missing optional package: :func:`pip_hint`.

minigrad is installed from its repository; the name ``minigrad`` on PyPI is
another project's, so a hint never says ``pip install 'minigrad[lab]'``. It
names the packages themselves, installed with the interpreter that is
running (a bare ``pip`` may belong to another Python).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys


def python() -> str:
    """``python`` if that names this interpreter on PATH (an active virtual environment), else its path."""
    found = shutil.which("python")
    if found and os.path.abspath(found) == os.path.abspath(sys.executable):
        return "python"
    return shlex.quote(sys.executable)


def pip_hint(*packages: str) -> str:
    """The command that installs ``packages`` into this interpreter: ``python -m pip install scikit-learn``."""
    return f"{python()} -m pip install {shlex.join(packages)}"
