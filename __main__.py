"""The pulumi-django stack: validated config in, the site for its target, outputs out."""

import pulumi

from pulumi_django import load_stack_config, site_class

# Options for every resource of the stack: the site passes them to its components, whose
# children inherit them (`transforms`, `protect`, an AWS provider of your own; docs/library.md).
STACK_OPTIONS = pulumi.ResourceOptions()

config = load_stack_config()
site = site_class(config.target)(config.name, config, opts=STACK_OPTIONS)
site.export_outputs()
