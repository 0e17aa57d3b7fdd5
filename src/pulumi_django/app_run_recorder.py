"""Runs a script in the app's interpreter as `python SCRIPT ARGS...` would, and records what it
read, for `app_runs` to cache its result by the content of those files:

    python app_run_recorder.py [--known FILE] RECORD SCRIPT [ARGS...]

An audit hook (PEP 578) sees every file the run opens (modules are read that way too) and every
directory it lists (how imports find modules); at exit, RECORD gets them as JSON with the
source file of every module imported, the interpreter itself, and the `.pth` files the `site`
module read before the hook existed, each with its digest. The script's exit status and output
are its own.

The digests are taken here, on this process's own core, rather than by the plan that started
it, whose program is importing the Pulumi SDK meanwhile and would share its interpreter lock
with the hashing of some 700 files. `app_runs` compares them with the same functions.
With `--known FILE` (`app_runs`'s remembered digests), a file whose identity is the one a
digest was remembered with is not read again; RECORD then also gets the identity of each file
it took a digest of, for `app_runs` to remember.

Standalone, like the scripts it runs: the standard library only, never pulumi_django.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import runpy
import site
import stat
import sys
from collections.abc import Callable
from pathlib import Path

CHUNK_BYTES = 1 << 20


def _read(_path: str, _status: os.stat_result, read: Callable[[], str]) -> str:
    return read()


def file_digest(
    path: str, contents: Callable[[str, os.stat_result, Callable[[], str]], str] = _read
) -> str | None:
    """A regular file's content digest; None when missing; the kind of anything else (a device
    such as /dev/urandom reads differently each time, so only its kind is compared).

    The file is opened once, and both its status and its content come from that descriptor: a
    path whose link or directory is swapped meanwhile still yields one file's status and
    content. `contents(path, status, read)` gives the digest, `read()` hashing the content
    (`unreadable:ERRNO` when that fails), unless the caller knows it by the status."""
    try:
        # Non-blocking, so that a FIFO opens without a writer (it is only told by its kind).
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        try:
            status = Path(path).stat()
        except OSError:
            return None
        return _kind(status) or f"unreadable:{error.errno}"
    try:
        status = os.fstat(descriptor)
        kind = _kind(status)
        if kind is not None:
            return kind
        return contents(path, status, lambda: _descriptor_digest(descriptor))
    finally:
        os.close(descriptor)


def _kind(status: os.stat_result) -> str | None:
    """What a path that is not a regular file is compared by; None for a regular file."""
    if stat.S_ISDIR(status.st_mode):
        return "directory"
    if not stat.S_ISREG(status.st_mode):
        return f"special:{stat.S_IFMT(status.st_mode)}"
    return None


def _descriptor_digest(descriptor: int) -> str:
    digest = hashlib.blake2b(digest_size=20)
    try:
        for chunk in iter(lambda: os.read(descriptor, CHUNK_BYTES), b""):
            digest.update(chunk)
    except OSError as error:
        return f"unreadable:{error.errno}"
    return digest.hexdigest()


def identity(status: os.stat_result) -> list[int]:
    """What changes whenever a file's content does: its device and inode, size, and modification
    and change times (the kernel sets the change time on every write, and nothing sets it back;
    `app_runs` remembers a digest only once that time is past a coarse clock's tick)."""
    return [status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns]


def load_known(path: str | os.PathLike[str]) -> dict[str, list[object]]:
    """The remembered digests in `path` (`app_runs` writes them): each file's identity, then
    its digest; empty when there are none or the file is not theirs."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except Exception:  # a cache is never an error: unreadable, not JSON, nested past recursion
        return {}
    files = document.get("files") if isinstance(document, dict) else None
    return files if isinstance(files, dict) else {}


def known_digest(known: dict[str, list[object]], path: str, status: os.stat_result) -> str | None:
    """The digest remembered for `path`, when the file still has the identity it had then."""
    remembered = known.get(path)
    if isinstance(remembered, list) and len(remembered) == 6 and remembered[:5] == identity(status):
        digest = remembered[5]
        return digest if isinstance(digest, str) else None
    return None


def listing_digest(path: str) -> str | None:
    """The digest of a directory's entry names; None when it cannot be listed."""
    try:
        names = sorted(entry.name for entry in os.scandir(path))
    except OSError:
        return None
    return hashlib.blake2b("\0".join(names).encode(), digest_size=20).hexdigest()


def audited_path(value: object) -> str | None:
    """The absolute path (links not resolved) a path argument of an audited call names; None
    for a file descriptor."""
    if isinstance(value, (str, bytes, os.PathLike)):
        return str(Path(os.fsdecode(value)).absolute())
    return None


def main() -> None:
    known_file = None
    if sys.argv[1] == "--known":
        known_file = sys.argv[2]
        del sys.argv[1:3]
    record, script = sys.argv[1], sys.argv[2]
    sys.argv = sys.argv[2:]
    # As `python SCRIPT` sets it: the script's directory (links resolved) first on sys.path.
    sys.path[0] = str(Path(script).resolve().parent)
    opened: set[str] = set()
    listed: set[str] = set()

    def hook(event: str, arguments: tuple[object, ...]) -> None:
        if event == "open":
            path = audited_path(arguments[0])
            # A module's bytecode (in `__pycache__`, or under PYTHONPYCACHEPREFIX) is derived
            # from its source, which is recorded instead (below).
            if path is not None and not path.endswith(".pyc"):
                opened.add(path)
        elif event in ("os.listdir", "os.scandir"):
            path = audited_path(arguments[0] if arguments[0] is not None else ".")
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
            _write(record, complete, opened, listed, known_file)


def _write(
    record: str, complete: bool, opened: set[str], listed: set[str], known_file: str | None
) -> None:
    if not complete:  # no hook saw the reads: the run is not cached, nothing to hash
        Path(record).write_text(json.dumps({"complete": False}), encoding="utf-8")
        return
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
    # Listed once both sets are whole: the hashing below opens and lists through the hook too.
    file_paths, listed_paths = sorted(files), sorted(listed | set(site_directories))
    known = {} if known_file is None else load_known(known_file)
    identities: dict[str, list[int]] = {}

    def contents(path: str, status: os.stat_result, read: Callable[[], str]) -> str:
        identities[path] = identity(status)
        return known_digest(known, path, status) or read()

    document: dict[str, object] = {
        "complete": True,
        "files": {path: file_digest(path, contents) for path in file_paths},
        "listed": {path: listing_digest(path) for path in listed_paths},
    }
    if known_file is not None:
        document["identities"] = identities
    with Path(record).open("w", encoding="utf-8") as out:
        json.dump(document, out)


if __name__ == "__main__":
    main()
