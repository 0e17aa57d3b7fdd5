"""Our side of the model write probe (`orm_probe.py`): which apps a release migrates, and one
version's probe running beside the rollout, its operations collected as the load's `Sample`s.

The probe runs in the version's own interpreter, which may be a virtualenv without
model_bakery: the probe is given a directory holding only our installed model_bakery, which it
puts on its path only when the app has no model_bakery of its own (the app's wins, as it fits
the app's Django), and nothing else of ours (our Django, psycopg, redis...) can change what the
app imports.

Typical use, the old version's probe started before the migration and the new version's after
it (a model the migration adds has no table before):

    apps = migrating_apps(python, new.directory, new_env, timeout=60)
    with running_write_probe(python=..., cwd=old.directory, env=old_env, version="v1",
                             apps=apps, database_name="rehearsal", log=...) as old_probe:
        ...  # migrate, roll out
        samples = old_probe.stop()
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pulumi_django.cli.rehearsal import orm_probe
from pulumi_django.cli.rehearsal.load import Sample
from pulumi_django.cli.rehearsal.orm_probe import (
    LENT_LIBRARY_VARIABLE,
    PROBE_DATABASE_VARIABLE,
    REFUSED_EXIT_CODE,
)
from pulumi_django.cli.rehearsal.servers import log_tail, stop_process
from pulumi_django.errors import PulumiDjangoError

# Run as a script in the app's interpreter; imported here only for its names (stdlib only).
PROBE_SCRIPT = Path(orm_probe.__file__)
# Between the probe's rounds, at least (longer rounds get longer pauses: orm_probe.py). A round
# of a few models takes some milliseconds: 8 rounds a second, an eighth of a core.
DEFAULT_PAUSE_SECONDS = 0.1
# Django's start and the warm-up round over every model.
READY_TIMEOUT_SECONDS = 60.0
# The probe ends its current round (a few milliseconds) when told to stop.
STOP_TIMEOUT_SECONDS = 10.0


class WriteProbeError(PulumiDjangoError):
    """The probe could not run; the message says why, with the end of its log."""


def migrating_apps(
    python: str, cwd: Path, env: Mapping[str, str], database_name: str, timeout: float
) -> list[str]:
    """The labels of the apps with migrations that `cwd`'s code would apply to the database
    `env` configures, which must be `database_name` on loopback (run it with the new version
    before its migration)."""
    try:
        completed = subprocess.run(
            [python, str(PROBE_SCRIPT), "plan"],
            cwd=cwd,
            env={**env, PROBE_DATABASE_VARIABLE: database_name},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise WriteProbeError(f"the migration plan took longer than {timeout:.0f} s") from None
    except OSError as error:
        raise WriteProbeError(f"the migration plan did not start: {error}") from None
    if completed.returncode != 0:
        tail = "\n".join(completed.stderr.splitlines()[-30:])
        raise WriteProbeError(f"the migration plan failed (exit {completed.returncode}):\n{tail}")
    # The plan is the last line: an app's sitecustomize may print before the probe starts.
    lines = completed.stdout.strip().splitlines()
    try:
        apps = json.loads(lines[-1])["apps"]
    except (IndexError, ValueError, KeyError, TypeError):
        apps = None
    if not isinstance(apps, list) or not all(isinstance(app, str) for app in apps):
        raise WriteProbeError(
            f"the migration plan printed no list of apps: {completed.stdout[-300:]!r}"
        )
    return apps


class WriteProbe:
    """One version's running probe. `models` are the models it probes, `skipped` the ones it
    does not, with why (it grows when a model stops being buildable mid-run)."""

    def __init__(
        self, process: subprocess.Popen[bytes], version: str, log: Path, shelf: Path
    ) -> None:
        self.version = version
        self.models: list[str] = []
        self.skipped: dict[str, str] = {}
        # Why the probe ended before stop() asked it to, with the end of its log; None if it
        # did not: operations after that moment were not probed.
        self.exited_early: str | None = None
        self._process = process
        self._log = log
        self._shelf = shelf
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stopped = False
        self._reader = threading.Thread(target=self._read, name=f"write-probe-{version}")
        self._reader.start()

    def samples(self) -> list[Sample]:
        """The operations so far, in order."""
        with self._lock:
            return list(self._samples)

    def stop(self) -> list[Sample]:
        """Stops the probe (SIGTERM: it ends its round; then SIGKILL) and returns every
        operation it made. Calling it again returns the same."""
        if not self._stopped:
            self._stopped = True
            if self._process.poll() is not None:  # it runs until told to stop
                self.exited_early = self._exit_message()
            stop_process(self._process, STOP_TIMEOUT_SECONDS)
            self._reader.join()
            if self._process.stdin is not None:
                self._process.stdin.close()
            shutil.rmtree(self._shelf, ignore_errors=True)
        return self.samples()

    def release(self) -> None:
        """The first round of a probe started with `hold`, now (its version now serves)."""
        if self._process.stdin is not None and self._process.poll() is None:
            with contextlib.suppress(OSError):  # it died: stop() says so
                self._process.stdin.write(b"go\n")
                self._process.stdin.flush()

    def wait_until_ready(self, timeout: float, abandon: threading.Event | None = None) -> None:
        """Until its warm-up round is done; WriteProbeError when it exits first, takes longer
        than `timeout`, or `abandon` is set meanwhile (it is not needed any more)."""
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if abandon is not None and abandon.is_set():
                raise WriteProbeError(f"the write probe of {self.version} was not needed")
            if self._process.poll() is not None:
                self._reader.join()  # the ready line may still be in the pipe
                if self._ready.is_set():
                    return
                raise WriteProbeError(f"the write probe of {self.version} {self._exit_message()}")
            if time.monotonic() > deadline:
                raise WriteProbeError(
                    f"the write probe of {self.version} was not ready within {timeout:.0f} s:\n"
                    f"{log_tail(self._log)}"
                )

    def _exit_message(self) -> str:
        code = self._process.returncode
        why = "refused to run" if code == REFUSED_EXIT_CODE else f"exited with {code}"
        return f"{why}:\n{log_tail(self._log)}"

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            try:
                message = json.loads(line)
                if not isinstance(message, dict):
                    raise TypeError(f"not an object: {message!r}")
                self._receive(message)
            except (ValueError, KeyError, TypeError):
                # Not the probe's (printed before it took stdout over: a sitecustomize): kept
                # in the log, so the reader goes on.
                with self._log.open("ab") as log:
                    log.write(line)

    def _receive(self, message: dict[str, Any]) -> None:
        if "op" in message:
            error = message["error"]
            sample = Sample(
                started=message["t"],
                method=message["op"],
                path=message["model"],
                status=None,
                latency_ms=message["ms"],
                failure="orm" if error else None,
                detail=error or "",
                version=self.version,
            )
            with self._lock:
                self._samples.append(sample)
        elif "ready" in message:
            self.models = list(message["models"])
            self.skipped.update(message["skipped"])
            self._ready.set()
        else:
            self.skipped.update(message["skipped"])


def start_write_probe(
    *,
    python: str,
    cwd: Path,
    env: Mapping[str, str],
    version: str,
    apps: Sequence[str],
    database_name: str,
    log: Path,
    pause: float = DEFAULT_PAUSE_SECONDS,
    ready_timeout: float = READY_TIMEOUT_SECONDS,
    hold: bool = False,
    abandon: threading.Event | None = None,
) -> WriteProbe:
    """The probe of `version` (its code in `cwd`, run by `python` with the version's whole
    environment `env`) writing the models of `apps`, once its warm-up round is done; the
    caller stops it. It refuses any database but `database_name` on loopback. Its stderr (and
    anything the app prints) goes to `log`. With `hold`, it writes only once released
    (`WriteProbe.release`): its start and warm-up can go on beside its version's, and
    `abandon` set meanwhile stops it (WriteProbeError) without waiting for them."""
    if not apps:
        raise ValueError("the write probe needs at least one app")
    # Beside the log: the bytecode of what it lends goes where the caller's own goes.
    shelf = Path(tempfile.mkdtemp(prefix="pd-write-probe-", dir=log.parent))
    (shelf / "model_bakery").symlink_to(_model_bakery_directory())
    probe_env = {
        **env,
        PROBE_DATABASE_VARIABLE: database_name,
        LENT_LIBRARY_VARIABLE: str(shelf),
        "PYTHONUNBUFFERED": "1",
    }
    command = [python, str(PROBE_SCRIPT), "run", "--apps", ",".join(apps)]
    try:
        with log.open("ab") as stderr:
            process = subprocess.Popen(
                [*command, "--pause", str(pause), *["--hold"] * hold],
                cwd=cwd,
                env=probe_env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,
            )
    except OSError as error:
        shutil.rmtree(shelf, ignore_errors=True)
        raise WriteProbeError(f"the write probe of {version} did not start: {error}") from None
    probe = WriteProbe(process, version, log, shelf)
    try:
        probe.wait_until_ready(ready_timeout, abandon)
    except BaseException:
        probe.stop()
        raise
    return probe


@contextlib.contextmanager
def running_write_probe(**options: Any) -> Iterator[WriteProbe]:
    """`start_write_probe(**options)`, stopped on exit."""
    probe = start_write_probe(**options)
    try:
        yield probe
    finally:
        probe.stop()


def _model_bakery_directory() -> Path:
    """Our model_bakery's package directory, found without importing it (and Django)."""
    spec = importlib.util.find_spec("model_bakery")
    if spec is None or spec.origin is None:
        raise WriteProbeError("model_bakery is not installed beside pulumi-django")
    return Path(spec.origin).parent
