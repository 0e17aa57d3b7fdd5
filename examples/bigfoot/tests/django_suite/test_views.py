import json
import re
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.test import Client, TestCase, override_settings
from sightings.models import Sighting

PAGE_ASSETS = ["sightings/bigfoot.css", "sightings/bigfoot.js"]
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
REPORT = {
    "location": "Six Rivers National Forest",
    "seen_at": "2024-10-03T06:15",
    "description": "Crossed the road in two strides.",
    "reporter": "Trucker Dan",
}
_static_root = Path(tempfile.mkdtemp(prefix="bigfoot-static-"))
_static_settings = override_settings(STATIC_ROOT=str(_static_root))


def setUpModule() -> None:
    """Pages need the manifest, as in the image: collect into a temporary STATIC_ROOT."""
    _static_settings.enable()
    call_command("collectstatic", interactive=False, verbosity=0)


def tearDownModule() -> None:
    _static_settings.disable()
    shutil.rmtree(_static_root, ignore_errors=True)


class ListViewTests(TestCase):
    def test_lists_recent_sightings(self) -> None:
        Sighting.objects.create(
            location="Bluff Creek",
            seen_at=datetime(1967, 10, 20, 13, 30, tzinfo=UTC),
            description="Walked past & looked back.",
            reporter="Roger",
        )
        response = self.client.get("/")
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Bluff Creek")
        self.assertContains(response, "Walked past &amp; looked back.")

    def test_references_the_hashed_stylesheet_and_script_from_the_manifest(self) -> None:
        manifest = json.loads((_static_root / "staticfiles.json").read_text())["paths"]
        page = self.client.get("/").content.decode()
        for asset in PAGE_ASSETS:
            hashed = manifest[asset]
            self.assertNotEqual(hashed, asset)
            self.assertIn(f'"{settings.STATIC_URL}{hashed}"', page)
            self.assertTrue((_static_root / hashed).is_file())


class CreateViewTests(TestCase):
    def setUp(self) -> None:
        self.browser = Client(enforce_csrf_checks=True)

    def form_token(self, **headers: str) -> str:
        form = self.browser.get("/sightings/new/", headers=headers)
        self.assertEqual(form.status_code, 200)
        self.assertIn("csrftoken", form.cookies)
        match = CSRF_FIELD.search(form.content.decode())
        assert match is not None, "the form page has no CSRF field"
        return match.group(1)

    def test_get_form_then_post_creates_and_redirects_with_303(self) -> None:
        token = self.form_token()
        response = self.browser.post("/sightings/new/", {**REPORT, "csrfmiddlewaretoken": token})
        self.assertEqual(response.status_code, 303)
        self.assertEqual(response["Location"], "/")
        sighting = Sighting.objects.get()
        self.assertEqual(sighting.reporter, "Trucker Dan")
        self.assertEqual(sighting.seen_at, datetime(2024, 10, 3, 6, 15, tzinfo=UTC))

    def test_post_without_the_token_is_forbidden(self) -> None:
        self.form_token()
        response = self.browser.post("/sightings/new/", REPORT)
        self.assertEqual(response.status_code, 403)
        self.assertFalse(Sighting.objects.exists())

    def test_behind_a_tls_proxy_the_post_needs_a_same_origin_referer(self) -> None:
        # A TLS proxy forwards the browser's Host header and says the scheme was https.
        https = {"Host": "testserver", "X-Forwarded-Proto": "https"}
        token = self.form_token(**https)
        data = {**REPORT, "csrfmiddlewaretoken": token}
        refused = self.browser.post("/sightings/new/", data, headers=https)
        self.assertEqual(refused.status_code, 403)
        accepted = self.browser.post(
            "/sightings/new/",
            data,
            headers={**https, "Referer": "https://testserver/sightings/new/"},
        )
        self.assertEqual(accepted.status_code, 303)

    def test_invalid_report_is_shown_again_with_errors(self) -> None:
        token = self.form_token()
        response = self.browser.post(
            "/sightings/new/", {**REPORT, "seen_at": "yesterday-ish", "csrfmiddlewaretoken": token}
        )
        self.assertEqual(response.status_code, 400)
        self.assertContains(response, "Enter a valid date/time.", status_code=400)
        self.assertFalse(Sighting.objects.exists())
