"""The command line's commands, one module each; what their arguments share is here."""

from __future__ import annotations

import argparse
import os


def interpreter_path(value: str) -> str:
    """The argparse type of every `--python`: a path (one with a `/`) made absolute against the
    directory the command runs in. The app's interpreter is often started in the app's
    directory, where a relative path would name another file, and `init` records it in the
    stack file; a bare name (`python3`) is left for PATH to find."""
    if not value:
        raise argparse.ArgumentTypeError("give the app's interpreter, e.g. .venv/bin/python")
    if os.sep not in value:
        return value
    # Lexical, as the shell reads `..`: resolve() would follow a venv's python link out of it.
    return os.path.abspath(value)  # noqa: PTH100
