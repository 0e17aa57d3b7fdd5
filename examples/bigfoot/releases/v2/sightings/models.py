from django.db import models


class Sighting(models.Model):
    """One report of Bigfoot: where and when it was seen, what happened, who saw it."""

    location = models.CharField(max_length=200)
    seen_at = models.DateTimeField()
    description = models.TextField()
    reporter = models.CharField(max_length=100)
    # db_default: the database fills it in, so servers still running v1 can insert rows.
    gdpr_accepted = models.BooleanField(db_default=False)

    class Meta:
        ordering = ["-seen_at", "-id"]
        indexes = [models.Index(fields=["-seen_at"], name="sighting_seen_at_idx")]

    def __str__(self) -> str:
        return f"{self.location} at {self.seen_at:%Y-%m-%d %H:%M}"
