"""`python3 scripts/rig.d/host/riglib ARGS` (how scripts/rig runs it), or `python3 -m riglib
ARGS` in scripts/rig.d/host: the subcommands of riglib/cli.py."""
import os
import sys

if not __package__:
    # Run as a directory: Python put riglib/ itself first on the path; the package's parent
    # goes there instead, so that riglib imports as the package it is.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from riglib.cli import main  # noqa: E402

sys.exit(main())
