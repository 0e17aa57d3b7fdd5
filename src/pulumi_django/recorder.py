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
import pickle
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import mocks, settings
from pulumi.runtime import resource as resource_runtime
from pulumi.runtime._callbacks import _CallbackServicer
from pulumi.runtime.proto import alias_pb2, callback_pb2, resource_pb2, source_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from pulumi_django._mock_answers import (
    MOCK_ACCOUNT,
    MOCK_REGION,
    mock_ecr_digest,
    mock_image_digest,
)

# pulumi.dynamic's `serialize_provider` wraps `pickle._Pickler._batch_setitems` in a sorting
# wrapper once per dynamic resource and never unwraps it. One `pulumi up` makes a few dozen; a
# process that records many programs (the test suite, `plan --diff-against`) would nest them
# past the recursion limit. Each recording starts from the original.
_BATCH_SETITEMS = pickle._Pickler._batch_setitems  # type: ignore[attr-defined]
UNKNOWN = "[unknown]"
# How a secret value reads in a recording, a plan and a stack file shown by the CLI.
SECRET = "[secret]"  # noqa: S105 (the mask, not a password)
STACK_TYPE = "pulumi:pulumi:Stack"

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


# How ElastiCache endpoints and zone ids abbreviate a region: us-east-1 -> use1.
_DIRECTIONS = {"east": "e", "west": "w", "north": "n", "south": "s", "central": "c"}


def _short(region: str) -> str:
    area, direction, number = [*region.split("-"), "", ""][:3]
    for word, letter in _DIRECTIONS.items():
        direction = direction.replace(word, letter)
    return f"{area}{direction}{number}"


def _mock_uuid(name: str) -> str:
    """A UUID-shaped id derived from a resource name (KMS key ids look like this)."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


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
        # The image ID the program resolved its tag to (`pullTriggers`), as the engine finds it.
        "imageId": _resolved_image_id(inputs) or f"sha256:{'1' * 64}",
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
        "primaryEndpointAddress": f"master.{name}.abcdef.{_short(region)}.cache.amazonaws.com",
        "readerEndpointAddress": f"replica.{name}.abcdef.{_short(region)}.cache.amazonaws.com",
    },
    "aws:lb/loadBalancer:LoadBalancer": lambda name, _i, region: {
        "arn": f"arn:aws:elasticloadbalancing:{region}:{MOCK_ACCOUNT}:loadbalancer/app/{name}/"
        "0123456789abcdef",
        "dnsName": f"{name}-123456.{region}.elb.amazonaws.com",
        "arnSuffix": f"app/{name}/0123456789abcdef",
        "zoneId": "Z35SXDOTRQ7X7K",
    },
    "aws:lb/targetGroup:TargetGroup": lambda name, _i, region: {
        "arn": f"arn:aws:elasticloadbalancing:{region}:{MOCK_ACCOUNT}:targetgroup/{name}/"
        "0123456789abcdef",
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
    # A key's ARN ends in `key/<uuid>`, which IAM statements scoped to it check.
    "aws:kms/key:Key": lambda name, _i, region: {
        "arn": f"arn:aws:kms:{region}:{MOCK_ACCOUNT}:key/{_mock_uuid(name)}",
        "keyId": _mock_uuid(name),
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
        "zoneIds": [f"{_short(region)}-az{number}" for number in (1, 2, 4)],
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
    # A tag resolved to its digest: derived from the tag, so a moved tag is another digest.
    "aws:ecr/getImage:getImage": lambda args, region: _ecr_image(args, region),
    "docker:index/getRegistryImage:getRegistryImage": lambda args, _r: {
        "id": args["name"],
        "name": args["name"],
        "sha256Digest": mock_image_digest(args["name"]),
    },
    # An image the local engine has under a name: its ID.
    "docker:index/getRemoteImage:getRemoteImage": lambda args, _r: {
        "id": mock_image_digest(args["name"]),
        "name": args["name"],
        "repoDigest": mock_image_digest(args["name"]),
    },
    "aws:ec2/getVpc:getVpc": lambda args, _r: {
        "id": args.get("id", "vpc-0123456789abcdef0"),
        "cidrBlock": "172.31.0.0/16",
    },
    # Lookups of the children a program brings by name, id or ARN.
    "aws:lb/getLoadBalancer:getLoadBalancer": lambda args, region: _load_balancer(
        args.get("arn")
        or f"arn:aws:elasticloadbalancing:{region}:{MOCK_ACCOUNT}:"
        f"loadbalancer/app/{args.get('name', 'alb')}/0123456789abcdef",
        region,
    ),
    "aws:ecr/getRepository:getRepository": lambda args, region: {
        "id": args["name"],
        "name": args["name"],
        "arn": f"arn:aws:ecr:{region}:{MOCK_ACCOUNT}:repository/{args['name']}",
        "registryId": MOCK_ACCOUNT,
        "repositoryUrl": f"{MOCK_ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{args['name']}",
    },
    "aws:s3/getBucket:getBucket": lambda args, region: {
        "id": args["bucket"],
        "bucket": args["bucket"],
        "arn": f"arn:aws:s3:::{args['bucket']}",
        "region": region,
        "bucketDomainName": f"{args['bucket']}.s3.amazonaws.com",
        "bucketRegionalDomainName": f"{args['bucket']}.s3.{region}.amazonaws.com",
    },
    "aws:cloudfront/getDistribution:getDistribution": lambda args, _r: {
        "id": args["id"],
        "arn": f"arn:aws:cloudfront::{MOCK_ACCOUNT}:distribution/{args['id']}",
        "domainName": f"d{hashlib.sha256(args['id'].encode()).hexdigest()[:13]}.cloudfront.net",
        "hostedZoneId": "Z2FDTNDATAQYW2",
        "enabled": True,
        "status": "Deployed",
    },
}


def _resolved_image_id(inputs: Mapping[str, Any]) -> str | None:
    """The image ID a `RemoteImage` was given among its `pullTriggers` (`LocalAppImage` puts
    there the ID its tag names in the engine); None without one."""
    triggers = inputs.get("pullTriggers") or []
    return next((t for t in triggers if isinstance(t, str) and t.startswith("sha256:")), None)


def _ecr_image(args: Mapping[str, Any], region: str) -> dict[str, Any]:
    """An ECR image as `aws.ecr.get_image` describes it, by digest or by tag."""
    registry_id = args.get("registryId") or MOCK_ACCOUNT
    region = args.get("region") or region
    repository, tag = args["repositoryName"], args.get("imageTag")
    digest = args.get("imageDigest") or mock_ecr_digest(
        registry_id, region, repository, tag or "latest"
    )
    return {
        "id": digest,
        "imageDigest": digest,
        "imageTag": tag,
        "imageTags": [tag] if tag else [],
        "imageUri": f"{registry_id}.dkr.ecr.{region}.amazonaws.com/{repository}@{digest}",
        "registryId": registry_id,
        "repositoryName": repository,
        "region": region,
        "imagePushedAt": 1735689600,
        "imageSizeInBytes": 123456789,
    }


def _load_balancer(arn: str, region: str) -> dict[str, Any]:
    """An ALB as `aws.lb.get_load_balancer` describes it; its ARN suffix is `app/NAME/ID`."""
    suffix = arn.split(":loadbalancer/", 1)[-1]
    name = suffix.split("/")[1]
    return {
        "id": arn,
        "arn": arn,
        "arnSuffix": suffix,
        "name": name,
        "dnsName": f"{name}-123456.{region}.elb.amazonaws.com",
        "zoneId": "Z35SXDOTRQ7X7K",
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
    """The SDK's mock monitor, plus a record of every register request, with real URNs.

    It also runs the `transforms` resource option, which the engine runs and the SDK's mock
    monitor does not: without them a user's unit test, or `pulumi-django plan`, would show
    resources as they were declared rather than as they would be deployed."""

    def __init__(self, project_mocks: mocks.Mocks) -> None:
        super().__init__(project_mocks)
        self.recorded: list[RecordedResource] = []
        # What the engine keeps to find a resource's inherited transforms: each registered
        # URN's parent and own transforms, and the stack's transforms.
        self._parents: dict[str, str] = {}
        self._own_transforms: dict[str, list[callback_pb2.Callback]] = {}
        self._stack_transform_callbacks: list[callback_pb2.Callback] = []

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

    def RegisterStackTransform(self, request: callback_pb2.Callback) -> Any:
        self._stack_transform_callbacks.append(request)
        return super().RegisterStackTransform(request)

    def RegisterResource(self, request: Any) -> Any:
        request = self._transformed(request)
        response = super().RegisterResource(request)
        self._parents[response.urn] = request.parent
        self._own_transforms[response.urn] = list(request.transforms)
        self.recorded.append(
            RecordedResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                custom=bool(request.custom),
                parent=request.parent or None,
                # Sorted: the SDK gathers them in sets, whose order changes from one process
                # to the next, and the plan's JSON must not (tools diff and hash it).
                dependencies=sorted(request.dependencies),
                property_dependencies={
                    key: sorted(request.propertyDependencies[key].urns)
                    for key in sorted(request.propertyDependencies)
                },
                provider=request.provider or None,
                inputs=wire_to_json(request.object),
                options=_options(request, self._alias_urns(request)),
            )
        )
        return response

    def _alias_urns(self, request: Any) -> list[str]:
        """The URNs a resource was known by, whether an alias names the URN or describes it
        (a name, type or parent it had: the rest as now, as the engine fills it in)."""
        urns = set(request.aliasURNs)
        for alias in request.aliases:
            if alias.WhichOneof("alias") == "urn":
                urns.add(alias.urn)
                continue
            spec = alias.spec
            parent = "" if spec.noParent else (spec.parentUrn or request.parent)
            urns.add(self.make_urn(parent, spec.type or request.type, spec.name or request.name))
        return sorted(urns)

    def _transformed(self, request: Any) -> Any:
        """`request` as the engine hands it on after the transforms: the resource's own, then
        each ancestor's from its parent up, then the stack's (pulumi's resource monitor,
        `RegisterResource` in pkg/resource/deploy/source_eval.go)."""
        callbacks = list(request.transforms)
        ancestor = request.parent
        while ancestor:
            callbacks += self._own_transforms.get(ancestor, [])
            ancestor = self._parents.get(ancestor, "")
        callbacks += self._stack_transform_callbacks
        if not callbacks:
            return request
        current = resource_pb2.TransformRequest(
            type=request.type,
            name=request.name,
            custom=request.custom,
            parent=request.parent,
            properties=request.object,
            options=_transform_options(request),
        )
        for callback in callbacks:
            response = _run_transform(callback, current)
            # Like the engine: what a transform leaves unset stays as it was.
            if response.HasField("properties"):
                current.properties.CopyFrom(response.properties)
            if response.HasField("options"):
                current.options.CopyFrom(response.options)
        return _with_transform_result(request, current)


def _run_transform(
    callback: callback_pb2.Callback, request: resource_pb2.TransformRequest
) -> resource_pb2.TransformResponse:
    """Calls a transform through the SDK's own callback (the one the engine reaches over gRPC),
    so that it sees the same arguments and its result is serialized the same way. It runs on
    the program's event loop, which waits for this registration in another thread; an
    exception the transform raises propagates unchanged."""
    servicer = next(
        (each for each in _CallbackServicer._servicers if callback.token in each._callbacks), None
    )
    if servicer is None:
        raise LookupError(f"no transform registered under callback token {callback.token}")
    function = servicer._callbacks[callback.token]

    async def answer() -> Any:
        return await function(request.SerializeToString())

    response = asyncio.run_coroutine_threadsafe(answer(), servicer._loop).result()
    assert isinstance(response, resource_pb2.TransformResponse)
    return response


def _transform_options(request: Any) -> resource_pb2.TransformResourceOptions:
    """The options a transform receives, read from the register request as the engine does."""
    options = resource_pb2.TransformResourceOptions(
        depends_on=request.dependencies,
        ignore_changes=request.ignoreChanges,
        replace_on_changes=request.replaceOnChanges,
        version=request.version,
        aliases=[
            *(alias_pb2.Alias(urn=urn) for urn in request.aliasURNs),
            *request.aliases,
        ],
        provider=request.provider,
        providers=request.providers,
        plugin_download_url=request.pluginDownloadURL,
        deleted_with=request.deletedWith,
        additional_secret_outputs=request.additionalSecretOutputs,
        plugin_checksums=request.pluginChecksums,
    )
    if request.HasField("protect"):
        options.protect = request.protect
    if request.HasField("retainOnDelete"):
        options.retain_on_delete = request.retainOnDelete
    if request.HasField("customTimeouts"):
        options.custom_timeouts.CopyFrom(request.customTimeouts)
    if request.deleteBeforeReplaceDefined or request.deleteBeforeReplace:
        options.delete_before_replace = request.deleteBeforeReplace
    return options


def _with_transform_result(request: Any, result: resource_pb2.TransformRequest) -> Any:
    """A copy of the register request carrying the transformed inputs and options."""
    options = result.options
    transformed = type(request)()
    transformed.CopyFrom(request)
    transformed.object.CopyFrom(result.properties)
    for field_name, value in (
        ("dependencies", options.depends_on),
        ("ignoreChanges", options.ignore_changes),
        ("replaceOnChanges", options.replace_on_changes),
        ("additionalSecretOutputs", options.additional_secret_outputs),
        ("aliasURNs", [alias.urn for alias in options.aliases if alias.HasField("urn")]),
        ("aliases", [alias for alias in options.aliases if not alias.HasField("urn")]),
    ):
        transformed.ClearField(field_name)
        getattr(transformed, field_name).extend(value)
    transformed.ClearField("providers")
    transformed.providers.update(options.providers)
    transformed.version = options.version
    transformed.provider = options.provider
    transformed.pluginDownloadURL = options.plugin_download_url
    transformed.deletedWith = options.deleted_with
    transformed.ClearField("protect")
    if options.HasField("protect"):
        transformed.protect = options.protect
    transformed.ClearField("retainOnDelete")
    if options.HasField("retain_on_delete"):
        transformed.retainOnDelete = options.retain_on_delete
    transformed.ClearField("customTimeouts")
    if options.HasField("custom_timeouts"):
        transformed.customTimeouts.CopyFrom(options.custom_timeouts)
    transformed.deleteBeforeReplaceDefined = options.HasField("delete_before_replace")
    transformed.deleteBeforeReplace = options.delete_before_replace
    return transformed


def _options(request: Any, aliases: list[str]) -> dict[str, Any]:
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
        # The URNs a resource was known by: the plan diff matches it with its old self.
        "aliases": aliases,
    }
    return {name: value for name, value in options.items() if value}


def wire_to_json(message: struct_pb2.Struct) -> dict[str, Any]:
    """The engine's property map as plain JSON: secrets masked, references as URNs, keys
    sorted (a protobuf map has no order, and the one it arrives in changes from one process to
    the next: the plan's JSON must not)."""
    plain: dict[str, Any] = _plain(json_format.MessageToDict(message))
    return plain


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        signature = value.get(_SIG)
        if signature == _SECRET_SIG:
            return SECRET
        if signature == _RESOURCE_SIG:
            return value.get("urn")
        if signature in (_ASSET_SIG, _ARCHIVE_SIG):
            return {key: _plain(item) for key, item in sorted(value.items()) if key != _SIG}
        return {key: _plain(item) for key, item in sorted(value.items())}
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
    pickle._Pickler._batch_setitems = _BATCH_SETITEMS  # type: ignore[attr-defined]
    # The SDK walks the Python stack at every registration, for the source position the engine
    # shows in its diagnostics: a tenth of a program's time under mocks, for nothing recorded.
    stack_trace = resource_runtime._get_stack_trace
    resource_runtime._get_stack_trace = source_pb2.StackTrace
    try:
        pulumi.runtime.set_all_config(dict(config), secret_keys)
        monitor = RecordingMonitor(PlanMocks(region))
        pulumi.runtime.set_mocks(
            monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor
        )
        yield monitor
    finally:
        resource_runtime._get_stack_trace = stack_trace
        settings.ROOT.set(None)
        pulumi.runtime.set_all_config({}, [])
        # A program that failed half-way (a transform that raised, say) leaves its outputs'
        # tasks in the process-wide settings, where the next program would await them.
        settings.SETTINGS.outputs.clear()


def close_event_loops() -> None:
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


atexit.register(close_event_loops)


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
    region = config.get("aws:region", MOCK_REGION)
    with _mock_runtime(project, stack, config, secret_keys or [], region) as monitor:
        try:
            _sync_await(run_pulumi_func(program))
        except BaseException:
            _retrieve_failures()
            raise
        root = settings.get_root_resource()
        exported = getattr(root, "outputs", {}) or {}
        outputs = {name: _resolve(value) for name, value in exported.items()}
    return Recording(project=project, stack=stack, resources=monitor.recorded, outputs=outputs)


def _retrieve_failures() -> None:
    """A program that fails half-way (a transform that raised, say) fails every output still
    waiting on it with the same exception, which `record` raises. Marked as seen here, so that
    asyncio does not print each of them as "never retrieved" when it collects them."""
    for future in [o for o in gc.get_objects() if issubclass(type(o), asyncio.Future)]:
        if future.done() and not future.cancelled():
            future.exception()


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
