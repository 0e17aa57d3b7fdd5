"""Rewrites README.md's generated tables (`make docs`): the stack config reference from the config
models, and the component reference from the components' args and attributes."""

from pathlib import Path

from pulumi_django.cli import component_reference as components
from pulumi_django.config import reference as config


def replaced(text: str, start: str, end: str, table: str) -> str:
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    return f"{head}{start}\n{table}{end}{tail}"


readme = Path(__file__).resolve().parent.parent / "README.md"
text = replaced(
    readme.read_text(), config.README_START, config.README_END, config.reference_table()
)
text = replaced(text, components.README_START, components.README_END, components.component_tables())
readme.write_text(text)
