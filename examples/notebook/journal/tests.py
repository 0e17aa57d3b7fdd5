"""The journal on a real database, under the production settings (run with `manage.py test`
and the environment the stack injects; examples/notebook/tests/ runs them on PostgreSQL)."""

import shutil
import tempfile

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection, transaction
from django.test import TestCase, override_settings
from django.urls import reverse

from .models import Entry, Notebook

FOREIGN_HOST = "10.0.3.17:8000"  # how a load balancer's health probe addresses a task


class NotebookEntriesTests(TestCase):
    def test_a_fresh_database_has_the_inbox_notebook(self) -> None:
        self.assertEqual(list(Notebook.objects.values_list("name", flat=True)), ["Inbox"])

    def test_entries_belong_to_a_notebook_and_go_with_it(self) -> None:
        travel = Notebook.objects.create(name="Travel")
        Entry.objects.create(notebook=travel, title="Lisbon")
        Entry.objects.create(notebook=travel, title="Porto")
        self.assertEqual(
            sorted(travel.entries.values_list("title", flat=True)), ["Lisbon", "Porto"]
        )
        travel.delete()
        self.assertFalse(Entry.objects.exists())

    def test_an_entry_needs_an_existing_notebook(self) -> None:
        with self.assertRaises(IntegrityError), transaction.atomic():
            # Django makes foreign keys DEFERRABLE: checked at commit, so check them now.
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            Entry.objects.create(notebook_id=987654, title="Nowhere")


class EntryFormTests(TestCase):
    def setUp(self) -> None:
        media_root = tempfile.mkdtemp(prefix="notebook-media-")
        self.addCleanup(shutil.rmtree, media_root, ignore_errors=True)
        media = override_settings(MEDIA_ROOT=media_root)
        media.enable()
        self.addCleanup(media.disable)
        self.inbox = Notebook.objects.get(name="Inbox")

    def test_the_form_uploads_its_attachment_and_redirects_to_the_list(self) -> None:
        form = self.client.get(reverse("journal:create"))
        self.assertContains(form, 'enctype="multipart/form-data"')
        self.assertContains(form, f'<option value="{self.inbox.pk}">Inbox</option>', html=True)

        upload = SimpleUploadedFile("plan.txt", b"pack light\n", content_type="text/plain")
        created = self.client.post(
            reverse("journal:create"),
            {"notebook": self.inbox.pk, "title": "Trip", "body": "Soon.", "attachment": upload},
        )
        self.assertRedirects(created, reverse("journal:entries"), status_code=303)
        entry = Entry.objects.get(title="Trip")
        self.assertEqual(entry.notebook, self.inbox)
        with entry.attachment.open() as stored:
            self.assertEqual(stored.read(), b"pack light\n")

        page = self.client.get(reverse("journal:entries"))
        self.assertContains(page, f'href="{entry.attachment.url}"')
        self.assertContains(page, "In Inbox")

    def test_an_invalid_entry_is_shown_again_with_a_400(self) -> None:
        answer = self.client.post(reverse("journal:create"), {"notebook": self.inbox.pk})
        self.assertEqual(answer.status_code, 400)
        self.assertContains(answer, "This field is required.", status_code=400)
        self.assertFalse(Entry.objects.exists())

    def test_the_notebooks_page_counts_entries(self) -> None:
        Entry.objects.create(notebook=self.inbox, title="One")
        page = self.client.get(reverse("journal:notebooks"))
        self.assertContains(page, "Inbox <span")
        self.assertContains(page, "(1 entries)")


class DeploymentTests(TestCase):
    def test_health_answers_a_foreign_host_that_pages_refuse(self) -> None:
        health = self.client.get("/healthz", headers={"host": FOREIGN_HOST})
        self.assertEqual((health.status_code, health.content), (200, b"ok"))
        page = self.client.get("/", headers={"host": FOREIGN_HOST})
        self.assertEqual(page.status_code, 400)

    def test_pages_reference_hashed_static_files(self) -> None:
        page = self.client.get("/")
        self.assertContains(page, "/static/journal/notebook.")
        self.assertNotContains(page, 'href="/static/journal/notebook.css"')
