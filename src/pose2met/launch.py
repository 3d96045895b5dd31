"""Entry point of the ``pose2met`` console script.

Loading torch and Lightning takes about 2 s; a Ctrl-C then (or one that escapes a command) ends with
one line and exit code 130 instead of Python's traceback. Nothing is written at that point, and
every file a command writes is replaced atomically.
"""

from __future__ import annotations

import os
import sys

EXIT_SIGINT = 130  # 128 + SIGINT, as a shell reports it


def run() -> None:
    """Import the command line lazily and run it; exit with its code."""
    try:
        from pose2met.cli import main

        code = main()
    except KeyboardInterrupt:
        if os.environ.get("POSE2MET_TRACEBACK"):
            raise
        print("\nerror: interrupted (Ctrl-C)", file=sys.stderr)
        code = EXIT_SIGINT
    sys.exit(code)
