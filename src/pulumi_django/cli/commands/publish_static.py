"""`pulumi-django publish-static`: publish one release's static files to S3 outside Pulumi.

The same engine as the stack's StaticRelease: uploads only what changed (by the releases
index's record of what is published; `--verify` lists the bucket instead), keeps the last
`--keep` releases' files, prints `uploaded U, skipped S, deleted D` (or that as JSON).

A pipeline runs it on every deploy, most often with little or nothing to upload, so it imports
only the standard-library engine for `--help` and botocore for a publish: never the stack
config (pydantic, Pulumi) nor boto3 (tests/test_static_publish.py holds it to that).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pulumi_django.static_publish import DEFAULT_KEEP, DEFAULT_PREFIX

    parser.add_argument("--bucket", required=True, metavar="NAME", help="S3 bucket name.")
    parser.add_argument(
        "--source",
        required=True,
        type=Path,
        metavar="DIR",
        help="The collected static files (STATIC_ROOT after collectstatic).",
    )
    parser.add_argument(
        "--release", required=True, metavar="ID", help="Release id, e.g. the image digest."
    )
    parser.add_argument(
        "--prefix",
        default=DEFAULT_PREFIX,
        help=f"Key prefix in the bucket, ending in '/' (default {DEFAULT_PREFIX}).",
    )
    parser.add_argument(
        "--keep",
        type=int,
        default=DEFAULT_KEEP,
        metavar="N",
        help=f"Releases whose files stay published, this one included (default {DEFAULT_KEEP}).",
    )
    parser.add_argument(
        "--endpoint-url", metavar="URL", help="S3 endpoint (an S3-compatible server or a test)."
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="List the prefix and compare with what is there, not with what the releases index "
        "says was published: uploads this release's files deleted behind its back (a lifecycle "
        "rule, a hand).",
    )
    parser.add_argument("--json", action="store_true", help="Print the counts as one JSON object.")


def run(args: argparse.Namespace) -> int:
    from pulumi_django.errors import UsageError
    from pulumi_django.providers.static_storage import S3Storage
    from pulumi_django.static_publish import PublishError, progress_printer, publish

    def progress(line: str) -> None:
        print(f"publish-static: {line}", file=sys.stderr, flush=True)

    try:  # publish checks its settings and the source before the first request
        storage = S3Storage(args.bucket, endpoint_url=args.endpoint_url)
        result = publish(
            storage,
            args.source,
            args.release,
            prefix=args.prefix,
            keep=args.keep,
            verify=args.verify,
            on_progress=progress_printer(progress),
        )
    except PublishError as error:
        raise UsageError(str(error)) from error
    print(json.dumps(result.counts()) if args.json else result.summary())
    return 0
