"""pulumi-django."""
