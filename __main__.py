"""The pulumi-django stack: validated config in, the site for its target, outputs out."""

import pulumi

from pulumi_django import AwsSite, LocalSite, load_stack_config

SITES = {"aws": AwsSite, "local": LocalSite}
# Options for every resource of the stack: the site passes them to its components, whose
# children inherit them (`transforms`, `protect`, an AWS provider of your own; docs/library.md).
STACK_OPTIONS = pulumi.ResourceOptions()

config = load_stack_config()
site = SITES[config.target](config.name, config, opts=STACK_OPTIONS)
site.export_outputs()
