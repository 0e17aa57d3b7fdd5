from django.db import models


class Notebook(models.Model):
    """A named collection of entries."""

    name = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Entry(models.Model):
    """One note in a notebook, optionally with an uploaded file."""

    notebook = models.ForeignKey(Notebook, on_delete=models.CASCADE, related_name="entries")
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    attachment = models.FileField(upload_to="attachments/%Y/%m/", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "entries"

    def __str__(self) -> str:
        return self.title
