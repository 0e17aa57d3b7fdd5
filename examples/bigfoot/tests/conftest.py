"""A real PostgreSQL and Redis, shared by the Bigfoot app's tests.

The Django TestCases in django_suite/ are run by Django's own runner (test_bigfoot_app.py runs
`manage.py test tests/django_suite` against these servers), so pytest does not collect them.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from bigfoot_testing import APP_DIR, Services, collect_static
from shared_files import made_once

from pulumi_django.cli.rehearsal.servers import postgres, redis

collect_ignore = ["django_suite"]


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app's STATIC_ROOT after `collectstatic`, collected once for the session's workers:
    read it only."""

    def collect(static_root: Path) -> Path:
        collect_static(APP_DIR, static_root)
        return static_root

    return made_once(tmp_path_factory, "bigfoot-static", collect)


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    with postgres() as database, redis() as cache:
        yield Services(database, cache)
