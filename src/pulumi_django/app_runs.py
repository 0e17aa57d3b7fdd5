"""Runs of the app's own interpreter whose result depends on files alone (the plan's readiness
probe and its offline migration check), cached by the content of everything they read.

Each run imports Django and the project (about a second), and a plan makes two to four, though
between two plans of the same commit nothing they read has changed. `run` makes such a run
under `app_run_recorder.py`, which records the files it opened or imported and the directories
it listed, each with its digest, taken in the app's process as the run ends (within the run's
timeout); the result (exit status, stdout, stderr) is stored with those digests, under a key of
everything else the run depends on, and answers the next identical run as long as every one of
them still hashes the same: content decides, never a modification time alone (a digest is
remembered with the file's whole identity, below).

Why that is everything such a run depends on (the key is complete):

- what runs: the interpreter (the path given, and the file it resolves to, by content, with
  its virtual environment's `pyvenv.cfg`, read before any hook could see it), the
  script (by content) and its arguments, and the recorder (by content);
- where and with what: the working directory and every environment variable, but the few that a
  shell or pytest sets to describe itself (`VOLATILE_VARIABLES`);
- the app directory, whole: every file under it by path and content (but `__pycache__`, whose
  files Python checks against their sources), so that a file the app only tests for existence
  counts too (an app directory of more than `MAX_TREE_ENTRIES` entries or `MAX_TREE_BYTES`
  is not cached: hashing it would cost more than the run);
- whatever else it read, as the recorder's audit hook saw it: every file opened (modules are
  read that way, or from `__pycache__`, whose source is recorded instead), every directory
  listed (how imports find modules: a module or a `.pth` file added to site-packages changes a
  listing), the interpreter binary and the `.pth` files `site` read before the hook existed.

What would escape it: a file outside the app directory read in C rather than through Python's
file API, a path outside it only tested for existence, the clock, the network, and a file whose
content changes while its identity does not (below): on a network or FUSE file system that
caches attributes or whose clock differs from this machine's, or written through a shared
memory map. The runs cached here reach no server: the database and the cache are offline
placeholders.

A run is not stored when it did not exit with 0 or 1, when its interpreter has no audit hooks
(Python < 3.8), or when anything it read changed while it ran (a ctime after it started, the
slack of a coarse file-system clock included, of a link and of what it points to): its result,
or the digests the recorder took after it, might match neither version.

A digest is the content's, and is remembered (in `digests/known.json`, the `MAX_KNOWN_DIGESTS`
most recently learned) with the identity of the file it was taken of: device, inode, size,
modification and change times. A file that still has that identity is not read again, by a
lookup nor by the recorder: the kernel sets a file's change time on every write and nothing
sets it back, so an unchanged identity is unchanged content, once the change time is past the
tick of a coarse clock (`settled`). Status and content come from one open descriptor, so a
link or directory swapped meanwhile cannot pair one file's identity with another's content.
Files of /proc, /sys and /dev, and empty files, are never remembered: pseudo file systems
change their content without a change time. In the test suite, the app's interpreter took 0.50
CPU s per recorded run with the memory against 0.55 s without; a lookup now mostly `stat`s.

The cache lives in `PULUMI_DJANGO_CACHE_DIR` (set empty: no cache), else
`$XDG_CACHE_HOME/pulumi-django`, else `~/.cache/pulumi-django`, under `app-runs/`, and keeps the
`MAX_ENTRIES` most recently used runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from .app_run_recorder import (
    file_digest,
    identity,
    known_digest,
    listing_digest,
    load_known,
)
from .caches import cache_disabled, cache_home, store_entry

RECORDER = Path(__file__).resolve().with_name("app_run_recorder.py")
# Variables a shell or pytest (and pytest-xdist) sets to describe itself, which differ between
# two identical runs: between two tests, two workers, two sessions.
VOLATILE_VARIABLES = frozenset(
    {
        "_",
        "OLDPWD",
        "SHLVL",
        "PYTEST_CURRENT_TEST",
        "PYTEST_XDIST_WORKER",
        "PYTEST_XDIST_WORKER_COUNT",
        "PYTEST_XDIST_TESTRUNUID",
    }
)
# Python's own bytecode, checked against the sources (which count).
SKIPPED_DIRECTORIES = frozenset({"__pycache__"})
MAX_ENTRIES = 256
# An app directory past these (a node_modules, media files) is not hashed, nor its runs cached.
MAX_TREE_ENTRIES = 20_000
MAX_TREE_BYTES = 64 << 20
# A file changed this close to a run's start may have been read before or after the change;
# on a file system that keeps whole seconds, this close (`settled`).
CLOCK_SLACK_NS = 100_000_000
# A file system that keeps whole seconds (ext4 with small inodes, HFS+) or two (FAT), with a
# tick of the kernel's coarse clock to spare.
COARSE_SLACK_NS = 3_000_000_000
# Files whose content changes without a change time: never remembered by their identity.
VIRTUAL_FILES = ("/proc/", "/sys/", "/dev/")
EMPTY_DIGEST = hashlib.blake2b(b"", digest_size=20).hexdigest()
# The remembered digests kept: a plan's runs read 600-700 files, mostly the same ones.
MAX_KNOWN_DIGESTS = 10_000
# The exit statuses of a run that completed (and is cached): the probe's 0, the check's 0 and
# 1 (`migration_check.runner` reads the same).
COMPLETED = (0, 1)
FORMAT = 2

# One run at a time per key in this process: the plan's own check and its program's may ask
# for the same run at once; the second then finds the first's result stored.
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()
# The remembered digests (the module docstring): each path's identity, then its digest. Loaded
# from the cache once per process; `_known_changed` when this process learned one since.
_KNOWN: dict[str, list[object]] = {}
_KNOWN_GUARD = threading.Lock()
_known_loaded = False
_known_changed = False
_OBSERVERS: list[Callable[[RunUse], None]] = []
_OBSERVERS_GUARD = threading.Lock()


def cache_directory(environment: Mapping[str, str] = os.environ) -> Path | None:
    """Where app runs are cached; None when `PULUMI_DJANGO_CACHE_DIR` is set empty."""
    return None if cache_disabled(environment) else cache_home(environment) / "app-runs"


def known_digests_file(environment: Mapping[str, str] = os.environ) -> Path | None:
    """Where digests are remembered across processes; None when the cache is off."""
    return None if cache_disabled(environment) else cache_home(environment) / "digests/known.json"


def settled(changed_ns: int, moment_ns: int) -> bool:
    """Whether a change time is so long before `moment_ns` that no later change can have kept
    it: more than `CLOCK_SLACK_NS`, or `COARSE_SLACK_NS` for a whole second (a file system
    that keeps whole seconds, where every change within that second keeps it)."""
    coarse = changed_ns % 1_000_000_000 == 0
    return changed_ns < moment_ns - (COARSE_SLACK_NS if coarse else CLOCK_SLACK_NS)


# What every command says of an app interpreter without Django, after `KEY: interpreter PATH: `.
NO_DJANGO = (
    "cannot import Django; install the app's requirements into it or point to the app's environment"
)


def last_line(stderr: str) -> str | None:
    """The last line a run of the app's interpreter wrote to stderr (its error), if any."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else None


def start_failure(interpreter: str, error: OSError) -> str:
    """What kept the app's `interpreter` from starting (`run` raised `error`), in a few words
    for a one-line error, with the file to look at where it is not the one given: a
    virtualenv's directory says which file to give instead; a virtualenv whose Python was
    removed (an upgrade of the Python it was made from) leaves a link to nothing; a script's
    `#!` line may name a program that is not there."""
    path = Path(interpreter)
    if isinstance(error, FileNotFoundError):
        if path.is_symlink():
            return f"no such file: it links to {path.resolve()}, which does not exist"
        if path.is_file():
            with path.open("rb") as script:
                first = script.readline(200).decode(errors="replace").strip()
            return f"does not run: its first line, {first!r}, names no such program"
        return "no such file"
    if path.is_dir():
        return f"is a directory; pass {path / 'bin' / 'python'}"
    if isinstance(error, PermissionError):
        return "not executable"
    return f"does not run: {error.strerror}"  # not a program: no `#!` line, another architecture


def run(
    command: Sequence[str],
    *,
    app_dir: Path,
    environment: Mapping[str, str],
    cwd: Path | None = None,
    timeout: float,
    cached: bool = True,
) -> subprocess.CompletedProcess[str]:
    """`subprocess.run(command, capture_output=True, text=True, ...)` for `command`, the app's
    interpreter running a script (`[python, script, *arguments]`) on the app in `app_dir`:
    answered from the cache when an identical run read the same contents, else run under the
    recorder and stored. `cached=False` for a run that may reach a server: it just runs.
    Raises what subprocess.run raises (a missing interpreter, a timeout)."""
    directory = cache_directory() if cached else None
    key = None if directory is None else _key(command, environment, str(cwd or Path.cwd()), app_dir)
    if directory is None or key is None:
        _tell_observers(RunUse(tuple(command), app_dir, None, tuple(command)))
        return _run(command, environment, cwd, timeout)
    with _lock(key):
        entry = directory / f"{key}.json"
        stored = _lookup(entry)
        if stored is not None:
            _save_known()
            _tell_observers(RunUse(tuple(command), app_dir, stored, None))
            return subprocess.CompletedProcess(
                list(command), stored["returncode"], stored["stdout"], stored["stderr"]
            )
        descriptor, record = tempfile.mkstemp(prefix="pulumi-django-reads-", suffix=".json")
        os.close(descriptor)
        known = _save_known()  # what this process learned, for the recorder to know too
        remembered = () if known is None else ("--known", str(known.absolute()))
        recorder = (command[0], str(RECORDER), *remembered, record, *command[1:])
        stored = None
        try:
            completed, stored = _run_and_store(
                command, record, recorder, environment, cwd, timeout, app_dir, entry
            )
            _save_known()
        finally:
            Path(record).unlink(missing_ok=True)
            _tell_observers(RunUse(tuple(command), app_dir, stored, recorder))
        return completed


@dataclass(frozen=True)
class RunUse:
    """One run as an observer sees it (`observing`): the `stored` entry that answered it, or
    that it was stored as (its `files` and `listings`, each read path with its digest); None
    when it was not cached. `started` is the command line of the process it started (the
    command itself, or under the recorder), if any."""

    command: tuple[str, ...]
    app_dir: Path
    stored: dict[str, Any] | None
    started: tuple[str, ...] | None


@contextlib.contextmanager
def observing(observer: Callable[[RunUse], None]) -> Iterator[None]:
    """`observer` is told of every run made in this process meanwhile, from any thread: the
    plan command's cache (`cli.plan_cache`) vouches for a plan only with the runs it made."""
    with _OBSERVERS_GUARD:
        _OBSERVERS.append(observer)
    try:
        yield
    finally:
        with _OBSERVERS_GUARD:
            _OBSERVERS.remove(observer)


def _tell_observers(use: RunUse) -> None:
    with _OBSERVERS_GUARD:
        observers = list(_OBSERVERS)
    for observer in observers:
        observer(use)


def _run(
    command: Sequence[str], environment: Mapping[str, str], cwd: Path | None, timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        env=dict(environment),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def _run_and_store(
    command: Sequence[str],
    record: str,
    recorder: tuple[str, ...],
    environment: Mapping[str, str],
    cwd: Path | None,
    timeout: float,
    app_dir: Path,
    entry: Path,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
    """Runs `recorder` (`command` under the recorder, which writes `record`) and stores its
    result with what it read; returns the result as the command's own, and the entry stored
    (None when nothing vouches for the run). The identities the recorder took of the files it
    hashed are remembered with their digests."""
    started = time.time_ns()
    recorded = _run(recorder, environment, cwd, timeout)
    completed = subprocess.CompletedProcess(
        list(command), recorded.returncode, recorded.stdout, recorded.stderr
    )
    if completed.returncode not in COMPLETED:
        return completed, None
    try:
        reads = json.loads(Path(record).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return completed, None  # the recorder did not finish: nothing vouches for the result
    # The recorder took the digests as the run ended; none of those files changing since the
    # run started (below) makes them the contents the run read.
    files, listings = reads.get("files"), reads.get("listed")
    if not (reads.get("complete") and isinstance(files, dict) and isinstance(listings, dict)):
        return completed, None
    if _changed_since(started, [*files, *listings, *tree_paths(app_dir)]):
        return completed, None
    # Unchanged since before the run started, so each identity the recorder took is the one
    # the file had as it was hashed.
    identities = reads.get("identities")
    for path, known in (identities if isinstance(identities, dict) else {}).items():
        digest = files.get(path)
        if isinstance(known, list) and len(known) == 5 and _rememberable(path, digest):
            _remember(path, [*known, digest], started)
    stored = {
        "files": files,
        "listings": listings,
        "returncode": completed.returncode,
        "stdout": completed.stdout,
        "stderr": completed.stderr,
    }
    store_entry(entry, stored, MAX_ENTRIES)
    return completed, stored


def _key(
    command: Sequence[str], environment: Mapping[str, str], cwd: str, app_dir: Path
) -> str | None:
    """The digest of what a run depends on besides the files it reads (the module docstring);
    None for an app directory too large to hash."""
    tree = _tree_digest(app_dir)
    if tree is None:
        return None
    interpreter, script = command[0], command[1]
    described = {
        "format": FORMAT,
        "command": list(command),
        "interpreter": [os.path.realpath(interpreter), _file_digest(os.path.realpath(interpreter))],
        "startup": {path: _file_digest(path) for path in startup_files(interpreter)},
        "script": _file_digest(script),
        "recorder": _file_digest(str(RECORDER)),
        "cwd": cwd,
        "environment": sorted(
            (name, value) for name, value in environment.items() if name not in VOLATILE_VARIABLES
        ),
        "app": [str(app_dir), tree],
    }
    return hashlib.blake2b(
        json.dumps(described, sort_keys=True).encode(), digest_size=20
    ).hexdigest()


def startup_files(interpreter: str) -> list[str]:
    """What the interpreter reads as it starts, before the recorder's hook exists, besides the
    `.pth` files (recorded): a virtual environment's `pyvenv.cfg` (its
    `include-system-site-packages` decides what imports find), looked for beside the executable
    and one directory up, as invoked and with links resolved."""
    places = {Path(interpreter).absolute().parent, Path(os.path.realpath(interpreter)).parent}
    return sorted(
        str(directory / "pyvenv.cfg") for place in places for directory in (place, place.parent)
    )


def _lookup(entry: Path) -> dict[str, Any] | None:
    """The stored run, when every file and listing it read is as it was; None for anything
    else, an entry of another shape too (a cache is never an error)."""
    try:
        stored = json.loads(entry.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not _well_formed(stored):
        return None
    files: dict[str, str | None] = stored["files"]
    listings: dict[str, str | None] = stored["listings"]
    if any(_file_digest(path) != digest for path, digest in files.items()):
        return None
    if any(listing_digest(path) != digest for path, digest in listings.items()):
        return None
    with contextlib.suppress(OSError):
        os.utime(entry)  # recently used: kept by the pruning
    return stored


def _well_formed(stored: object) -> TypeGuard[dict[str, Any]]:
    """An entry as `_run_and_store` writes it."""
    return (
        isinstance(stored, dict)
        and isinstance(stored.get("files"), dict)
        and isinstance(stored.get("listings"), dict)
        and isinstance(stored.get("returncode"), int)
        and isinstance(stored.get("stdout"), str)
        and isinstance(stored.get("stderr"), str)
    )


def _lock(key: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def _file_digest(path: str) -> str | None:
    """`file_digest`, as the recorder takes it, each file's content hashed only while its
    identity is not one a digest was remembered with."""
    return file_digest(path, _remembered_content_digest)


def _remembered_content_digest(path: str, status: os.stat_result, read: Callable[[], str]) -> str:
    """The interpreter's binary is hashed by each run's key, and a lookup hashes every file a
    stored run read: mostly the same files from one run and one plan to the next."""
    remembered = known_digest(_known(), path, status)
    if remembered is not None:
        return remembered
    hashing = time.time_ns()
    digest = read()
    if _rememberable(path, digest):
        _remember(path, [*identity(status), digest], hashing)
    return digest


def _rememberable(path: str, digest: object) -> bool:
    """A digest of a regular file's content (not a kind, nor a read that failed) that its
    identity vouches for: not a file of /proc, /sys or /dev, nor an empty one (such files, and
    those of other pseudo file systems, read differently without a new change time)."""
    return (
        isinstance(digest, str)
        and digest != "directory"
        and not digest.startswith(("unreadable:", "special:"))
        and digest != EMPTY_DIGEST
        and not path.startswith(VIRTUAL_FILES)
    )


def _known() -> dict[str, list[object]]:
    """The remembered digests, loaded from the cache the first time (before this process
    learned any: `_remember` asks for them first)."""
    global _known_loaded
    with _KNOWN_GUARD:
        if not _known_loaded:
            _known_loaded = True
            known = known_digests_file()
            if known is not None:
                _KNOWN.update(load_known(known))
        return _KNOWN


def _remember(path: str, known: list[object], hashed_ns: int) -> None:
    """Remembers `known` (a file's identity, then the digest of its content read after
    `hashed_ns`) when its change time had settled by then."""
    global _known_changed
    changed = known[4]
    if not (isinstance(changed, int) and settled(changed, hashed_ns)):
        return
    remembered = _known()
    with _KNOWN_GUARD:
        if remembered.get(path) != known:
            remembered.pop(path, None)  # the most recently learned come last, and are kept
            remembered[path] = known
            _known_changed = True


def _save_known() -> Path | None:
    """Writes what this process learned into the cache's remembered digests, merged with what
    other processes wrote meanwhile (a lost update only costs a hash); returns where they are,
    None when the cache is off."""
    global _known_changed
    known = known_digests_file()
    if known is None:
        return None
    with _KNOWN_GUARD:
        if _known_changed:
            # Others' first, then this process's in the order it learned them: the newest last.
            merged = {path: kept for path, kept in load_known(known).items() if path not in _KNOWN}
            merged.update(_KNOWN)
            store_entry(known, {"files": dict(list(merged.items())[-MAX_KNOWN_DIGESTS:])}, keep=1)
            _known_changed = False
    return known


def tree_paths(app_dir: Path) -> Iterator[str]:
    """Every directory, file and link under `app_dir` but bytecode, in a stable order (a link to
    a directory is not followed: what is read through it is recorded as read)."""
    for directory, subdirectories, names in os.walk(app_dir):
        subdirectories[:] = sorted(d for d in subdirectories if d not in SKIPPED_DIRECTORIES)
        yield directory
        links = [d for d in subdirectories if Path(directory, d).is_symlink()]
        for name in sorted([*names, *links]):
            yield str(Path(directory, name))


def _tree_digest(app_dir: Path) -> str | None:
    """The app directory's paths and contents (a symbolic link by its target); None past
    `MAX_TREE_ENTRIES` or `MAX_TREE_BYTES`, which would take longer to hash than to run."""
    digest = hashlib.blake2b(digest_size=20)
    size = 0
    for count, name in enumerate(tree_paths(app_dir)):
        path = Path(name)
        if path.is_symlink():
            content = f"link:{path.readlink()}"
        elif path.is_dir():
            content = "directory"
        else:
            size += path.stat().st_size
            content = str(_file_digest(name))
        if count >= MAX_TREE_ENTRIES or size > MAX_TREE_BYTES:
            return None
        digest.update(f"{path.relative_to(app_dir)}\0{content}\0".encode())
    return digest.hexdigest()


def _changed_since(moment_ns: int, paths: Sequence[str] | Iterator[str]) -> bool:
    """Whether any of `paths` changed (or appeared, or lost an entry) since `moment_ns`, or so
    shortly before it that a change since could have kept the change time (`settled`); a link
    also when what it points to did (a read through it hashes the target)."""
    for path in paths:
        try:
            status = os.lstat(path)
            if not settled(status.st_ctime_ns, moment_ns):
                return True
            if stat.S_ISLNK(status.st_mode) and not settled(
                Path(path).stat().st_ctime_ns, moment_ns
            ):
                return True
        except OSError:
            continue
    return False
