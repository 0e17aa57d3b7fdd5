"""The site's public name."""

from pydantic import Field

from .base import Section


class DomainConfig(Section):
    """A custom domain on CloudFront; without it the site answers on CloudFront's name."""

    name: str = Field(
        max_length=253,
        pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
        description="Fully qualified domain name, e.g. `www.example.com`.",
    )
    certificate_arn: str = Field(
        pattern=r"^arn:aws:acm:us-east-1:\d{12}:certificate/[0-9a-f-]+$",
        description="ACM certificate in us-east-1 covering `name` (CloudFront requires us-east-1).",
    )
    load_balancer_certificate_arn: str | None = Field(
        None,
        pattern=r"^arn:aws:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$",
        description=(
            "ACM certificate in the stack's region covering `name`, for the ALB's HTTPS "
            "listener: CloudFront's VPC origin then speaks HTTPS (TLS 1.2) to the ALB; without "
            "it, HTTP inside the VPC."
        ),
    )
