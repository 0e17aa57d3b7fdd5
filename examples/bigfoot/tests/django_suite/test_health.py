import socket

from django.test import TestCase, override_settings

TASK_IP_HOST = "10.0.3.17:8000"


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class HealthCheckTests(TestCase):
    def test_ok_when_database_and_cache_answer(self) -> None:
        for path in ("/healthz", "/readyz"):
            response = self.client.get(path)
            self.assertEqual(response.status_code, 200)
            self.assertEqual(response.content, b"ok")
            self.assertIn("no-store", response["Cache-Control"])
            self.assertEqual(response["X-Health-Check"], "pulumi-django-runtime")

    def test_head_is_answered_too(self) -> None:
        self.assertEqual(self.client.head("/healthz").status_code, 200)

    @override_settings(ALLOWED_HOSTS=["bigfoot.example.test"])
    def test_passes_with_the_task_ip_as_host_while_pages_refuse_it(self) -> None:
        self.assertEqual(self.client.get("/healthz", HTTP_HOST=TASK_IP_HOST).status_code, 200)
        self.assertEqual(self.client.get("/", HTTP_HOST=TASK_IP_HOST).status_code, 400)

    def test_not_ready_but_alive_when_the_cache_is_unreachable(self) -> None:
        nowhere = {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{unused_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 1},
        }
        with override_settings(CACHES={"default": nowhere}):
            response = self.client.get("/readyz")
            alive = self.client.get("/healthz")
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.content, b"cache unavailable: ConnectionError")
        self.assertIn("no-store", response["Cache-Control"])
        # Cache maintenance must not get the task replaced: liveness does not ask the cache.
        self.assertEqual((alive.status_code, alive.content), (200, b"ok"))
