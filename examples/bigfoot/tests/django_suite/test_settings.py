"""Settings are read at import, so each case loads them in a fresh interpreter."""

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
names = ["DATABASES", "CACHES", "ALLOWED_HOSTS", "CSRF_COOKIE_SECURE", "SECURE_PROXY_SSL_HEADER"]
print(json.dumps({name: getattr(settings, name) for name in names}))
"""
APP_VARIABLES = ("DJANGO_", "DATABASE_", "REDIS_", "STATIC_")


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
    }

    def assert_refused(self, result: subprocess.CompletedProcess[str], message: str) -> None:
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(f"ImproperlyConfigured: {message}", result.stderr)

    def loaded(self, **variables: str) -> dict[str, Any]:
        result = load_settings(**variables)
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)

    def test_refuses_to_start_without_the_secret_key(self) -> None:
        without_key = {k: v for k, v in self.complete.items() if k != "DJANGO_SECRET_KEY"}
        self.assert_refused(load_settings(**without_key), "DJANGO_SECRET_KEY is not set")

    def test_refuses_to_start_without_a_database(self) -> None:
        without_db = {k: v for k, v in self.complete.items() if k != "DATABASE_URL"}
        self.assert_refused(load_settings(**without_db), "DATABASE_URL is not set")

    def test_refuses_to_start_without_redis_unless_debugging(self) -> None:
        without_cache = {k: v for k, v in self.complete.items() if k != "REDIS_URL"}
        self.assert_refused(load_settings(**without_cache), "REDIS_URL is not set")
        debugging = self.loaded(**without_cache, DJANGO_DEBUG="1")
        self.assertEqual(
            debugging["CACHES"]["default"]["BACKEND"],
            "django.core.cache.backends.locmem.LocMemCache",
        )

    def test_refuses_a_debug_flag_it_cannot_read(self) -> None:
        self.assert_refused(load_settings(**self.complete, DJANGO_DEBUG="maybe"), "DJANGO_DEBUG=")

    def test_database_from_parts_when_the_password_cannot_be_in_a_url(self) -> None:
        parts = {k: v for k, v in self.complete.items() if k != "DATABASE_URL"}
        loaded = self.loaded(
            **parts,
            DATABASE_HOST="db.internal",
            DATABASE_NAME="app",
            DATABASE_USER="django",
            DATABASE_PASSWORD="p@ss:w/rd?#",  # noqa: S106
            DATABASE_SSLMODE="require",
        )
        database = loaded["DATABASES"]["default"]
        self.assertEqual(database["ENGINE"], "django.db.backends.postgresql")
        self.assertEqual(
            (database["HOST"], database["PORT"], database["NAME"], database["USER"]),
            ("db.internal", "5432", "app", "django"),
        )
        self.assertEqual(database["PASSWORD"], "p@ss:w/rd?#")
        self.assertEqual(database["OPTIONS"]["sslmode"], "require")
        self.assertTrue(database["CONN_HEALTH_CHECKS"])
        self.assertGreater(database["CONN_MAX_AGE"], 0)

    def test_a_database_secret_arn_selects_the_backend_that_follows_rotations(self) -> None:
        arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1234-AbCdEf"
        database = self.loaded(**self.complete, DATABASE_SECRET_ARN=arn)["DATABASES"]["default"]
        self.assertEqual(database["ENGINE"], "bigfoot.db.postgresql")
        self.assertEqual(database["SECRET_ARN"], arn)
        without = self.loaded(**self.complete)["DATABASES"]["default"]
        self.assertEqual(without["ENGINE"], "django.db.backends.postgresql")
        self.assertNotIn("SECRET_ARN", without)

    def test_refuses_a_database_secret_that_is_not_an_arn(self) -> None:
        result = load_settings(**self.complete, DATABASE_SECRET_ARN="rds!db-1234")  # noqa: S106
        self.assert_refused(result, "DATABASE_SECRET_ARN='rds!db-1234': expected a Secrets")

    def test_redis_with_tls_and_a_separate_password(self) -> None:
        loaded = self.loaded(**self.complete, REDIS_PASSWORD="auth-token")  # noqa: S106
        cache = loaded["CACHES"]["default"]
        self.assertEqual(cache["BACKEND"], "django.core.cache.backends.redis.RedisCache")
        self.assertEqual(cache["LOCATION"], "rediss://cache.internal:6379/0")
        self.assertEqual(cache["OPTIONS"]["password"], "auth-token")

    def test_allowed_hosts_is_strict_and_empty_by_default(self) -> None:
        self.assertEqual(self.loaded(**self.complete)["ALLOWED_HOSTS"], [])
        hosts = self.loaded(
            **self.complete, DJANGO_ALLOWED_HOSTS="bigfoot.example, www.bigfoot.example"
        )
        self.assertEqual(hosts["ALLOWED_HOSTS"], ["bigfoot.example", "www.bigfoot.example"])

    def test_secure_cookies_and_the_proxy_header_unless_debugging(self) -> None:
        production = self.loaded(**self.complete)
        self.assertTrue(production["CSRF_COOKIE_SECURE"])
        self.assertEqual(production["SECURE_PROXY_SSL_HEADER"], ["HTTP_X_FORWARDED_PROTO", "https"])
        plain_http = self.loaded(**self.complete, DJANGO_SECURE_COOKIES="0")
        self.assertFalse(plain_http["CSRF_COOKIE_SECURE"])
        debugging = self.loaded(**self.complete, DJANGO_DEBUG="true")
        self.assertFalse(debugging["CSRF_COOKIE_SECURE"])
        self.assertIsNone(debugging["SECURE_PROXY_SSL_HEADER"])
