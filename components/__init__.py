"""pulumi-django's components: one per file, each named after what it deploys; the AWS
target's in `aws/`, the local Docker target's in `local/`.

Import them from `pulumi_django` (`from pulumi_django import Network`): the module paths here
are the library's own and may move.
"""
