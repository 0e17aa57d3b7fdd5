"""The command line's commands, one module each; what their arguments share is here."""

from __future__ import annotations

import argparse
import os
import shutil


def interpreter_path(value: str) -> str:
    """The argparse type of every `--python`: an absolute path. The app's interpreter is often
    started in the app's directory, where a relative path would name another file, and `init`
    records it in the stack file: a path is taken from the directory the command runs in (`~`
    too, which a shell leaves alone in `--python=~/...`), a bare name (`python3`) from PATH,
    unless PATH has none and the name is here (a virtualenv's directory, `venv`): then it is
    that path, and the error about it says what to give."""
    if not value:
        raise argparse.ArgumentTypeError("give the app's interpreter, e.g. .venv/bin/python")
    # Not Path(value): it drops a leading `./`, turning a path into a bare name.
    expanded = os.path.expanduser(value)  # noqa: PTH111
    if os.sep not in expanded:
        found = shutil.which(expanded)
        if found is None and not os.path.lexists(expanded):
            raise argparse.ArgumentTypeError(f"no program {value} on PATH; give its path")
        expanded = found or expanded
    # Lexical, as the shell reads `..`: resolve() would follow a venv's python link out of it.
    return os.path.abspath(expanded)  # noqa: PTH100
