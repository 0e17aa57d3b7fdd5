"""Where `StaticRelease` publishes from and to on AWS: an S3 bucket (`S3Storage`, a `Storage`
of the publish engine `pulumi_django.static_publish`) and the built image's STATIC_ROOT, copied
out with the docker CLI (`extract_image_static`).

They are apart from the engine because they need botocore (boto3 for a session of the
stack's) and docker, and the engine must stay
standard library only: the local target runs it inside the app image.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..static_publish import (
    DEFAULT_WORKERS,
    IndexConflict,
    LocalFile,
    PublishError,
    RemoteObject,
    StoredObject,
)

# S3's rules for a general purpose bucket's name: 3-63 lowercase letters, digits, dots and
# hyphens, a letter or digit at each end, no two dots in a row, not an IPv4 address. The stack's
# names follow config/names.py's "s3-bucket" rule, stricter (reserved prefixes too); a bucket
# given to `publish-static` may be any existing one, and the command starts without the config.
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
IPV4_ADDRESS = re.compile(r"^\d+\.\d+\.\d+\.\d+$")

CREDENTIAL_ERRORS = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "InvalidClientTokenId",
    }
)


class S3Storage:
    """An S3 bucket; credentials and region come from `session` (a boto3 Session, e.g. the
    stack's, `providers.aws_session`), else from the standard AWS chain.

    Without a session the client comes from botocore alone (boto3 adds nothing a client needs,
    and the command line starts without it), set up to start and list fast: see
    `_botocore_session`. It is made on the first request, not here: a publish hashes its files
    meanwhile."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        workers: int = DEFAULT_WORKERS,
        session: Any | None = None,
    ) -> None:
        check_bucket_name(bucket)
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self._region = region
        self._workers = workers
        self._session = session

    @functools.cached_property
    def client(self) -> Any:
        """The S3 client, made on first use (by the publish's first request, on its thread)."""
        from botocore.config import Config

        config = Config(
            max_pool_connections=self._workers + 2,
            retries={"mode": "standard", "max_attempts": 4},
            # Every upload carries its Content-MD5, which S3 checks. botocore's own CRC32 of
            # each body besides (its default since 1.36) would be computed for nothing, and
            # S3-compatible servers (--endpoint-url) that do not know its headers refuse it.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        try:
            with self._errors("connect"):
                make = self._session.client if self._session else _botocore_session().create_client
                return make(
                    "s3", endpoint_url=self.endpoint_url, region_name=self._region, config=config
                )
        except ValueError as error:  # botocore's word for a malformed endpoint URL
            raise PublishError(f"{error}: give a URL such as https://s3.example.com") from error

    def list(self, prefix: str) -> dict[str, RemoteObject]:
        found = {}
        with self._errors("ListObjectsV2"):
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    found[item["Key"]] = RemoteObject(item["ETag"].strip('"'), item["Size"])
        return found

    def read(self, key: str) -> StoredObject | None:
        with self._errors("GetObject"):
            try:
                answer = self.client.get_object(Bucket=self.bucket, Key=key)
            except self.client.exceptions.NoSuchKey:
                return None
            return StoredObject(bytes(answer["Body"].read()), answer["ETag"].strip('"'))

    def upload(self, file: LocalFile) -> None:
        extra: dict[str, Any] = {}
        if file.content_encoding:
            extra["ContentEncoding"] = file.content_encoding
        with self._errors("PutObject"), file.path.open("rb") as body:
            self.client.put_object(
                Bucket=self.bucket,
                Key=file.key,
                Body=body,
                ContentMD5=base64.b64encode(bytes.fromhex(file.md5)).decode(),
                ContentType=file.content_type,
                CacheControl=file.cache_control,
                **extra,
            )

    def write(self, key: str, data: bytes, *, replacing: str | None) -> str:
        """A conditional write (S3's If-Match, If-None-Match), atomic on S3's side."""
        from botocore.exceptions import ClientError

        condition = {"IfMatch": f'"{replacing}"'} if replacing else {"IfNoneMatch": "*"}
        with self._errors("PutObject"):
            try:
                answer = self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=data,
                    ContentType="application/json",
                    CacheControl="no-store",
                    **condition,
                )
            except ClientError as error:
                # 412: another write came first; 409: another write is under way.
                code = str(error.response.get("Error", {}).get("Code", ""))
                if code in {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}:
                    raise IndexConflict(
                        f"s3://{self.bucket}/{key} changed while this publish ran (another "
                        "publish of the same prefix?): publish again"
                    ) from error
                raise
        return str(answer["ETag"]).strip('"')

    def delete(self, keys: Sequence[str]) -> None:
        batch_size = 1000  # DeleteObjects' limit
        for start in range(0, len(keys), batch_size):
            batch = keys[start : start + batch_size]
            with self._errors("DeleteObjects"):
                answer = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                )
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise PublishError(
                    f"S3 could not delete {len(answer['Errors'])} objects from {self.bucket}, "
                    f"e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )

    @contextlib.contextmanager
    def _errors(self, operation: str) -> Iterator[None]:
        """Turns botocore's exceptions into one line that says what to fix."""
        from botocore import exceptions

        try:
            yield
        except exceptions.NoCredentialsError as error:
            raise PublishError(
                "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY"
            ) from error
        except exceptions.ClientError as error:
            details = error.response.get("Error", {})
            code = str(details.get("Code", "unknown"))
            message = str(details.get("Message", ""))
            raise PublishError(self._explain(operation, code, message)) from error
        except (exceptions.EndpointConnectionError, exceptions.ConnectTimeoutError) as error:
            where = self.endpoint_url or "the S3 endpoint"
            raise PublishError(f"cannot reach {where}: {error}") from error
        except exceptions.BotoCoreError as error:
            reason = " ".join(str(error).split())  # botocore's own may take several lines
            raise PublishError(
                f"S3 {operation} on bucket {self.bucket} failed: {reason}"
            ) from error

    def _explain(self, operation: str, code: str, message: str) -> str:
        if code == "NoSuchBucket":
            return f"bucket {self.bucket} does not exist (check --bucket and the AWS account)"
        if code in CREDENTIAL_ERRORS:
            return (
                f"AWS rejected the credentials ({code}): check AWS_PROFILE, or "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        if code in {"AccessDenied", "403"}:
            return (
                f"access denied to bucket {self.bucket} ({operation}): the credentials need "
                "s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject on it"
            )
        return f"S3 {operation} on bucket {self.bucket} failed: {code} {message}".rstrip()


def check_bucket_name(bucket: str) -> None:
    """PublishError, one line, for a name S3 would refuse: before any request."""
    if not BUCKET_NAME.match(bucket) or ".." in bucket or IPV4_ADDRESS.match(bucket):
        raise PublishError(
            f"{bucket!r} is not a valid S3 bucket name: 3-63 lowercase letters, digits, dots "
            "and hyphens, starting and ending with a letter or digit"
        )


def _botocore_session() -> Any:
    """A botocore session of the standard AWS chain whose listings keep timestamps as text and
    whose model loader knows S3 alone.

    Nothing reads a listing's LastModified, and dateutil parsing 1,000 of them costs more than
    the rest of the page. botocore's loader checks that a service exists by listing every
    service directory it ships (about 400, a stat each) for each model it loads, the service,
    its endpoint rules and its paginators: a third of the client's start-up on this kind of
    machine. This one reads the same search paths (AWS_DATA_PATH included) and S3's models."""
    import botocore.loaders
    import botocore.session

    class S3Loader(botocore.loaders.Loader):
        def list_available_services(self, type_name: str) -> list[str]:
            return ["s3"]

    session = botocore.session.get_session()
    default = botocore.loaders.create_loader(session.get_config_variable("data_path"))
    loader = S3Loader(extra_search_paths=default.search_paths, include_default_search_paths=False)
    session.register_component("data_loader", loader)
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    return session


def extract_image_static(image: str, static_root: str, destination: Path) -> Path:
    """Copies STATIC_ROOT out of a built image into `destination`, with the docker CLI.

    These are exactly the files whose hashed names the image's staticfiles.json refers to.
    The container is created, never started, and always removed."""
    docker = shutil.which("docker")
    if docker is None:
        raise PublishError(
            f"the docker CLI is not on PATH; it is needed to copy {static_root} out of {image} "
            "(or publish from a directory instead)"
        )
    destination.mkdir(parents=True, exist_ok=True)
    container = _docker(docker, "create", image).strip()
    try:
        _docker(docker, "cp", f"{container}:{static_root.rstrip('/')}/.", str(destination))
    finally:
        subprocess.run([docker, "rm", container], capture_output=True, check=False)
    return destination


def _docker(docker: str, *arguments: str) -> str:
    done = subprocess.run([docker, *arguments], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
        raise PublishError(f"docker {' '.join(arguments)} failed: {detail}")
    return done.stdout
