"""Django's PostgreSQL backend, with credentials that follow the secret at `SECRET_ARN`.

`configure()` and `database_settings()` select it (`ENGINE: pulumi_django_runtime.db.postgresql`,
with `SECRET_ARN`) when DATABASE_SECRET_ARN is set. Every new connection uses the process's
current credentials; when PostgreSQL refuses the password, the secret is read again and the
connect retried once (pulumi_django_runtime.db.credentials).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.postgresql import base

from pulumi_django_runtime.db.credentials import (
    Credentials,
    RotatingCredentials,
    as_params,
    credentials_for,
)


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, settings_dict: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(settings_dict, *args, **kwargs)
        if not settings_dict.get("SECRET_ARN"):
            raise ImproperlyConfigured(
                f"{__package__} needs SECRET_ARN in the database settings (the secret's ARN)"
            )
        if settings_dict["OPTIONS"].get("pool"):
            # A pool keeps the connect arguments it was created with, old password included.
            raise ImproperlyConfigured(f"{__package__} does not support OPTIONS['pool']")
        initial = (
            Credentials(settings_dict["USER"], settings_dict["PASSWORD"])
            if settings_dict.get("PASSWORD")
            else None
        )
        self.credentials: RotatingCredentials = credentials_for(
            settings_dict["SECRET_ARN"], initial
        )

    def get_connection_params(self) -> dict[str, Any]:
        return {**super().get_connection_params(), **as_params(self.credentials.current())}

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        return self.credentials.connect(super().get_new_connection, conn_params)
