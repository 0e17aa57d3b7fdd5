"""The names AWS accepts, and the names pulumi-django derives from a component's name.

Every AWS name a component makes starts with the component's name (`django:name` for the
ready-made stacks): `<name><suffix>`, and for most resources Pulumi's auto-naming then appends
`-` and 7 random hexadecimal characters (pulumi-terraform-bridge's `AutoName`, `Randlen: 7`;
pulumi-aws v7 `provider/resources.go` and `provider/aliases.go`). A name that breaks one AWS
limit fails `pulumi up` half-way, long after the preview; `name_problems` finds it first, from
the two tables below, which the stack config (`django:name`) and every component
(`check_name` in `components/args.py`) use alike:

- `RULES`: what AWS accepts for each kind of name, as AWS documents it (the API references,
  whose constraints botocore's service models also carry, with the ECR, IAM, CloudWatch Logs,
  KMS and Secrets Manager patterns):
  - ALB (`CreateLoadBalancer`): 32; letters, digits, hyphens; no hyphen at either end; not
    `internal-...`. Target group (`CreateTargetGroup`): 32; the same characters.
  - RDS DB instance identifier (`CreateDBInstance`): 63; a letter first; letters, digits,
    hyphens; no `--`, no hyphen last. Parameter group (`CreateDBParameterGroup`) and snapshot
    identifier (`DeleteDBInstance`'s final snapshot): 255, the same characters. Subnet group
    (`CreateDBSubnetGroup`): 255; a letter first; letters, digits, `.`, `_`, spaces, hyphens.
  - ElastiCache replication group id (`CreateReplicationGroup`): 40; a letter first; letters,
    digits, hyphens; no `--`, no hyphen last. Subnet group (`CreateCacheSubnetGroup`): 255.
  - S3 bucket (S3 User Guide, "General purpose bucket naming rules"): 3 to 63; lowercase
    letters, digits, `.`, `-`; a letter or digit at both ends; not `xn--...`, `sthree-...`,
    `amzn-s3-demo-...`.
  - IAM role (`CreateRole`): 64; inline policy (`PutRolePolicy`): 128; `[\\w+=,.@-]`.
  - ECR repository (`CreateRepository`): 2 to 256; pull-through cache prefix
    (`CreatePullThroughCacheRule`): 2 to 30; lowercase letters and digits joined by `.`, `_`,
    `__`, hyphens or `/`.
  - Security group (`CreateSecurityGroup`): 255; not `sg-...`. Secrets Manager secret
    (`CreateSecret`): 512. CloudWatch log group (`CreateLogGroup`): 512. ECS cluster, service
    and task family: 255; letters, digits, `_`, `-`.
  - CloudFront origin access control: 64; VPC origin: 64 (`VPC Origin Name is too big` past
    it); letters, digits, `_`, `-`. CloudWatch alarm (`PutMetricAlarm`): 255. Application Auto
    Scaling policy (`PutScalingPolicy`): 256. KMS alias (`CreateAlias`): 256, `alias/` then
    letters, digits, `/`, `_`, `-` (the API reference's text; botocore's pattern also lets
    `:` through, which the text does not name), not `alias/aws/...`; `StackKey` checks its
    alias against this rule too. CloudWatch Logs delivery source and destination
    (`PutDeliverySource`, `PutDeliveryDestination`): 60, `[\\w-]`.

- `DERIVED`: each component's names: the resource type, the property that holds the name, the
  suffixes after the component's name, and whether Pulumi appends its random part. A component
  the ready-made site names after `django:name` plus more (`WorkerService`:
  `<name>-worker-<worker>`, `<name>-scheduler`) says so (`Derived.site_parts`), so that
  `django:name` is checked with the longest worker name (`WORKER_NAME_MAX`).
  tests/test_names.py records plans for generated names and holds every physical name in them
  to `RULES`, and every named AWS resource in them to a row here, so the two cannot drift.

Pure: no Pulumi, so the config layer and the components both import it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

# Pulumi's auto-name: "-" and 7 random characters of [0-9a-f] after the logical name.
AUTONAME_RANDOM = 7
AUTONAME_SUFFIX = 1 + AUTONAME_RANDOM
# The random part as names below show it (the recorder's `_autonamed` mock answers alike).
AUTONAME_EXAMPLE = "-a1b2c3d"
# A `random.RandomId` of 4 bytes as a name shows it: "-" and its 8 hexadecimal characters.
RANDOM_ID_EXAMPLE = "-0a1b2c3d"
# A CloudFront distribution id as long as they come (13 or 14 uppercase letters and digits).
DISTRIBUTION_EXAMPLE = "E2QWRUHAPOMQZL"
# The longest name of a worker (`django:workers.services`); `{worker}` in a site part stands
# for one, checked as long as they get.
WORKER_NAME_MAX = 16
LONGEST_WORKER = "w" * WORKER_NAME_MAX


@dataclass(frozen=True)
class NameRule:
    """What AWS accepts for one kind of name."""

    what: str
    max_length: int | None
    # The whole name must match (None: AWS documents no character set).
    allowed: str | None = None
    allowed_text: str = ""
    min_length: int = 1
    first_letter: bool = False
    no_double_hyphen: bool = False
    no_hyphen_at_ends: bool = False
    # Checked after lowercasing: AWS stores these names in lowercase.
    stored_lowercase: bool = False
    forbidden_prefixes: tuple[str, ...] = ()
    forbidden_names: tuple[str, ...] = ()


_HYPHENATED = "letters, digits and hyphens"
# KMS's longest alias name, `alias/` included (CreateAlias).
KMS_ALIAS_MAX = 256
_ECR = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*"


def _identifier(what: str, max_length: int, *, stored_lowercase: bool = True) -> NameRule:
    """The RDS and ElastiCache identifiers' rule: a letter first; letters, digits, hyphens;
    no `--`, no hyphen at either end."""
    return NameRule(
        what,
        max_length,
        r"[A-Za-z0-9-]+",
        _HYPHENATED,
        first_letter=True,
        no_double_hyphen=True,
        no_hyphen_at_ends=True,
        stored_lowercase=stored_lowercase,
    )


RULES: dict[str, NameRule] = {
    "lb": NameRule(
        "a load balancer name",
        32,
        r"[A-Za-z0-9-]+",
        _HYPHENATED,
        no_hyphen_at_ends=True,
        forbidden_prefixes=("internal-",),
    ),
    "lb-target-group": NameRule(
        "a target group name", 32, r"[A-Za-z0-9-]+", _HYPHENATED, no_hyphen_at_ends=True
    ),
    "rds-identifier": _identifier("an RDS DB instance identifier", 63),
    "rds-parameter-group": _identifier("an RDS parameter group name", 255),
    "rds-snapshot": _identifier("an RDS snapshot identifier", 255, stored_lowercase=False),
    "rds-subnet-group": NameRule(
        "an RDS subnet group name",
        255,
        r"[A-Za-z0-9._ -]+",
        "letters, digits, periods, underscores, spaces and hyphens",
        first_letter=True,
        stored_lowercase=True,
        forbidden_names=("default",),
    ),
    "elasticache-replication-group": _identifier("an ElastiCache replication group id", 40),
    "elasticache-subnet-group": NameRule(
        "an ElastiCache subnet group name",
        255,
        r"[A-Za-z0-9-]+",
        _HYPHENATED,
        stored_lowercase=True,
    ),
    "s3-bucket": NameRule(
        "an S3 bucket name",
        63,
        r"[a-z0-9][a-z0-9.-]*[a-z0-9]",
        "lowercase letters, digits, periods and hyphens, a letter or digit at both ends",
        min_length=3,
        forbidden_prefixes=("xn--", "sthree-", "amzn-s3-demo-"),
    ),
    "iam-role": NameRule("an IAM role name", 64, r"[\w+=,.@-]+", "letters, digits and +=,.@_-"),
    "iam-policy": NameRule(
        "an IAM inline policy name", 128, r"[\w+=,.@-]+", "letters, digits and +=,.@_-"
    ),
    "ecr-repository": NameRule(
        "an ECR repository name",
        256,
        _ECR,
        "lowercase letters and digits separated by '.', '_', '__' or hyphens",
        min_length=2,
    ),
    "ecr-pull-through-prefix": NameRule(
        "an ECR pull-through cache prefix",
        30,
        _ECR,
        "lowercase letters and digits separated by '.', '_', '__' or hyphens",
        min_length=2,
    ),
    "security-group": NameRule(
        "a security group name",
        255,
        r"[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]+",
        "letters, digits, spaces and ._-:/()#,@[]+=&;{}!$*",
        forbidden_prefixes=("sg-",),
    ),
    "secret": NameRule(
        "a Secrets Manager secret name", 512, r"[A-Za-z0-9/_+=.@-]+", "letters, digits and /_+=.@-"
    ),
    "log-group": NameRule(
        "a CloudWatch log group name", 512, r"[.\-_/#A-Za-z0-9]+", "letters, digits and ._-/#"
    ),
    "ecs": NameRule(
        "an ECS cluster, service or task family name",
        255,
        r"[A-Za-z0-9_-]+",
        "letters, digits, underscores and hyphens",
    ),
    "cloudfront-origin-access-control": NameRule("an origin access control name", 64),
    "cloudfront-vpc-origin": NameRule(
        "a CloudFront VPC origin name",
        64,
        r"[A-Za-z0-9_-]+",
        "letters, digits, underscores and hyphens",
    ),
    # CloudFront documents no length for a response headers policy name.
    "cloudfront-policy": NameRule("a CloudFront policy name", None),
    "cloudwatch-alarm": NameRule("a CloudWatch alarm name", 255),
    "log-delivery": NameRule(
        "a CloudWatch Logs delivery source or destination name",
        60,
        r"[\w-]+",
        "letters, digits, underscores and hyphens",
    ),
    "scaling-policy": NameRule("an Application Auto Scaling policy name", 256),
    "kms-alias": NameRule(
        "a KMS alias",
        KMS_ALIAS_MAX,
        r"alias/[A-Za-z0-9/_-]+",
        "'alias/' then letters, digits, '/', '_' and '-'",
        forbidden_prefixes=("alias/aws/",),
    ),
}


# A PostgreSQL major as long as they get (two digits), for the names that hold one.
LONGEST_MAJOR = "99"


def postgres_major(engine_version: str) -> str:
    """`17` or `17.4` -> `17`: RDS names parameter group families `postgres<major>`."""
    return engine_version.split(".")[0]


@dataclass(frozen=True)
class Derived:
    """Names a component derives from its own. The resource's logical name is
    `<name><suffix>` (one resource per suffix); its physical name is that plus Pulumi's random
    part, or, given a `template`, exactly the template with `{name}`, `{project}`, `{stack}`,
    `{pull_through}` (`pull_through_prefix`), `{kms_alias}` (`kms_alias_name`), `{random}`
    (the random part of another
    resource's auto-name), `{random_id}` ("-" and a 4-byte `random.RandomId`'s hex),
    `{distribution}` (a CloudFront distribution id) and `{digest}` (12 hexadecimal characters
    of a hash of other resources' ids) filled in. A suffix's `{major}` stands for a PostgreSQL
    major version (two digits, as long as they get).

    `site_parts`: what the ready-made site appends to `django:name` to name the component
    (`""`: the site's name itself); `{worker}` there stands for a worker's name."""

    component: str
    resource: str
    type_token: str
    # The input that holds the physical name (`vpcOriginEndpointConfig.name`: a nested one).
    prop: str
    rule: str
    suffixes: tuple[str, ...]
    template: str | None = None
    # Pulumi's auto-naming lowercases these (AutoNameTransform with strings.ToLower).
    lowercased: bool = False
    site_parts: tuple[str, ...] = ("",)

    @property
    def autonamed(self) -> bool:
        return self.template is None

    @property
    def depends_on_others(self) -> bool:
        """Whether the name holds another resource's generated part (not known beforehand)."""
        return self.template is not None and any(
            key in self.template
            for key in ("{random}", "{random_id}", "{distribution}", "{digest}")
        )

    def covers(self, name: str, logical: str) -> bool:
        """Whether a resource's logical name is one of this row's for a site named `name`
        (for a component named `name` when the site names it so)."""
        return any(
            re.fullmatch(
                re.escape(f"{name}{part}{suffix}")
                .replace(re.escape("{major}"), r"\d+")
                .replace(re.escape("{worker}"), r"[a-z0-9-]+"),
                logical,
            )
            for part in self.site_parts
            for suffix in self.suffixes
        )

    def physical(
        self, name: str, suffix: str, project: str, stack: str, major: str = LONGEST_MAJOR
    ) -> str:
        """The physical name for the logical name `<name><suffix>`; a suffix that holds a site
        part before one of the row's own (`-worker-celery` + `-task`) names the component
        `<name><site part>`."""
        suffix = suffix.replace("{major}", major).replace("{worker}", LONGEST_WORKER)
        own = next((s for s in self.suffixes if suffix != s and suffix.endswith(s)), None)
        if own is not None and self.site_parts != ("",):
            name, suffix = name + suffix[: -len(own)], own
        if self.template is not None:
            return self.template.format(
                name=name,
                project=project,
                stack=stack,
                pull_through=pull_through_prefix(name, project, stack),
                kms_alias=kms_alias_name(name, project, stack),
                random=AUTONAME_EXAMPLE,
                random_id=RANDOM_ID_EXAMPLE,
                distribution=DISTRIBUTION_EXAMPLE,
                digest="0123456789ab",
            )
        base = f"{name}{suffix}"
        return (base.lower() if self.lowercased else base) + AUTONAME_EXAMPLE


SG = "aws:ec2/securityGroup:SecurityGroup"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
BUCKET = "aws:s3/bucket:Bucket"
SECRETS_MANAGER = "aws:secretsmanager/secret:Secret"
# How AwsSite names the background processes' components after `django:name`.
_PROCESSES = ("-worker-{worker}", "-scheduler")

DERIVED: tuple[Derived, ...] = (
    Derived(
        "Network",
        "security group",
        SG,
        "name",
        "security-group",
        ("-lb", "-app", "-db", "-cache", "-endpoints"),
    ),
    Derived(
        "Database",
        "subnet group",
        "aws:rds/subnetGroup:SubnetGroup",
        "name",
        "rds-subnet-group",
        ("-subnets",),
    ),
    Derived(
        "Database",
        "parameter group",
        "aws:rds/parameterGroup:ParameterGroup",
        "name",
        "rds-parameter-group",
        ("-params-postgres{major}",),
    ),
    Derived(
        "Database",
        "DB instance",
        "aws:rds/instance:Instance",
        "identifier",
        "rds-identifier",
        ("-db",),
    ),
    Derived(
        "Database",
        "final snapshot",
        "aws:rds/instance:Instance",
        "finalSnapshotIdentifier",
        "rds-snapshot",
        ("-db",),
        # A random part drawn with the instance (`Database.snapshot_suffix`): unique, as each
        # replaced instance's is; the instance keeps its auto-name.
        template="{name}-final{random_id}",
    ),
    Derived("Database", "enhanced monitoring role", ROLE, "name", "iam-role", ("-monitoring",)),
    *(
        # RDS's own name, after the instance's auto-named identifier; created (or taken as RDS
        # created it) by the `RdsLogGroup` dynamic resource once the instance exists.
        Derived(
            "Database",
            f"{log} log group",
            "pulumi-python:dynamic/database:RdsLogGroup",
            "log_group_name",
            "log-group",
            (f"-db-{log}-logs",),
            template="/aws/rds/instance/{name}-db{random}/" + log,
        )
        for log in ("postgresql", "upgrade")
    ),
    Derived(
        "Cache",
        "subnet group",
        "aws:elasticache/subnetGroup:SubnetGroup",
        "name",
        "elasticache-subnet-group",
        ("-subnets",),
    ),
    Derived(
        "Cache",
        "replication group",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "replicationGroupId",
        "elasticache-replication-group",
        ("-group",),
        lowercased=True,
    ),
    Derived("Cache", "AUTH token secret", SECRETS_MANAGER, "name", "secret", ("-auth-token",)),
    Derived(
        "LoadBalancer", "load balancer", "aws:lb/loadBalancer:LoadBalancer", "name", "lb", ("-alb",)
    ),
    Derived(
        "LoadBalancer",
        "VPC origin",
        "aws:cloudfront/vpcOrigin:VpcOrigin",
        "vpcOriginEndpointConfig.name",
        "cloudfront-vpc-origin",
        ("-origin",),
        # `vpc_origin_name`: the name's first 48 characters, a hyphen, 12 hexadecimal ones.
        template="{name}-{digest}",
    ),
    Derived(
        "LoadBalancer",
        "target group",
        "aws:lb/targetGroup:TargetGroup",
        "name",
        "lb-target-group",
        # `-backend` since the ALB became internal (a new group for the new ALB): as long as
        # the `-targets` before it, so the longest name stays 16.
        ("-backend",),
    ),
    Derived(
        "StaticSite",
        "static files bucket",
        BUCKET,
        "bucket",
        "s3-bucket",
        ("-static",),
        lowercased=True,
    ),
    Derived(
        "StaticSite",
        "origin access control",
        "aws:cloudfront/originAccessControl:OriginAccessControl",
        "name",
        "cloudfront-origin-access-control",
        ("-static",),
    ),
    Derived(
        "StaticSite",
        "media headers policy",
        "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy",
        "name",
        "cloudfront-policy",
        ("-media",),
    ),
    Derived(
        "StaticSite",
        "access log delivery source",
        "aws:cloudwatch/logDeliverySource:LogDeliverySource",
        "name",
        "log-delivery",
        ("-cdn-logs",),
        template="cloudfront-{distribution}",
    ),
    Derived(
        "StaticSite",
        "access log delivery destination",
        "aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination",
        "name",
        "log-delivery",
        ("-cdn-logs",),
        template="cloudfront-{distribution}-s3",
    ),
    Derived(
        "MediaStorage", "media bucket", BUCKET, "bucket", "s3-bucket", ("-media",), lowercased=True
    ),
    Derived("LogBucket", "log bucket", BUCKET, "bucket", "s3-bucket", ("-logs",), lowercased=True),
    Derived(
        "AppImage",
        "ECR repository",
        "aws:ecr/repository:Repository",
        "name",
        "ecr-repository",
        ("-repository",),
    ),
    Derived("Cluster", "ECS cluster", "aws:ecs/cluster:Cluster", "name", "ecs", ("-cluster",)),
    Derived(
        "AppTask", "execution and task roles", ROLE, "name", "iam-role", ("-execution", "-task")
    ),
    Derived(
        "AppTask",
        "role policies",
        ROLE_POLICY,
        "name",
        "iam-policy",
        (
            "-execution",
            "-execution-proxy-image",
            "-task-database-secret",
            "-task-database-connect",
            "-task-media",
            "-task-exec",
            "-task-extra",
        ),
    ),
    Derived(
        "AppTask",
        "secrets",
        SECRETS_MANAGER,
        "name",
        "secret",
        ("-django-secret-key", "-app-database"),
    ),
    Derived(
        "AppTask",
        "task definition family",
        "aws:ecs/taskDefinition:TaskDefinition",
        "family",
        "ecs",
        ("-task",),
        template="{name}",
    ),
    Derived(
        "AppTask",
        "log group",
        "aws:cloudwatch/logGroup:LogGroup",
        "name",
        "log-group",
        ("-logs",),
        template="/ecs/{project}/{stack}/{name}",
    ),
    Derived(
        "AppTask",
        "proxy image cache prefix",
        "aws:ecr/pullThroughCacheRule:PullThroughCacheRule",
        "ecrRepositoryPrefix",
        "ecr-pull-through-prefix",
        ("-proxy-cache",),
        template="{pull_through}",
    ),
    Derived("AppService", "ECS service", "aws:ecs/service:Service", "name", "ecs", ("-service",)),
    *(
        # AwsSite names a worker's `<name>-worker-<worker>`, the scheduler's `<name>-scheduler`.
        Derived(
            "WorkerService",
            resource,
            type_token,
            prop,
            rule,
            (suffix,),
            template=template,
            site_parts=parts,
        )
        for resource, type_token, prop, rule, suffix, template, parts in (
            ("ECS service", "aws:ecs/service:Service", "name", "ecs", "-service", None, _PROCESSES),
            (
                "task definition family",
                "aws:ecs/taskDefinition:TaskDefinition",
                "family",
                "ecs",
                "-task",
                "{name}",
                _PROCESSES,
            ),
            (
                "scaling policy",
                "aws:appautoscaling/policy:Policy",
                "name",
                "scaling-policy",
                "-scale-on-cpu",
                None,
                ("-worker-{worker}",),
            ),
        )
    ),
    Derived(
        "AppService",
        "5xx alarm",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "name",
        "cloudwatch-alarm",
        ("-5xx",),
    ),
    Derived(
        "AppService",
        "scaling policies",
        "aws:appautoscaling/policy:Policy",
        "name",
        "scaling-policy",
        ("-scale-on-cpu", "-scale-on-requests"),
    ),
    Derived(
        "StackKey",
        "key alias",
        "aws:kms/alias:Alias",
        "name",
        "kms-alias",
        ("-key",),
        template="{kms_alias}",
    ),
)

# The resource types whose physical name a plan holds, by type: where the name is, whether
# Pulumi generates it when the input is absent, lowercased or not. tests/test_names.py
# reads every such name in a recorded plan and holds it to its rule.
NAMED_TYPES: dict[str, list[Derived]] = {}
for _row in DERIVED:
    NAMED_TYPES.setdefault(_row.type_token, []).append(_row)


@dataclass(frozen=True)
class NameProblem:
    """One derived name AWS would refuse, as one line: what, why, what to do."""

    derived: Derived
    physical: str
    reason: str
    fix: str

    def line(self, subject: str) -> str:
        shown = (
            f"{self.physical[:-AUTONAME_SUFFIX]!r} + Pulumi's '-' and 7 random characters"
            if self.derived.autonamed and self.derived.template is None
            else repr(self.physical)
        )
        return (
            f"{subject}the {self.derived.component} {self.derived.resource} would be named "
            f"{shown}: {self.reason}; {self.fix}"
        )


def rule_problems(rule: NameRule, physical: str) -> Iterator[tuple[str, str, str]]:
    """(kind, why AWS refuses `physical`, what to do) for each part of `rule` it breaks; the
    kind is `length` for a name too long, else the part's own word."""
    text = physical.lower() if rule.stored_lowercase else physical
    if rule.max_length is not None and len(text) > rule.max_length:
        yield (
            "length",
            f"{len(text)} characters, longer than the {rule.max_length} AWS allows for {rule.what}",
            "shorten the name",
        )
    if len(text) < rule.min_length:
        yield ("short", f"shorter than the {rule.min_length} characters of {rule.what}", "")
    if rule.allowed is not None and not re.fullmatch(rule.allowed, text):
        yield (
            "characters",
            f"AWS allows only {rule.allowed_text} in {rule.what}",
            "use only those characters",
        )
    if rule.first_letter and not text[:1].isalpha():
        yield ("first", f"{rule.what} must start with a letter", "start the name with a letter")
    if rule.no_double_hyphen and "--" in text:
        yield (
            "hyphens",
            f"AWS refuses two hyphens in a row in {rule.what}",
            "use single hyphens ('-', not '--')",
        )
    if rule.no_hyphen_at_ends and (text.startswith("-") or text.endswith("-")):
        yield ("ends", f"{rule.what} may not start or end with a hyphen", "drop that hyphen")
    for prefix in rule.forbidden_prefixes:
        if text.startswith(prefix):
            yield (
                "prefix",
                f"AWS refuses {rule.what} starting with {prefix!r}",
                f"pick a name that does not start with {prefix!r}",
            )
    if text in rule.forbidden_names:
        yield ("reserved", f"AWS reserves {text!r} as {rule.what}", "pick another name")


def name_problems(
    name: str,
    *,
    component: str | None = None,
    project: str = "project",
    stack: str = "stack",
    major: str | None = None,
) -> list[NameProblem]:
    """Every derived name of `component` (all components when None) that AWS would refuse,
    for a component named `name` in `project`/`stack`; `major` is the PostgreSQL major of the
    names that hold one (`database.engineVersion`'s), unknown when None: those names are then
    checked as long as a major gets and shown with `<major>` in its place."""
    problems: list[NameProblem] = []
    for derived in DERIVED:
        if component is not None and derived.component != component:
            continue
        for suffix in _suffixes(derived, component):
            physical = derived.physical(name, suffix, project, stack, major or LONGEST_MAJOR)
            shown = derived.physical(name, suffix, project, stack, major or "<major>")
            for kind, reason, fix in rule_problems(RULES[derived.rule], physical):
                if kind == "length":
                    longest = len(name) - (len(physical) - RULES[derived.rule].max_length)  # type: ignore[operator]
                    fix = f"use a name of at most {longest} characters"
                problems.append(NameProblem(derived, shown, reason, fix))
    return problems


def max_name_length(component: str | None = None) -> int:
    """The longest name whose derived names all fit their length limits (hyphens and letters
    otherwise as AWS allows)."""
    longest = 10_000
    for derived in DERIVED:
        if component is not None and derived.component != component:
            continue
        rule = RULES[derived.rule]
        if rule.max_length is None or derived.template is not None:
            continue
        for suffix in _suffixes(derived, component):
            longest = min(longest, rule.max_length - len(derived.physical("", suffix, "", "")))
    return longest


def _suffixes(derived: Derived, component: str | None) -> list[str]:
    """The suffixes after the name checked: a component's own (`check_name`), or, for
    `django:name` (no component), after the site's part too."""
    parts = derived.site_parts if component is None else ("",)
    return [part + suffix for part in parts for suffix in derived.suffixes]


def stack_digest(name: str, project: str, stack: str) -> str:
    """6 hexadecimal characters of the project, stack and name: what makes a name that must be
    unique in the account and region (not only in the stack) differ between two stacks that
    give a component the same name."""
    return hashlib.sha256(f"{project}/{stack}/{name}".encode()).hexdigest()[:6]


def pull_through_prefix(name: str, project: str, stack: str) -> str:
    """The ECR pull-through cache prefix of a component named `name` in `project`/`stack`:
    unique per stack (a registry holds one rule per prefix, per account and region), within
    ECR's 30 characters and pattern whatever the name: its letters and digits, lowercased,
    then `stack_digest`."""
    digest = stack_digest(name, project, stack)
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:23].rstrip("-")
    return f"{slug}-{digest}" if slug else f"p-{digest}"


def kms_alias_name(name: str, project: str, stack: str) -> str:
    """The KMS alias `StackKey` gives its key by default: unique per stack (an alias is unique
    per account and region), within KMS's 256 characters and pattern whatever the name:
    `alias/`, the name's letters, digits, `_` and `-` (anything else, `/` too, becomes `-`, so
    it never starts `alias/aws/`), then `-` and `stack_digest`."""
    digest = stack_digest(name, project, stack)
    room = KMS_ALIAS_MAX - len("alias/") - len(f"-{digest}")
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:room].rstrip("-")
    return f"alias/{slug or 'key'}-{digest}"
