"""Database backends of the Bigfoot app."""
