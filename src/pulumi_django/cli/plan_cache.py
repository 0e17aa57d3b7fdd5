"""The `plan` command's cache: a plan printed again, without running anything, when nothing it
depended on changed since an identical plan printed it.

A plan imports the Pulumi SDK's modules for the stack's resources (0.4 s for a local stack,
seconds for an AWS one), runs the program under mocks, and checks the app in its interpreter,
though between two plans of the same commit nothing of that has changed. So the command keeps
what it printed (the plan's JSON and text, the lines on stderr, whatever the program itself
printed, the exit status) with what it depended on, and prints it again while every one of
those is as it was. A library call (`plan.plan_stack`) always runs: only the command caches.

What a plan depends on:

- the key: the project directory, the stack, `--python`, whether the app checks run, the
  working directory, every environment variable but the few a shell or pytest sets to
  describe itself (`app_runs.VOLATILE_VARIABLES`), the interpreter (path, version, flags,
  warning options) and its `sys.path`;
- the dependencies, each path with its identity on disk: every file the plan opened (the stack
  file, the program's own reads; the source of any bytecode it loaded) or tried to open
  (absent, it must stay absent), every directory it listed, every SQLite database it opened;
  when it ends, the file of every module loaded (pulumi_django's and the SDK's, imported before
  the program too), every directory holding one or on `sys.path` (imports find modules there)
  and the `.pth` files of the site directories; every file, link and directory of the project
  and of the app's directory (how a program's existence tests and `os.stat` count), but
  version control, bytecode, tool caches (`*_cache`), `node_modules` and virtual environments,
  and the directories above them up to the top of their git repository;
  and for each run of the app's interpreter (`app_runs`, cached by content), the entry that
  answered it: every file and directory that run read, the app's directory, the interpreter,
  its `pyvenv.cfg`.

Why identity, not content: a path's identity is `os.lstat`'s device, inode, size, mode and
modification and change times (and its target's, for a link). The kernel sets the change time
on every write, rename or chmod, and no call sets it back, so a file whose identity is
unchanged has the content it had (git's index relies on the same), provided the identity was
taken after the change's clock tick: a plan that read a file whose change time is within
`app_runs.CLOCK_SLACK_NS` of its start (`app_runs.COARSE_SLACK_NS` on a file system that keeps
whole seconds: `app_runs.settled`) is not stored. The dependencies include the SDK's
modules, 40-70 MB: hashing them would cost a plan that hits more than the plan it saves. A
file's identity is taken as the plan opens it, and again at the end; a plan during which one
changed is not stored.

Not stored, so made every time: a plan that fails; one during which anything started a
process but a cached app run, connected a socket, looked up a host name, read a file of
`/proc`, `/sys` or `/dev` (which change without a change time), or wrote, renamed or removed a
file outside the caches, `__pycache__` and the temporary files it made (`tempfile`); one whose
app run was not cached; a `--diff-against` plan at a ref (a scratch copy no later plan shares);
a project past `MAX_PROJECT_ENTRIES` entries or inside the cache directory.

What escapes it: the clock and randomness (a program whose resources depend on them plans
differently at every run, which a Pulumi program avoids anyway: each would be a change at every
`pulumi up`); existence tests and `os.stat` of paths outside the project and the app (but for
the directories above them up to their repository's top), in their version control's
directory, tools' caches, `node_modules` and virtual environments; the machine's name
(`os.uname`), the command line (`sys.argv`), standard input, and whether the standard streams
are terminals; reads in C without Python's `open` (an extension module's own; the SDK's make
none); output written around `sys.stdout` and `sys.stderr` (their file descriptors,
`sys.__stdout__`, exit handlers). `plan --no-cache` plans again (and keeps the new plan);
`PULUMI_DJANGO_CACHE_DIR` set empty turns the cache off, as it does the app runs'. The plans
are under `plans/` in the cache directory, the `MAX_ENTRIES` most recently used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import site
import stat
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pulumi_django import app_runs
from pulumi_django.app_run_recorder import audited_path
from pulumi_django.caches import cache_disabled, cache_home, store_entry

FORMAT = 2
MAX_ENTRIES = 64
MAX_PROJECT_ENTRIES = 20_000
# Directories of a project that are no part of what it deploys, nor read by a plan: version
# control, bytecode, dependencies (a virtual environment's modules count when imported), and
# tools' caches (`.mypy_cache`, `.pytest_cache`, `.ruff_cache`...).
SKIPPED_DIRECTORIES = frozenset({".git", ".hg", ".svn", ".tox", ".nox", "__pycache__"})
SKIPPED_SUFFIXES = ("_cache", "node_modules")
# What reaches beyond files: a plan during which it happens is not stored.
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
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "socket.gethostname",
        "socket.getnameinfo",
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
TEMPORARY_EVENTS = frozenset({"tempfile.mkstemp", "tempfile.mkdtemp"})
WATCHED_EVENTS = frozenset(
    {
        "open",
        "os.listdir",
        "os.scandir",
        "sqlite3.connect",
        "subprocess.Popen",
        *OUTSIDE_EFFECTS,
        *FILE_CHANGES,
        *TEMPORARY_EVENTS,
    }
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
    app checks), whose files the plan depends on."""

    document: str
    text: str
    warnings: tuple[str, ...]
    code: int
    app_dir: Path | None = None


@dataclass(frozen=True)
class KeptPlan:
    """A plan as the cache gives it back: its output, and what the program printed itself,
    in order (`("stdout" | "stderr", text)`)."""

    output: PlanOutput
    printed: tuple[tuple[str, str], ...] = ()
    planned_at: str = ""  # when it was planned, in local time

    def replay(self) -> None:
        """Prints again what the program printed (the plan itself is the command's to print);
        what could not be written then cannot be now either, and is left out the same way."""
        for stream, text in self.printed:
            with contextlib.suppress(Exception):
                print(text, end="", file=sys.stdout if stream == "stdout" else sys.stderr)


def lookup(request: PlanRequest) -> KeptPlan | None:
    """The identical plan kept, when nothing it depended on changed; None otherwise (a
    missing, unreadable or foreign entry too: a cache is never an error)."""
    try:
        entry = _entry(request)
        if entry is None:
            return None
        stored = json.loads(entry.read_text(encoding="utf-8"))
        if stored.get("format") != FORMAT:
            return None
        dependencies: dict[str, Identity] = stored["dependencies"]
        if any(identity(path) != known for path, known in dependencies.items()):
            return None
        kept = KeptPlan(
            PlanOutput(
                str(stored["document"]),
                str(stored["text"]),
                tuple(str(line) for line in stored["warnings"]),
                int(stored["code"]),
            ),
            tuple((str(stream), str(text)) for stream, text in stored["printed"]),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(stored["planned_at"]))),
        )
        if not 0 <= kept.output.code <= 255:
            return None
    except Exception:  # a cache is never an error: the plan is made instead
        return None
    with contextlib.suppress(OSError):
        os.utime(entry)  # recently used: kept by the pruning
    return kept


@contextlib.contextmanager
def watched(request: PlanRequest, *, store: bool = True) -> Iterator[PlanWatch]:
    """Watches the plan made in the block; keeps what `PlanWatch.done` is given, with what the
    plan depended on, when nothing keeps it from being vouched for (the module docstring).
    With `store=False` it watches nothing and keeps nothing."""
    watch = PlanWatch(request.project_dir)
    try:
        entry = _entry(request) if store and request.app_checks else None
    except Exception:  # no cache directory to be had (no home directory): no cache
        entry = None
    if entry is None or _under(str(request.project_dir.resolve()), str(entry.parent.parent)):
        yield watch
        return
    tempfile.gettempdir()  # found once per process, by writing a file: not the plan's doing
    watch.start(str(entry.parent.parent))
    _install_hook()
    try:
        with app_runs.observing(watch.saw_run):
            yield watch
    finally:
        watch.stop()
    with contextlib.suppress(Exception):  # a cache is never an error
        watch.keep(entry)


@dataclass
class PlanWatch:
    """What one plan read, printed, started and changed, as the audit hook, its standard
    streams and `app_runs` tell it."""

    project_dir: Path
    # Each path read or listed, with its identity when it was.
    read: dict[str, Identity] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)  # files it wrote, renamed, removed...
    made: set[str] = field(default_factory=set)  # temporary files and directories of its own
    processes: list[tuple[str, ...]] = field(default_factory=list)
    runs: list[app_runs.RunUse] = field(default_factory=list)
    printed: list[tuple[str, str]] = field(default_factory=list)
    # Why the plan cannot be kept; None while nothing says so.
    unkept: str | None = None
    output: PlanOutput | None = None
    started_ns: int = 0
    cache: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _streams: tuple[TextIO, TextIO] | None = None  # the standard streams, while copied

    def start(self, cache: str) -> None:
        """Watching starts: the audit hook's events and the standard streams."""
        global _WATCHING
        self.started_ns = time.time_ns()
        self.cache = cache
        self._streams = sys.stdout, sys.stderr
        sys.stdout = _Copying(sys.stdout, "stdout", self)
        sys.stderr = _Copying(sys.stderr, "stderr", self)
        _WATCHING = self

    def stop(self) -> None:
        """Watching ends (again: nothing)."""
        global _WATCHING
        if _WATCHING is self:
            _WATCHING = None
        if self._streams is not None:
            sys.stdout, sys.stderr = self._streams
            self._streams = None

    def done(self, output: PlanOutput) -> None:
        """The plan's output, kept when the block ends. Watching stops here: what the command
        does next (printing the plan, writing `--json`) is its own, not the plan's, and the
        plan is printed before the time it takes to keep it."""
        self.output = output
        self.stop()

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
            if isinstance(flags, int) and flags & WRITE_FLAGS:
                self._changed(path)
            elif path.startswith(app_runs.VIRTUAL_FILES) and path != os.devnull:
                self.unkept = f"the plan read {path}, which changes without a change time"
            elif path.endswith(".pyc"):  # bytecode: its module's source counts
                self._read(_source_of(path))
            else:
                self._read(path)
        elif event in ("os.listdir", "os.scandir"):
            path = audited_path(arguments[0] if arguments[0] is not None else ".")
            if path is not None:
                self._read(path)
        elif event == "sqlite3.connect":
            path = audited_path(arguments[0])
            if path is not None and arguments[0] != ":memory:":
                for suffix in ("", "-wal", "-shm"):  # a database in WAL mode changes these
                    self._read(path + suffix)
        elif event in TEMPORARY_EVENTS:
            path = audited_path(arguments[0])
            if path is not None:
                self.made.add(path)
        elif event == "subprocess.Popen":
            command = arguments[1]
            if isinstance(command, (str, bytes, os.PathLike)):
                command = [command]
            with self._lock:
                self.processes.append(tuple(os.fsdecode(part) for part in command))
        elif event in OUTSIDE_EFFECTS:
            self.unkept = f"the plan made a call that reaches beyond its files ({event})"
        elif event in FILE_CHANGES:
            for index in FILE_CHANGES[event]:
                path = audited_path(arguments[index]) if index < len(arguments) else None
                if path is not None:
                    self._changed(path)

    def _read(self, path: str) -> None:
        if path not in self.read:
            self.read[path] = identity(path)

    def _changed(self, path: str) -> None:
        # Normalised: `<cache>/../x` is outside the cache, whatever its first part says.
        with self._lock:
            self.changed.add(os.path.normpath(path))

    def _scratch(self, path: str) -> bool:
        """Whether a path the plan changed is none of its doing: the caches, bytecode, the null
        device, and the temporary files and directories it made (`tempfile` says so only once
        it made them, hence the check at the end)."""
        return (
            path == os.devnull
            or "__pycache__" in Path(path).parts
            or _under(path, self.cache)
            or bool(sys.pycache_prefix and _under(path, sys.pycache_prefix))
            or any(_under(path, made) for made in self.made)
        )

    def keep(self, entry: Path) -> None:
        """Stores the output, unless the plan cannot be vouched for."""
        if self.output is None or self.unkept is not None:
            return
        if not all(self._scratch(path) for path in self.changed):
            return  # it changed a file: printed again, the change would not be made
        if any(
            _too_recent(known, self.started_ns) and not self._scratch(path)
            for path, known in self.read.items()
        ):
            return  # a file just written (a project made a moment ago): known before the rest
        paths = self._dependencies()
        if paths is None:
            return
        dependencies = {path: identity(path) for path in sorted(paths)}
        for path, known in self.read.items():
            if path in dependencies and dependencies[path] != known:
                return  # it changed while the plan ran: what it read may be either version
        if any(_too_recent(known, self.started_ns) for known in dependencies.values()):
            return
        store_entry(
            entry,
            {
                "format": FORMAT,
                "dependencies": dependencies,
                "document": self.output.document,
                "text": self.output.text,
                "warnings": list(self.output.warnings),
                "code": self.output.code,
                "printed": self.printed,
                "planned_at": self.started_ns / 1e9,
            },
            MAX_ENTRIES,
        )

    def _dependencies(self) -> set[str] | None:
        """Every path the plan depended on (the module docstring); None when it cannot be
        vouched for: a process of its own, an app run not cached, a project too large."""
        started = Counter(use.started for use in self.runs if use.started is not None)
        if Counter(self.processes) - started or any(use.stored is None for use in self.runs):
            return None
        paths = set(self.read) | _module_paths()
        app_dir = self.output.app_dir if self.output else None
        for top in {self.project_dir.resolve(), *([app_dir.resolve()] if app_dir else [])}:
            entries = _tree(top, self.cache)
            if entries is None:
                return None
            paths.update(entries)
            paths.update(_repository_ancestors(top))
        for use in self.runs:
            assert use.stored is not None  # checked above
            paths.update(use.stored["files"], use.stored["listings"])
            paths.update(str(Path(part).absolute()) for part in use.command[1:2])
        # The checks share their app and interpreter: each walked and resolved once.
        for app_dir in {use.app_dir for use in self.runs}:
            paths.update(app_runs.tree_paths(app_dir))
        for interpreter in {use.command[0] for use in self.runs}:
            paths.update(app_runs.startup_files(interpreter))
            paths.update({str(Path(interpreter).absolute()), os.path.realpath(interpreter)})
        # The caches' own files are vouched for by the entries read above; its temporary files
        # are gone.
        return {
            path
            for path in paths
            if not _under(path, self.cache) and not any(_under(path, made) for made in self.made)
        }


class _Copying:
    """A standard stream that also copies what is written to it into a watch. Bytes written to
    its buffer keep the plan from being kept (they would not be printed again)."""

    def __init__(self, stream: TextIO, name: str, watch: PlanWatch) -> None:
        self._stream, self._name, self._watch = stream, name, watch

    def write(self, text: str) -> int:
        written = self._stream.write(text)
        self._watch.printed.append((self._name, text))
        return written

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        if name == "buffer":
            self._watch.unkept = f"the plan wrote to the {self._name} stream's buffer"
        return getattr(self._stream, name)


def identity(path: str) -> Identity:
    """A path's identity on disk (the module docstring), its target's too for a link (or a
    mark for a link to nothing); None when it does not exist."""
    try:
        status = os.lstat(path)
    except (OSError, ValueError):
        return None
    known = _fields(status)
    if stat.S_ISLNK(status.st_mode):
        try:
            known += _fields(Path(path).stat())
        except (OSError, ValueError):
            known.append(-1)
    return known


def _fields(status: os.stat_result) -> list[int]:
    # The app runs' identity and the mode: the change time comes fifth in each group of six
    # (`_too_recent`).
    return [*app_runs.identity(status), status.st_mode]


def _too_recent(known: Identity, started_ns: int) -> bool:
    """Whether a change time of `known` is so close to the plan's start that a later change
    could keep it (the slack of a coarse clock)."""
    return not all(app_runs.settled(changed, started_ns) for changed in (known or [])[4::6])


def _source_of(bytecode: str) -> str:
    """The source file of a module's bytecode: `dir/__pycache__/name.TAG.pyc` is `dir/name.py`,
    and under `sys.pycache_prefix` the source's directory is the path below the prefix."""
    directory, name = os.path.split(bytecode)
    module = name.split(".", 1)[0] + ".py"
    prefix = sys.pycache_prefix
    if prefix and _under(directory, prefix):
        return os.path.join(directory[len(prefix.rstrip(os.sep)) :] or os.sep, module)  # noqa: PTH118
    return os.path.join(os.path.dirname(directory), module)  # noqa: PTH118, PTH120


def _module_paths() -> set[str]:
    """The file of every module loaded, the directories of packages, every directory that
    imports looked in (`sys.path` and those holding a module), and the `.pth` files of the site
    directories, whose lines run as the interpreter starts. (os.path, not pathlib: a plan of an
    AWS stack has some 1,500 modules, and pathlib's objects would cost it tens of ms.)"""
    paths = {os.path.abspath(entry) for entry in sys.path if entry}  # noqa: PTH100
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str):
            file = os.path.abspath(file)  # noqa: PTH100
            paths.update((file, os.path.dirname(file)))  # noqa: PTH120
        for directory in getattr(module, "__path__", None) or ():
            if isinstance(directory, str):
                paths.add(os.path.abspath(directory))  # noqa: PTH100
    for directory in [*site.getsitepackages(), site.getusersitepackages()]:
        with contextlib.suppress(OSError):
            paths.update(str(path) for path in Path(directory).glob("*.pth"))
    return paths


def _tree(top: Path, cache: str) -> list[str] | None:
    """Every directory, file and link under `top` but those of `SKIPPED_DIRECTORIES`, tools'
    caches, virtual environments and the `cache` directory; None past
    `MAX_PROJECT_ENTRIES`. A link to a directory is not followed."""
    found: list[str] = []
    for directory, subdirectories, files in os.walk(top):
        subdirectories[:] = [
            name
            for name in subdirectories
            if name not in SKIPPED_DIRECTORIES
            and not name.endswith(SKIPPED_SUFFIXES)
            and not Path(directory, name, "pyvenv.cfg").exists()
            and not _under(os.path.join(directory, name), cache)  # noqa: PTH118
        ]
        found.append(directory)
        found.extend(os.path.join(directory, name) for name in files)  # noqa: PTH118
        if len(found) > MAX_PROJECT_ENTRIES:
            return None
    return found


def _repository_ancestors(top: Path) -> list[str]:
    """The directories above `top` up to the top of its git repository, when it is in one: a
    file created or removed in them (a `.env` that python-dotenv looks for in every parent, a
    settings file a program looks for beside the project) changes their identity. Not above a
    repository, nor where there is none: the home and temporary directories change all the
    time."""
    ancestors: list[str] = []
    for directory in (top, *top.parents):
        if (directory / ".git").exists():
            return ancestors
        ancestors.append(str(directory.parent))
    return []


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


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
        "interpreter": [sys.executable, sys.version, repr(sys.flags), sys.warnoptions],
        "path": sys.path,
    }
    key = hashlib.blake2b(json.dumps(described).encode(), digest_size=20).hexdigest()
    return cache_home().absolute() / "plans" / f"{key}.json"


# The watch of the plan being made, seen by the audit hook; the hook is added once per process
# (audit hooks cannot be removed) and does nothing while no plan is watched. The command makes
# one plan per process.
_WATCHING: PlanWatch | None = None
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
    watch = _WATCHING
    if event in WATCHED_EVENTS and watch is not None and not getattr(_HOOK_STATE, "busy", False):
        _HOOK_STATE.busy = True  # what the watch calls is not part of the plan
        try:
            watch.saw(event, arguments)
        except Exception:  # never the program's error: the plan is not kept
            watch.unkept = f"its {event} could not be followed"
        finally:
            _HOOK_STATE.busy = False
