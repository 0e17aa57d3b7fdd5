"""Rewrites the config reference table in README.md from the config models (`make docs`)."""

from pathlib import Path

from pulumi_django.config.reference import README_END, README_START, reference_table

readme = Path(__file__).resolve().parent.parent / "README.md"
text = readme.read_text()
head, _, rest = text.partition(README_START)
_, _, tail = rest.partition(README_END)
readme.write_text(f"{head}{README_START}\n{reference_table()}{README_END}{tail}")
