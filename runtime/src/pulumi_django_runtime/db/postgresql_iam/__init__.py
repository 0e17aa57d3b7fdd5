"""PostgreSQL on RDS with IAM database authentication (see base.py)."""
