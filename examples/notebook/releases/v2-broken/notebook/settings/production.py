"""Settings of the deployed site (DJANGO_SETTINGS_MODULE=notebook.settings.production).

The development settings, then the deployment's: the secret key, hosts, database, cache, static
and media storage come from the environment pulumi-django injects, read by the runtime kit.
"""

import pulumi_django_runtime

from .base import *  # noqa: F403

# Run by the health path (liveness), and by the readiness path after its database and cache
# checks.
HEALTH_CHECKS = {"search": "journal.health.check_search_service"}

pulumi_django_runtime.configure(globals())
