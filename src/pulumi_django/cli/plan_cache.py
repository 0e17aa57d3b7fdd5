"""The `plan` command's cache: a plan printed again, without running anything, when nothing it
depended on changed since an identical plan printed it.

A plan imports the Pulumi SDK's modules for the stack's resources (0.4 s for a local stack,
seconds for an AWS one), runs the program under mocks, and checks the app in its interpreter,
though between two plans of the same commit nothing of that has changed. So the command keeps
what it printed (the plan's JSON, its text, the lines on stderr, the exit status) with what it
depended on, and prints it again while every one of those is as it was. A library call
(`plan.plan_stack`) always runs: only the command caches.

What a plan depends on (the key and the dependencies are complete):

- the key: the project directory, the stack, `--python`, whether the app checks run, the
  working directory, every environment variable but the few a shell or pytest sets to describe
  itself (`app_runs.VOLATILE_VARIABLES`), the interpreter (path and version) and its `sys.path`;
- the dependencies, each path with its identity on disk: every file the plan opened (the stack
  file, the program's own reads) or tried to (absent, it must stay absent), every directory it
  listed; when it ends, the file of every module loaded (pulumi_django's and the SDK's, imported
  before the program too) and every directory holding one or on `sys.path` (imports find
  modules there); every directory of the project and of the app's directory (a file created or
  removed changes its directory: how a program's existence tests count); and for each run of
  the app's interpreter (`app_runs`, cached by content), the entry that answered it: every file
  and directory that run read, the app's directory whole, the interpreter, its `pyvenv.cfg`.

Why identity, not content: a path's identity is `os.lstat`'s device, inode, size, mode and
modification and change times (and its target's, for a link). The kernel sets the change time
on every write, rename or chmod, and no call sets it back, so a file whose identity is
unchanged has the content it had (git's index relies on the same). The dependencies include
the SDK's modules, 40-70 MB: hashing them would cost a plan that hits more than the plan it
saves. A dependency that changed within `CLOCK_SLACK_NS` of the plan's start (a coarse clock
could give its next change the same time) keeps the plan from being stored.

Not stored, so run every time: a plan that fails; one during which anything started a process
but a cached app run, connected a socket, or wrote, renamed or removed a file outside the
caches, `__pycache__` and the temporary files it made (what it learns or does elsewhere is no
file's state); one whose app run was not cached; a project of more than
`MAX_PROJECT_DIRECTORIES` directories.

What would escape it: the clock and randomness (a program whose resources depend on them
plans differently at every run, which a Pulumi program avoids anyway: each would be a change
at every `pulumi up`), and a file read in C without Python's `open` (an extension module's own
reads; the SDK's make none). `PULUMI_DJANGO_CACHE_DIR` set empty turns the cache off, as it
does the app runs'; the plans are under `plans/` in the cache directory, the `MAX_ENTRIES`
most recently used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi_django import app_runs
from pulumi_django.app_run_recorder import audited_path
from pulumi_django.caches import cache_disabled, cache_home, store_entry

FORMAT = 1
MAX_ENTRIES = 64
MAX_PROJECT_DIRECTORIES = 5_000
CLOCK_SLACK_NS = app_runs.CLOCK_SLACK_NS
# Directories of a project that are no part of what it deploys: version control, caches,
# dependencies (a virtual environment's modules count when imported), bytecode.
SKIPPED_DIRECTORIES = frozenset({"__pycache__", "node_modules"})
# What a program does beyond reading files: a plan during which it happens is not stored.
OUTSIDE_EFFECTS = frozenset(
    {
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "socket.connect",
        "socket.sendto",
        "socket.getaddrinfo",
    }
)
# Changes to files, each with the indexes of its path arguments (`open` is judged by its flags).
FILE_CHANGES = {
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.mkdir": (0,),
    "os.rename": (0, 1),
    "os.link": (1,),
    "os.symlink": (1,),
    "os.truncate": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.utime": (0,),
}
WATCHED_EVENTS = frozenset(
    {"open", "os.listdir", "os.scandir", "subprocess.Popen", *OUTSIDE_EFFECTS, *FILE_CHANGES}
)
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC

Identity = list[int] | None


@dataclass(frozen=True)
class PlanRequest:
    """What the command was asked for."""

    project_dir: Path
    stack: str
    python: str | None
    app_checks: bool


@dataclass(frozen=True)
class PlanOutput:
    """What the command prints for a plan: its JSON `document`, its `text`, the `warnings` it
    writes to stderr, and its exit status. `app_dir` is the app's directory (None without
    app checks), whose directories the plan depends on."""

    document: str
    text: str
    warnings: tuple[str, ...]
    code: int
    app_dir: Path | None = None


def lookup(request: PlanRequest) -> PlanOutput | None:
    """The output of an identical plan, when nothing it depended on changed; None otherwise
    (a missing, unreadable or foreign entry too: a cache is never an error)."""
    entry = _entry(request)
    if entry is None:
        return None
    try:
        stored = json.loads(entry.read_text(encoding="utf-8"))
        dependencies: dict[str, Identity] = stored["dependencies"]
        output = PlanOutput(
            str(stored["document"]),
            str(stored["text"]),
            tuple(str(line) for line in stored["warnings"]),
            int(stored["code"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(dependencies, dict) or stored.get("format") != FORMAT:
        return None
    if any(identity(path) != known for path, known in dependencies.items()):
        return None
    with contextlib.suppress(OSError):
        os.utime(entry)  # recently used: kept by the pruning
    return output


@contextlib.contextmanager
def recording(request: PlanRequest, *, store: bool = True) -> Iterator[PlanRecorder]:
    """Watches the plan made in the block; stores what `PlanRecorder.keep` is given, with what
    the plan depended on, when nothing kept it from being vouched for (the module docstring).
    With `store=False` it watches nothing and stores nothing."""
    entry = _entry(request) if store else None
    recorder = PlanRecorder(request.project_dir)
    if entry is None:
        yield recorder
        return
    _install_hook()
    global _ACTIVE
    _ACTIVE = recorder
    try:
        with app_runs.observing(recorder.saw_run):
            yield recorder
    finally:
        _ACTIVE = None
    recorder.store(entry)


class PlanRecorder:
    """What one plan read, started and changed, as the audit hook and `app_runs` tell it."""

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = project_dir.resolve()
        self.started_ns = time.time_ns()
        self.opened: set[str] = set()
        self.listed: set[str] = set()
        self.written: set[str] = set()
        self.processes: list[tuple[str, ...]] = []
        self.runs: list[app_runs.RunUse] = []
        # Why the plan cannot be stored; None while nothing says so.
        self.unstorable: str | None = None
        self.output: PlanOutput | None = None
        self._lock = threading.Lock()
        # Where a plan may write without the write being part of what it does: the caches and
        # bytecode; and in the temporary directory, the files it creates there anew (taken
        # now: finding the temporary directory writes a file, which the hook would see).
        self._scratch = tuple(
            prefix + os.sep
            for prefix in (str(cache_home().absolute()), sys.pycache_prefix)
            if prefix
        )
        self._temporary = tempfile.gettempdir() + os.sep

    def keep(self, output: PlanOutput) -> None:
        """The plan's output, to be stored when the block ends."""
        self.output = output

    def saw_run(self, use: app_runs.RunUse) -> None:
        with self._lock:
            self.runs.append(use)

    def saw(self, event: str, arguments: tuple[Any, ...]) -> None:
        """One audit event (PEP 578) of this process while the plan runs, from any thread."""
        if event == "open":
            path = audited_path(arguments[0])
            if path is None:
                return
            flags = arguments[2]
            if isinstance(flags, int) and flags & os.O_EXCL and path.startswith(self._temporary):
                self.written.add(path)  # a temporary file of its own (`tempfile.mkstemp`)
            elif isinstance(flags, int) and flags & WRITE_FLAGS:
                self._changed(path)
            elif not path.endswith(".pyc"):  # bytecode: its module's source counts
                self.opened.add(path)
        elif event in ("os.listdir", "os.scandir"):
            path = audited_path(arguments[0] if arguments[0] is not None else ".")
            if path is not None:
                self.listed.add(path)
        elif event == "subprocess.Popen":
            command = arguments[1]
            if isinstance(command, (str, bytes, os.PathLike)):
                command = [command]
            with self._lock:
                self.processes.append(tuple(os.fsdecode(part) for part in command))
        elif event in OUTSIDE_EFFECTS:
            self.unstorable = f"the plan made a call that reaches outside its files ({event})"
        elif event in FILE_CHANGES:
            for index in FILE_CHANGES[event]:
                path = audited_path(arguments[index]) if index < len(arguments) else None
                if path is not None:
                    self._changed(path)

    def _changed(self, path: str) -> None:
        if (
            path in self.written
            or path == os.devnull
            or "__pycache__" in Path(path).parts
            or (path + os.sep).startswith(self._scratch)  # the directories themselves too
        ):
            self.written.add(path)
        else:
            self.unstorable = f"the plan changed {path}"

    def store(self, entry: Path) -> None:
        """Stores the output kept, unless the plan cannot be vouched for."""
        if self.output is None or self.unstorable is not None:
            return
        paths = self._dependencies()
        if paths is None:
            return
        dependencies = {path: identity(path) for path in sorted(paths)}
        moment = self.started_ns - CLOCK_SLACK_NS
        if any(known is not None and max(known[4::6]) >= moment for known in dependencies.values()):
            return  # changed as the plan started: what it read may be either version
        store_entry(
            entry,
            {
                "format": FORMAT,
                "dependencies": dependencies,
                "document": self.output.document,
                "text": self.output.text,
                "warnings": list(self.output.warnings),
                "code": self.output.code,
            },
            MAX_ENTRIES,
        )

    def _dependencies(self) -> set[str] | None:
        """Every path the plan depended on (the module docstring); None when it cannot be
        vouched for: a process of its own, an app run not cached, a project too large."""
        started = Counter(use.started for use in self.runs if use.started is not None)
        if Counter(self.processes) - started or any(use.stored is None for use in self.runs):
            return None
        paths = self.opened | self.listed | _module_paths()
        cache = str(cache_home().absolute())
        for top in (self.project_dir, self.output.app_dir if self.output else None):
            directories = _directories(top, cache) if top is not None else []
            if directories is None:
                return None
            paths.update(directories)
        for use in self.runs:
            assert use.stored is not None  # checked above
            interpreter = use.command[0]
            paths.update(use.stored["files"], use.stored["listings"])
            paths.update(app_runs.tree_paths(use.app_dir))
            paths.update(app_runs.startup_files(interpreter))
            paths.update({str(Path(interpreter).absolute()), os.path.realpath(interpreter)})
            paths.update(str(Path(part).absolute()) for part in use.command[1:2])
        # The caches' own files are vouched for by the entries read above.
        return {path for path in paths if path not in self.written and not _under(path, cache)}


def identity(path: str) -> Identity:
    """A path's identity on disk (the module docstring), its target's too for a link; None when
    it does not exist."""
    try:
        status = os.lstat(path)
        known = _fields(status)
        if stat.S_ISLNK(status.st_mode):
            known += _fields(Path(path).stat())
    except OSError:
        return None
    return known


def _fields(status: os.stat_result) -> list[int]:
    # The change time comes fifth in each group of six: store() reads it as `known[4::6]`.
    return [
        status.st_dev,
        status.st_ino,
        status.st_size,
        status.st_mtime_ns,
        status.st_ctime_ns,
        status.st_mode,
    ]


def _module_paths() -> set[str]:
    """The file of every module loaded, the directories of packages, and every directory that
    imports looked in: `sys.path` and those holding a module. (os.path, not pathlib: a plan of
    an AWS stack has some 1,500 modules, and pathlib's objects would cost it tens of ms.)"""
    paths = {os.path.abspath(entry) for entry in sys.path if entry}  # noqa: PTH100
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str):
            file = os.path.abspath(file)  # noqa: PTH100
            paths.update((file, os.path.dirname(file)))  # noqa: PTH120
        for directory in getattr(module, "__path__", None) or ():
            if isinstance(directory, str):
                paths.add(os.path.abspath(directory))  # noqa: PTH100
    return paths


def _directories(top: Path, cache: str) -> list[str] | None:
    """Every directory under `top` but hidden ones, bytecode, node_modules, virtual environments
    and the `cache` directory; None past `MAX_PROJECT_DIRECTORIES`."""
    found: list[str] = []
    for directory, subdirectories, _ in os.walk(top):
        subdirectories[:] = [
            name
            for name in subdirectories
            if not name.startswith(".")
            and name not in SKIPPED_DIRECTORIES
            and not Path(directory, name, "pyvenv.cfg").exists()
            and not _under(str(Path(directory, name)), cache)
        ]
        found.append(directory)
        if len(found) > MAX_PROJECT_DIRECTORIES:
            return None
    return found


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + os.sep)


def _entry(request: PlanRequest) -> Path | None:
    if cache_disabled():
        return None
    described = {
        "format": FORMAT,
        "project": str(request.project_dir.resolve()),
        "stack": request.stack,
        "python": request.python,
        "app_checks": request.app_checks,
        "cwd": str(Path.cwd()),
        "environment": sorted(
            (name, value)
            for name, value in os.environ.items()
            if name not in app_runs.VOLATILE_VARIABLES
        ),
        "interpreter": [sys.executable, sys.version],
        "path": sys.path,
    }
    key = hashlib.blake2b(json.dumps(described).encode(), digest_size=20).hexdigest()
    return cache_home() / "plans" / f"{key}.json"


# The recorder of the plan being made, seen by the audit hook; the hook is added once per
# process (audit hooks cannot be removed) and does nothing while no plan is recorded.
_ACTIVE: PlanRecorder | None = None
_HOOKED = False
_HOOK_STATE = threading.local()


def _install_hook() -> None:
    global _HOOKED
    if not _HOOKED:
        sys.addaudithook(_audit)
        _HOOKED = True


def _audit(event: str, arguments: tuple[Any, ...]) -> None:
    # Called for every audited event of the process (300,000 in a plan of an AWS stack, most of
    # them attribute lookups): the first test keeps that cheap.
    if event in WATCHED_EVENTS and _ACTIVE is not None and not getattr(_HOOK_STATE, "busy", False):
        _HOOK_STATE.busy = True  # what the recorder calls is not part of the plan
        try:
            _ACTIVE.saw(event, arguments)
        finally:
            _HOOK_STATE.busy = False
