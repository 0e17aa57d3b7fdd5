"""Runs a script in the app's interpreter as `python SCRIPT ARGS...` would, and records what it
read, for `app_runs` to cache its result by the content of those files:

    python app_run_recorder.py RECORD SCRIPT [ARGS...]

An audit hook (PEP 578) sees every file the run opens (modules are read that way too) and every
directory it lists (how imports find modules); at exit, RECORD gets them as JSON with the
source file of every module imported, the interpreter itself, and the `.pth` files the `site`
module read before the hook existed. The script's exit status and output are its own.

Standalone, like the scripts it runs: the standard library only, never pulumi_django.
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import site
import sys
from pathlib import Path


def _path(value: object) -> str | None:
    """The absolute path (links not resolved) a path argument of an audited call names; None
    for a file descriptor."""
    if isinstance(value, (str, bytes, os.PathLike)):
        return str(Path(os.fsdecode(value)).absolute())
    return None


def main() -> None:
    record, script = sys.argv[1], sys.argv[2]
    sys.argv = sys.argv[2:]
    # As `python SCRIPT` sets it: the script's directory (links resolved) first on sys.path.
    sys.path[0] = str(Path(script).resolve().parent)
    opened: set[str] = set()
    listed: set[str] = set()

    def hook(event: str, arguments: tuple[object, ...]) -> None:
        if event == "open":
            path = _path(arguments[0])
            # A module's bytecode (in `__pycache__`, or under PYTHONPYCACHEPREFIX) is derived
            # from its source, which is recorded instead (below).
            if path is not None and not path.endswith(".pyc"):
                opened.add(path)
        elif event in ("os.listdir", "os.scandir"):
            path = _path(arguments[0] if arguments[0] is not None else ".")
            if path is not None:
                listed.add(path)

    complete = hasattr(sys, "addaudithook")
    if complete:
        sys.addaudithook(hook)
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        # The record is the cache's: whatever goes wrong writing it, the run's status and
        # output stay the script's (without a record, the run is not cached).
        with contextlib.suppress(Exception):
            _write(record, complete, opened, listed)


def _write(record: str, complete: bool, opened: set[str], listed: set[str]) -> None:
    modules = {getattr(module, "__file__", None) for module in list(sys.modules.values())}
    site_directories = [*site.getsitepackages(), site.getusersitepackages()]
    startup = {
        str(path)
        for directory in site_directories
        if Path(directory).is_dir()
        for path in Path(directory).glob("*.pth")
    }
    files = opened | startup | {str(Path(sys.executable).resolve())}
    files |= {str(Path(path).absolute()) for path in modules if isinstance(path, str)}
    with Path(record).open("w", encoding="utf-8") as out:
        json.dump(
            {
                "complete": complete,
                "files": sorted(files),
                "listed": sorted(listed | set(site_directories)),
            },
            out,
        )


if __name__ == "__main__":
    main()
