"""A Dockerfile read into its stages and instructions, for tests that check an image recipe
without a Docker engine (the example app's, and the ones `pulumi-django init` writes)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [argument for word, argument in self.instructions if word == keyword]

    def position(self, keyword: str, containing: str = "") -> int:
        for index, (word, argument) in enumerate(self.instructions):
            if word == keyword and containing in argument:
                return index
        raise AssertionError(f"no {keyword} {containing!r} in stage {self.name or self.base}")

    def env(self) -> dict[str, str]:
        pairs = (item.split("=", 1) for line in self.all("ENV") for item in shlex.split(line))
        return dict(pairs)


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    logical, pending = [], ""
    for line in dockerfile.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (i.strip().partition(" ") for i in logical)
    ]


def stages(dockerfile: str) -> list[Stage]:
    parsed: list[Stage] = []
    for keyword, argument in instructions(dockerfile):
        if keyword == "FROM":
            base, _, name = argument.partition(" AS ")
            parsed.append(Stage(base.strip(), name.strip() or None))
        elif parsed:
            parsed[-1].instructions.append((keyword, argument))
    return parsed
