"""The pulumi-django stack: validated config in, the site for its target, outputs out."""

from pulumi_django.components.aws.site import AwsSite
from pulumi_django.components.local.site import LocalSite
from pulumi_django.config import load_stack_config

SITES = {"aws": AwsSite, "local": LocalSite}

config = load_stack_config()
site = SITES[config.target](config.name, config)
site.export_outputs()
