"""Finds Django migrations that would break the version still running during a rolling update.

One self-contained file, stdlib and Django only, so that it runs in the app's own environment
(its virtualenv, or the built app image):

    python analyzer.py --settings MODULE [--pythonpath DIR] [--all | LABEL ...] [--json]
    python -c "$(analyzer source)" --settings MODULE ...

The database is the app's own `default` one, from its settings (which should read
DATABASE_URL; the report warns when they name another database). It must be PostgreSQL: any
other engine is refused before it is opened, so no database file is ever created; the
database is only read. On a new database (a first deploy) nothing is judged. (The runner
also keeps bytecode out of the project.)
Exit status: 0 nothing unsafe, 1 an unsafe finding nobody acknowledged, 2 the project, its
settings or its database could not be used (one line on stderr, never a traceback).
Every Django import happens inside a function, so the report types below import anywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import math
import os
import re
import sys
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

UNSAFE = "unsafe"
WARNING = "warning"
# What an acknowledgement names: one migration (`shop.0007_drop_price`), or every migration of
# an app (`wagtailusers.*`, or just `wagtailusers`), e.g. a library's, which cannot carry the
# marker comment and whose upgrade brings several migrations at once.
ACKNOWLEDGED_NAME = re.compile(r"^(?P<app>[a-z_]\w*)(?P<migration>\.\d{4}_\w+|\.\*)?$")
WHOLE_APP = ".*"
ACKNOWLEDGED_NAME_HELP = (
    "use app_label.migration_name (e.g. shop.0007_drop_price), or app_label.* for every "
    "migration of an app (e.g. wagtailusers.*)"
)
MIN_REASON_LENGTH = 10
# `# pulumi-django: acknowledge-unsafe <reason>` anywhere in a migration file.
MARKER = re.compile(r"^\s*#\s*pulumi-django:\s*acknowledge-unsafe(?:[\s:]+(?P<reason>.*))?$")
MARKER_EXAMPLE = "# pulumi-django: acknowledge-unsafe <why it is safe for this release>"


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    what: str
    suggestion: str


RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule(
            "not-null-column-without-db-default",
            UNSAFE,
            "A NOT NULL column is added to an existing table with only a Python `default=` "
            "(or none): Django drops the database default, so inserts from the running "
            "version, which omit the column, fail.",
            "Give the field `db_default=` so the database keeps the default; or add it with "
            "`null=True`, backfill, and make it NOT NULL in a later release.",
        ),
        Rule(
            "not-null-foreign-key",
            UNSAFE,
            "A NOT NULL foreign key is added to an existing table: the running version "
            "inserts rows without it.",
            "Add the foreign key with `null=True`, backfill it, and make it NOT NULL in a "
            "later release, once every running version sets it.",
        ),
        Rule(
            "column-made-not-null",
            UNSAFE,
            "A nullable column becomes NOT NULL: the running version may still write NULL, "
            "and the table is scanned under an exclusive lock.",
            "First release code that always sets the column; then add "
            "`CHECK (column IS NOT NULL) NOT VALID`, validate it, and set NOT NULL in a "
            "later release.",
        ),
        Rule(
            "column-dropped",
            UNSAFE,
            "A column is dropped while the running version still selects and writes it.",
            "Stop using the field in one release (remove it from the model state only, with "
            "`SeparateDatabaseAndState`, keeping the column nullable or with a `db_default`), "
            "then drop the column in the next release.",
        ),
        Rule(
            "table-dropped",
            UNSAFE,
            "A table is dropped while the running version still queries it.",
            "Stop using the model in one release (`SeparateDatabaseAndState` with a state-only "
            "`DeleteModel`), then drop the table in the next release.",
        ),
        Rule(
            "column-renamed",
            UNSAFE,
            "A column is renamed: the running version still uses the old name.",
            "Keep the column name with `db_column=`; or add a new column written by both "
            "versions, backfill it, switch reads, and drop the old column in a later release.",
        ),
        Rule(
            "table-renamed",
            UNSAFE,
            "A table is renamed: the running version still uses the old name.",
            "Keep the table name with `Meta.db_table`; or create the new table, write to "
            "both, backfill, and drop the old one in a later release.",
        ),
        Rule(
            "column-type-changed",
            UNSAFE,
            "A column's type changes: PostgreSQL rewrites the table under an exclusive lock, "
            "and the running version may write values the new type rejects. (Widening a "
            "varchar, varchar to text, or a numeric's precision is safe and not reported.)",
            "Add a new column of the new type written by both versions, backfill it, switch "
            "reads, and drop the old column in a later release.",
        ),
        Rule(
            "column-length-shrunk",
            UNSAFE,
            "A varchar or numeric column gets shorter: every row is checked under an "
            "exclusive lock, and the running version may write longer values.",
            "Keep the longer length in the database and validate in the model or form; or add "
            "a `CHECK (char_length(column) <= N) NOT VALID` constraint and validate it in a "
            "later release.",
        ),
        Rule(
            "unique-constraint-added",
            UNSAFE,
            "A unique constraint (`unique=True`, `unique_together`, `UniqueConstraint`, an "
            "exclusion constraint) is added to an existing table: the index is built under a "
            "lock that blocks writes, and the running version may insert duplicates.",
            "Build the unique index with `CREATE UNIQUE INDEX CONCURRENTLY` in a non-atomic "
            "migration, then attach it with `ALTER TABLE ... ADD CONSTRAINT ... UNIQUE USING "
            "INDEX` (both as `RunSQL` in `SeparateDatabaseAndState`), once no running version "
            "writes duplicates.",
        ),
        Rule(
            "check-constraint-added",
            UNSAFE,
            "A check constraint is added and validated at once: the table is scanned under an "
            "exclusive lock, and the running version may write rows it rejects.",
            "Add it with `AddConstraintNotValid` (django.contrib.postgres.operations) and run "
            "`ValidateConstraint` in a later migration.",
        ),
        Rule(
            "foreign-key-added",
            UNSAFE,
            "A foreign key constraint is added to an existing column and validated at once: "
            "both tables are locked while every row is checked.",
            "Add it `NOT VALID` (`RunSQL` `ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY ... "
            "NOT VALID` in `SeparateDatabaseAndState`), then `VALIDATE CONSTRAINT` in a later "
            "migration.",
        ),
        Rule(
            "db-default-dropped",
            UNSAFE,
            "The database default of a NOT NULL column is removed: inserts from the running "
            "version that omit the column fail.",
            "Keep the `db_default` until no running version omits the column; drop it in a "
            "later release.",
        ),
        Rule(
            "index-created-non-concurrently",
            WARNING,
            "An index is built on an existing table without CONCURRENTLY: writes to the table "
            "wait until it is built.",
            "Use `AddIndexConcurrently` (django.contrib.postgres.operations) in a migration "
            "with `atomic = False`.",
        ),
        Rule(
            "index-dropped-non-concurrently",
            WARNING,
            "An index is dropped without CONCURRENTLY: the table is locked exclusively while "
            "it is dropped.",
            "Use `RemoveIndexConcurrently` in a migration with `atomic = False`.",
        ),
        Rule(
            "run-sql-irreversible",
            WARNING,
            "`RunSQL` without `reverse_sql`: the release cannot be migrated back past it.",
            "Pass `reverse_sql=` (`migrations.RunSQL.noop` when nothing needs undoing).",
        ),
        Rule(
            "run-python-irreversible",
            WARNING,
            "`RunPython` without `reverse_code`: the release cannot be migrated back past it.",
            "Pass `reverse_code=` (`migrations.RunPython.noop` when nothing needs undoing).",
        ),
        Rule(
            "operation-not-analysed",
            WARNING,
            "A custom operation could not be checked: its SQL needs a reachable PostgreSQL "
            "database, or it does not reduce to SQL.",
            "Run the check against the PostgreSQL database, or review the operation by hand "
            "and acknowledge the migration.",
        ),
    )
}


@dataclass(frozen=True)
class Finding:
    """One reason a migration may break the running version, with the safe alternative."""

    migration: str
    operation: str
    rule: str
    severity: str
    message: str
    suggestion: str
    acknowledged: bool = False
    acknowledgement: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Finding:
        known = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in document.items() if key in known})


@dataclass(frozen=True)
class CheckResult:
    """The migrations checked, in the order `migrate` applies them, and what was found."""

    checked: list[str]
    findings: list[Finding]
    # Acknowledged names that no migration or app of the project has: a typo, or since renamed.
    unknown_acknowledgements: list[str] = dataclasses.field(default_factory=list)
    # No version of the app runs yet (its database has none of the project's tables, or the
    # caller has no deployed version to compare with): nothing can break, nothing was judged.
    first_deploy: bool = False
    # What makes the result less than it seems, e.g. settings that ignore DATABASE_URL.
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def refused(self) -> list[str]:
        """Migrations with an unsafe finding that nobody acknowledged."""
        bad = {f.migration for f in self.findings if f.severity == UNSAFE and not f.acknowledged}
        return [name for name in self.checked if name in bad]

    @property
    def exit_code(self) -> int:
        return 1 if self.refused else 0

    def acknowledge(self, reasons: Mapping[str, str]) -> CheckResult:
        """Marks every finding of the named migrations, or of the named apps (`app.*`), as
        allowed on purpose, with the reason; a migration's own acknowledgement comes first."""

        def reason(migration: str) -> str | None:
            whole_app = migration.partition(".")[0] + WHOLE_APP
            return reasons.get(migration) or reasons.get(whole_app)

        return replace(
            self,
            findings=[
                replace(f, acknowledged=True, acknowledgement=found)
                if (found := reason(f.migration))
                else f
                for f in self.findings
            ],
        )

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "checked": list(self.checked),
            "findings": [f.to_json() for f in self.findings],
            "firstDeploy": self.first_deploy,
        }
        if self.unknown_acknowledgements:
            document["unknownAcknowledgements"] = list(self.unknown_acknowledgements)
        if self.warnings:
            document["warnings"] = list(self.warnings)
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> CheckResult:
        return cls(
            checked=[str(name) for name in document["checked"]],
            findings=[Finding.from_json(item) for item in document["findings"]],
            unknown_acknowledgements=[
                str(name) for name in document.get("unknownAcknowledgements", [])
            ],
            first_deploy=bool(document.get("firstDeploy", False)),
            warnings=[str(text) for text in document.get("warnings", [])],
        )


def acknowledged_name(name: str) -> str:
    """The name an acknowledgement is kept under: `app.0007_name` as given, a whole app
    (`app` or `app.*`) as `app.*`. ValueError when it is neither."""
    match = ACKNOWLEDGED_NAME.match(name.strip())
    if match is None:
        raise ValueError(ACKNOWLEDGED_NAME_HELP)
    return match["app"] + (match["migration"] or WHOLE_APP)


def parse_acknowledgements(items: Iterable[str]) -> dict[str, str]:
    """`MIGRATION=REASON` strings (the `--acknowledge` flag) as a mapping; MIGRATION is
    `app_label.migration_name`, or `app_label` / `app_label.*` for a whole app."""
    reasons = {}
    for item in items:
        migration, _, reason = item.partition("=")
        reason = reason.strip()
        try:
            migration = acknowledged_name(migration)
        except ValueError:
            raise ValueError(
                f"--acknowledge {item!r}: use app_label.migration_name=REASON, e.g. "
                "shop.0007_drop_price='column unused since release 41', or app_label=REASON "
                "for every migration of an app, e.g. wagtailusers='upgrade reviewed by hand'"
            ) from None
        if len(reason) < MIN_REASON_LENGTH:
            raise ValueError(
                f"--acknowledge {item!r}: give a reason of at least {MIN_REASON_LENGTH} "
                "characters after the `=`"
            )
        reasons[migration] = reason
    return reasons


FIRST_DEPLOY = "First deploy: nothing runs yet, every migration is safe."


def format_report(result: CheckResult) -> str:
    """Findings grouped by migration, each with its safe alternative, then the verdict."""
    noun = "migration" if len(result.checked) == 1 else "migrations"
    lines = [f"Checked {len(result.checked)} {noun}."]
    lines += [f"warning: {text}" for text in result.warnings]
    for migration in result.checked:
        found = [f for f in result.findings if f.migration == migration]
        if not found:
            continue
        lines.append("")
        lines.append(migration)
        if found[0].acknowledged:
            lines.append(f"  acknowledged: {found[0].acknowledgement}")
        for finding in found:
            label = "UNSAFE" if finding.severity == UNSAFE else "warning"
            if finding.acknowledged:
                label += " (acknowledged)"
            lines.append(f"  {label} [{finding.rule}] {finding.operation}")
            lines.append(f"    {finding.message}")
            lines.append(f"    safe: {finding.suggestion}")
    lines.append("")
    if result.unknown_acknowledgements:
        lines.append(
            "Acknowledged, but the project has no such migration or app (check the spelling): "
            f"{', '.join(result.unknown_acknowledgements)}."
        )
    warnings = sum(f.severity == WARNING for f in result.findings)
    acknowledged = sorted({f.migration for f in result.findings if f.acknowledged})
    if acknowledged:
        lines.append(f"Acknowledged: {', '.join(acknowledged)}.")
    if result.first_deploy:
        lines.append(FIRST_DEPLOY)
    elif result.refused:
        lines.append(
            f"Refused {len(result.refused)} of {len(result.checked)} {noun}: "
            f"{', '.join(result.refused)}."
        )
        lines.append(
            "Make them safe as suggested, or allow one on purpose: list it (or its whole app, "
            "as app_label.*) with a reason under `migrations.acknowledged` in the stack config, "
            f"or add the line `{MARKER_EXAMPLE}` to the migration file."
        )
    else:
        lines.append(f"Nothing unsafe ({warnings} warning{'' if warnings == 1 else 's'}).")
    return "\n".join(lines)


# How the analyzer's error starts when its interpreter has no Django: pulumi-django's runner
# reads it to name the flag or key that chose the interpreter.
NO_DJANGO = "Django is not installed for"


class ProjectError(Exception):
    """The project, its settings or its database cannot be used; the message says what to fix."""


def check_project(
    settings: str,
    pythonpath: str | None = None,
    labels: Sequence[str] = (),
    check_all: bool = False,
    offline: bool = False,
    acknowledged: Mapping[str, str] | None = None,
    *,
    one_release: bool = False,
    first_deploy: bool = False,
) -> CheckResult:
    """Checks the migrations `migrate` would apply next, or `--all`, or the LABELs, and allows
    the `acknowledged` ones on purpose.

    `one_release`: the LABELs ship together (what is created by one of them is new to the
    others). `first_deploy`: nothing runs yet, so nothing is judged and no database is needed.
    """
    _setup_django(settings, pythonpath)
    checker = _Checker(offline or first_deploy)
    reasons = dict(acknowledged or {})
    migrations = {f"{app}.{name}" for app, name in checker.loader.disk_migrations}
    apps = {app + WHOLE_APP for app, _ in checker.loader.disk_migrations}
    result = checker.run(labels, check_all, one_release=one_release, first_deploy=first_deploy)
    return replace(
        result.acknowledge(reasons),
        unknown_acknowledgements=sorted(set(reasons) - migrations - apps),
    )


def _setup_django(settings: str, pythonpath: str | None) -> None:
    if not re.match(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$", settings):
        raise ProjectError(f"--settings {settings!r} is not a dotted module name")
    search_path = str(Path(pythonpath or ".").resolve())
    sys.path.insert(0, search_path)
    try:
        import django
    except ImportError:
        raise ProjectError(
            f"{NO_DJANGO} {sys.executable}; install the app's requirements into it or check "
            "with the interpreter of the app's environment"
        ) from None
    os.environ["DJANGO_SETTINGS_MODULE"] = settings
    try:
        importlib.import_module(settings)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if missing and (settings == missing or settings.startswith(missing + ".")):
            raise ProjectError(
                f"no settings module {settings!r} under {search_path}; pass --pythonpath, the "
                "directory that contains it"
            ) from None
        raise ProjectError(f"the settings module {settings!r} failed to import: {error}") from None
    except Exception as error:  # the project's own code: any error at all
        raise ProjectError(
            f"the settings module {settings!r} failed to import: {_describe_error(error)}"
        ) from None
    try:
        django.setup()
    except Exception as error:
        raise ProjectError(f"Django could not load the project: {_describe_error(error)}") from None


POSTGRESQL_SCHEMES = ("postgres", "postgresql", "postgis", "pgsql")
RUNTIME_PACKAGE = "pulumi_django_runtime"
CONFIGURE_LINE = f"from {RUNTIME_PACKAGE} import configure; configure(globals())"


def _require_postgresql(connection: Any) -> None:
    """The rules are PostgreSQL's: any other engine is refused before it is opened, with what
    to do about it: give a DATABASE_URL, or make the settings use the one given."""
    if connection.vendor == "postgresql":
        return
    engine = connection.settings_dict.get("ENGINE") or ""
    if engine == "django.db.backends.dummy":
        found = "define no database (DATABASES is empty)"
    else:
        found = f"use {getattr(connection, 'display_name', connection.vendor)} ({engine})"
    url = os.environ.get("DATABASE_URL", "").strip()
    scheme = url.partition(":")[0].lower()
    if not url:
        advice = (
            "no DATABASE_URL was given: pass --database-url URL, the app's PostgreSQL database "
            "(or --offline with --all or LABEL)"
        )
        if not _runtime_configured():
            advice += f", and make the settings read it: `{CONFIGURE_LINE}` at their end"
    elif scheme not in POSTGRESQL_SCHEMES:
        advice = f"DATABASE_URL is a {scheme} URL: give the app's PostgreSQL database instead"
    else:
        found += " and ignore DATABASE_URL"
        advice = _read_database_url_advice()
    raise ProjectError(
        f"the settings {found}, not PostgreSQL: the check knows PostgreSQL only and opens no "
        f"other database; {advice}"
    )


def _runtime_configured() -> bool:
    """Whether the settings called the runtime kit's `configure(globals())`: the kit is
    imported and its health middleware, which configure() always puts first, is in MIDDLEWARE.
    (The analyzer imports no more than Django, so the kit is only looked up, never imported.)"""
    from django.conf import settings

    runtime = sys.modules.get(RUNTIME_PACKAGE)
    middleware = getattr(runtime, "HEALTH_MIDDLEWARE", None)
    if middleware is None or not settings.configured:
        return False
    return middleware in getattr(settings, "MIDDLEWARE", ())


def _read_database_url_advice() -> str:
    """What makes settings that ignore DATABASE_URL use it: the runtime kit's configure() at
    their end, or, when they call it already, no DATABASES assigned after the call."""
    if _runtime_configured():
        return (
            f"they call {RUNTIME_PACKAGE}'s configure(globals()), so something after the call "
            "reassigns DATABASES: make the call the last line of the settings module"
        )
    return f"make the settings read DATABASE_URL: add `{CONFIGURE_LINE}` at their end"


def _ignored_database_url(settings: Mapping[str, Any], offline: bool) -> list[str]:
    """A warning when DATABASE_URL is set but the settings' `default` database is another one:
    the check then read a database nobody meant, and deployed, the app would too."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        return []
    try:
        parts = urllib.parse.urlsplit(url)
        port = str(parts.port or "")
    except ValueError:  # not a URL: the settings could not have read it either
        return []
    named = {
        "NAME": urllib.parse.unquote(parts.path.lstrip("/")),
        "HOST": urllib.parse.unquote(parts.hostname or ""),
        "PORT": port,
        "USER": urllib.parse.unquote(parts.username or ""),
    }
    used = {key: str(settings.get(key) or "") for key in named}
    if all(not value or _same_setting(key, value, used[key]) for key, value in named.items()):
        return []
    if offline:
        return [
            f"the settings ignore DATABASE_URL (their database is {_where(settings)}): deployed, "
            f"the app would not use the database the stack gives it; {_read_database_url_advice()}"
        ]
    shown = f"{parts.scheme}://{named['USER'] + '@' if named['USER'] else ''}{parts.hostname}"
    shown += f":{port}/{named['NAME']}" if port else f"/{named['NAME']}"
    return [
        f"the settings ignore DATABASE_URL ({shown}): the database checked is theirs, "
        f"{_where(settings)}; {_read_database_url_advice()}"
    ]


LOCAL_HOSTS = ("", "localhost", "127.0.0.1", "::1")
POSTGRESQL_PORT = "5432"


def _same_setting(key: str, named: str, used: str) -> bool:
    """Whether a DATABASES setting is what the URL names (this machine, or the default port,
    however spelt)."""
    named, used = named.lower(), used.lower()
    if key == "HOST" and named in LOCAL_HOSTS and used in LOCAL_HOSTS:
        return True
    if key == "PORT":
        return (named or POSTGRESQL_PORT) == (used or POSTGRESQL_PORT)
    return named == used


def _where(settings: Mapping[str, Any]) -> str:
    host = settings.get("HOST") or "localhost"
    port = settings.get("PORT") or "default port"
    return f"{settings.get('NAME')!r} at {host}:{port}"


def _describe_error(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


class _Checker:
    """Walks every migration once, in `migrate` order, judging the selected ones."""

    def __init__(self, offline: bool) -> None:
        from django.db import DEFAULT_DB_ALIAS, connections

        self.alias = DEFAULT_DB_ALIAS
        self.connection = connections[self.alias]
        self.offline = offline
        # Before anything connects: another engine is refused, never opened (SQLite would
        # create its file in the user's project).
        _require_postgresql(self.connection)
        self.warnings = _ignored_database_url(self.connection.settings_dict, offline)
        self.loader = self._load()
        # Tables the running version cannot be using: created earlier in this release.
        self.fresh_tables: set[str] = set()
        # Tables created by each app's initial migrations: makemigrations splits an app's first
        # migration in two when foreign keys form a cycle (`0002_initial` adds them), and the
        # parts ship together, so they are one release even when each migration is its own.
        self.initial_tables: dict[str, set[str]] = {}
        # Unique column sets, by table, that the migration being judged dropped: within the
        # migration's transaction no duplicate can appear before they are made unique again.
        self.dropped_unique: dict[str, set[frozenset[str]]] = {}
        self.findings: list[Finding] = []
        self.migration = ""
        self.operation = ""
        self.judges = self._judges()

    def _load(self) -> Any:
        from django.db import DatabaseError
        from django.db.migrations.exceptions import InconsistentMigrationHistory
        from django.db.migrations.loader import MigrationLoader

        if not self.offline:
            options = self.connection.settings_dict.setdefault("OPTIONS", {})
            options.setdefault("connect_timeout", 10)
        try:
            loader = MigrationLoader(
                None if self.offline else self.connection, ignore_no_migrations=True
            )
            if not self.offline:
                loader.check_consistent_history(self.connection)
        except DatabaseError as error:
            raise ProjectError(
                f"cannot use the database {_where(self.connection.settings_dict)}: "
                f"{_describe_error(error)}"
            ) from None
        except InconsistentMigrationHistory as error:
            raise ProjectError(str(error)) from None
        except Exception as error:
            raise ProjectError(f"cannot load the migrations: {_describe_error(error)}") from None
        conflicts = loader.detect_conflicts()
        if conflicts:
            names = "; ".join(f"{app}: {', '.join(sorted(n))}" for app, n in conflicts.items())
            raise ProjectError(
                f"conflicting migrations ({names}); merge them with `makemigrations --merge`"
            )
        return loader

    def run(
        self,
        labels: Sequence[str],
        check_all: bool,
        *,
        one_release: bool = False,
        first_deploy: bool = False,
    ) -> CheckResult:
        from django.db.migrations.state import ProjectState

        plan = self._plan()
        if not labels and not check_all and (first_deploy or self._database_is_new()):
            applied = self.loader.applied_migrations
            unapplied = [f"{app}.{name}" for app, name in plan if (app, name) not in applied]
            return CheckResult(unapplied, [], first_deploy=True, warnings=self.warnings)
        selected = self._select(plan, labels, check_all)
        # What `migrate` applies next is one release, as are LABELs that ship together: their
        # new tables are unknown to the running version. Otherwise each migration is judged
        # as a release of its own (but for an app's initial migrations, see initial_tables).
        one_release = one_release or (not labels and not check_all)
        state = ProjectState(real_apps=self.loader.unmigrated_apps)
        checked: list[str] = []
        markers: dict[str, str] = {}
        for key in plan:
            if len(checked) == len(selected):
                break
            migration = self.loader.graph.nodes[key]
            if key not in selected:
                migration.mutate_state(state, preserve=False)
                continue
            self.migration = f"{key[0]}.{key[1]}"
            checked.append(self.migration)
            self.dropped_unique = {}
            if not one_release:
                self.fresh_tables = (
                    set(self.initial_tables.get(key[0], ())) if migration.initial else set()
                )
            for operation in migration.operations:
                self._apply(key[0], operation, state, _describe(operation))
            if migration.initial and not one_release:
                self.initial_tables[key[0]] = set(self.fresh_tables)
            reason = _marker_reason(migration)
            if reason:
                markers[self.migration] = reason
        return CheckResult(checked, self.findings, warnings=self.warnings).acknowledge(markers)

    def _database_is_new(self) -> bool:
        """Whether no version of the app can be running yet: no migration recorded as applied
        and none of the project's tables in the database (read, never created)."""
        from django.db import DatabaseError

        if self.offline or self.loader.applied_migrations:
            return False
        try:
            return not self.connection.introspection.django_table_names(only_existing=True)
        except DatabaseError as error:
            raise ProjectError(
                f"cannot use the database {_where(self.connection.settings_dict)}: "
                f"{_describe_error(error)}"
            ) from None

    def _plan(self) -> list[tuple[str, str]]:
        graph = self.loader.graph
        plan: list[tuple[str, str]] = []
        seen: set[tuple[str, str]] = set()
        for leaf in graph.leaf_nodes():
            for key in graph.forwards_plan(leaf):
                if key not in seen:
                    seen.add(key)
                    plan.append(key)
        return plan

    def _select(
        self, plan: list[tuple[str, str]], labels: Sequence[str], check_all: bool
    ) -> set[tuple[str, str]]:
        from django.apps import apps
        from django.db.migrations.exceptions import AmbiguityError

        if check_all:
            return {
                key for key in plan if not apps.get_app_config(key[0]).name.startswith("django.")
            }
        if not labels:
            return {key for key in plan if key not in self.loader.applied_migrations}
        selected = set()
        for label in labels:
            app_label, _, prefix = label.partition(".")
            if app_label not in self.loader.migrated_apps:
                known = ", ".join(sorted(self.loader.migrated_apps)) or "none"
                raise ProjectError(
                    f"{label}: no app with migrations is labelled {app_label!r} "
                    f"(apps with migrations: {known})"
                )
            if not prefix:
                selected |= {key for key in plan if key[0] == app_label}
                continue
            try:
                migration = self.loader.get_migration_by_prefix(app_label, prefix)
            except (AmbiguityError, KeyError) as error:
                raise ProjectError(f"{label}: {error.args[0]}") from None
            key = (app_label, migration.name)
            if key not in self.loader.graph.nodes:
                raise ProjectError(f"{label}: replaced by a squashed migration; name that one")
            selected.add(key)
        return selected

    def _report(self, rule: str, message: str, suggestion: str | None = None) -> None:
        definition = RULES[rule]
        self.findings.append(
            Finding(
                migration=self.migration,
                operation=self.operation,
                rule=rule,
                severity=definition.severity,
                message=message,
                suggestion=suggestion or definition.suggestion,
            )
        )

    # -- operations --------------------------------------------------------------------

    def _judges(self) -> list[tuple[tuple[type, ...], Callable[..., None]]]:
        """Judge per operation class; the first match wins, so subclasses come first."""
        from django.db import migrations as m

        no_database_effect: tuple[type, ...] = (
            m.AlterModelOptions,
            m.AlterModelManagers,
            m.AlterModelTableComment,
            m.RenameIndex,
        )
        if hasattr(m, "AlterConstraint"):
            no_database_effect += (m.AlterConstraint,)
        try:
            from django.contrib.postgres import operations as pg
        except ImportError:  # no PostgreSQL driver: the app cannot use these operations
            pass
        else:
            no_database_effect += (
                pg.AddIndexConcurrently,
                pg.RemoveIndexConcurrently,
                pg.AddConstraintNotValid,
                pg.ValidateConstraint,
                pg.CreateExtension,
                pg.CreateCollation,
                pg.RemoveCollation,
            )
        return [
            (no_database_effect, lambda *_: None),
            ((m.CreateModel,), self._create_model),
            ((m.DeleteModel,), self._delete_model),
            ((m.RenameModel, m.AlterModelTable), self._rename_table),
            ((m.AddField,), self._add_field),
            ((m.RemoveField,), self._remove_field),
            ((m.AlterField,), self._alter_field),
            ((m.RenameField,), self._rename_field),
            ((m.AlterUniqueTogether, m.AlterIndexTogether), self._alter_together),
            ((m.AlterOrderWithRespectTo,), self._alter_order_with_respect_to),
            ((m.AddIndex,), self._add_index),
            ((m.RemoveIndex,), self._remove_index),
            ((m.AddConstraint,), self._add_constraint),
            ((m.RemoveConstraint,), self._remove_constraint),
            ((m.RunPython,), self._run_python),
        ]

    def _apply(self, app_label: str, operation: Any, state: Any, label: str) -> None:
        """Judges `operation` and applies it to `state`, as `migrate` would.

        Models are judged from the state's ModelStates, never rendered to classes: rendering
        after every operation would cost more than everything else together."""
        from django.db import migrations as m

        self.operation = label
        if isinstance(operation, m.SeparateDatabaseAndState):
            # Only the database operations touch the database; judge them on their own state.
            database_state = state.clone()
            for inner in operation.database_operations:
                self._apply(app_label, inner, database_state, f"{label}: {_describe(inner)}")
            operation.state_forwards(app_label, state)
            return
        if isinstance(operation, m.RunSQL):
            self._run_sql(app_label, operation, state)
            operation.state_forwards(app_label, state)
            return
        judge = next((j for kinds, j in self.judges if isinstance(operation, kinds)), None)
        if judge is None:
            before = state.clone()
            operation.state_forwards(app_label, state)
            # Clones get rendered for the schema editor; `state` stays cheap.
            self._custom_operation(app_label, operation, before, state.clone())
            return
        name = _model_name(operation)
        before = state.models.get((app_label, name)) if name else None
        if before is not None:
            before = before.clone()  # state_forwards changes model states in place
        operation.state_forwards(app_label, state)
        judge(app_label, operation, before, state)

    # A "model" below is a ModelState: fields unbound, options as in Meta.

    def _table(self, model: Any) -> str:
        from django.db.backends.utils import truncate_name

        default = f"{model.app_label}_{model.name_lower}"
        return str(
            model.options.get("db_table")
            or truncate_name(default, self.connection.ops.max_name_length())
        )

    def _field(self, model: Any, name: str) -> Any:
        """A copy of the state's field with its column set, as on a model class."""
        field = model.fields[name].clone()
        field.set_attributes_from_name(name)
        return field

    def _migrates(self, model: Any) -> bool:
        """Whether `migrate` touches this model's table on the checked database."""
        from django.conf import settings
        from django.db import router

        options = model.options
        if options.get("proxy") or not options.get("managed", True):
            return False
        swappable = options.get("swappable")
        swapped_for = str(getattr(settings, swappable, "") or "").lower() if swappable else ""
        if swapped_for and swapped_for != f"{model.app_label}.{model.name_lower}":
            return False
        vendor = options.get("required_db_vendor")
        if vendor and vendor != self.connection.vendor:
            return False
        return bool(router.allow_migrate(self.alias, model.app_label, model_name=model.name_lower))

    def _existing(self, model: Any) -> bool:
        """Whether `model` has a table the running version may be using."""
        return (
            model is not None
            and self._migrates(model)
            and self._table(model) not in (self.fresh_tables)
        )

    def _target(self, state: Any, model: Any, field: Any) -> tuple[Any, Any] | None:
        """The model and (bound) field a foreign key points to, if the state has them."""
        from django.db.migrations.utils import resolve_relation

        key = resolve_relation(field.remote_field.model, model.app_label, model.name_lower)
        target = state.models.get(key)
        if target is None:
            return None
        name = field.remote_field.field_name or next(
            (n for n, f in target.fields.items() if f.primary_key), None
        )
        if name is None or name not in target.fields:
            return None
        return target, self._field(target, name)

    def _db_parameters(self, state: Any, model: Any, field: Any, depth: int = 0) -> dict[str, Any]:
        """Type, check and collation of the field's column (type None when unknown)."""
        if field.many_to_one or field.one_to_one:
            target = self._target(state, model, field) if depth < 5 else None
            if target is None:
                return {"type": None, "check": None}
            target_model, target_field = target
            if target_field.many_to_one or target_field.one_to_one:
                return self._db_parameters(state, target_model, target_field, depth + 1)
            return {"type": target_field.rel_db_type(self.connection), "check": None}
        try:
            return dict(field.db_parameters(self.connection))
        except Exception:  # a field type that insists on a model class
            return {"type": None, "check": None}

    def _foreign_key_target(self, state: Any, model: Any, field: Any) -> str | None:
        if not (field.many_to_one or field.one_to_one) or not field.db_constraint:
            return None
        target = self._target(state, model, field)
        return self._table(target[0]) if target else "an unknown table"

    def _many_to_many_table(self, model: Any, name: str, field: Any) -> str | None:
        """The table Django creates for a many-to-many field; None with an explicit through."""
        from django.db.backends.utils import truncate_name

        if field.remote_field.through is not None:
            return None
        return str(
            field.db_table
            or truncate_name(f"{self._table(model)}_{name}", self.connection.ops.max_name_length())
        )

    def _create_model(self, app_label: str, operation: Any, _before: Any, state: Any) -> None:
        model = state.models.get((app_label, operation.name_lower))
        if model is None or not self._migrates(model):
            return
        self.fresh_tables.add(self._table(model))
        for name, field in model.fields.items():
            table = self._many_to_many_table(model, name, field) if field.many_to_many else None
            if table:
                self.fresh_tables.add(table)

    def _delete_model(self, _app: str, _operation: Any, before: Any, _state: Any) -> None:
        if self._existing(before):
            self._report(
                "table-dropped",
                f"drops table {self._table(before)} while the running version queries it",
            )

    def _rename_table(self, app_label: str, operation: Any, before: Any, state: Any) -> None:
        new_name = getattr(operation, "new_name_lower", operation.name_lower)
        after = state.models.get((app_label, new_name))
        if before is None or after is None or not self._migrates(after):
            return
        old_table, new_table = self._table(before), self._table(after)
        if old_table in self.fresh_tables:
            self.fresh_tables.add(new_table)
        elif old_table != new_table:
            self._report(
                "table-renamed",
                f"renames table {old_table} to {new_table}: the running version still uses "
                "the old name",
            )

    def _add_field(self, app_label: str, operation: Any, _before: Any, state: Any) -> None:
        model = state.models.get((app_label, operation.model_name_lower))
        if not self._existing(model):
            return
        field = self._field(model, operation.name)
        if field.many_to_many or not field.concrete or getattr(field, "generated", False):
            return
        column = f"{self._table(model)}.{field.column}"
        if not field.null and not _has_db_default(field):
            if field.is_relation:
                self._report(
                    "not-null-foreign-key",
                    f"adds NOT NULL foreign key {column}: inserts from the running version, "
                    "which omit it, fail",
                )
            else:
                how = (
                    "its Python default= is not kept in the database"
                    if operation.field.has_default()
                    else "it has no default"
                )
                self._report(
                    "not-null-column-without-db-default",
                    f"adds NOT NULL column {column} without a database default ({how}): "
                    "inserts from the running version, which omit the column, fail",
                )
        if field.unique and not field.primary_key and not field.null:
            self._report(
                "unique-constraint-added",
                f"adds unique NOT NULL column {column}: its unique index is built under a "
                "write lock, and rows the running version inserts get the same value",
            )
        elif field.db_index or field.unique:
            self._report(
                "index-created-non-concurrently",
                f"builds the index of new column {column} without CONCURRENTLY",
            )

    def _remove_field(self, _app: str, operation: Any, before: Any, _state: Any) -> None:
        if not self._existing(before):
            return
        field = self._field(before, operation.name)
        if field.many_to_many:
            table = self._many_to_many_table(before, operation.name, field)
            if table:
                self._report(
                    "table-dropped",
                    f"drops many-to-many table {table} while the running version queries it",
                )
        elif field.concrete:
            self._report(
                "column-dropped",
                f"drops column {self._table(before)}.{field.column} while the running "
                "version still selects and writes it",
            )

    def _alter_field(self, app_label: str, operation: Any, before: Any, state: Any) -> None:
        after = state.models.get((app_label, operation.model_name_lower))
        if before is not None and self._existing(after):
            self._compare_fields(state, before, after, operation.name, operation.name)

    def _rename_field(self, app_label: str, operation: Any, before: Any, state: Any) -> None:
        after = state.models.get((app_label, operation.model_name_lower))
        if before is not None and self._existing(after):
            self._compare_fields(state, before, after, operation.old_name, operation.new_name)

    def _compare_fields(
        self, state: Any, before: Any, after: Any, old_name: str, new_name: str
    ) -> None:
        old, new = self._field(before, old_name), self._field(after, new_name)
        if old.many_to_many or new.many_to_many:
            self._compare_many_to_many(before, after, (old_name, old), (new_name, new))
            return
        if not (old.concrete and new.concrete):
            return
        table = self._table(after)
        column = f"{table}.{new.column}"
        if old.column != new.column:
            self._report(
                "column-renamed",
                f"renames column {table}.{old.column} to {new.column}: the running version "
                "still uses the old name",
            )
        old_db = self._db_parameters(state, before, old)
        new_db = self._db_parameters(state, after, new)
        change = None
        if old_db["type"] and new_db["type"]:
            change = _type_change(old_db["type"], new_db["type"])
            if change is None and old_db.get("collation") != new_db.get("collation"):
                change = "changed"
        if change == "shrunk":
            self._report(
                "column-length-shrunk",
                f"shrinks {column} from {old_db['type']} to {new_db['type']}: rows are checked "
                "under an exclusive lock and the running version may write longer values",
            )
        elif change == "changed":
            self._report(
                "column-type-changed",
                f"changes {column} from {old_db['type']} to {new_db['type']}: the table is "
                "rewritten under an exclusive lock and the running version writes the old type",
            )
        if old.null and not new.null:
            self._report(
                "column-made-not-null",
                f"makes {column} NOT NULL: the running version may still write NULL",
            )
        elif not new.null and _has_db_default(old) and not _has_db_default(new):
            self._report(
                "db-default-dropped",
                f"drops the database default of NOT NULL column {column}: inserts from the "
                "running version that omit it fail",
            )
        if new.unique and not old.unique and not new.primary_key:
            self._judge_unique(before, frozenset([new.column]), f"makes {column} unique")
        elif old.unique and not new.unique:
            self.dropped_unique.setdefault(table, set()).add(frozenset([old.column]))
        old_index, new_index = old.db_index and not old.unique, new.db_index and not new.unique
        if new_index and not old_index:
            self._report(
                "index-created-non-concurrently",
                f"builds an index on {column} without CONCURRENTLY",
            )
        elif old_index and not new_index and not new.unique:
            self._report(
                "index-dropped-non-concurrently",
                f"drops the index on {column} without CONCURRENTLY",
            )
        target = self._foreign_key_target(state, after, new)
        if target is not None and target != self._foreign_key_target(state, before, old):
            self._report(
                "foreign-key-added",
                f"adds a foreign key from {column} to {target}, validated at once under lock",
            )
        elif target is not None and _alters_column(old, new):
            self._report(
                "foreign-key-added",
                f"re-creates the foreign key from {column} to {target}: Django drops and re-adds "
                "it whenever it alters the column, validated at once under lock",
            )
        # The field's own check names its column; a renamed column keeps its check.
        new_check = self._check_of(new_db, new.column)
        if new_check and new_check != self._check_of(old_db, old.column):
            self._report(
                "check-constraint-added",
                f"adds CHECK ({new_db['check']}) on {column}, validated at once under lock",
            )

    def _check_of(self, db_parameters: dict[str, Any], column: str) -> str | None:
        """The column's check with its name left out, e.g. `"{column}" >= 0`."""
        check = db_parameters.get("check")
        if not check:
            return None
        return str(check).replace(self.connection.ops.quote_name(column), '"{column}"')

    def _compare_many_to_many(
        self, before: Any, after: Any, old: tuple[str, Any], new: tuple[str, Any]
    ) -> None:
        """A many-to-many field has no column (its `null` means nothing); its table may be
        renamed, by a new `db_table` or a new field name."""
        old_table = self._many_to_many_table(before, *old) if old[1].many_to_many else None
        new_table = self._many_to_many_table(after, *new) if new[1].many_to_many else None
        if old_table is None or new_table is None or old_table == new_table:
            return
        if old_table in self.fresh_tables:
            self.fresh_tables.add(new_table)
        else:
            self._report(
                "table-renamed",
                f"renames many-to-many table {old_table} to {new_table}: the running version "
                "still uses the old name",
            )

    def _judge_unique(self, before: Any, columns: frozenset[str] | None, change: str) -> None:
        """A unique constraint or index on `columns` (None: on expressions) of an existing
        table: unsafe, unless the rows are unique on them already."""
        table = self._table(before)
        kept = self._unique_sets(before) | self.dropped_unique.get(table, set())
        if columns is not None and any(unique <= columns for unique in kept):
            self._report(
                "index-created-non-concurrently",
                f"{change}: the rows are unique on these columns already, but the unique index "
                "is built without CONCURRENTLY, so writes wait",
                suggestion=RULES["unique-constraint-added"].suggestion,
            )
        else:
            self._report(
                "unique-constraint-added",
                f"{change}: the index is built under a write lock and the running version may "
                "insert duplicates",
            )

    def _unique_sets(self, model: Any) -> set[frozenset[str]]:
        """The column sets the table keeps unique: its primary key, unique fields,
        `unique_together` and UniqueConstraints on fields without a condition."""
        from django.db.models.options import normalize_together

        field_sets: list[Sequence[str]] = [
            [name]
            for name, field in model.fields.items()
            if field.unique and not field.many_to_many  # a primary key is unique too
        ]
        field_sets += normalize_together(model.options.get("unique_together") or ())
        field_sets += [
            _unique_fields(constraint) for constraint in model.options.get("constraints", [])
        ]
        found = (self._field_columns(model, names) for names in field_sets if names)
        return {columns for columns in found if columns is not None}

    def _field_columns(self, model: Any, names: Sequence[str]) -> frozenset[str] | None:
        """The columns of the model's fields `names` (None if the state lacks one)."""
        if any(name not in model.fields for name in names):
            return None
        return frozenset(self._field(model, name).column for name in names)

    def _alter_together(self, app_label: str, operation: Any, before: Any, state: Any) -> None:
        from django.db.models.options import normalize_together

        after = state.models.get((app_label, operation.name_lower))
        if before is None or not self._existing(after):
            return
        table = self._table(after)
        old = set(normalize_together(before.options.get(operation.option_name) or ()))
        new = set(normalize_together(operation.option_value or ()))
        unique = operation.option_name == "unique_together"
        if unique:
            dropped = (self._field_columns(before, names) for names in old - new)
            self.dropped_unique.setdefault(table, set()).update(c for c in dropped if c)
        for columns in sorted(new - old):
            if unique:
                self._judge_unique(
                    before,
                    self._field_columns(before, columns),
                    f"adds unique_together {columns} to {table}",
                )
            else:
                self._report(
                    "index-created-non-concurrently",
                    f"builds index_together {columns} on {table} without CONCURRENTLY",
                )
        if not unique:
            for columns in sorted(old - new):
                self._report(
                    "index-dropped-non-concurrently",
                    f"drops index_together {columns} on {table} without CONCURRENTLY",
                )

    def _alter_order_with_respect_to(
        self, app_label: str, operation: Any, before: Any, state: Any
    ) -> None:
        after = state.models.get((app_label, operation.name_lower))
        if before is None or not self._existing(after):
            return
        old = before.options.get("order_with_respect_to")
        new = after.options.get("order_with_respect_to")
        table = self._table(after)
        if new and not old:
            self._report(
                "not-null-column-without-db-default",
                f"adds NOT NULL column {table}._order (order_with_respect_to) without a "
                "database default: inserts from the running version fail",
            )
        elif old and not new:
            self._report(
                "column-dropped",
                f"drops column {table}._order (order_with_respect_to) while the running "
                "version still writes it",
            )

    def _add_index(self, app_label: str, operation: Any, _before: Any, state: Any) -> None:
        model = state.models.get((app_label, operation.model_name_lower))
        if self._existing(model):
            self._report(
                "index-created-non-concurrently",
                f"builds index {operation.index.name} on {self._table(model)} without CONCURRENTLY",
            )

    def _remove_index(self, _app: str, operation: Any, before: Any, _state: Any) -> None:
        if self._existing(before):
            self._report(
                "index-dropped-non-concurrently",
                f"drops index {operation.name} on {self._table(before)} without CONCURRENTLY",
            )

    def _add_constraint(self, app_label: str, operation: Any, before: Any, state: Any) -> None:
        from django.db.models import CheckConstraint, UniqueConstraint

        model = state.models.get((app_label, operation.model_name_lower))
        if before is None or not self._existing(model):
            return
        constraint = operation.constraint
        table = self._table(model)
        if isinstance(constraint, CheckConstraint):
            self._report(
                "check-constraint-added",
                f"adds check constraint {constraint.name} to {table}, validated at once under "
                "lock; the running version may write rows it rejects",
            )
            return
        on_fields = isinstance(constraint, UniqueConstraint) and constraint.fields
        self._judge_unique(
            before,
            self._field_columns(before, constraint.fields) if on_fields else None,
            f"adds {type(constraint).__name__} {constraint.name} to {table}",
        )

    def _remove_constraint(self, _app: str, operation: Any, before: Any, _state: Any) -> None:
        """Nothing to judge; a unique set it drops is remembered for this migration."""
        if before is None:
            return
        for constraint in before.options.get("constraints", []):
            if constraint.name == operation.name and _unique_fields(constraint):
                columns = self._field_columns(before, _unique_fields(constraint))
                if columns:
                    self.dropped_unique.setdefault(self._table(before), set()).add(columns)

    def _run_python(self, _app: str, operation: Any, _before: Any, _state: Any) -> None:
        if not operation.reversible:
            self._report("run-python-irreversible", "RunPython has no reverse_code")

    def _run_sql(self, app_label: str, operation: Any, state: Any) -> None:
        from django.db import router

        if not operation.reversible:
            self._report("run-sql-irreversible", "RunSQL has no reverse_sql")
        if router.allow_migrate(self.alias, app_label, **operation.hints):
            self._judge_sql(self._statements(operation.sql), state)

    @staticmethod
    def _statements(sql: Any) -> list[str]:
        parts = sql if isinstance(sql, (list, tuple)) else [sql]
        return [str(part[0] if isinstance(part, (list, tuple)) else part) for part in parts]

    def _custom_operation(self, app_label: str, operation: Any, before: Any, after: Any) -> None:
        name = type(operation).__name__
        if self.offline:
            why = "the check ran --offline"
        elif not operation.reduces_to_sql:
            why = "it does not reduce to SQL"
        else:
            try:
                statements = self._collect_sql(app_label, operation, before, after)
            except Exception as error:
                why = f"rendering its SQL failed: {_describe_error(error)}"
            else:
                self._judge_sql(statements, before)
                return
        self._report("operation-not-analysed", f"custom operation {name} not checked: {why}")

    def _collect_sql(self, app_label: str, operation: Any, before: Any, after: Any) -> list[str]:
        """The SQL Django's schema editor would run, in a read-only transaction rolled back."""
        from django.db import transaction

        with transaction.atomic(using=self.alias):
            with self.connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION READ ONLY")
            with self.connection.schema_editor(collect_sql=True, atomic=False) as editor:
                operation.database_forwards(app_label, editor, before, after)
            transaction.set_rollback(True, using=self.alias)
        return list(editor.collected_sql)

    # -- raw SQL -----------------------------------------------------------------------

    def _columns(self, state: Any) -> dict[tuple[str, str], tuple[Any, Any]]:
        """(table, column) -> (model, bound field), for every column the state knows."""
        columns = {}
        for model in state.models.values():
            table = self._table(model)
            for name in model.fields:
                field = self._field(model, name)
                if field.concrete:
                    columns[table, field.column] = (model, field)
        return columns

    def _judge_sql(self, statements: Iterable[str], state: Any) -> None:
        """Raw SQL, judged statement by statement with the same rules."""
        columns: dict[tuple[str, str], tuple[Any, Any]] | None = None
        defaulted_new_columns: set[tuple[str, str]] = set()

        def column_field(table: str, column: str) -> tuple[Any, str | None] | None:
            """The state's field for table.column and its type, if the state knows it."""
            nonlocal columns
            if columns is None:
                columns = self._columns(state)
            if (table, column) not in columns:
                return None
            model, field = columns[table, column]
            return field, self._db_parameters(state, model, field)["type"]

        for raw in _split_statements(statements):
            sql = re.sub(r"\s+", " ", raw.replace('"', "")).strip().rstrip(";").strip()
            if match := CREATE_TABLE.match(sql):
                self.fresh_tables.add(_bare(match["table"]))
            elif match := DROP_TABLE.match(sql):
                for table in (_bare(t) for t in match["tables"].split(",")):
                    if table not in self.fresh_tables:
                        self._report(
                            "table-dropped",
                            f"drops table {table} while the running version queries it",
                        )
            elif match := CREATE_INDEX.match(sql):
                table = _bare(match["table"])
                if table in self.fresh_tables or match["concurrently"]:
                    continue
                if match["unique"]:
                    self._report(
                        "unique-constraint-added",
                        f"builds a unique index on {table} under a write lock; the running "
                        "version may insert duplicates",
                    )
                else:
                    self._report(
                        "index-created-non-concurrently",
                        f"builds an index on {table} without CONCURRENTLY",
                    )
            elif DROP_INDEX.match(sql):
                self._report(
                    "index-dropped-non-concurrently", f"drops an index without CONCURRENTLY: {sql}"
                )
            elif match := ALTER_TABLE.match(sql):
                table = _bare(match["table"])
                if table not in self.fresh_tables:
                    for action in _split_actions(match["actions"]):
                        self._judge_alter_table(table, action, column_field, defaulted_new_columns)

    def _judge_alter_table(
        self,
        table: str,
        action: str,
        column_field: Callable[[str, str], tuple[Any, str | None] | None],
        defaulted_new_columns: set[tuple[str, str]],
    ) -> None:
        upper = action.upper()
        if upper.startswith(("DROP CONSTRAINT", "RENAME CONSTRAINT", "VALIDATE CONSTRAINT")):
            return
        if match := RENAME_TABLE.match(action):
            self._report(
                "table-renamed",
                f"renames table {table} to {_bare(match['new'])}: the running version still "
                "uses the old name",
            )
        elif match := RENAME_COLUMN.match(action):
            self._report(
                "column-renamed",
                f"renames column {table}.{match['old']} to {match['new']}: the running version "
                "still uses the old name",
            )
        elif match := DROP_COLUMN.match(action):
            self._report(
                "column-dropped",
                f"drops column {table}.{match['column']} while the running version still "
                "selects and writes it",
            )
        elif match := ADD_CONSTRAINT.match(action):
            self._judge_added_constraint(table, match["kind"].upper(), upper)
        elif match := ADD_COLUMN.match(action):
            definition = match["definition"].upper()
            column = match["column"]
            if NOT_NULL.search(definition) and "GENERATED" not in definition:
                if re.search(r"\bDEFAULT\b", definition):
                    defaulted_new_columns.add((table, column))
                elif "REFERENCES" in definition:
                    self._report(
                        "not-null-foreign-key",
                        f"adds NOT NULL foreign key {table}.{column}: inserts from the running "
                        "version, which omit it, fail",
                    )
                else:
                    self._report(
                        "not-null-column-without-db-default",
                        f"adds NOT NULL column {table}.{column} without a default: inserts "
                        "from the running version, which omit the column, fail",
                    )
        elif match := ALTER_COLUMN.match(action):
            self._judge_alter_column(
                table, match["column"], match["change"], column_field, defaulted_new_columns
            )

    def _judge_added_constraint(self, table: str, kind: str, action: str) -> None:
        if "NOT VALID" in action or "USING INDEX" in action:
            return
        if kind == "CHECK":
            self._report(
                "check-constraint-added",
                f"adds a check constraint to {table} without NOT VALID: validated at once "
                "under lock",
            )
        elif kind == "FOREIGN KEY":
            self._report(
                "foreign-key-added",
                f"adds a foreign key to {table} without NOT VALID: both tables are locked "
                "while every row is checked",
            )
        else:
            self._report(
                "unique-constraint-added",
                f"adds a {kind.lower()} constraint to {table}: its index is built under a "
                "write lock and the running version may insert duplicates",
            )

    def _judge_alter_column(
        self,
        table: str,
        column: str,
        change: str,
        column_field: Callable[[str, str], tuple[Any, str | None] | None],
        defaulted_new_columns: set[tuple[str, str]],
    ) -> None:
        upper = change.upper()
        where = f"{table}.{column}"
        if upper.startswith("SET NOT NULL"):
            self._report(
                "column-made-not-null",
                f"makes {where} NOT NULL: the running version may still write NULL",
            )
        elif upper.startswith("DROP DEFAULT"):
            if (table, column) in defaulted_new_columns:
                self._report(
                    "not-null-column-without-db-default",
                    f"adds NOT NULL column {where} and then drops its default: inserts from "
                    "the running version, which omit the column, fail",
                )
                return
            found = column_field(table, column)
            if found is None or not found[0].null:
                self._report(
                    "db-default-dropped",
                    f"drops the database default of NOT NULL column {where}: inserts from "
                    "the running version that omit it fail",
                )
        elif match := ALTER_TYPE.match(change):
            found = column_field(table, column)
            known_type = found[1] if found else None
            old_type, new_type = known_type or "an unknown type", match["type"]
            result = _type_change(known_type, new_type) if known_type else "changed"
            if result == "shrunk":
                self._report(
                    "column-length-shrunk",
                    f"shrinks {where} from {old_type} to {new_type}: rows are checked under an "
                    "exclusive lock and the running version may write longer values",
                )
            elif result == "changed":
                self._report(
                    "column-type-changed",
                    f"changes {where} from {old_type} to {new_type}: the table is rewritten "
                    "under an exclusive lock and the running version writes the old type",
                )


CREATE_TABLE = re.compile(
    r"^CREATE (?:(?:GLOBAL |LOCAL )?(?:TEMP|TEMPORARY|UNLOGGED) )?TABLE (?:IF NOT EXISTS )?"
    r"(?P<table>[\w.$]+)",
    re.IGNORECASE,
)
DROP_TABLE = re.compile(
    r"^DROP TABLE (?:IF EXISTS )?(?P<tables>[\w.$]+(?: ?, ?[\w.$]+)*)", re.IGNORECASE
)
CREATE_INDEX = re.compile(
    r"^CREATE (?P<unique>UNIQUE )?INDEX (?P<concurrently>CONCURRENTLY )?(?:IF NOT EXISTS )?"
    r"(?:[\w.$]+ )?ON (?:ONLY )?(?P<table>[\w.$]+)",
    re.IGNORECASE,
)
DROP_INDEX = re.compile(r"^DROP INDEX (?!CONCURRENTLY)", re.IGNORECASE)
ALTER_TABLE = re.compile(
    r"^ALTER TABLE (?:IF EXISTS )?(?:ONLY )?(?P<table>[\w.$]+) (?P<actions>.+)$", re.IGNORECASE
)
RENAME_TABLE = re.compile(r"^RENAME TO (?P<new>[\w.$]+)$", re.IGNORECASE)
RENAME_COLUMN = re.compile(r"^RENAME (?:COLUMN )?(?P<old>\w+) TO (?P<new>\w+)$", re.IGNORECASE)
DROP_COLUMN = re.compile(r"^DROP (?:COLUMN )?(?:IF EXISTS )?(?P<column>\w+)", re.IGNORECASE)
ADD_CONSTRAINT = re.compile(
    r"^ADD (?:CONSTRAINT \w+ )?(?P<kind>UNIQUE|PRIMARY KEY|CHECK|FOREIGN KEY|EXCLUDE)\b",
    re.IGNORECASE,
)
ADD_COLUMN = re.compile(
    r"^ADD (?:COLUMN )?(?:IF NOT EXISTS )?(?P<column>\w+) (?P<definition>.+)$", re.IGNORECASE
)
ALTER_COLUMN = re.compile(r"^ALTER (?:COLUMN )?(?P<column>\w+) (?P<change>.+)$", re.IGNORECASE)
ALTER_TYPE = re.compile(
    r"^(?:SET DATA )?TYPE (?P<type>.+?)(?: COLLATE .*| USING .*)?$", re.IGNORECASE
)
NOT_NULL = re.compile(r"(?<!IS )\bNOT NULL\b")
TYPE_ALIASES = {
    "int": "integer",
    "int4": "integer",
    "int8": "bigint",
    "int2": "smallint",
    "bool": "boolean",
    "decimal": "numeric",
    "timestamptz": "timestamp with time zone",
    "character varying": "varchar",
    "char varying": "varchar",
}
VARCHAR = re.compile(r"^varchar(?:\((?P<length>\d+)\))?$")
NUMERIC = re.compile(r"^numeric\((?P<precision>\d+),(?P<scale>\d+)\)$")


def _canonical_type(text: str) -> str:
    text = re.sub(r"\s+", " ", text.strip().lower())
    text = re.sub(r"\s*([(),])\s*", r"\1", text)
    name, bracket, rest = text.partition("(")
    return TYPE_ALIASES.get(name.strip(), name.strip()) + bracket + rest


def _text_length(type_: str) -> float | None:
    """Longest text a varchar/text column holds, or None for any other type."""
    if type_ == "text":
        return math.inf
    match = VARCHAR.match(type_)
    if match is None:
        return None
    return float(match["length"]) if match["length"] else math.inf


def _type_change(old: str, new: str) -> str | None:
    """None when PostgreSQL keeps the data as is (same or wider), else "shrunk" or "changed"."""
    old, new = _canonical_type(old), _canonical_type(new)
    if old == new:
        return None
    old_length, new_length = _text_length(old), _text_length(new)
    if old_length is not None and new_length is not None:
        return None if new_length >= old_length else "shrunk"
    old_numeric, new_numeric = NUMERIC.match(old), NUMERIC.match(new)
    if old_numeric and new_numeric and old_numeric["scale"] == new_numeric["scale"]:
        wider = int(new_numeric["precision"]) >= int(old_numeric["precision"])
        return None if wider else "shrunk"
    return "changed"


def _split_statements(scripts: Iterable[str]) -> list[str]:
    """Single statements without comments (PostgreSQL's backend would not split a script)."""
    from django.db import connection
    from django.db.backends.base.operations import BaseDatabaseOperations

    return [
        statement
        for script in scripts
        for statement in BaseDatabaseOperations.prepare_sql_script(connection.ops, script)
    ]


def _split_actions(actions: str) -> list[str]:
    """The comma-separated actions of one ALTER TABLE, ignoring commas in () and quotes."""
    parts: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for char in actions:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and char == ",":
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def _bare(table: str) -> str:
    return table.strip().rsplit(".", 1)[-1]


def _model_name(operation: Any) -> str | None:
    """The (lower-case) model an operation changes, as the state knows it before."""
    from django.db.migrations import RenameModel
    from django.db.migrations.operations.models import ModelOperation

    if isinstance(operation, RenameModel):
        return str(operation.old_name_lower)
    if isinstance(operation, ModelOperation):
        return str(operation.name_lower)
    name = getattr(operation, "model_name_lower", None)
    return str(name) if name else None


def _unique_fields(constraint: Any) -> tuple[str, ...]:
    """The fields a UniqueConstraint keeps unique in every row; none for any other constraint,
    one on expressions, or one with a condition (partial)."""
    from django.db.models import UniqueConstraint

    if not isinstance(constraint, UniqueConstraint) or constraint.condition is not None:
        return ()
    return tuple(constraint.fields)


def _alters_column(old: Any, new: Any) -> bool:
    """Whether Django's schema editor alters the column for this change, which drops and
    re-creates its foreign key: Django's own test (`_field_should_be_altered`), but on the
    state's unbound fields, and leaving the target out (it is compared on its own)."""

    def significant(field: Any) -> tuple[Any, ...]:
        _, path, args, kwargs = field.deconstruct()
        for attribute in (*field.non_db_attrs, "db_comment", "to"):
            kwargs.pop(attribute, None)
        return path, args, kwargs

    return bool(old.column != new.column or significant(old) != significant(new))


def _has_db_default(field: Any) -> bool:
    from django.db.models.fields import NOT_PROVIDED

    return getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED


def _describe(operation: Any) -> str:
    try:
        return str(operation.describe())
    except Exception:  # a custom operation's own code
        return type(operation).__name__


def _marker_reason(migration: Any) -> str | None:
    module = sys.modules.get(type(migration).__module__)
    path = getattr(module, "__file__", None) or ""
    if not path.endswith(".py"):
        return None
    lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, 1):
        match = MARKER.match(line)
        if match is None:
            continue
        reason = (match["reason"] or "").strip()
        if len(reason) < MIN_REASON_LENGTH:
            raise ProjectError(
                f"{path}:{number}: the acknowledge-unsafe marker needs a reason of at least "
                f"{MIN_REASON_LENGTH} characters: `{MARKER_EXAMPLE}`"
            )
        return reason
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="analyzer.py",
        description="Find Django migrations that would break the version still running.",
    )
    parser.add_argument("labels", nargs="*", metavar="LABEL", help="app_label[.migration_name]")
    parser.add_argument("--settings", required=True, help="the app's Django settings module")
    parser.add_argument("--pythonpath", help="directory holding the project (default: current)")
    parser.add_argument("--all", action="store_true", dest="check_all", help="every migration")
    parser.add_argument("--offline", action="store_true", help="do not connect to the database")
    parser.add_argument(
        "--one-release", action="store_true", help="the LABELs ship together, as one release"
    )
    parser.add_argument(
        "--first-deploy",
        action="store_true",
        help="no version runs yet: judge nothing, connect nowhere (the migrations are counted)",
    )
    parser.add_argument("--acknowledge", action="append", default=[], metavar="MIGRATION=REASON")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.check_all and args.labels:
        parser.error("--all and LABEL exclude each other")
    if args.first_deploy and (args.check_all or args.labels):
        parser.error("--first-deploy judges nothing: it excludes --all and LABEL")
    if args.one_release and not args.labels:
        parser.error("--one-release needs LABELs")
    if args.offline and not (args.check_all or args.labels or args.first_deploy):
        parser.error("--offline needs --all or LABEL: only the database knows what is unapplied")
    try:
        acknowledged = parse_acknowledgements(args.acknowledge)
        # The project's own prints must not corrupt the report on stdout.
        with contextlib.redirect_stdout(sys.stderr):
            result = check_project(
                args.settings,
                args.pythonpath,
                args.labels,
                args.check_all,
                args.offline,
                acknowledged,
                one_release=args.one_release,
                first_deploy=args.first_deploy,
            )
    except (ProjectError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # the project's migrations are code too
        print(f"error: checking the migrations failed: {_describe_error(error)}", file=sys.stderr)
        return 2
    print(json.dumps(result.to_json(), indent=2) if args.json else format_report(result))
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
