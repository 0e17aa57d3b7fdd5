"""The background jobs of the sightings app (see bigfoot/jobs.py), and what the site enqueues
once a sighting is reported."""

import logging

from bigfoot.jobs import enqueue, job

from .models import Sighting

logger = logging.getLogger(__name__)


@job("sightings.sighting_reported")
def sighting_reported(sighting_id: int) -> None:
    """Logs the new sighting, and how many were reported at the same place."""
    sighting = Sighting.objects.filter(pk=sighting_id).only("location").first()
    if sighting is None:
        logger.info("sighting %s is gone", sighting_id)
        return
    here = Sighting.objects.filter(location=sighting.location).count()
    logger.info("sighting %s at %s (%s reported there)", sighting_id, sighting.location, here)


@job("sightings.thank_reporter", queue="emails")
def thank_reporter(reporter: str) -> None:
    """Where a thank-you email would be sent."""
    logger.info("thanked %s for their report", reporter)


@job("sightings.tally", periodic=True)
def tally() -> None:
    """The scheduler's periodic job: how many sightings there are."""
    logger.info("%s sightings in all", Sighting.objects.count())


def after_report(sighting: Sighting) -> None:
    """What the site does in the background once a sighting is reported."""
    enqueue("sightings.sighting_reported", sighting_id=sighting.pk)
    enqueue("sightings.thank_reporter", reporter=sighting.reporter)
