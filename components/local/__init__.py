"""The local target's components: the same release on Docker, on one machine."""
