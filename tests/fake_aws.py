"""A stand-in for AWS in tests: credentials for moto and botocore stubs (never a real
account's, and never the machine's config files or instance metadata, which a test must not
reach), and moto's server on a free loopback port."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from moto.server import ThreadedMotoServer

from pulumi_django.cli.rehearsal.servers import LOOPBACK, free_port

AWS_TEST_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's server on loopback, stopped on exit; yields its endpoint URL."""
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
