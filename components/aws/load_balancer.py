"""The application load balancer: internal, in the private subnets, reachable only through
CloudFront's VPC origin, forwarding only requests that carry CloudFront's secret origin header,
draining targets no longer than a request needs."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from pulumi_django._mock_answers import or_mock_answer
from pulumi_django.components.args import (
    ComponentArgsError,
    arg,
    arn_resource,
    brought_attributes,
    check_name,
    resource_ref,
)
from pulumi_django.components.aws.network import HTTP_PORT, HTTPS_PORT
from pulumi_django.config.app import AppConfig
from pulumi_django.config.load_balancer import LoadBalancerConfig
from pulumi_django.config.proxy import ProxyConfig

ORIGIN_VERIFY_HEADER = "X-Origin-Verify"
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
# AWS's default draining time is 300 s per batch of tasks; a release never needs that long.
MAX_DEFAULT_DEREGISTRATION_DELAY = 30
DEREGISTRATION_MARGIN_SECONDS = 5
HEALTH_CHECK_TIMEOUT_SECONDS = 5
# The group CloudFront creates in a VPC with its first VPC origin there, and puts on the network
# interfaces its origin traffic comes from. It is CloudFront's: referenced, never created here.
VPC_ORIGIN_SERVICE_GROUP = "CloudFront-VPCOrigins-Service-SG"
# What a unit test's mocks, answering the lookup with nothing, are taken to have found.
MOCK_VPC_ORIGIN_GROUP_ID = "sg-0cf0c0ffee0c0ffee"
MOCK_VPC_ID = "vpc-0123456789abcdef0"
ORIGIN_TLS_PROTOCOLS = ["TLSv1.2"]
# The target group's logical name after the component's (config/names.py's row).
TARGET_GROUP_SUFFIX = "-backend"


def deregistration_delay(config: LoadBalancerConfig, graceful_timeout_seconds: int) -> int:
    """Draining time: the configured value, else the app's graceful time plus a margin, capped.

    ECS sends SIGTERM only after draining ends, and the app then has its graceful time again,
    so a request in flight when draining starts gets both before anything cuts it."""
    if config.deregistration_delay_seconds is not None:
        return config.deregistration_delay_seconds
    return min(
        graceful_timeout_seconds + DEREGISTRATION_MARGIN_SECONDS, MAX_DEFAULT_DEREGISTRATION_DELAY
    )


def health_check_timeout(interval_seconds: int) -> int:
    """The ALB requires the timeout to be shorter than the interval."""
    return min(HEALTH_CHECK_TIMEOUT_SECONDS, interval_seconds - 1)


def _first(outputs: Sequence[pulumi.Output[str]]) -> pulumi.Output[str]:
    """The first output's value, known (and depending) only once all of them are."""
    return pulumi.Output.all(*outputs).apply(lambda values: str(values[0]))


def _forbidden() -> aws.lb.ListenerDefaultActionArgs:
    return aws.lb.ListenerDefaultActionArgs(
        type="fixed-response",
        fixed_response=aws.lb.ListenerDefaultActionFixedResponseArgs(
            content_type="text/plain", message_body="Forbidden", status_code="403"
        ),
    )


@dataclass(frozen=True)
class LoadBalancerOrigin:
    """What a CloudFront distribution needs to send the app's requests to the ALB (StaticSite):
    its DNS name, the secret header value its rule requires, whether it serves HTTPS, and the
    CloudFront VPC origin through which the distribution reaches it (never the internet)."""

    dns_name: pulumi.Input[str]
    origin_verify_secret: pulumi.Input[str]
    https: bool
    vpc_origin_id: pulumi.Input[str]


def vpc_origin_name(name: str, load_balancer_arn: str, protocol_policy: str) -> str:
    """A VPC origin's name: unique in the account (CloudFront refuses a second one of the same
    name, in any region), and different whenever the origin is replaced, so that the new one
    exists beside the old until the distribution has moved to it."""
    digest = hashlib.sha256(f"{load_balancer_arn}|{protocol_policy}".encode()).hexdigest()
    return f"{name[:48]}-{digest[:12]}"


def internal_only(arn: str, internal: bool | None) -> str:
    """A brought ALB's ARN, refused when AWS says it is internet-facing (a VPC origin needs an
    internal ALB, and an internet-facing one would take the app's traffic beside CloudFront)."""
    if internal is False:
        raise ComponentArgsError(
            f"LoadBalancerArgs.load_balancer: {arn} is internet-facing; bring an internal ALB "
            "in private subnets (CloudFront reaches it through a VPC origin) or let the "
            "component create one"
        )
    return arn


@dataclass(frozen=True, kw_only=True)
class LoadBalancerArgs:
    """The origin secret, the load balancer section, where the ALB sits and what it forwards
    to, how CloudFront's VPC origin is let in, and the ALB, listener and target group of yours
    it uses."""

    origin_verify_secret: pulumi.Input[str] = arg(
        f"The secret CloudFront sends in `{ORIGIN_VERIFY_HEADER}` (handed to StaticSite in "
        "`origin`); only a request carrying it is forwarded to the targets."
    )
    config: LoadBalancerConfig = arg(
        "The load balancer section: timings, health check tuning, deletion protection. "
        "Default: the section's defaults.",
        default_factory=LoadBalancerConfig,
    )
    proxy_port: int = arg(
        "Port the tasks' proxy listens on: the target group's port. Default: the proxy "
        "section's default.",
        default=ProxyConfig.model_fields["port"].default,
    )
    health_check_path: str = arg(
        "Path the target group's health check requests (`app.healthCheckPath`). Default: the "
        "app section's default.",
        default=AppConfig.model_fields["health_check_path"].default,
    )
    graceful_timeout_seconds: int = arg(
        "The app's graceful stop time (`app.gracefulTimeoutSeconds`); the draining time derives "
        "from it unless `config.deregistrationDelaySeconds` is set. Default: the app section's "
        "default.",
        default=AppConfig.model_fields["graceful_timeout_seconds"].default,
    )
    certificate_arn: str | None = arg(
        "ACM certificate (in the stack's region) of an HTTPS listener on 443, port 80 then "
        "redirecting to it (`domain.loadBalancerCertificateArn`). Default: HTTP on port 80 "
        "only. Not with `listener`.",
        default=None,
    )
    vpc_id: pulumi.Input[str] | None = arg(
        "VPC of the target group. Required unless `target_group` is brought.", default=None
    )
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]] | None = arg(
        "Private subnets of the internal ALB (Network's `private_subnet_ids`), one per zone; "
        "CloudFront's VPC origin puts its network interfaces there too. Required unless "
        "`load_balancer` is brought.",
        default=None,
    )
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]] | None = arg(
        "Security groups of the ALB (Network's `load_balancer_security_group_ids`). Required "
        "unless `load_balancer` is brought.",
        default=None,
    )
    cloudfront_security_group_id: pulumi.Input[str] | None = arg(
        "The ALB's group that gets the one ingress rule of the site: from CloudFront's VPC "
        f"origin group (`{VPC_ORIGIN_SERVICE_GROUP}`, which CloudFront creates in the VPC with "
        "the VPC origin) on the port CloudFront uses, 443 with HTTPS, else 80. Default: no "
        "rule; the ALB's groups must admit that group themselves (a brought group).",
        default=None,
    )
    vpc_origin: bool = arg(
        "Whether the component makes the CloudFront VPC origin of the ALB (what `origin` and "
        "StaticSite need), refusing a brought ALB that is internet-facing. False only with a "
        "brought `load_balancer` that a distribution of yours reaches its own way: no VPC "
        "origin, no scheme check, and keeping that ALB off the internet is yours. Default: on.",
        default=True,
    )
    after: Sequence[pulumi.Resource] = arg(
        "What the VPC origin waits for: the VPC's internet gateway (CloudFront requires one "
        "attached to the VPC of a VPC origin, though no origin traffic goes through it). "
        "Default: nothing (an existing VPC has its gateway).",
        default=(),
    )
    access_logs_bucket: pulumi.Input[str] | None = arg(
        "S3 bucket whose policy lets the ALB write access logs, under `<name>/`. Default: no "
        "access logs. Not with `load_balancer`.",
        default=None,
    )
    load_balancer: aws.lb.LoadBalancer | pulumi.Input[str] | None = arg(
        "An existing internal ALB (object or ARN; an ARN is looked up for its DNS name and "
        "scheme), which CloudFront then reaches through a VPC origin; an internet-facing one "
        "is refused. Without `listener`, the component adds its listeners to it (port 80, and "
        "443 with `certificate_arn`), so those ports must be free. Default: an internal ALB in "
        "`subnet_ids`.",
        default=None,
    )
    listener: aws.lb.Listener | pulumi.Input[str] | None = arg(
        "An existing HTTPS listener of `load_balancer` (object or ARN), whose certificate "
        "covers the site's domain: the component adds only its forwarding rule to it, at "
        "`priority`, and its default action stays yours (make it refuse). Default: the "
        "component's listeners, answering 403 to anything without the origin header.",
        default=None,
    )
    target_group: aws.lb.TargetGroup | pulumi.Input[str] | None = arg(
        "An existing target group (object or ARN) of IP targets: the rule forwards to it, and "
        "its port and health check are yours. Default: one on `proxy_port` with the app's "
        "health check.",
        default=None,
    )
    priority: int = arg(
        "Priority of the forwarding rule; on a brought `listener`, one no other rule uses.",
        default=1,
    )

    def __post_init__(self) -> None:
        required = {
            "vpc_id": self.target_group is None,
            "subnet_ids": self.load_balancer is None,
            "security_group_ids": self.load_balancer is None,
        }
        for field, needed in required.items():
            if needed and getattr(self, field) is None:
                brought = "target_group" if field == "vpc_id" else "load_balancer"
                raise ComponentArgsError(
                    f"LoadBalancerArgs.{field} is required unless {brought} is given"
                )
        if self.listener is not None and self.load_balancer is None:
            raise ComponentArgsError(
                "LoadBalancerArgs.listener needs load_balancer: the ALB it belongs to"
            )
        if self.listener is not None and self.certificate_arn is not None:
            raise ComponentArgsError(
                "LoadBalancerArgs.certificate_arn is for the component's own HTTPS listener; "
                "a brought listener has its certificate"
            )
        if not self.vpc_origin and self.load_balancer is None:
            raise ComponentArgsError(
                "LoadBalancerArgs.vpc_origin=False is for a brought load_balancer that a "
                "distribution of yours reaches; the component's ALB is internal, reachable only "
                "through its VPC origin"
            )
        if not self.vpc_origin and self.cloudfront_security_group_id is not None:
            raise ComponentArgsError(
                "LoadBalancerArgs.cloudfront_security_group_id admits the VPC origin's group; "
                "with vpc_origin=False there is none"
            )
        if self.load_balancer is not None and self.access_logs_bucket is not None:
            raise ComponentArgsError(
                "LoadBalancerArgs.access_logs_bucket is for the component's own ALB; set the "
                "access logs of a brought load_balancer on it"
            )


def target_group_ref(
    target_group: aws.lb.TargetGroup | pulumi.Input[str],
) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    """A target group's ARN and ARN suffix (`targetgroup/<name>/<id>`, what CloudWatch's
    dimensions name it by), from the resource or from its ARN."""
    if isinstance(target_group, pulumi.Resource):
        return resource_ref(target_group, "arn"), resource_ref(target_group, "arn_suffix")
    arn = pulumi.Output.from_input(target_group)
    return arn, arn_resource(arn)


class LoadBalancer(pulumi.ComponentResource):
    """An internal ALB in the private subnets, a target group of the tasks' proxies, listeners
    whose default answer is 403 (only a request with the origin header is forwarded), and the
    CloudFront VPC origin through which the distribution reaches the ALB: no load balancer of
    the site is on the internet, and nothing crosses it between CloudFront and the ALB.

    Without `certificate_arn`, the VPC origin speaks HTTP to port 80, inside the VPC only. With
    it, HTTPS to 443 (TLS 1.2+), port 80 redirecting to it. A brought `listener` is HTTPS.

    The VPC origin is replaced, never updated, when what it points at changes (the ALB, the
    protocol): CloudFront refuses to change or delete a VPC origin a distribution still uses,
    so a new one (of another name) is made, the distribution moves to it, and the old one goes.

    `origin` is what StaticSite needs to put the ALB behind its distribution; its
    `vpc_origin_id` resolves once the forwarding rule exists and the ALB's group admits
    CloudFront's VPC-origin group, so the distribution never points at an origin that cannot
    be reached yet, nor at a listener that still answers everything 403.

    Each child is an attribute, None when brought or not made: `load_balancer`,
    `target_group`, `http_listener` (the serving one without a certificate, else the
    redirect), `https_listener` (with a certificate), `listener_rule` (always created: the
    forwarding rule that checks the origin header), `vpc_origin` (unless `vpc_origin` is off)
    and `vpc_origin_ingress` (with `cloudfront_security_group_id`)."""

    dns_name: pulumi.Output[str]
    zone_id: pulumi.Output[str]
    arn: pulumi.Output[str]
    arn_suffix: pulumi.Output[str]
    target_group_arn: pulumi.Output[str]
    target_group_arn_suffix: pulumi.Output[str]
    vpc_origin_id: pulumi.Output[str] | None
    https: bool
    load_balancer: aws.lb.LoadBalancer | None
    target_group: aws.lb.TargetGroup | None
    http_listener: aws.lb.Listener | None
    https_listener: aws.lb.Listener | None
    listener_rule: aws.lb.ListenerRule
    vpc_origin: aws.cloudfront.VpcOrigin | None
    vpc_origin_ingress: aws.vpc.SecurityGroupIngressRule | None

    def __init__(
        self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        check_name("LoadBalancer", name)
        super().__init__("pulumi-django:fleet:LoadBalancer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.https = args.listener is not None or args.certificate_arn is not None

        self.load_balancer = self._load_balancer(name, args, child)
        target_group_arn, self.target_group_arn_suffix = self._target_group(name, args, child)
        serving_listener_arn = self._listeners(name, args, child)
        self.listener_rule = aws.lb.ListenerRule(
            f"{name}-from-cloudfront",
            listener_arn=serving_listener_arn,
            priority=args.priority,
            conditions=[
                aws.lb.ListenerRuleConditionArgs(
                    http_header=aws.lb.ListenerRuleConditionHttpHeaderArgs(
                        http_header_name=ORIGIN_VERIFY_HEADER,
                        values=[pulumi.Output.secret(args.origin_verify_secret)],
                    )
                )
            ],
            actions=[
                aws.lb.ListenerRuleActionArgs(type="forward", target_group_arn=target_group_arn)
            ],
            # The provider echoes the header value back in its outputs; keep it secret there.
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(additional_secret_outputs=["conditions"])
            ),
        )
        self._name, self._origin_verify_secret = name, args.origin_verify_secret
        self.vpc_origin = self.vpc_origin_ingress = self.vpc_origin_id = None
        if args.vpc_origin:
            self.vpc_origin_id = self._vpc_origin(name, args, child)

        # ECS refuses a service whose target group no listener uses yet; resolving only once the
        # forwarding rule exists makes any service built on this output wait for it.
        self.target_group_arn = pulumi.Output.all(target_group_arn, self.listener_rule.arn).apply(
            lambda arns: str(arns[0])
        )
        self.register_outputs(
            {
                "dns_name": self.dns_name,
                "zone_id": self.zone_id,
                "arn": self.arn,
                "arn_suffix": self.arn_suffix,
                "target_group_arn": self.target_group_arn,
                "target_group_arn_suffix": self.target_group_arn_suffix,
                **({"vpc_origin_id": self.vpc_origin_id} if self.vpc_origin_id else {}),
                "https": self.https,
            }
        )

    @property
    def origin(self) -> LoadBalancerOrigin:
        """What StaticSite needs: the ALB's DNS name, the origin secret, HTTPS or not, and the
        VPC origin (refused without one: a distribution reaches this ALB through nothing else)."""
        if self.vpc_origin_id is None:
            raise ComponentArgsError(
                f"LoadBalancer {self._name!r} has no VPC origin (vpc_origin=False): a "
                "distribution of its own reaches it, not StaticSite's"
            )
        return LoadBalancerOrigin(
            self.dns_name, self._origin_verify_secret, self.https, self.vpc_origin_id
        )

    def _load_balancer(
        self, name: str, args: LoadBalancerArgs, child: pulumi.ResourceOptions
    ) -> aws.lb.LoadBalancer | None:
        """The ALB, or the brought one's ARN (refused when internet-facing), DNS name, zone,
        VPC and ARN suffix (looked up from an ARN)."""
        if args.load_balancer is not None:
            if args.vpc_origin and isinstance(args.load_balancer, str):
                # Known while the program runs: refused before anything is created.
                found = aws.lb.get_load_balancer(
                    arn=args.load_balancer, opts=pulumi.InvokeOptions(parent=self)
                )
                internal_only(args.load_balancer, found.internal)
            arn, self.dns_name, self.zone_id, internal, self._vpc_id = brought_attributes(
                args.load_balancer,
                ("arn", "dns_name", "zone_id", "internal", "vpc_id"),
                lambda arn: aws.lb.get_load_balancer_output(
                    arn=arn, opts=pulumi.InvokeOutputOptions(parent=self)
                ),
            )
            # An object (or an ARN known only later) is checked once AWS says its scheme.
            self.arn = (
                pulumi.Output.all(arn, internal).apply(
                    lambda found: internal_only(str(found[0]), found[1])
                )
                if args.vpc_origin
                else arn
            )
            # CloudWatch's `LoadBalancer` dimension is the ARN's resource part after
            # `loadbalancer/`: read off the ARN, it needs no lookup (nor a mock's answer).
            self.arn_suffix = arn_resource(self.arn).apply(
                lambda resource: resource.removeprefix("loadbalancer/")
            )
            return None
        alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            # Internal: no public address; CloudFront's VPC origin is the only way in.
            internal=True,
            subnets=args.subnet_ids,
            security_groups=args.security_group_ids,
            drop_invalid_header_fields=True,
            idle_timeout=args.config.idle_timeout_seconds,
            enable_deletion_protection=args.config.deletion_protection,
            access_logs=(
                aws.lb.LoadBalancerAccessLogsArgs(
                    bucket=args.access_logs_bucket, prefix=name, enabled=True
                )
                if args.access_logs_bucket is not None
                else None
            ),
            opts=child,
        )
        self.dns_name, self.zone_id, self._vpc_id = alb.dns_name, alb.zone_id, alb.vpc_id
        self.arn, self.arn_suffix = alb.arn, alb.arn_suffix
        return alb

    def _vpc_origin(
        self, name: str, args: LoadBalancerArgs, child: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        """Sets `vpc_origin` and `vpc_origin_ingress`; returns the VPC origin's id, resolving
        once the forwarding rule exists (before it, the listener answers every request 403)
        and the ALB's group admits CloudFront's VPC-origin group (when this component adds
        that rule)."""
        policy = "https-only" if self.https else "http-only"
        self.vpc_origin = aws.cloudfront.VpcOrigin(
            f"{name}-origin",
            vpc_origin_endpoint_config={
                "name": self.arn.apply(lambda arn: vpc_origin_name(name, arn, policy)),
                "arn": self.arn,
                "http_port": HTTP_PORT,
                "https_port": HTTPS_PORT,
                "origin_protocol_policy": policy,
                "origin_ssl_protocols": {
                    "items": ORIGIN_TLS_PROTOCOLS,
                    "quantity": len(ORIGIN_TLS_PROTOCOLS),
                },
            },
            # CloudFront refuses to update a VPC origin a distribution uses: any change of its
            # endpoint is a replacement, the new one (another name) created before the old goes.
            opts=child.merge(
                pulumi.ResourceOptions(
                    replace_on_changes=["vpcOriginEndpointConfig"],
                    delete_before_replace=False,
                    depends_on=list(args.after),
                )
            ),
        )
        self.vpc_origin_ingress = None
        # What the distribution waits for before it points at the VPC origin: the rule that
        # forwards to the targets (the listener's default answer is 403), and the ingress rule.
        ready: list[pulumi.Output[str]] = [self.vpc_origin.id, self.listener_rule.arn]
        if args.cloudfront_security_group_id is None:
            return _first(ready)
        vpc_id = (
            pulumi.Output.from_input(args.vpc_id)
            if args.vpc_id is not None
            else or_mock_answer(self._vpc_id, MOCK_VPC_ID)
        )
        # CloudFront creates its group with the VPC origin: look it up once that exists.
        service_group = aws.ec2.get_security_group_output(
            name=VPC_ORIGIN_SERVICE_GROUP,
            vpc_id=vpc_id,
            opts=pulumi.InvokeOutputOptions(parent=self, depends_on=[self.vpc_origin]),
        )
        port = HTTPS_PORT if self.https else HTTP_PORT
        self.vpc_origin_ingress = aws.vpc.SecurityGroupIngressRule(
            f"{name}-from-vpc-origin",
            security_group_id=args.cloudfront_security_group_id,
            referenced_security_group_id=or_mock_answer(service_group.id, MOCK_VPC_ORIGIN_GROUP_ID),
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description="from CloudFront VPC origin",
            tags={"Name": f"{name}-from-vpc-origin"},
            opts=child,
        )
        return _first([*ready, self.vpc_origin_ingress.id])

    def _target_group(
        self, name: str, args: LoadBalancerArgs, child: pulumi.ResourceOptions
    ) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """Sets `target_group`; returns its ARN and ARN suffix (the part after the account,
        `targetgroup/<name>/<id>`, which CloudWatch's dimensions name it by)."""
        self.target_group = None
        if args.target_group is not None:
            return target_group_ref(args.target_group)
        # `-backend`, not the `-targets` of releases whose ALB was internet-facing: AWS lets a
        # target group serve one load balancer only (TargetGroupAssociationLimit,
        # terraform-provider-aws #22005), and that ALB is replaced by the internal one. A new
        # logical name (no alias) makes Pulumi create a new group for the new ALB, move the
        # service to it in place (ECS UpdateService changes a rolling service's target groups
        # with a rolling deployment) and delete the old one last. The same length as before, so
        # the names' limits (config/names.py) hold.
        self.target_group = aws.lb.TargetGroup(
            f"{name}{TARGET_GROUP_SUFFIX}",
            target_type="ip",
            protocol="HTTP",
            port=args.proxy_port,
            vpc_id=args.vpc_id,
            deregistration_delay=deregistration_delay(args.config, args.graceful_timeout_seconds),
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                enabled=True,
                protocol="HTTP",
                port="traffic-port",
                path=args.health_check_path,
                matcher="200",
                interval=args.config.health_check_interval_seconds,
                timeout=health_check_timeout(args.config.health_check_interval_seconds),
                healthy_threshold=args.config.healthy_threshold,
                unhealthy_threshold=args.config.unhealthy_threshold,
            ),
            opts=child,
        )
        return self.target_group.arn, self.target_group.arn_suffix

    def _listeners(
        self, name: str, args: LoadBalancerArgs, child: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        """Sets `http_listener` and `https_listener`; returns the ARN of the listener that
        serves (the one the forwarding rule goes on)."""
        self.http_listener = self.https_listener = None
        if args.listener is not None:
            return resource_ref(args.listener, "arn")
        if args.certificate_arn is None:
            self.http_listener = aws.lb.Listener(
                f"{name}-http",
                load_balancer_arn=self.arn,
                port=HTTP_PORT,
                protocol="HTTP",
                default_actions=[_forbidden()],
                opts=child,
            )
            return self.http_listener.arn
        self.http_listener = aws.lb.Listener(
            f"{name}-http",
            load_balancer_arn=self.arn,
            port=HTTP_PORT,
            protocol="HTTP",
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(
                    type="redirect",
                    redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                        protocol="HTTPS", port=str(HTTPS_PORT), status_code="HTTP_301"
                    ),
                )
            ],
            opts=child,
        )
        self.https_listener = aws.lb.Listener(
            f"{name}-https",
            load_balancer_arn=self.arn,
            port=HTTPS_PORT,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=args.certificate_arn,
            default_actions=[_forbidden()],
            opts=child,
        )
        return self.https_listener.arn
