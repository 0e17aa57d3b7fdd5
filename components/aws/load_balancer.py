"""The application load balancer: reachable only from CloudFront, forwarding only requests that
carry CloudFront's secret origin header, draining targets no longer than a request needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from pulumi_django.components.args import (
    ComponentArgsError,
    arg,
    arn_resource,
    brought_attributes,
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
    its DNS name, the secret header value its rule requires, and whether it serves HTTPS."""

    dns_name: pulumi.Input[str]
    origin_verify_secret: pulumi.Input[str]
    https: bool


@dataclass(frozen=True, kw_only=True)
class LoadBalancerArgs:
    """The origin secret, the load balancer section, where the ALB sits and what it forwards
    to, and the ALB, listener and target group of yours it uses."""

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
    public_subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]] | None = arg(
        "Public subnets of the ALB. Required unless `load_balancer` is brought.", default=None
    )
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]] | None = arg(
        "Security groups of the ALB (Network's `load_balancer_security_group_ids`: CloudFront "
        "only). Required unless `load_balancer` is brought.",
        default=None,
    )
    access_logs_bucket: pulumi.Input[str] | None = arg(
        "S3 bucket whose policy lets the ALB write access logs, under `<name>/`. Default: no "
        "access logs. Not with `load_balancer`.",
        default=None,
    )
    load_balancer: aws.lb.LoadBalancer | pulumi.Input[str] | None = arg(
        "An existing ALB (object or ARN; an ARN is looked up for its DNS name). Without "
        "`listener`, the component adds its listeners to it (port 80, and 443 with "
        "`certificate_arn`), so those ports must be free. Default: an internet-facing ALB.",
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
            "public_subnet_ids": self.load_balancer is None,
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
    """An internet-facing ALB in the public subnets, a target group of the tasks' proxies, and
    listeners whose default answer is 403: only a request with the origin header is forwarded.

    Without `certificate_arn`, CloudFront reaches the ALB over plain HTTP on port 80: the
    traffic crosses the AWS network only, but is not encrypted between CloudFront and the ALB.
    With it, port 80 redirects to HTTPS on 443 (TLS 1.2+). A brought `listener` is HTTPS.

    `origin` is what StaticSite needs to put the ALB behind its distribution.

    Each child is an attribute, None when brought: `load_balancer`, `target_group`,
    `http_listener` (the serving one without a certificate, else the redirect),
    `https_listener` (with a certificate) and `listener_rule` (always created: the forwarding
    rule that checks the origin header)."""

    dns_name: pulumi.Output[str]
    zone_id: pulumi.Output[str]
    arn: pulumi.Output[str]
    arn_suffix: pulumi.Output[str]
    target_group_arn: pulumi.Output[str]
    target_group_arn_suffix: pulumi.Output[str]
    https: bool
    origin: LoadBalancerOrigin
    load_balancer: aws.lb.LoadBalancer | None
    target_group: aws.lb.TargetGroup | None
    http_listener: aws.lb.Listener | None
    https_listener: aws.lb.Listener | None
    listener_rule: aws.lb.ListenerRule

    def __init__(
        self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pulumi-django:fleet:LoadBalancer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.https = args.listener is not None or args.certificate_arn is not None

        self.load_balancer = self._load_balancer(name, args, child)
        self.origin = LoadBalancerOrigin(self.dns_name, args.origin_verify_secret, self.https)
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
                "https": self.https,
            }
        )

    def _load_balancer(
        self, name: str, args: LoadBalancerArgs, child: pulumi.ResourceOptions
    ) -> aws.lb.LoadBalancer | None:
        """The ALB, or the brought one's ARN, DNS name, zone and ARN suffix (looked up from an
        ARN)."""
        if args.load_balancer is not None:
            self.arn, self.dns_name, self.zone_id = brought_attributes(
                args.load_balancer,
                ("arn", "dns_name", "zone_id"),
                lambda arn: aws.lb.get_load_balancer_output(
                    arn=arn, opts=pulumi.InvokeOutputOptions(parent=self)
                ),
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
            internal=False,
            subnets=args.public_subnet_ids,
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
        self.dns_name, self.zone_id = alb.dns_name, alb.zone_id
        self.arn, self.arn_suffix = alb.arn, alb.arn_suffix
        return alb

    def _target_group(
        self, name: str, args: LoadBalancerArgs, child: pulumi.ResourceOptions
    ) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """Sets `target_group`; returns its ARN and ARN suffix (the part after the account,
        `targetgroup/<name>/<id>`, which CloudWatch's dimensions name it by)."""
        self.target_group = None
        if args.target_group is not None:
            return target_group_ref(args.target_group)
        self.target_group = aws.lb.TargetGroup(
            f"{name}-targets",
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
