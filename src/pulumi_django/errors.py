"""Errors the CLI reports as one clear line (exit 2), never as a traceback."""


class UsageError(Exception):
    """Bad input from the user: a stack name, a path, a flag. The message says what to fix."""
