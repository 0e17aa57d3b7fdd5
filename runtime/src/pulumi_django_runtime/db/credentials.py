"""Database credentials that follow a rotating Secrets Manager secret.

On AWS the task receives DATABASE_PASSWORD once, at start, and RDS rotates the master
password every 7 days. A process keeps its open connections after a rotation, but the old
password is refused for every new one. So: connect with the password known to work; when
PostgreSQL refuses it, read the secret again (at most once per REFRESH_COOLDOWN_SECONDS per
process, never on an ordinary connect), retry once, and keep the value that worked for every
thread of the process.

No Django here, so the logic is tested with a stub reader.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg

# A connect refused for a password never triggers more than one Secrets Manager call per
# process in this many seconds, however many threads or requests fail at once.
REFRESH_COOLDOWN_SECONDS = 5.0
CURRENT_STAGE = "AWSCURRENT"
# While RDS rotates, the database may already use the new password that the secret still
# holds as its pending version (for up to about a minute).
PENDING_STAGE = "AWSPENDING"
SQLSTATE_INVALID_PASSWORD = "28P01"  # noqa: S105 - an error code, not a password

logger = logging.getLogger(__name__)
Connection = TypeVar("Connection")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


SecretReader = Callable[[str], "Credentials | None"]
"""Reads the secret at a version stage; None when the secret has no version at that stage."""


def is_authentication_failure(error: Exception) -> bool:
    """PostgreSQL refused the password. psycopg reports a refused connect without SQLSTATE,
    so the server's message decides when the code is missing."""
    if not isinstance(error, psycopg.OperationalError):
        return False
    if error.sqlstate is not None:
        return error.sqlstate == SQLSTATE_INVALID_PASSWORD
    return "password authentication failed" in str(error)


class RotatingCredentials:
    """Process-wide, thread-safe credentials of one database secret.

    `current()` is what every new connection uses. After a refusal, `replacement(rejected)`
    offers what to try instead: the value another thread already proved, the value read from
    the secret moments ago, or a fresh read; it is kept once a connection succeeds with it
    (`accept`), so a stale pending value never replaces a working password."""

    def __init__(
        self,
        read_secret: SecretReader,
        initial: Credentials | None,
        *,
        cooldown_seconds: float = REFRESH_COOLDOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read_secret = read_secret
        self._accepted = initial
        self._candidate: Credentials | None = None
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._last_read: float | None = None
        self._lock = threading.Lock()

    def current(self) -> Credentials:
        """The credentials known to work; read from the secret when none were given."""
        with self._lock:
            if self._accepted is None:
                self._accepted = self._read(CURRENT_STAGE)
                if self._accepted is None:
                    raise LookupError("the database secret has no current version")
            return self._accepted

    def replacement(self, rejected: Credentials) -> Credentials | None:
        """What to try after `rejected` was refused, or None when nothing new is known yet."""
        with self._lock:
            if self._accepted is not None and self._accepted != rejected:
                return self._accepted
            if self._candidate is not None and self._candidate != rejected:
                return self._candidate
            if self._last_read is not None and self._clock() - self._last_read < self._cooldown:
                return None
            fresh = self._read(CURRENT_STAGE)
            if fresh is None or fresh == rejected:
                fresh = self._read(PENDING_STAGE)
            self._candidate = fresh if fresh != rejected else None
            return self._candidate

    def accept(self, working: Credentials) -> None:
        """A connection succeeded with `working`: every new connection uses it from now on."""
        with self._lock:
            if self._accepted != working:
                logger.info("database credentials refreshed from Secrets Manager")
            self._accepted = working
            if self._candidate == working:
                self._candidate = None

    def connect(
        self,
        connect: Callable[[dict[str, Any]], Connection],
        params: Mapping[str, Any],
    ) -> Connection:
        """`connect(params)` with the current credentials; on a refused password, once more
        with the replacement. Any other error, or a second refusal, is raised as it is."""
        try:
            return connect(dict(params))
        except psycopg.OperationalError as error:
            used = Credentials(params.get("user", ""), params.get("password", ""))
            replacement = self._replacement_after(error, used)
        try:
            connection = connect({**params, **as_params(replacement)})
        except psycopg.OperationalError as error:
            if is_authentication_failure(error):
                self._forget(replacement)
            raise
        self.accept(replacement)
        return connection

    def _replacement_after(self, error: psycopg.OperationalError, used: Credentials) -> Credentials:
        if not is_authentication_failure(error):
            raise error
        logger.warning("the database refused the password; checking Secrets Manager")
        try:
            replacement = self.replacement(used)
        except Exception as read_error:
            logger.error("could not read the database secret: %r", read_error)
            raise error from read_error
        if replacement is None:
            raise error
        return replacement

    def _forget(self, refused: Credentials) -> None:
        """A value read from the secret was refused too (a pending version left by a failed
        rotation, say): the next refusal reads the secret again instead of retrying it."""
        with self._lock:
            if self._candidate == refused:
                self._candidate = None

    def _read(self, stage: str) -> Credentials | None:
        self._last_read = self._clock()
        return self._read_secret(stage)


def as_params(credentials: Credentials) -> dict[str, str]:
    """The psycopg connect keywords of `credentials`."""
    return {"user": credentials.username, "password": credentials.password}


def secrets_manager_reader(secret_arn: str) -> SecretReader:
    """Reads the RDS-managed secret (JSON `username`, `password`) with the task role.

    The region comes from the ARN, so no AWS_REGION is needed; boto3 is imported on the first
    read, so a process whose password never rotates never loads it."""

    def read(stage: str) -> Credentials | None:
        import boto3
        from botocore.exceptions import ClientError

        client = boto3.session.Session().client(
            "secretsmanager", region_name=arn_region(secret_arn)
        )
        try:
            value = client.get_secret_value(SecretId=secret_arn, VersionStage=stage)
        except ClientError as error:
            if (
                stage != CURRENT_STAGE
                and error.response["Error"]["Code"] == "ResourceNotFoundException"
            ):
                return None
            raise
        document = json.loads(value["SecretString"])
        return Credentials(username=document["username"], password=document["password"])

    return read


def arn_region(arn: str) -> str:
    """`arn:aws:secretsmanager:eu-west-1:123456789012:secret:x` -> `eu-west-1`."""
    parts = arn.split(":")
    if len(parts) < 7 or parts[2] != "secretsmanager" or not parts[3]:
        raise ValueError(f"{arn!r} is not a Secrets Manager secret ARN")
    return parts[3]


_registry_lock = threading.Lock()
_by_secret: dict[str, RotatingCredentials] = {}


def credentials_for(secret_arn: str, initial: Credentials | None) -> RotatingCredentials:
    """The one RotatingCredentials of this process for `secret_arn` (shared by all threads);
    `initial` (the password the task started with) is used by the first caller only."""
    with _registry_lock:
        if secret_arn not in _by_secret:
            _by_secret[secret_arn] = RotatingCredentials(
                secrets_manager_reader(secret_arn), initial
            )
        return _by_secret[secret_arn]
