"""Django's PostgreSQL backend, logging in with an RDS IAM authentication token.

`configure()` and `database_settings()` select it
(`ENGINE: pulumi_django_runtime.db.postgresql_iam`, with `IAM_REGION`) when DATABASE_IAM_REGION
is set. Every new connection gets a token signed moments before it
(pulumi_django_runtime.db.iam): tokens live 15 minutes, but RDS checks one only while the
connection authenticates, so a connection kept by CONN_MAX_AGE stays valid however long it
lives. TLS is required: RDS refuses a token sent in plain text.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.postgresql import base

from pulumi_django_runtime.db.iam import DEFAULT_PORT, TLS_SSL_MODES, auth_token


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, settings_dict: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(settings_dict, *args, **kwargs)
        self.iam_region: str = settings_dict.get("IAM_REGION") or ""
        if not self.iam_region:
            raise ImproperlyConfigured(
                f"{__package__} needs IAM_REGION in the database settings (the instance's region)"
            )
        if not settings_dict.get("HOST"):
            raise ImproperlyConfigured(f"{__package__} needs HOST: a token is signed for one host")
        options = settings_dict.get("OPTIONS") or {}
        if options.get("pool"):
            # A pool keeps the connect arguments it was created with: a token expired 15 min on.
            raise ImproperlyConfigured(f"{__package__} does not support OPTIONS['pool']")
        if options.get("sslmode") not in TLS_SSL_MODES:
            raise ImproperlyConfigured(
                f"{__package__}: OPTIONS['sslmode'] is {options.get('sslmode')!r}; RDS accepts "
                f"IAM tokens over TLS only: use one of {', '.join(sorted(TLS_SSL_MODES))}"
            )

    def get_connection_params(self) -> dict[str, Any]:
        """Django's parameters with a token, signed now, as the password (called once for each
        new connection, never for a kept one)."""
        params = super().get_connection_params()
        params["password"] = auth_token(
            self.iam_region, params["host"], int(params.get("port") or DEFAULT_PORT), params["user"]
        )
        return params
