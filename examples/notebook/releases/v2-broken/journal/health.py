"""The app's own health checks, run by the runtime kit's health path (settings.HEALTH_CHECKS)."""

import os


def check_search_service() -> None:
    # The new search needs a service, but no deployment sets this variable: every replica fails.
    if not os.environ.get("JOURNAL_SEARCH_URL"):
        raise LookupError("JOURNAL_SEARCH_URL is not set")
