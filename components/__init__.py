"""pulumi-django's components: one per file, each named after what it deploys.

Import them as `pulumi_django.components.<module>`; e.g.
`from pulumi_django.components.aws.network import Network`.
"""
