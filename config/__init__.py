"""Stack config: every input of pulumi-django, typed and documented once, with its defaults."""

from .loader import ConfigError, describe_errors, load_stack_config, parse_stack_config
from .stack import NAMESPACE, StackConfig

__all__ = [
    "NAMESPACE",
    "ConfigError",
    "StackConfig",
    "describe_errors",
    "load_stack_config",
    "parse_stack_config",
]
