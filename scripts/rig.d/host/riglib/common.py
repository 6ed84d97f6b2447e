"""Paths and file helpers that every part of the rig's host side uses."""
import os

# scripts/rig.d (this file is scripts/rig.d/host/riglib/common.py) and the repository.
RIG_D = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPO_ROOT = os.path.dirname(os.path.dirname(RIG_D))
MIB = 1 << 20


def read_text(path):
    with open(path) as f:
        return f.read()


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def read_lines(path):
    with open(path) as f:
        return f.readlines()
