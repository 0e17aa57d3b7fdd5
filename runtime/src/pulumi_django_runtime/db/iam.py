"""RDS IAM database authentication: a fresh token for every new connection.

An IAM authentication token is a SigV4-presigned `connect` request for one host, port and
database user, signed locally with the process's AWS credentials (on ECS, the task role's, which
boto3 refreshes on its own): no network call, no password stored anywhere. RDS accepts a token
for 15 minutes (TOKEN_LIFETIME_SECONDS) and only over TLS; it checks the token when a connection
authenticates, never afterwards, so a persistent connection (Django's CONN_MAX_AGE) outlives its
token and only each new connection needs a new one.

No Django here: the backend (pulumi_django_runtime.db.postgresql_iam) and the release's role
step (pulumi_django_runtime.db.app_role) both sign through `auth_token`.
"""

from __future__ import annotations

import re
import threading
from typing import Any

# How long RDS accepts a token after it was signed (botocore presigns it with X-Amz-Expires=900).
TOKEN_LIFETIME_SECONDS = 900
# libpq sslmodes that never fall back to plain text: RDS refuses IAM tokens without TLS.
TLS_SSL_MODES = frozenset({"require", "verify-ca", "verify-full"})
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
DEFAULT_PORT = 5432

_lock = threading.Lock()
_clients: dict[str, Any] = {}


def rds_client(region: str) -> Any:
    """The process's RDS client for `region` (boto3 clients are thread-safe; the session that
    makes them is not, so each is made once, under a lock). boto3 is imported on first use."""
    with _lock:
        if region not in _clients:
            import boto3

            _clients[region] = boto3.session.Session().client("rds", region_name=region)
        return _clients[region]


def auth_token(region: str, host: str, port: int, user: str) -> str:
    """A token that lets `user` log in to the RDS instance at `host:port` for 15 minutes."""
    token: str = rds_client(region).generate_db_auth_token(
        DBHostname=host, Port=port, DBUsername=user, Region=region
    )
    return token
