"""The application load balancer: reachable only from CloudFront, forwarding only requests that
carry CloudFront's secret origin header, draining targets no longer than a request needs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from pulumi_django.components.aws.network import HTTP_PORT, HTTPS_PORT
from pulumi_django.config.app import AppConfig
from pulumi_django.config.domain import DomainConfig
from pulumi_django.config.load_balancer import LoadBalancerConfig

ORIGIN_VERIFY_HEADER = "X-Origin-Verify"
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
# AWS's default draining time is 300 s per batch of tasks; a release never needs that long.
MAX_DEFAULT_DEREGISTRATION_DELAY = 30
DEREGISTRATION_MARGIN_SECONDS = 5
HEALTH_CHECK_TIMEOUT_SECONDS = 5


def deregistration_delay(config: LoadBalancerConfig, app: AppConfig) -> int:
    """Draining time: the configured value, else the app's graceful time plus a margin, capped.

    ECS sends SIGTERM only after draining ends, and the app then has its graceful time again,
    so a request in flight when draining starts gets both before anything cuts it."""
    if config.deregistration_delay_seconds is not None:
        return config.deregistration_delay_seconds
    return min(
        app.graceful_timeout_seconds + DEREGISTRATION_MARGIN_SECONDS,
        MAX_DEFAULT_DEREGISTRATION_DELAY,
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


class LoadBalancer(pulumi.ComponentResource):
    """An internet-facing ALB in the public subnets, a target group of the tasks' proxies, and
    listeners whose default answer is 403: only a request with the origin header is forwarded.

    Without `domain.loadBalancerCertificateArn`, CloudFront reaches the ALB over plain HTTP on
    port 80: the traffic crosses the AWS network only, but is not encrypted between CloudFront
    and the ALB. With it, port 80 redirects to HTTPS on 443 (TLS 1.2+).

    `access_logs_bucket`: an S3 bucket whose policy lets the ALB write logs, under `<name>/`."""

    dns_name: pulumi.Output[str]
    zone_id: pulumi.Output[str]
    arn: pulumi.Output[str]
    arn_suffix: pulumi.Output[str]
    target_group_arn: pulumi.Output[str]
    target_group_arn_suffix: pulumi.Output[str]
    https: bool

    def __init__(
        self,
        name: str,
        *,
        config: LoadBalancerConfig,
        app: AppConfig,
        proxy_port: int,
        domain: DomainConfig | None,
        vpc_id: pulumi.Input[str],
        public_subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]],
        security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]],
        origin_verify_secret: pulumi.Input[str],
        deletion_protection: bool,
        access_logs_bucket: pulumi.Input[str] | None = None,
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pulumi-django:fleet:LoadBalancer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(tags or {})
        certificate_arn = domain.load_balancer_certificate_arn if domain else None
        self.https = certificate_arn is not None

        alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=False,
            subnets=public_subnet_ids,
            security_groups=security_group_ids,
            drop_invalid_header_fields=True,
            idle_timeout=config.idle_timeout_seconds,
            enable_deletion_protection=deletion_protection,
            access_logs=(
                aws.lb.LoadBalancerAccessLogsArgs(
                    bucket=access_logs_bucket, prefix=name, enabled=True
                )
                if access_logs_bucket is not None
                else None
            ),
            tags=tags,
            opts=child,
        )
        target_group = aws.lb.TargetGroup(
            f"{name}-targets",
            target_type="ip",
            protocol="HTTP",
            port=proxy_port,
            vpc_id=vpc_id,
            deregistration_delay=deregistration_delay(config, app),
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                enabled=True,
                protocol="HTTP",
                port="traffic-port",
                path=app.health_check_path,
                matcher="200",
                interval=config.health_check_interval_seconds,
                timeout=health_check_timeout(config.health_check_interval_seconds),
                healthy_threshold=config.healthy_threshold,
                unhealthy_threshold=config.unhealthy_threshold,
            ),
            tags=tags,
            opts=child,
        )

        if certificate_arn is not None:
            aws.lb.Listener(
                f"{name}-http",
                load_balancer_arn=alb.arn,
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
                tags=tags,
                opts=child,
            )
            serving = aws.lb.Listener(
                f"{name}-https",
                load_balancer_arn=alb.arn,
                port=HTTPS_PORT,
                protocol="HTTPS",
                ssl_policy=TLS_POLICY,
                certificate_arn=certificate_arn,
                default_actions=[_forbidden()],
                tags=tags,
                opts=child,
            )
        else:
            serving = aws.lb.Listener(
                f"{name}-http",
                load_balancer_arn=alb.arn,
                port=HTTP_PORT,
                protocol="HTTP",
                default_actions=[_forbidden()],
                tags=tags,
                opts=child,
            )
        from_cloudfront = aws.lb.ListenerRule(
            f"{name}-from-cloudfront",
            listener_arn=serving.arn,
            priority=1,
            conditions=[
                aws.lb.ListenerRuleConditionArgs(
                    http_header=aws.lb.ListenerRuleConditionHttpHeaderArgs(
                        http_header_name=ORIGIN_VERIFY_HEADER,
                        values=[pulumi.Output.secret(origin_verify_secret)],
                    )
                )
            ],
            actions=[
                aws.lb.ListenerRuleActionArgs(type="forward", target_group_arn=target_group.arn)
            ],
            tags=tags,
            # The provider echoes the header value back in its outputs; keep it secret there.
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(additional_secret_outputs=["conditions"])
            ),
        )

        self.dns_name = alb.dns_name
        self.zone_id = alb.zone_id
        self.arn = alb.arn
        self.arn_suffix = alb.arn_suffix
        # ECS refuses a service whose target group no listener uses yet; resolving only once the
        # forwarding rule exists makes any service built on this output wait for it.
        self.target_group_arn = pulumi.Output.all(target_group.arn, from_cloudfront.arn).apply(
            lambda arns: str(arns[0])
        )
        self.target_group_arn_suffix = target_group.arn_suffix
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
