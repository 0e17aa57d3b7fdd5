"""A real PostgreSQL and Redis, shared by the Bigfoot app's tests.

The Django TestCases in django_suite/ are run by Django's own runner (test_bigfoot_app.py runs
`manage.py test tests/django_suite` against these servers), so pytest does not collect them.
"""

from collections.abc import Iterator

import pytest
from bigfoot_testing import Services

from pulumi_django.cli.rehearsal.servers import postgres, redis

collect_ignore = ["django_suite"]


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    with postgres() as database, redis() as cache:
        yield Services(database, cache)
