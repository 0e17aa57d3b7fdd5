"""The model write probe: one version's own ORM writing every model of the apps a release migrates.

A standalone script, run in the app's interpreter (which may be another virtualenv, on
Python 3.10+), from the version's directory, with the environment the version's replicas get:

    APP_PYTHON orm_probe.py plan
        One JSON line: the apps with migrations not yet applied to the configured database:
        {"apps": ["journal"]}.

    APP_PYTHON orm_probe.py run --apps journal,blog --pause 0.1 [--hold]
        Probes every concrete model of those apps, in rounds (`--pause` seconds apart at least),
        until SIGTERM or until its stdin closes. With `--hold`, the rounds wait after the ready
        line until a line comes on stdin: the probe gets ready while its version starts, and
        writes once the version serves. Per model and round: create
        (`model_bakery.baker.make`, which also makes the required related objects), update (new
        values, `save()`), read (`get(pk=...)`), delete.
        First a warm-up round, then the line {"ready": true, "models": [...], "skipped":
        {"app.Model": "why"}}; then one line per operation: {"t": <time.monotonic()>, "op":
        "create", "model": "journal.Entry", "ms": 1.2, "error": null or "IntegrityError
        (NotNullViolation): null value in column ..."}, and {"skipped": {"app.Model": "why"}}
        when a model stops being probed.

It imports only the standard library, Django and model_bakery: never pulumi_django, which the
app's interpreter does not have.

Why each model's round is one transaction that is rolled back: the rows the probe writes are
never visible to anyone else (the rehearsal's load never follows a link to a row about to
vanish, and `transaction.on_commit` side effects never fire), and nothing is left behind, even
when the probe is killed mid-round. Nothing a version skew breaks is lost: NOT NULL, CHECK and
unique violations and missing columns or tables fail at the statement, not at the commit. Each
operation runs in its own savepoint, so a failed one does not abort the operations after it.

Only database errors (`django.db.DatabaseError`) are failures. Any other exception (baker cannot
build the model, a validation error, a custom `save()` that needs a service) says the probe
cannot exercise that model: it is skipped, with the reason, and not probed again. So is a model
whose operations fail in the warm-up: a version's probe starts while the database has that
version's schema (the old one's before the migration, the new one's after), so such an error is
not the release's doing. An operation's "ms" includes its savepoint.

Both commands refuse to run (exit 2) unless the default database is the one named in
PULUMI_DJANGO_PROBE_DATABASE, on loopback: it must never write to a real database.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

PROBE_DATABASE_VARIABLE = "PULUMI_DJANGO_PROBE_DATABASE"
LENT_LIBRARY_VARIABLE = "PULUMI_DJANGO_PROBE_LIBRARY"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
REFUSED_EXIT_CODE = 2
ERROR_LENGTH = 300
# After each round the probe idles at least this many times as long as the round took: it uses
# at most a quarter of a core, however many models the apps have.
IDLE_PER_BUSY = 3
# Where a model keeps its own type (Wagtail's pages, django-polymorphic).
TYPE_FIELDS = frozenset({"content_type", "polymorphic_ctype"})
# Where django-treebeard keeps a node's place in its tree (materialized path, nested sets,
# adjacency list): set by add_child, never by hand.
TREE_FIELDS = frozenset({"path", "depth", "numchild", "lft", "rgt", "tree_id", "sib_order"})


class Skip(Exception):
    """The probe cannot exercise this model; the message says why."""


def main(argv: list[str]) -> int:
    protocol = _take_stdout()
    _import_from_working_directory()
    arguments = _parse_arguments(argv)
    # Before django.setup(): an app's ready() may already write to the database.
    refusal = _refusal()
    if refusal:
        print(f"orm_probe: {refusal}", file=sys.stderr)
        return REFUSED_EXIT_CODE
    import django

    django.setup()
    if arguments.command == "plan":
        _write(protocol, _migration_plan())
        return 0
    _import_model_bakery()
    stopping, go = _stop_on_signal_or_eof()
    if not arguments.hold:
        go.set()
    labels = [label for label in arguments.apps.split(",") if label]
    _probe(labels, arguments.pause, protocol, stopping, go)
    return 0


def _take_stdout() -> TextIO:
    """The protocol keeps the real stdout; anything the app prints goes to stderr instead, so
    a settings module that prints cannot break the JSON lines."""
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return protocol


def _import_from_working_directory() -> None:
    """The app's modules import as under manage.py: from the version's directory (the current
    one), not from this script's directory, whose modules must not shadow the app's."""
    script_directory = Path(__file__).resolve().parent
    if sys.path and Path(sys.path[0] or ".").resolve() == script_directory:
        sys.path[0] = str(Path.cwd())
    else:
        sys.path.insert(0, str(Path.cwd()))


def _parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="orm_probe.py")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("plan", help="the apps with migrations to apply")
    run = commands.add_parser("run", help="probe the models of --apps until SIGTERM")
    run.add_argument("--apps", required=True, help="comma-separated app labels")
    run.add_argument("--pause", type=float, required=True, help="seconds between rounds, at least")
    run.add_argument(
        "--hold", action="store_true", help="after the ready line, wait for a line on stdin"
    )
    return parser.parse_args(argv)


def _import_model_bakery() -> None:
    """The app's own model_bakery when it has one (made for its Django), else the one
    pulumi-django lends (LENT_LIBRARY_VARIABLE), put last on the path."""
    try:
        import model_bakery
    except ImportError:
        lent = os.environ.get(LENT_LIBRARY_VARIABLE)
        if lent:
            sys.path.append(lent)
        try:
            import model_bakery  # noqa: F401
        except ImportError as error:
            # The lent one needs the Django it was made for.
            import django

            version = ".".join(str(part) for part in django.VERSION[:2])
            print(
                f"orm_probe: model_bakery cannot be imported with Django {version} ({error}): "
                "install a model-bakery release for that Django in the app's interpreter",
                file=sys.stderr,
            )
            raise SystemExit(1) from None


def _write(protocol: TextIO, line: dict[str, Any]) -> None:
    protocol.write(json.dumps(line) + "\n")


def _migration_plan() -> dict[str, list[str]]:
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return {"apps": sorted({migration.app_label for migration, _ in plan})}


def _refusal() -> str | None:
    """Why the default database is not the rehearsal's throwaway one, or None when it is."""
    from django.conf import settings

    database = settings.DATABASES.get("default", {})
    expected = os.environ.get(PROBE_DATABASE_VARIABLE, "")
    name, host = str(database.get("NAME", "")), str(database.get("HOST", ""))
    if not expected or name != expected:
        return (
            f"refused: the default database is {name!r}, not {PROBE_DATABASE_VARIABLE}={expected!r}"
        )
    if host not in LOOPBACK_HOSTS:
        return f"refused: the database host {host!r} is not loopback"
    return None


def _stop_on_signal_or_eof() -> tuple[threading.Event, threading.Event]:
    """`stopping`: set on SIGTERM or when stdin closes (the parent is gone); the current
    operation ends first, so its transaction is rolled back rather than cut off. `go`: set
    when anything comes on stdin (what `--hold` waits for), and when stopping."""
    stopping, go = threading.Event(), threading.Event()

    def stop(*_: object) -> None:
        stopping.set()
        go.set()

    signal.signal(signal.SIGTERM, stop)

    def wait_for_eof() -> None:
        # os.read, not sys.stdin: a daemon thread blocked in a buffered read aborts the
        # interpreter's shutdown.
        while os.read(sys.stdin.fileno(), 4096):
            go.set()
        stop()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    return stopping, go


def _probe(
    labels: list[str],
    pause: float,
    protocol: TextIO,
    stopping: threading.Event,
    go: threading.Event,
) -> None:
    from django.conf import settings
    from django.db import close_old_connections

    # The app's signal handlers may send mail about the rows the probe writes: never for real.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    models, skipped = _probed_models(labels)
    for label, model in list(models.items()):
        try:
            errors = [error for *_, error in _round(model) if error]
        except Skip as reason:
            errors, skipped[label] = [], str(reason)
        if errors:
            skipped[label] = f"the database refused it in the warm-up already: {errors[0]}"
        if label in skipped:
            del models[label]
    _write(protocol, {"ready": True, "models": sorted(models), "skipped": skipped})
    go.wait()
    while not stopping.is_set():
        round_started = time.monotonic()
        # As Django does around each request: a connection that broke is not reused.
        close_old_connections()
        for label, model in list(models.items()):
            if stopping.is_set():
                break
            try:
                results = _round(model)
            except Skip as reason:
                del models[label]
                _write(protocol, {"skipped": {label: str(reason)}})
                continue
            for started, op, ms, error in results:
                _write(protocol, {"t": started, "op": op, "model": label, "ms": ms, "error": error})
        # An app with many models makes long rounds: the probe still idles most of the time.
        stopping.wait(max(pause, IDLE_PER_BUSY * (time.monotonic() - round_started)))
    close_old_connections()


def _probed_models(labels: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The models to probe by label ("journal.Entry"), and why the others are not. Abstract
    models are not registered and swapped ones (auth.User for a custom user) not listed."""
    from django.apps import apps
    from django.db import DEFAULT_DB_ALIAS, router

    models: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for app_label in labels:
        try:
            config = apps.get_app_config(app_label)
        except LookupError:
            skipped[app_label] = "no such app in this version"
            continue
        for model in config.get_models():
            options = model._meta
            if options.proxy:
                skipped[options.label] = "a proxy model: its concrete model is probed"
            elif not options.managed:
                skipped[options.label] = "unmanaged (Meta.managed = False)"
            elif (database := router.db_for_write(model)) != DEFAULT_DB_ALIAS:
                skipped[options.label] = f"written to the database {database!r}, not the default"
            else:
                models[options.label] = model
    return models, skipped


def _round(model: Any) -> list[tuple[float, str, float, str | None]]:
    """Create, update, read and delete one instance, in a transaction that is rolled back;
    each operation as (monotonic start, operation, milliseconds, database error or None).
    Skip when an operation raises anything but a database error. A failed create ends the
    round: there is nothing to update."""
    from django.db import DEFAULT_DB_ALIAS, DatabaseError, transaction

    results: list[tuple[float, str, float, str | None]] = []

    def attempt(op: str, action: Any) -> bool:
        started = time.monotonic()
        error = None
        try:
            with transaction.atomic(using=DEFAULT_DB_ALIAS):
                action()
        except DatabaseError as failure:
            error = _describe(failure)
        except Exception as failure:
            raise Skip(f"{op} raised {_describe(failure)}") from None
        results.append((started, op, _milliseconds_since(started), error))
        return error is None

    made: list[Any] = []
    started = time.monotonic()
    try:
        with transaction.atomic(using=DEFAULT_DB_ALIAS):
            if attempt("create", lambda: made.append(_make(model))):
                instance = made[0]
                attempt("update", lambda: _update(instance))
                attempt(
                    "read",
                    lambda: model._base_manager.using(DEFAULT_DB_ALIAS).get(pk=instance.pk),
                )
                attempt("delete", instance.delete)
            transaction.set_rollback(True, using=DEFAULT_DB_ALIAS)
    except DatabaseError as failure:  # the transaction could not even begin: no connection
        results.append((started, "create", _milliseconds_since(started), _describe(failure)))
    return results


def _make(model: Any) -> Any:
    """A new, saved instance, as the app would make one: model-bakery fills the fields and
    makes the related objects. A tree node (django-treebeard: Wagtail's pages, categories) is
    added under the tree's first root, as the app adds one (a random `path` would have no
    parent); a type field holds the model's own type (Wagtail pages and polymorphic models
    read it back as their class)."""
    from django.db import DEFAULT_DB_ALIAS
    from model_bakery import baker

    own_type = _own_type_fields(model)
    if not _is_tree_node(model):
        return baker.make(model, _using=DEFAULT_DB_ALIAS, **own_type)
    instance = baker.prepare(model, _save_related=True, _using=DEFAULT_DB_ALIAS, **own_type)
    manager = _tree_manager(model)
    if manager is not None:  # treebeard 7 and later
        root = manager.get_first_root_node()
        if root is None:
            return manager.add_root(instance=instance)
        return manager.add_child(root, instance=instance)
    root = model.get_first_root_node()  # earlier treebeard (Wagtail pins one): classmethods
    if root is None:
        return model.add_root(instance=instance)
    return root.add_child(instance=instance)


def _tree_manager(model: Any) -> Any:
    """The manager that adds nodes (treebeard 7 moved add_root and add_child there), if any."""
    manager = model._default_manager
    return manager if callable(getattr(manager, "add_root", None)) else None


def _is_tree_node(model: Any) -> bool:
    return _tree_manager(model) is not None or (
        callable(getattr(model, "add_root", None))
        and callable(getattr(model, "get_first_root_node", None))
    )


def _own_type_fields(model: Any) -> dict[str, Any]:
    from django.apps import apps

    if not apps.is_installed("django.contrib.contenttypes"):  # no type to keep, then
        return {}
    from django.contrib.contenttypes.models import ContentType

    return {
        field.name: ContentType.objects.get_for_model(model)
        for field in model._meta.concrete_fields
        if field.name in TYPE_FIELDS and field.related_model is ContentType
    }


def _update(instance: Any) -> None:
    """New values in the fields a user edits, then `save()`, which writes every column."""
    from model_bakery import baker

    fields = _editable_fields(type(instance))
    if fields:
        fresh = baker.prepare(type(instance), _fill_optional=[field.name for field in fields])
        for field in fields:
            setattr(instance, field.attname, getattr(fresh, field.attname))
    instance.save()


def _editable_fields(model: Any) -> list[Any]:
    """The plain columns an update changes: not the key, relations (a new related object is a
    create), unique columns (a random value could clash with another row), files (a new one
    would be written to the media storage), columns the database computes, or a tree node's
    place in its tree (treebeard keeps those)."""
    from django.db.models import FileField

    tree_node = _is_tree_node(model)
    return [
        field
        for field in model._meta.concrete_fields
        if field.editable
        and not field.primary_key
        and not field.is_relation
        and not field.unique
        and not isinstance(field, FileField)
        and not getattr(field, "generated", False)
        and not (tree_node and field.name in TREE_FIELDS)
    ]


def _describe(error: BaseException) -> str:
    """`IntegrityError (NotNullViolation): null value in column "tags" ...`: the error, the
    driver's error class when Django wraps one, and the first line of the message (the next
    lines repeat the row's random values)."""
    kind = type(error).__name__
    cause = error.__cause__
    if cause is not None and type(cause).__name__ != kind:
        kind = f"{kind} ({type(cause).__name__})"
    lines = str(error).strip().splitlines()
    return f"{kind}: {lines[0] if lines else ''}"[:ERROR_LENGTH]


def _milliseconds_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
