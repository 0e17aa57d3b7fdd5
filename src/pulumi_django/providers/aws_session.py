"""The AWS identity of pulumi-django's dynamic resources: the stack's `aws:` settings, so that
their boto3 calls act in the account and region the rest of the stack acts in.

The site's AWS provider reads every `aws:` setting (`components.aws.site.tagged_provider`);
boto3 reads none of them. So each dynamic resource (static release, migration check and job,
rollout verification, image release tag) takes an `aws_session` input, made here from the
stack config: the profile, the shared config and credentials files, the STS region and the
roles to assume in order (`aws:assumeRoles`). Only names travel: profile names, file paths,
role ARNs, session names, external ids, durations, policies. Keys and tokens never enter the
state: `aws:accessKey`, `aws:secretKey`, `aws:token` and `aws:assumeRoleWithWebIdentity` are
not forwarded (a warning says so; give those to boto3 by its environment variables instead).
A secret setting keeps the whole input secret.

On the provider side `aws_session(settings, region)` builds the boto3 Session the way the AWS
provider builds its credentials: the profile (or the default chain), then one STS AssumeRole
per role, each with the credentials of the one before.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from ..config import ConfigError
from ..errors import PulumiDjangoError

DEFAULT_SESSION_NAME = "pulumi-django"
# Settings that change which identity boto3 acts as, but hold a credential: never forwarded.
NOT_FORWARDED = ("accessKey", "secretKey", "token", "assumeRoleWithWebIdentity")
# A cached session is reused while its credentials have at least this long to live.
REUSE_MARGIN_SECONDS = 600.0
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_warned: set[tuple[str, ...]] = set()  # each warning once per program run, not per resource
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class AwsSessionError(PulumiDjangoError, pulumi.RunError):
    """The AWS identity cannot be set up (a profile not found, a role that cannot be assumed);
    the message names the setting."""


@dataclass(frozen=True, kw_only=True)
class AssumeRole:
    """One role of `aws:assumeRoles`, with the AWS provider's fields."""

    role_arn: str
    session_name: str | None = None
    external_id: str | None = None
    duration_seconds: int | None = None
    policy: str | None = None
    policy_arns: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    transitive_tag_keys: tuple[str, ...] = ()
    source_identity: str | None = None

    def settings(self) -> dict[str, Any]:
        return {
            "role_arn": self.role_arn,
            "session_name": self.session_name,
            "external_id": self.external_id,
            "duration_seconds": self.duration_seconds,
            "policy": self.policy,
            "policy_arns": list(self.policy_arns),
            "tags": dict(self.tags),
            "transitive_tag_keys": list(self.transitive_tag_keys),
            "source_identity": self.source_identity,
        }


@dataclass(frozen=True, kw_only=True)
class AwsSession:
    """Where the dynamic resources' boto3 calls get their identity. `from_stack_config()` reads
    the stack's `aws:` settings (what the components use unless given one); `AwsSession()` is
    boto3's default chain alone. `secret` keeps the resources' input secret."""

    profile: str | None = None
    shared_config_files: tuple[str, ...] = ()
    shared_credentials_files: tuple[str, ...] = ()
    sts_region: str | None = None
    assume_roles: tuple[AssumeRole, ...] = ()
    secret: bool = False

    @classmethod
    def from_stack_config(cls) -> AwsSession:
        """The stack's `aws:profile`, `aws:sharedConfigFiles`, `aws:sharedCredentialsFiles`,
        `aws:stsRegion` and `aws:assumeRoles`, checked; warns about settings not forwarded."""
        raw = {
            key.partition(":")[2]: value
            for key, value in pulumi.runtime.config.CONFIG.get().items()
            if key.startswith("aws:")
        }
        secret_keys = {key for key in raw if pulumi.runtime.is_config_secret(f"aws:{key}")}
        dropped = tuple(f"aws:{key}" for key in NOT_FORWARDED if key in raw)
        if dropped and dropped not in _warned:
            _warned.add(dropped)
            pulumi.log.warn(
                f"{', '.join(dropped)}: not passed to pulumi-django's dynamic resources (the "
                "static release, the migration job, the rollout check), which never keep "
                "credentials in the state; give boto3 the same identity by its environment "
                "(AWS_PROFILE, AWS_ACCESS_KEY_ID..., AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN)"
            )
        return cls.from_settings(raw, secret_keys)

    @classmethod
    def from_settings(cls, raw: Mapping[str, str], secret_keys: Collection[str] = ()) -> AwsSession:
        """The session the `aws:` settings `raw` describe (keys without the namespace, values
        as Pulumi passes them), checked; what the command line reads from a stack file."""
        used = ("profile", "sharedConfigFiles", "sharedCredentialsFiles", "stsRegion")
        secret = any(key in secret_keys for key in (*used, "assumeRoles") if key in raw)
        return cls(
            profile=raw.get("profile") or None,
            shared_config_files=_string_list(raw, "sharedConfigFiles"),
            shared_credentials_files=_string_list(raw, "sharedCredentialsFiles"),
            sts_region=raw.get("stsRegion") or None,
            assume_roles=parse_assume_roles(raw["assumeRoles"]) if "assumeRoles" in raw else (),
            secret=secret,
        )

    def settings(self) -> dict[str, Any] | None:
        """The provider-side form; None when boto3's default chain is all there is."""
        if self == AwsSession(secret=self.secret):
            return None
        return {
            "profile": self.profile,
            "shared_config_files": list(self.shared_config_files),
            "shared_credentials_files": list(self.shared_credentials_files),
            "sts_region": self.sts_region,
            "assume_roles": [role.settings() for role in self.assume_roles],
        }

    def input(self) -> pulumi.Input[dict[str, Any] | None]:
        """The dynamic resources' `aws_session` input: secret when any setting is."""
        settings = self.settings()
        if settings is not None and self.secret:
            return pulumi.Output.secret(settings)
        return settings


def session_input(session: AwsSession | None) -> pulumi.Input[dict[str, Any] | None]:
    """`session`'s input, or the stack config's when None: what every component passes on."""
    return (session if session is not None else AwsSession.from_stack_config()).input()


def _string_list(raw: Mapping[str, str], key: str) -> tuple[str, ...]:
    if key not in raw:
        return ()
    value = _json(raw[key], key)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError([f'aws:{key}: give a list of paths, e.g. ["~/.aws/config"]'])
    return tuple(value)


def _json(text: str, key: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ConfigError([f"aws:{key}: not valid JSON ({text[:40]!r}...)"]) from None


def parse_assume_roles(text: str) -> tuple[AssumeRole, ...]:
    """`aws:assumeRoles` (the provider's JSON list of `{roleArn, sessionName, externalId,
    duration, policy, policyArns, tags, transitiveTagKeys, sourceIdentity}`), checked."""
    value = _json(text, "assumeRoles")
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ConfigError(["aws:assumeRoles: give a list of roles, e.g. [{roleArn: ...}]"])
    roles = []
    for index, item in enumerate(value):
        where = f"aws:assumeRoles[{index}]"
        if not item.get("roleArn"):
            continue  # the provider ignores an entry without a role
        duration = item.get("duration")
        roles.append(
            AssumeRole(
                role_arn=str(item["roleArn"]),
                session_name=item.get("sessionName") or None,
                external_id=item.get("externalId") or None,
                duration_seconds=go_duration_seconds(duration, f"{where}.duration")
                if duration
                else None,
                policy=item.get("policy") or None,
                policy_arns=tuple(item.get("policyArns") or ()),
                tags=tuple(sorted((str(k), str(v)) for k, v in (item.get("tags") or {}).items())),
                transitive_tag_keys=tuple(item.get("transitiveTagKeys") or ()),
                source_identity=item.get("sourceIdentity") or None,
            )
        )
    return tuple(roles)


def go_duration_seconds(text: str, where: str) -> int:
    """A Go duration as the AWS provider takes it (`1h`, `90m`, `1h30m`, `3600s`), in whole
    seconds, within STS's 15 minutes to 12 hours."""
    compact = str(text).strip()
    parts = _GO_DURATION.findall(compact)
    if not parts or "".join(number + unit for number, unit in parts) != compact:
        raise ConfigError([f"{where}: {text!r} is no duration; write e.g. 1h or 45m"])
    seconds = int(sum(float(number) * _GO_UNITS[unit] for number, unit in parts))
    if not 900 <= seconds <= 43200:
        raise ConfigError([f"{where}: {text!r} is outside 15m to 12h, which STS allows"])
    return seconds


# ---------------------------------------------------------------- provider side

ClientMaker = Callable[[Any, str, "str | None"], Any]
"""(boto3 Session, service, region) -> a client; tests wrap the STS clients in Stubbers."""
SessionFactory = Callable[[Mapping[str, Any] | None, str | None], Any]
"""(aws_session settings, region) -> a boto3 Session (`cached_session`); tests give one with
stubbed clients."""


def _client(session: Any, service: str, region: str | None) -> Any:
    return session.client(service, region_name=region)


def aws_session(
    settings: Mapping[str, Any] | None, region: str | None, *, make_client: ClientMaker = _client
) -> Any:
    """The boto3 Session the settings describe (see `AwsSession`), in `region`: the profile
    (else boto3's default chain), then each role assumed with the credentials of the one
    before. Raises AwsSessionError naming the setting that failed."""
    session, _expires = _build(settings or {}, region, make_client)
    return session


def _build(
    settings: Mapping[str, Any], region: str | None, make_client: ClientMaker
) -> tuple[Any, float | None]:
    import boto3
    import botocore.session
    from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

    core = botocore.session.Session()
    for variable, key in (
        ("config_file", "shared_config_files"),
        ("credentials_file", "shared_credentials_files"),
    ):
        files = settings.get(key) or []
        if files:  # botocore reads one file of each kind: the first, as the provider's first
            core.set_config_variable(variable, str(files[0]))
    profile = settings.get("profile")
    try:
        session = boto3.Session(
            profile_name=profile or None, region_name=region, botocore_session=core
        )
        core.get_scoped_config()  # an unknown profile fails here, not at the first call
    except ProfileNotFound as error:
        # No `aws:profile`: boto3 took the profile from AWS_PROFILE.
        where = f"aws:profile {profile}" if profile else f"AWS_PROFILE {error.kwargs['profile']}"
        raise AwsSessionError(
            f"{where}: no such profile in the AWS config files; add it, or set "
            "aws:sharedConfigFiles to the file that has it"
        ) from None
    expires: float | None = None
    sts_region = settings.get("sts_region") or region
    for index, role in enumerate(settings.get("assume_roles") or []):
        request = assume_role_request(role)
        try:
            answer = make_client(session, "sts", sts_region).assume_role(**request)
        except (ClientError, BotoCoreError) as error:
            raise AwsSessionError(
                f"aws:assumeRoles[{index}]: cannot assume {role['role_arn']}: {error}"
            ) from None
        credentials = answer["Credentials"]
        session = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=region,
        )
        ends = credentials["Expiration"].timestamp()
        expires = ends if expires is None else min(expires, ends)
    return session, expires


def assume_role_request(role: Mapping[str, Any]) -> dict[str, Any]:
    """STS AssumeRole's parameters for one role of the settings."""
    request: dict[str, Any] = {
        "RoleArn": role["role_arn"],
        "RoleSessionName": role.get("session_name") or DEFAULT_SESSION_NAME,
    }
    optional = {
        "ExternalId": role.get("external_id"),
        "DurationSeconds": role.get("duration_seconds"),
        "Policy": role.get("policy"),
        "SourceIdentity": role.get("source_identity"),
        "PolicyArns": [{"arn": arn} for arn in role.get("policy_arns") or []],
        "Tags": [{"Key": key, "Value": value} for key, value in (role.get("tags") or {}).items()],
        "TransitiveTagKeys": list(role.get("transitive_tag_keys") or []),
    }
    request.update({key: value for key, value in optional.items() if value})
    return request


_cache: dict[str, tuple[Any, float | None]] = {}
_cache_lock = threading.Lock()


def cached_session(settings: Mapping[str, Any] | None, region: str | None) -> Any:
    """`aws_session`, built once per settings and region while its credentials last: the
    clients of one operation (ECS and CloudWatch Logs, S3 and ECR) share the role chain."""
    if not (settings or {}).get("assume_roles"):
        return _build(settings or {}, region, _client)[0]  # nothing to share: no STS call
    key = json.dumps([settings, region], sort_keys=True)
    with _cache_lock:
        found = _cache.get(key)
        if found is not None and (
            found[1] is None or found[1] - time.time() > REUSE_MARGIN_SECONDS
        ):
            return found[0]
        built = _build(settings or {}, region, _client)
        _cache[key] = built
        return built[0]


def aws_client(
    service: str, region: str | None, session: Mapping[str, Any] | None = None, **options: Any
) -> Any:
    """A boto3 client of `service` in `region`, acting as the settings say."""
    return cached_session(session, region).client(service, region_name=region, **options)


def with_session(
    clients: Callable[..., Any], settings: Mapping[str, Any] | None
) -> Callable[..., Any]:
    """A provider's client factory (`aws_client` or a test's) acting as `settings` say: given
    them as `session=`, and as it is when there are none (a factory without `session` fits)."""
    return functools.partial(clients, session=settings) if settings else clients
