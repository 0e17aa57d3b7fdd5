"""`pulumi-django config-reference`: every stack config key with its type, default and meaning."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def run(args: argparse.Namespace) -> int:
    del args
    from pulumi_django.config.reference import reference_table

    print(reference_table(), end="")
    return 0
