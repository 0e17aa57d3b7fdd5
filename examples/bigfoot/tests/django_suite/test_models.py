from datetime import UTC, datetime, timedelta

from django.test import TestCase
from sightings.models import Sighting

DAWN = datetime(2024, 10, 3, 6, 15, tzinfo=UTC)


class SightingModelTests(TestCase):
    def test_newest_sightings_come_first(self) -> None:
        older = Sighting.objects.create(
            location="Bluff Creek", seen_at=DAWN, description="Tall, hairy.", reporter="Patty"
        )
        newer = Sighting.objects.create(
            location="Mount St. Helens",
            seen_at=DAWN + timedelta(days=1),
            description="Footprints, size 24.",
            reporter="Ape Canyon miner",
        )
        self.assertEqual(list(Sighting.objects.all()), [newer, older])

    def test_round_trips_through_postgresql(self) -> None:
        sighting = Sighting.objects.create(
            location="Willow Creek", seen_at=DAWN, description="Howling at dusk.", reporter="Ranger"
        )
        stored = Sighting.objects.get(pk=sighting.pk)
        self.assertEqual(stored.seen_at, DAWN)
        self.assertEqual(str(stored), "Willow Creek at 2024-10-03 06:15")
        self.assertEqual(stored._meta.db_table, "sightings_sighting")
