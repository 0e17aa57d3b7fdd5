"""boto3 clients for botocore Stubbers, all made by one session per region with test
credentials: a session reads each service's model once, where a session per client parses it
again (0.1 to 0.3 s of CPU each time). Each client has its own copy of the session's event
hooks, so a Stubber, or a handler registered on a client, stays that client's."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3


@cache
def _session(region: str) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    )


def stub_client(service: str, region: str = "us-east-1") -> Any:
    """A new client of `service` in `region`, never sent anywhere: put it behind a Stubber."""
    return _session(region).client(service)
