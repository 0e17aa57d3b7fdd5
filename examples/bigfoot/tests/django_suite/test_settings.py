"""bigfoot.settings with the runtime kit's configure(): the deployment's environment laid over
the app's own settings. Settings are read at import, so each case loads them in a fresh
interpreter. (The kit's rules themselves are tested in tests/runtime/.)"""

import json
import os
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.test import SimpleTestCase

SHOW_SETTINGS = """
import json, django
from django.conf import settings
django.setup()
names = [
    "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DATABASES", "CACHES", "STORAGES", "MIDDLEWARE",
    "INSTALLED_APPS", "CSRF_COOKIE_SECURE", "SECURE_PROXY_SSL_HEADER",
]
print(json.dumps({name: getattr(settings, name) for name in names}, default=str))
"""
APP_VARIABLES = ("DJANGO_", "DATABASE_", "REDIS_", "STATIC_", "MEDIA_")


def load_settings(**variables: str) -> subprocess.CompletedProcess[str]:
    """Imports bigfoot.settings with exactly `variables` set (plus PATH and friends)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(APP_VARIABLES)}
    env.update(variables, DJANGO_SETTINGS_MODULE="bigfoot.settings")
    return subprocess.run(
        [sys.executable, "-c", SHOW_SETTINGS],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


class SettingsFromEnvironmentTests(SimpleTestCase):
    complete = {
        "DJANGO_SECRET_KEY": "not-a-real-secret",
        "DATABASE_URL": "postgres://bigfoot@db.internal:5432/bigfoot",
        "REDIS_URL": "rediss://cache.internal:6379/0",
        "STATIC_ROOT": "/app/staticfiles",
    }

    def loaded(self, **variables: str) -> dict[str, Any]:
        result = load_settings(**variables)
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)

    def test_the_deployment_brings_postgresql_and_redis_under_the_apps_key_prefix(self) -> None:
        loaded = self.loaded(**self.complete)
        database, cache = loaded["DATABASES"]["default"], loaded["CACHES"]["default"]
        self.assertEqual(database["ENGINE"], "django.db.backends.postgresql")
        self.assertEqual(cache["BACKEND"], "django.core.cache.backends.redis.RedisCache")
        self.assertEqual(cache["LOCATION"], "rediss://cache.internal:6379/0")
        self.assertEqual(cache["KEY_PREFIX"], "bigfoot")
        self.assertFalse(loaded["DEBUG"])
        self.assertEqual(
            loaded["STORAGES"]["staticfiles"]["BACKEND"],
            "django.contrib.staticfiles.storage.ManifestStaticFilesStorage",
        )

    def test_the_health_check_runs_first_and_the_apps_own_settings_stay(self) -> None:
        loaded = self.loaded(**self.complete)
        self.assertEqual(
            loaded["MIDDLEWARE"][0], "pulumi_django_runtime.health.HealthCheckMiddleware"
        )
        self.assertEqual(loaded["MIDDLEWARE"].count(loaded["MIDDLEWARE"][0]), 1)
        self.assertIn("django.middleware.csrf.CsrfViewMiddleware", loaded["MIDDLEWARE"])
        self.assertEqual(loaded["INSTALLED_APPS"][:2], ["django.contrib.staticfiles", "sightings"])

    def test_without_the_deployment_there_is_no_secret_key_and_no_database(self) -> None:
        result = load_settings()
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("The SECRET_KEY setting must not be empty", result.stderr)
        bare = self.loaded(DJANGO_SECRET_KEY="only-this")  # noqa: S106
        # Django's stand-in for "no database": every query raises ImproperlyConfigured.
        self.assertEqual(bare["DATABASES"]["default"]["ENGINE"], "django.db.backends.dummy")

    def test_a_database_secret_arn_selects_the_kits_backend_that_follows_rotations(self) -> None:
        arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1234-AbCdEf"
        database = self.loaded(**self.complete, DATABASE_SECRET_ARN=arn)["DATABASES"]["default"]
        self.assertEqual(database["ENGINE"], "pulumi_django_runtime.db.postgresql")
        self.assertEqual(database["SECRET_ARN"], arn)

    def test_secure_cookies_and_the_proxy_header_unless_debugging(self) -> None:
        production = self.loaded(**self.complete)
        self.assertTrue(production["CSRF_COOKIE_SECURE"])
        self.assertEqual(production["SECURE_PROXY_SSL_HEADER"], ["HTTP_X_FORWARDED_PROTO", "https"])
        plain_http = self.loaded(**self.complete, DJANGO_SECURE_COOKIES="0")
        self.assertFalse(plain_http["CSRF_COOKIE_SECURE"])
        debugging = self.loaded(**self.complete, DJANGO_DEBUG="true")
        self.assertTrue(debugging["DEBUG"])
        self.assertFalse(debugging["CSRF_COOKIE_SECURE"])
        self.assertIsNone(debugging["SECURE_PROXY_SSL_HEADER"])
