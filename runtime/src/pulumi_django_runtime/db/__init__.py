"""Database backends of the runtime kit."""
