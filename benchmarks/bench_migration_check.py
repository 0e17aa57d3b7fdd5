"""`pulumi-django check-migrations` vs django-migration-linter on a generated 200-migration project.

Generates a Django project (in a temporary directory) whose apps each have a history of
migrations cycling through common operations, safe and unsafe, with the ground truth known for
each. Then checks every migration with both tools, one command each, process start included,
against the same throwaway PostgreSQL (`lintmigrations` needs a database for `sqlmigrate`),
and prints both times, the ratio and both tools' findings.

Also timed: the analyzer alone (what the release job runs inside the app image), and the floor
every such tool pays: start Python and Django, load the migrations with Django's loader, read
the history from the database. Compiled bytecode is cached (in a temporary directory) as on
any normal installation, after one warm-up round; each figure is the median of the rounds.

    .venv/bin/python benchmarks/bench_migration_check.py [--apps 4] [--migrations-per-app 50]
        [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from measure import Run, run_timed

from pulumi_django.cli.rehearsal.servers import postgres
from pulumi_django.migration_check.runner import ANALYZER


@dataclass
class History:
    """One app's model state while its migrations are generated."""

    app: str
    added: list[str] = field(default_factory=list)  # nullable varchars added by later steps
    extra_models: list[str] = field(default_factory=list)
    # Columns the first migration creates for later steps to alter, rename or drop.
    initial_varchars: list[str] = field(default_factory=list)
    initial_integers: list[str] = field(default_factory=list)

    def take_spare(self) -> str:
        """A nullable varchar(50) no other step uses: an added one, else one more initial one."""
        if self.added:
            return self.added.pop(0)
        self.initial_varchars.append(f"spare{len(self.initial_varchars)}")
        return self.initial_varchars[-1]

    def take_integer(self) -> str:
        self.initial_integers.append(f"count{len(self.initial_integers)}")
        return self.initial_integers[-1]


# Each step: (kind, unsafe by construction, operations source for migration number n).
Step = tuple[str, bool, Callable[[History, int], str]]


def _add_nullable(h: History, n: int) -> str:
    h.added.append(f"added{n}")
    return f'migrations.AddField("record", "added{n}", models.CharField(max_length=50, null=True))'


def _add_python_default(_h: History, n: int) -> str:
    return f'migrations.AddField("record", "flag{n}", models.BooleanField(default=False))'


def _add_db_default(_h: History, n: int) -> str:
    return f'migrations.AddField("record", "kept{n}", models.BooleanField(db_default=False))'


def _widen(h: History, _n: int) -> str:
    name = h.take_spare()
    return f'migrations.AlterField("record", "{name}", models.CharField(max_length=200, null=True))'


def _shrink(h: History, _n: int) -> str:
    name = h.take_spare()
    return f'migrations.AlterField("record", "{name}", models.CharField(max_length=10, null=True))'


def _add_index(h: History, n: int) -> str:
    name = h.take_spare()
    return f'migrations.AddIndex("record", models.Index(fields=["{name}"], name="{h.app}_i{n}"))'


def _rename(h: History, _n: int) -> str:
    name = h.take_spare()
    return f'migrations.RenameField("record", "{name}", "{name}_renamed")'


def _create_model(h: History, n: int) -> str:
    h.extra_models.append(f"Extra{n}")
    return (
        f'migrations.CreateModel("Extra{n}", fields=['
        '("id", models.BigAutoField(primary_key=True)), '
        '("label", models.CharField(max_length=20)), '
        f'("record", models.ForeignKey(on_delete=models.CASCADE, to="{h.app}.record"))])'
    )


def _remove(h: History, _n: int) -> str:
    return f'migrations.RemoveField("record", "{h.take_spare()}")'


def _run_sql_irreversible(h: History, _n: int) -> str:
    # Source text of a generated migration, not a query run here.
    return f'migrations.RunSQL("UPDATE {h.app}_record SET title = title")'  # noqa: S608


def _make_not_null(h: History, _n: int) -> str:
    name = h.take_spare()
    return (
        f'migrations.AlterField("record", "{name}", '
        'models.CharField(max_length=50, default=""), preserve_default=False)'
    )


def _run_python(_h: History, _n: int) -> str:
    return "migrations.RunPython(touch, migrations.RunPython.noop)"


def _delete_model(h: History, _n: int) -> str:
    return f'migrations.DeleteModel("{h.extra_models.pop(0)}")'


def _unique(h: History, _n: int) -> str:
    name = h.take_spare()
    return (
        f'migrations.AlterField("record", "{name}", '
        "models.CharField(max_length=50, null=True, unique=True))"
    )


def _integer_to_bigint(h: History, _n: int) -> str:
    return f'migrations.AlterField("record", "{h.take_integer()}", models.BigIntegerField())'


def _nullable_foreign_key(h: History, n: int) -> str:
    return (
        f'migrations.AddField("record", "parent{n}", models.ForeignKey('
        f'null=True, on_delete=models.SET_NULL, related_name="+", to="{h.app}.record"))'
    )


def _drop_column_sql(h: History, _n: int) -> str:
    name = h.take_spare()
    return (
        f'migrations.RunSQL("ALTER TABLE {h.app}_record DROP COLUMN {name}", '
        f'reverse_sql="ALTER TABLE {h.app}_record ADD COLUMN {name} varchar(50) NULL", '
        f'state_operations=[migrations.RemoveField("record", "{name}")])'
    )


STEPS: list[Step] = [
    ("add nullable column", False, _add_nullable),
    ("add NOT NULL column, Python default", True, _add_python_default),
    ("add NOT NULL column, db_default", False, _add_db_default),
    ("widen varchar", False, _widen),
    ("add index", False, _add_index),
    ("rename column", True, _rename),
    ("shrink varchar", True, _shrink),
    ("create table", False, _create_model),
    ("drop column", True, _remove),
    ("RunSQL without reverse", False, _run_sql_irreversible),
    ("make column NOT NULL", True, _make_not_null),
    ("RunPython with reverse", False, _run_python),
    ("drop table", True, _delete_model),
    ("add unique", True, _unique),
    ("integer to bigint", True, _integer_to_bigint),
    ("add nullable foreign key", False, _nullable_foreign_key),
    ("drop column in RunSQL", True, _drop_column_sql),
]

MIGRATION = """from django.db import migrations, models


def touch(apps, schema_editor):
    apps.get_model("{app}", "Record").objects.update()


class Migration(migrations.Migration):
    dependencies = [{dependencies}]
    operations = [
        {operations},
    ]
"""


def generate(root: Path, apps: int, per_app: int) -> dict[str, tuple[str, bool]]:
    """The project under `root`; returns migration -> (kind, unsafe by construction)."""
    package = root / "benchproject"
    package.mkdir()
    (package / "__init__.py").write_text("")
    labels = [f"app{number}" for number in range(1, apps + 1)]
    (package / "settings.py").write_text(
        "import os\nimport dj_database_url\n"
        "SECRET_KEY = 'bench'\nUSE_TZ = True\n"
        "DEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'\n"
        f"INSTALLED_APPS = {[*labels, 'django_migration_linter']!r}\n"
        "DATABASES = {'default': dj_database_url.parse(os.environ['DATABASE_URL'])}\n"
    )
    truth: dict[str, tuple[str, bool]] = {}
    for label in labels:
        migrations = root / label / "migrations"
        migrations.mkdir(parents=True)
        (root / label / "__init__.py").write_text("")
        (migrations / "__init__.py").write_text("")
        history = History(label)
        previous = "0001_initial"
        truth[f"{label}.{previous}"] = ("create table", False)
        for number in range(2, per_app + 1):
            kind, unsafe, render = STEPS[(number - 2) % len(STEPS)]
            name = f"{number:04d}_{re.sub(r'[^a-z0-9]+', '_', kind.lower()).strip('_')}"
            write_migration(
                migrations / f"{name}.py",
                label,
                f'("{label}", "{previous}")',
                render(history, number),
            )
            truth[f"{label}.{name}"] = (kind, unsafe)
            previous = name
        fields = [
            '("id", models.BigAutoField(primary_key=True))',
            '("title", models.CharField(max_length=100))',
            *(
                f'("{name}", models.CharField(max_length=50, null=True))'
                for name in history.initial_varchars
            ),
            *(f'("{name}", models.IntegerField(default=0))' for name in history.initial_integers),
        ]
        write_migration(
            migrations / "0001_initial.py",
            label,
            "",
            f'migrations.CreateModel("Record", fields=[{", ".join(fields)}])',
        )
    return truth


def write_migration(path: Path, app: str, dependencies: str, operations: str) -> None:
    path.write_text(MIGRATION.format(app=app, dependencies=dependencies, operations=operations))


# What any migration checker does first: start Django, load the migrations, read the history.
FLOOR = """
import os, sys
sys.path.insert(0, sys.argv[1])
os.environ["DJANGO_SETTINGS_MODULE"] = "benchproject.settings"
import django
django.setup()
from django.db import connection
from django.db.migrations.loader import MigrationLoader
MigrationLoader(connection)
"""
LINTER_LINE = re.compile(r"^\((?P<app>\w+), (?P<name>\w+)\)\.\.\. (?P<status>.+)$")


def parse_linter(output: str) -> dict[str, tuple[str, list[str]]]:
    """migration -> (status: OK/ERR/WARNING..., messages) from `lintmigrations` output."""
    result: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in output.splitlines():
        match = LINTER_LINE.match(line)
        if match:
            current = f"{match['app']}.{match['name']}"
            result[current] = (match["status"], [])
        elif line.startswith("\t") and current:
            result[current][1].append(line.strip())
        elif line.startswith("***"):
            current = None
    return result


def median_run(command: list[str], cwd: Path, env: dict[str, str], rounds: int) -> Run:
    """One warm-up run, then the median wall and CPU time of `rounds` runs."""
    run_timed(command, cwd=cwd, env=env)
    runs = [run_timed(command, cwd=cwd, env=env) for _ in range(rounds)]
    wall = statistics.median(run.wall for run in runs)
    cpu = statistics.median(run.cpu for run in runs)
    last = runs[-1]
    return Run(wall, cpu, last.returncode, last.stdout, last.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=4)
    parser.add_argument("--migrations-per-app", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="pd-bench-migrations-"))
    try:
        truth = generate(root, args.apps, args.migrations_per_app)
        print(f"Generated {len(truth)} migrations in {args.apps} apps under {root}")
        with postgres() as server:
            env = {
                **os.environ,
                "DATABASE_URL": server.create_database("bench"),
                "PYTHONPYCACHEPREFIX": str(root / "bytecode"),
            }
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            project = ["--settings", "benchproject.settings", "--pythonpath", str(root)]
            commands = {
                "ours": [
                    sys.executable,
                    "-m",
                    "pulumi_django.cli",
                    "check-migrations",
                    *project,
                    "--all",
                    "--json",
                ],
                "analyzer": [sys.executable, str(ANALYZER), *project, "--all", "--json"],
                "linter": [
                    sys.executable,
                    "-m",
                    "django",
                    "lintmigrations",
                    "--no-cache",
                    *project,
                ],
                "floor": [sys.executable, "-c", FLOOR, str(root)],
            }
            runs = {
                name: median_run(command, root, env, args.rounds)
                for name, command in commands.items()
            }
        failed = {name: run for name, run in runs.items() if run.returncode not in (0, 1)}
        for name, run in failed.items():
            print(f"{name} failed ({run.returncode}):\n{run.stderr[-2000:]}")
        if failed:
            return 2
        report(truth, runs, args.rounds)
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


def report(truth: dict[str, tuple[str, bool]], runs: dict[str, Run], rounds: int) -> None:
    ours, linter, analyzer, floor = runs["ours"], runs["linter"], runs["analyzer"], runs["floor"]
    document = json.loads(ours.stdout)
    ours_found: dict[str, list[str]] = {name: [] for name in truth}
    for finding in document["findings"]:
        ours_found[finding["migration"]].append(f"{finding['severity']} {finding['rule']}")
    linter_found = parse_linter(linter.stdout)
    ours_unsafe = {name for name, found in ours_found.items() if any("unsafe" in f for f in found)}
    linter_unsafe = {name for name, (status, _) in linter_found.items() if status.startswith("ERR")}

    print("\nFindings (migration [kind]: pulumi-django | django-migration-linter):")
    for name, (kind, _) in truth.items():
        status, messages = linter_found.get(name, ("not linted", []))
        linter_text = status + (": " + "; ".join(messages) if messages else "")
        print(f"  {name} [{kind}]: {', '.join(ours_found[name]) or 'OK'} | {linter_text}")

    print(f"\nTimes, median of {rounds} runs after a warm-up:      wall       CPU")
    rows = [
        ("pulumi-django check-migrations --all", ours),
        ("  its analyzer alone, as the release runs it", analyzer),
        ("django-migration-linter lintmigrations", linter),
        ("start-up floor: Django, migrations, history", floor),
    ]
    for label, run in rows:
        print(f"  {label:<46} {run.wall:7.2f} s {run.cpu:7.2f} s")
    print(
        f"Speed-up, end to end: {linter.wall / ours.wall:.1f}x wall, "
        f"{linter.cpu / ours.cpu:.1f}x CPU (target: at least 10x); analyzer alone: "
        f"{linter.wall / analyzer.wall:.1f}x wall, {linter.cpu / analyzer.cpu:.1f}x CPU"
    )
    beyond = {name: runs[name].cpu - floor.cpu for name in ("linter", "ours", "analyzer")}
    print(
        "CPU time beyond the start-up floor: linter "
        f"{beyond['linter']:.2f} s, pulumi-django {beyond['ours']:.2f} s "
        f"({beyond['linter'] / max(beyond['ours'], 0.01):.0f}x less), analyzer alone "
        f"{beyond['analyzer']:.2f} s"
    )
    expected = {name for name, (_, unsafe) in truth.items() if unsafe}
    print(
        f"\nUnsafe by construction: {len(expected)}; found by pulumi-django: "
        f"{len(expected & ours_unsafe)}; by the linter: {len(expected & linter_unsafe)}"
    )
    print(
        f"Migrations pulumi-django refuses that are safe by construction: "
        f"{len(ours_unsafe - expected)}"
    )
    missed = sorted(linter_unsafe - ours_unsafe)
    print(
        f"Unsafe cases the linter reports: {len(linter_unsafe)}; also reported by pulumi-django: "
        f"{len(linter_unsafe & ours_unsafe)}; only by the linter: {len(missed)}"
    )
    for kind in sorted({truth[name][0] for name in missed}):
        names = [name for name in missed if truth[name][0] == kind]
        safe = not truth[names[0]][1]
        verdict = "safe by construction" if safe else "UNSAFE by construction: missed"
        print(
            f"  {kind} ({verdict}): {len(names)}, e.g. {names[0]}: "
            f"{'; '.join(linter_found[names[0]][1])}"
        )


if __name__ == "__main__":
    sys.exit(main())
