"""Bytecode for the virtualenv and this project, compiled once up front (`make bytecode`): every
test subprocess and CLI call then starts fast, also where PYTHONDONTWRITEBYTECODE is set (the
Pulumi program's own subprocess sets it, and so may the machine).

Only where it pays, where processes import the code: in a whole `make test`, 700 processes
opened the bytecode of 55 MB of the virtualenv's 240 MB of source. This compiles 102 MB, with
45% less CPU time than all of it (uv's --compile-bytecode compiles all of it too):
  - pulumi_aws, the SDK of every AWS service, is nearly half of the virtualenv's source and the
    stack uses a dozen of its 240 services: of its subpackages only the services mypy reads
    (pyproject.toml's `follow_imports = "normal"` override, which a test keeps in step with
    the code) are compiled;
  - not the packages only a tool that runs once imports, or none: mypy's own (mypy runs them
    as compiled C), moto's CloudFormation linter and its math (no test uses CloudFormation).
Anything left out still imports, compiled in memory on each import.

    .venv/bin/python scripts/compile_bytecode.py DIR...
"""

from __future__ import annotations

import compileall
import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def aws_packages(pyproject: Path = PYPROJECT) -> list[str]:
    """The pulumi_aws subpackages mypy follows (`pulumi_aws.NAME.*`)."""
    overrides = tomllib.loads(pyproject.read_text())["tool"]["mypy"]["overrides"]
    return sorted(
        module.split(".")[1]
        for override in overrides
        if override.get("follow_imports") == "normal"
        for module in override["module"]
        if re.fullmatch(r"pulumi_aws\.\w+\.\*", module)
    )


# Top-level packages of the virtualenv no process of `make test` imports more than once.
NOT_IMPORTED = ("mypy", "mypyc", "cfnlint", "sympy", "mpmath", "networkx")


def left_out(packages: list[str]) -> re.Pattern[str]:
    """The files of every other pulumi_aws subpackage and of the packages not imported."""
    kept = "|".join(map(re.escape, packages))
    unused = "|".join(map(re.escape, NOT_IMPORTED))
    return re.compile(rf"/site-packages/(?:(?:{unused})/|pulumi_aws/(?!(?:{kept})/)[^/]+/)")


def main(directories: list[str]) -> int:
    if not directories:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    skip = left_out(aws_packages())
    compiled = [
        compileall.compile_dir(directory, quiet=1, workers=0, rx=skip) for directory in directories
    ]
    return 0 if all(compiled) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
