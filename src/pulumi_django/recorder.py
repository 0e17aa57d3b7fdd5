"""Runs a Pulumi program under the SDK's mock runtime and records what the engine would receive.

No CLI, no provider plugins, no credentials: `pulumi.runtime.set_mocks` replaces the engine.
The recording keeps, per resource, the register request's inputs, parent, dependencies and
per-input dependencies, under the URNs a real `pulumi up` would give.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import gc
import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import mocks, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

UNKNOWN = "[unknown]"
# How a secret value reads in a recording, a plan and a stack file shown by the CLI.
SECRET = "[secret]"  # noqa: S105 (the mask, not a password)
STACK_TYPE = "pulumi:pulumi:Stack"
MOCK_ACCOUNT = "123456789012"

# Markers of the engine's wire format (sdk/go/common/resource/sig).
_SIG = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105
_RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
_ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
_ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"
_UNKNOWN_VALUE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


@dataclass
class RecordedResource:
    """One resource as the engine would see it; `inputs` are camelCase wire names."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str | None
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    provider: str | None
    inputs: dict[str, Any]
    # Resource options the engine acts on (protect, ignoreChanges, ...), when set.
    options: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "custom": self.custom,
            "parent": self.parent,
            "dependencies": self.dependencies,
            "propertyDependencies": self.property_dependencies,
            "provider": self.provider,
            "inputs": self.inputs,
            "options": self.options,
        }


@dataclass
class Recording:
    """Every registered resource, in registration order, and the stack's outputs."""

    project: str
    stack: str
    resources: list[RecordedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def by_urn(self) -> dict[str, RecordedResource]:
        return {resource.urn: resource for resource in self.resources}

    def children(self, urn: str) -> list[RecordedResource]:
        return [resource for resource in self.resources if resource.parent == urn]

    def descendants(self, urn: str) -> set[str]:
        found: set[str] = set()
        frontier = [urn]
        while frontier:
            current = frontier.pop()
            for child in self.children(current):
                if child.urn not in found:
                    found.add(child.urn)
                    frontier.append(child.urn)
        return found

    def direct_dependencies(self, urn: str) -> set[str]:
        resource = self.by_urn()[urn]
        edges = set(resource.dependencies)
        for urns in resource.property_dependencies.values():
            edges.update(urns)
        return edges

    def depends_on(self, dependent: str, dependency: str) -> bool:
        """True when `dependent` (or anything under it) waits, directly or transitively, for
        `dependency` (or anything under it). The SDK already expands a dependency on a
        component into its children, so edges are followed as the engine receives them."""
        targets = {dependency, *self.descendants(dependency)}
        frontier = [dependent, *self.descendants(dependent)]
        seen: set[str] = set()
        while frontier:
            current = frontier.pop()
            if current in seen:
                continue
            seen.add(current)
            for edge in self.direct_dependencies(current):
                if edge in targets:
                    return True
                frontier.append(edge)
        return False

    def find(self, type_: str | None = None, name: str | None = None) -> list[RecordedResource]:
        """Resources matching a type token and/or a name (a regex, matched in full)."""
        return [
            resource
            for resource in self.resources
            if (type_ is None or resource.type == type_)
            and (name is None or re.fullmatch(name, resource.name))
        ]

    def one(self, type_: str | None = None, name: str | None = None) -> RecordedResource:
        matches = self.find(type_, name)
        if len(matches) != 1:
            found = [f"{r.type} {r.name}" for r in matches]
            raise LookupError(f"expected one resource {type_} {name!r}, found {found}")
        return matches[0]


# Outputs the real providers compute, so that values derived from them read plausibly.
def _computed_outputs(type_: str, name: str, inputs: Mapping[str, Any], region: str) -> dict:
    outputs: dict[str, Any] = {}
    if type_.startswith("aws:"):
        service = type_.split(":")[1].split("/")[0]
        outputs["arn"] = f"arn:aws:{service}:{region}:{MOCK_ACCOUNT}:{name}"
    extra = MOCK_OUTPUTS.get(type_)
    if extra:
        outputs.update(extra(name, inputs, region))
    return outputs


def _autonamed(name: str, inputs: Mapping[str, Any], _region: str) -> dict[str, Any]:
    """The physical name the engine would give a resource whose `name` input is unset."""
    return {"name": inputs.get("name", f"{name}-a1b2c3d")}


MOCK_OUTPUTS: dict[str, Callable[[str, Mapping[str, Any], str], dict[str, Any]]] = {
    "aws:ecr/repository:Repository": lambda name, _i, region: {
        "name": name,
        "repositoryUrl": f"{MOCK_ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{name}",
        "registryId": MOCK_ACCOUNT,
        "arn": f"arn:aws:ecr:{region}:{MOCK_ACCOUNT}:repository/{name}",
    },
    "aws:iam/role:Role": lambda name, inputs, region: {
        "arn": f"arn:aws:iam::{MOCK_ACCOUNT}:role/{inputs.get('name', name)}",
        **_autonamed(name, inputs, region),
    },
    "aws:cloudwatch/logGroup:LogGroup": lambda name, inputs, region: {
        "arn": f"arn:aws:logs:{region}:{MOCK_ACCOUNT}:log-group:{inputs.get('name', name)}",
        "name": inputs.get("name", name),
    },
    "aws:ecs/cluster:Cluster": lambda name, inputs, region: {
        "arn": f"arn:aws:ecs:{region}:{MOCK_ACCOUNT}:cluster/{inputs.get('name', name)}",
        **_autonamed(name, inputs, region),
    },
    "aws:ecs/taskDefinition:TaskDefinition": lambda name, inputs, region: {
        "arn": f"arn:aws:ecs:{region}:{MOCK_ACCOUNT}:task-definition/{inputs.get('family')}:1",
        "revision": 1,
    },
    "docker:index/image:Image": lambda name, inputs, _r: {
        # Without a push, the provider reports the local image ID as the digest.
        "repoDigest": f"sha256:{'0' * 64}"
        if inputs.get("skipPush")
        else f"{str(inputs.get('imageName', name)).split(':')[0]}@sha256:{'0' * 64}",
        "imageName": inputs.get("imageName", name),
    },
    "docker:index/remoteImage:RemoteImage": lambda _n, inputs, _r: {
        "imageId": f"sha256:{'1' * 64}",
        "repoDigest": f"{str(inputs.get('name')).split(':')[0]}@sha256:{'1' * 64}",
    },
    # A container the program runs to completion (`attach`) exited 0.
    "docker:index/container:Container": lambda name, inputs, region: {
        **_autonamed(name, inputs, region),
        **({"exitCode": 0, "containerLogs": ""} if inputs.get("attach") else {}),
    },
    "docker:index/network:Network": _autonamed,
    "docker:index/volume:Volume": _autonamed,
    "aws:rds/instance:Instance": lambda name, _i, region: {
        "address": f"{name}.abcdefghijkl.{region}.rds.amazonaws.com",
        "endpoint": f"{name}.abcdefghijkl.{region}.rds.amazonaws.com:5432",
        "port": 5432,
        "masterUserSecrets": [
            {
                "secretArn": f"arn:aws:secretsmanager:{region}:{MOCK_ACCOUNT}:secret:rds!{name}",
                "secretStatus": "active",
                "kmsKeyId": "",
            }
        ],
    },
    "aws:elasticache/replicationGroup:ReplicationGroup": lambda name, _i, region: {
        "primaryEndpointAddress": f"master.{name}.abcdef.use1.cache.amazonaws.com",
        "readerEndpointAddress": f"replica.{name}.abcdef.use1.cache.amazonaws.com",
    },
    "aws:lb/loadBalancer:LoadBalancer": lambda name, _i, region: {
        "dnsName": f"{name}-123456.{region}.elb.amazonaws.com",
        "arnSuffix": f"app/{name}/0123456789abcdef",
        "zoneId": "Z35SXDOTRQ7X7K",
    },
    "aws:lb/targetGroup:TargetGroup": lambda name, _i, _r: {
        "arnSuffix": f"targetgroup/{name}/0123456789abcdef",
    },
    # Names the provider generates (auto-naming happens in the provider, which mocks replace).
    "aws:ecs/service:Service": _autonamed,
    "aws:cloudwatch/metricAlarm:MetricAlarm": _autonamed,
    "aws:cloudfront/distribution:Distribution": lambda name, _i, _r: {
        "arn": f"arn:aws:cloudfront::{MOCK_ACCOUNT}:distribution/{name}-id",
        "domainName": f"d{hashlib.sha256(name.encode()).hexdigest()[:13]}.cloudfront.net",
        "hostedZoneId": "Z2FDTNDATAQYW2",
    },
    "aws:s3/bucket:Bucket": lambda name, inputs, region: {
        "arn": f"arn:aws:s3:::{inputs.get('bucket', name)}",
        "bucket": inputs.get("bucket", name),
        "bucketRegionalDomainName": f"{inputs.get('bucket', name)}.s3.{region}.amazonaws.com",
    },
    "random:index/randomPassword:RandomPassword": lambda _n, inputs, _r: {
        "result": "x" * int(inputs.get("length", 32)),
    },
    "aws:ec2/vpcEndpoint:VpcEndpoint": lambda _n, inputs, _r: (
        {"prefixListId": "pl-63a5400a"} if inputs.get("vpcEndpointType") == "Gateway" else {}
    ),
    "aws:secretsmanager/secret:Secret": lambda name, _i, region: {
        "arn": f"arn:aws:secretsmanager:{region}:{MOCK_ACCOUNT}:secret:{name}-AbCdEf",
    },
    "aws:rds/subnetGroup:SubnetGroup": _autonamed,
    "aws:rds/parameterGroup:ParameterGroup": _autonamed,
    "aws:elasticache/subnetGroup:SubnetGroup": _autonamed,
}

# Answers to the provider functions (invokes) programs call, keyed by token.
MOCK_INVOKES: dict[str, Callable[[Mapping[str, Any], str], dict[str, Any]]] = {
    "aws:index/getRegion:getRegion": lambda _a, region: {
        "region": region,
        "name": region,
        "id": region,
    },
    "aws:index/getCallerIdentity:getCallerIdentity": lambda _a, _r: {
        "accountId": MOCK_ACCOUNT,
        "arn": f"arn:aws:iam::{MOCK_ACCOUNT}:user/mock",
        "userId": "MOCK",
        "id": MOCK_ACCOUNT,
    },
    "aws:index/getPartition:getPartition": lambda _a, _r: {
        "partition": "aws",
        "dnsSuffix": "amazonaws.com",
        "id": "aws",
    },
    "aws:index/getAvailabilityZones:getAvailabilityZones": lambda _a, region: {
        "names": [f"{region}{zone}" for zone in "abc"],
        "zoneIds": [f"use1-az{number}" for number in (1, 2, 4)],
        "id": region,
    },
    "aws:ec2/getManagedPrefixList:getManagedPrefixList": lambda args, _r: {
        "id": "pl-3b927c52",
        "name": args.get("name", ""),
        "maxEntries": 55,
        "addressFamily": "IPv4",
    },
    "aws:ecr/getAuthorizationToken:getAuthorizationToken": lambda args, region: {
        "id": region,
        "registryId": args.get("registryId", MOCK_ACCOUNT),
        "userName": "AWS",
        "password": "mock-ecr-token",
        "authorizationToken": "QVdTOm1vY2stZWNyLXRva2Vu",
        "proxyEndpoint": f"https://{MOCK_ACCOUNT}.dkr.ecr.{region}.amazonaws.com",
        "expiresAt": "2030-01-01T00:00:00Z",
    },
    "aws:ec2/getVpc:getVpc": lambda args, _r: {
        "id": args.get("id", "vpc-0123456789abcdef0"),
        "cidrBlock": "172.31.0.0/16",
    },
}


class PlanMocks(mocks.Mocks):
    """Resource and invoke answers shaped like the real providers'."""

    def __init__(self, region: str) -> None:
        self.region = region

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict]:
        if not args.custom:
            return None, {}
        state = dict(args.inputs)
        state.update(_computed_outputs(args.typ, args.name, args.inputs, self.region))
        return f"{args.name}-id", state

    def call(self, args: mocks.MockCallArgs) -> dict:  # type: ignore[override]
        answer = MOCK_INVOKES.get(args.token)
        return {} if answer is None else answer(args.args, self.region)


class RecordingMonitor(mocks.MockMonitor):
    """The SDK's mock monitor, plus a record of every register request, with real URNs."""

    def __init__(self, project_mocks: mocks.Mocks) -> None:
        super().__init__(project_mocks)
        self.recorded: list[RecordedResource] = []

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # The engine qualifies a type with every ancestor's type, the root stack's excepted.
        qualified = type_
        if parent:
            parent_type = parent.split("::")[2]
            if parent_type != STACK_TYPE:
                qualified = f"{parent_type}${type_}"
        return "urn:pulumi:" + "::".join(
            [settings.get_stack(), settings.get_project(), qualified, name]
        )

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        self.recorded.append(
            RecordedResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                custom=bool(request.custom),
                parent=request.parent or None,
                dependencies=list(request.dependencies),
                property_dependencies={
                    key: list(value.urns) for key, value in request.propertyDependencies.items()
                },
                provider=request.provider or None,
                inputs=wire_to_json(request.object),
                options=_options(request),
            )
        )
        return response


def _options(request: Any) -> dict[str, Any]:
    timeouts = {
        name: getattr(request.customTimeouts, name)
        for name in ("create", "update", "delete")
        if getattr(request.customTimeouts, name)
    }
    options = {
        "protect": request.protect,
        "ignoreChanges": list(request.ignoreChanges),
        "replaceOnChanges": list(request.replaceOnChanges),
        "deleteBeforeReplace": request.deleteBeforeReplace,
        "retainOnDelete": request.retainOnDelete,
        "additionalSecretOutputs": list(request.additionalSecretOutputs),
        "customTimeouts": timeouts,
    }
    return {name: value for name, value in options.items() if value}


def wire_to_json(message: struct_pb2.Struct) -> dict[str, Any]:
    """The engine's property map as plain JSON: secrets masked, references as URNs."""
    return {key: _plain(value) for key, value in json_format.MessageToDict(message).items()}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        signature = value.get(_SIG)
        if signature == _SECRET_SIG:
            return SECRET
        if signature == _RESOURCE_SIG:
            return value.get("urn")
        if signature in (_ASSET_SIG, _ARCHIVE_SIG):
            return {key: _plain(item) for key, item in value.items() if key != _SIG}
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if value == _UNKNOWN_VALUE:
        return UNKNOWN
    return value


@contextlib.contextmanager
def _mock_runtime(
    project: str, stack: str, config: Mapping[str, str], secret_keys: list[str], region: str
) -> Iterator[RecordingMonitor]:
    settings.ROOT.set(None)
    pulumi.runtime.set_all_config(dict(config), secret_keys)
    monitor = RecordingMonitor(PlanMocks(region))
    pulumi.runtime.set_mocks(
        monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor
    )
    try:
        yield monitor
    finally:
        settings.ROOT.set(None)
        pulumi.runtime.set_all_config({}, [])


def _close_event_loops() -> None:
    """Pulumi's runtime leaves its event loops open (the main one, and one per worker thread
    that ran an invoke), with tasks still pending when the program failed. Closed at exit,
    before the interpreter tears down their sockets, none can print `Exception ignored in
    BaseEventLoop.__del__` and a traceback after a clean one-line error."""
    # type(), not isinstance(): isinstance asks a lazy proxy (Django's settings, say) for its
    # __class__, which would set it up at exit.
    for loop in [o for o in gc.get_objects() if issubclass(type(o), asyncio.BaseEventLoop)]:
        if loop.is_running() or loop.is_closed():
            continue
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:  # gather() takes its loop from the tasks
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()


atexit.register(_close_event_loops)


def record(
    program: Callable[[], None],
    *,
    project: str,
    stack: str,
    config: Mapping[str, str],
    secret_keys: list[str] | None = None,
) -> Recording:
    """Runs `program` as `pulumi up` would, against mocks, and returns what it registered.

    Exceptions the program raises (a ConfigError, say) propagate unchanged."""
    region = config.get("aws:region", "us-east-1")
    with _mock_runtime(project, stack, config, secret_keys or [], region) as monitor:
        _sync_await(run_pulumi_func(program))
        root = settings.get_root_resource()
        exported = getattr(root, "outputs", {}) or {}
        outputs = {name: _resolve(value) for name, value in exported.items()}
    return Recording(project=project, stack=stack, resources=monitor.recorded, outputs=outputs)


def _resolve(value: Any) -> Any:
    output = pulumi.Output.from_input(value)

    async def settle() -> Any:
        if await output.is_secret():
            return SECRET
        if not await output.is_known():
            return UNKNOWN
        return _jsonable(await output.future())

    return _sync_await(settle())


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, pulumi.Resource):
        return str(value._name)
    return str(value)
