"""The Django side of pulumi-django (see runtime/README.md).

Add to the end of settings.py:

    from pulumi_django_runtime import configure
    configure(globals())
"""

from pulumi_django_runtime.configuration import HEALTH_MIDDLEWARE, configure

__version__ = "0.2.0"
__all__ = ["HEALTH_MIDDLEWARE", "__version__", "configure"]
