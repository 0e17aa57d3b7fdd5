"""Stand-in executables for the CLI tests (`pulumi`, `docker`, `aws`...): Python scripts on a
PATH of the test's own (the `bin_dir` fixture)."""

from __future__ import annotations

import stat
import sys
from pathlib import Path


def python_executable(directory: Path, name: str, source: str) -> Path:
    """`directory/name`, an executable running the Python `source` (argv in `sys.argv`)."""
    path = directory / name
    path.write_text(f"#!{sys.executable}\n{source}")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path
