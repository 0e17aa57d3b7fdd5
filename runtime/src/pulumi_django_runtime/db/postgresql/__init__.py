"""PostgreSQL whose password rotates under the running app (see base.py)."""
