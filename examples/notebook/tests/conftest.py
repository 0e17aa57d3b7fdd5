"""A real PostgreSQL and Redis, shared by the Notebook app's tests."""

from collections.abc import Iterator

import pytest
from notebook_testing import new_database_name

from pulumi_django.cli.rehearsal.servers import Postgres, Redis, postgres, redis


@pytest.fixture(scope="session")
def servers() -> Iterator[tuple[Postgres, Redis]]:
    with postgres() as database, redis() as cache:
        yield database, cache


@pytest.fixture
def database_url(servers: tuple[Postgres, Redis]) -> str:
    """A new, empty database on the shared PostgreSQL."""
    return servers[0].create_database(new_database_name())
