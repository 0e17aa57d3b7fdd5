"""The migration safety check: refuse migrations that would break the running version.

`analyzer.py` runs in the app's own environment (stdlib and Django only); `runner` runs it
there and reads the result back. The release code calls `run_check`, or embeds the analyzer
in a container command with `embedded_command(analyzer_arguments(...))`.
"""

from .analyzer import (
    RULES,
    UNSAFE,
    WARNING,
    CheckResult,
    Finding,
    Rule,
    format_report,
    parse_acknowledgements,
)
from .runner import (
    OFFLINE_APP_ENVIRONMENT,
    MigrationCheckError,
    acknowledgement_reasons,
    analyzer_arguments,
    analyzer_source,
    embedded_command,
    run_check,
)

__all__ = [
    "OFFLINE_APP_ENVIRONMENT",
    "RULES",
    "UNSAFE",
    "WARNING",
    "CheckResult",
    "Finding",
    "MigrationCheckError",
    "Rule",
    "acknowledgement_reasons",
    "analyzer_arguments",
    "analyzer_source",
    "embedded_command",
    "format_report",
    "parse_acknowledgements",
    "run_check",
]
