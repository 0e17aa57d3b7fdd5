"""Settings of the Bigfoot app (see docs/example-app.md).

This module holds only what the app itself decides. What the deployment owns (secret key,
hosts, database, cache, static and media storage, proxy and cookie security, logging, the
health endpoint) comes from the environment the stack injects, laid over these values by the
runtime kit's `configure(globals())` at the end (runtime/README.md).

Production is the default: DEBUG is off, and there is no secret key and no database here, so a
process started without the deployment's variables fails on first use of them instead of running
on a laptop's stand-ins (Django: "The SECRET_KEY setting must not be empty", "settings.DATABASES
is improperly configured"). `collectstatic` at image build time needs neither.
"""

from pathlib import Path

from pulumi_django_runtime import configure

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = False
ALLOWED_HOSTS: list[str] = []

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "sightings",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "bigfoot.urls"
WSGI_APPLICATION = "bigfoot.wsgi.application"
ASGI_APPLICATION = "bigfoot.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
    },
]

# Several apps may share one Redis.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "KEY_PREFIX": "bigfoot",
    },
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Run by /healthz (liveness), and by /readyz after its database and cache checks.
HEALTH_CHECKS = {"map tiles": "sightings.health.check_map_tiles"}

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

configure(globals())
