"""Two stack configs for the app-task tests: a small dev-like stack and a production-like one,
chosen so that between them every branch of the task's defaults is taken."""

from __future__ import annotations

import json

from pulumi_django.config import StackConfig, parse_stack_config

ACCOUNT = "123456789012"
SECRET_KEY_MARKER = "MARKER-django-secret-key-never-in-plain-sight-0123456789abcdef"
STRIPE_PARAMETER = f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/site/stripe-key"
SENTRY_SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:site/sentry-AbCdEf"

DEV_LIKE: dict[str, object] = {
    "target": "aws",
    "name": "shop-dev",
    "proxy": {"server": "caddy"},
    "app": {"server": "uvicorn"},
    "fleet": {
        "cpu": 256,
        "memory": 512,
        "architecture": "ARM64",
        "minCount": 1,
        "desiredCount": 1,
        "maxCount": 2,
        "logRetentionDays": 7,
        "enableExecuteCommand": True,
    },
    "static": {"keepReleases": 2},
}

PROD_LIKE: dict[str, object] = {
    "target": "aws",
    "name": "shop",
    "proxy": {"server": "nginx", "port": 8443},
    "app": {
        "server": "gunicorn",
        "workerClass": "sync",
        "gracefulTimeoutSeconds": 60,
        "environment": {"FEATURE_CHECKOUT": "on"},
        "secrets": {"STRIPE_KEY": STRIPE_PARAMETER, "SENTRY_DSN": f"{SENTRY_SECRET}:dsn::"},
    },
    "fleet": {"cpu": 1024, "memory": 2048, "logRetentionDays": 90},
    "static": {"keepReleases": 8},
    "tags": {"team": "shop"},
}


def raw_values(document: dict[str, object]) -> dict[str, str]:
    """The strings Pulumi's config would hold: sections as JSON text."""
    return {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in document.items()
    }


def stack_config(document: dict[str, object], secret_key: str | None = None) -> StackConfig:
    values = raw_values(document)
    if secret_key is None:
        return parse_stack_config(values, set())
    return parse_stack_config({**values, "secretKey": secret_key}, {"secretKey"})


STACKS = {
    "dev-like": lambda: stack_config(DEV_LIKE),
    "prod-like": lambda: stack_config(PROD_LIKE, secret_key=SECRET_KEY_MARKER),
}
