"""The app's own health checks, run by the runtime kit's /healthz (settings.HEALTH_CHECKS)."""

import os


def check_map_tiles() -> None:
    # The new map needs a tile server, but no deployment sets this variable: every task fails.
    if not os.environ.get("SIGHTINGS_MAP_TILES_URL"):
        raise LookupError("SIGHTINGS_MAP_TILES_URL is not set")
