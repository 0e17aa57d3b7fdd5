"""The one exception hierarchy: every error pulumi-django raises on purpose derives from
`PulumiDjangoError`, so a program or a tool catches them all with one `except`, and the
command line prints any of them as one line (exit 2), never as a traceback.

The library (config, components, providers, the app and migration checks) raises its own
errors: `pulumi_django.config.ConfigError` for invalid stack config, `ComponentArgsError`,
`BuildContextError`, `AppDiscoveryError` for an app that cannot be inspected,
`MigrationCheckError`, `ReleaseTaskError`... Those a program meets under `pulumi up` are also
`pulumi.RunError`s, which Pulumi prints without a traceback; this module stays free of
Pulumi, so that the command line starts fast. Only the command line (`pulumi_django.cli`)
raises `UsageError`; tests/test_layers.py holds it to that.

Two self-contained files stay outside, as plain `Exception`s, because they run without this
package (copied into a container, or run by the app's own interpreter): the publish engine's
`PublishError` and the migration analyzer's `ProjectError`.
"""


class PulumiDjangoError(Exception):
    """The root of pulumi-django's errors; the message says what is wrong and what to fix."""


class UsageError(PulumiDjangoError):
    """Bad input to the command line: a stack name, a path, a flag. The message says what to fix."""
