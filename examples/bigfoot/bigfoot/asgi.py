"""ASGI entry point: `uvicorn bigfoot.asgi:application`."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bigfoot.settings")
# Under ASGI each request runs its sync code in a fresh thread, and Django keeps one connection
# per thread: persistent connections would pile up until PostgreSQL refuses new ones.
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")

application = get_asgi_application()
