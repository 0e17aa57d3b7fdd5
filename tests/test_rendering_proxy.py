"""The proxy configs: every variant passes the real `nginx -t` and `caddy validate`, and real
requests go proxy -> Gunicorn/Uvicorn -> response with the promised behaviour."""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from echo_apps import TEXT_PAGE_REPEAT, write_echo_apps

from pulumi_django.cli.rehearsal.app_servers import running_app_server
from pulumi_django.cli.rehearsal.proxies import (
    CONFIG_NAMES,
    ProxyError,
    ProxyServer,
    RunningProxy,
    check_config,
    running_proxy,
)
from pulumi_django.cli.rehearsal.servers import free_port
from pulumi_django.config.app import AppConfig
from pulumi_django.config.fleet import FleetConfig
from pulumi_django.config.load_balancer import LoadBalancerConfig
from pulumi_django.config.media import MediaConfig
from pulumi_django.config.proxy import ProxyConfig
from pulumi_django.config.static import StaticConfig
from pulumi_django.rendering.app_server import app_server_settings
from pulumi_django.rendering.media import LOCAL_MEDIA_MOUNT, MEDIA_CONTENT_SECURITY_POLICY
from pulumi_django.rendering.proxy import (
    IMMUTABLE,
    LOOPBACK_CIDR,
    SERVED_BY_HEADER,
    MediaFiles,
    ProxySite,
    StaticFiles,
    local_site,
    rehearsal_site,
    render_proxy,
    sidecar_site,
)

PROXIES = ["nginx", "caddy"]
HASHED_CSS = "app.0123456789ab.css"
CSS = "body { color: #c0ffee; }\n"


PROXY_SECTIONS = {"proxy": ProxyConfig, "app": AppConfig, "load_balancer": LoadBalancerConfig}
FILE_SECTIONS = {"static": StaticConfig, "media": MediaConfig}


def proxy_sections(**overrides: dict[str, Any]) -> dict[str, Any]:
    """What every site renderer reads (camelCase keys, as in a stack file): the sections only."""
    return {
        name: model.model_validate(overrides.get(name, {}))
        for name, model in PROXY_SECTIONS.items()
    }


def served_sections(**overrides: dict[str, Any]) -> dict[str, Any]:
    """What the local and rehearsal renderers read: those plus the static and media sections."""
    files = {
        name: model.model_validate(overrides.get(name, {})) for name, model in FILE_SECTIONS.items()
    }
    return {**proxy_sections(**overrides), **files}


@pytest.fixture(scope="module")
def static_dir() -> Iterator[Path]:
    """Files of two releases side by side, as the static volume holds them."""
    with tempfile.TemporaryDirectory(prefix="pd-static-") as directory:
        path = Path(directory)
        (path / HASHED_CSS).write_text(CSS)
        (path / "app.fedcba987654.css").write_text("body { color: black; }\n")
        (path / "robots.txt").write_text("User-agent: *\n")
        (path / "admin").mkdir()
        (path / "admin" / "base.0123456789ab.js").write_text("// admin\n")
        yield path


# --- the description and its derivations -------------------------------------------------


def test_keepalives_nest_inside_each_other() -> None:
    """ALB idle < proxy's client keep-alive; proxy's upstream idle < app keep-alive."""
    sections = proxy_sections(load_balancer={"idleTimeoutSeconds": 120})
    site = sidecar_site(**sections, trusted_proxies=["10.0.0.0/16"])
    app = app_server_settings(
        app=sections["app"], fleet=FleetConfig(), load_balancer=sections["load_balancer"]
    )
    assert site.client_keepalive_seconds > 120
    assert site.upstream_keepalive_seconds < app.keepalive_seconds


def test_sidecar_forwards_to_the_app_on_localhost_and_trusts_the_vpc() -> None:
    sections = proxy_sections(
        app={"port": 9000, "gracefulTimeoutSeconds": 40},
        proxy={"port": 8443, "maxBodyMb": 25, "readTimeoutSeconds": 90},
    )
    site = sidecar_site(**sections, trusted_proxies=["10.1.0.0/16"], runtime_dir="/tmp/proxy")
    assert (site.listen_host, site.listen_port) == ("0.0.0.0", 8443)
    assert site.upstreams == ("127.0.0.1:9000",)
    assert site.trusted_proxies == ("10.1.0.0/16", LOOPBACK_CIDR)
    assert site.static is None
    assert site.log_dir is None
    assert site.served_by_header is None  # visitors never learn the inside of the site
    assert (site.max_body_mb, site.read_timeout_seconds) == (25, 90)
    assert site.graceful_timeout_seconds == 40
    assert site.health_path == sections["app"].health_check_path


def test_local_and_rehearsal_serve_static_files_under_the_configured_prefix() -> None:
    sections = served_sections(static={"prefix": "assets/"})
    local = local_site(**sections, upstreams=["app-1:8000", "app-2:8000"], static_dir="/srv/static")
    rehearsal = rehearsal_site(
        **sections, listen_port=18080, upstream_ports=[18001], static_dir="/s", runtime_dir="/r"
    )
    assert local.static == StaticFiles("/assets/", "/srv/static")
    assert local.upstreams == ("app-1:8000", "app-2:8000")
    assert local.trusted_proxies == ()
    assert (rehearsal.listen_host, rehearsal.upstreams) == ("127.0.0.1", ("127.0.0.1:18001",))
    assert rehearsal.log_dir == rehearsal.runtime_dir == "/r"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"upstreams": ()}, "at least one upstream"),
        ({"upstreams": ("app-1",)}, "must be host:port"),
        ({"upstreams": ("a:1", "a:1")}, "repeat"),
        ({"upstreams": ("a:70000",)}, "outside 1-65535"),
        ({"listen_host": "localhost"}, "not an IPv4 address"),
        ({"trusted_proxies": ("10.0.0.0/33",)}, "not a CIDR"),
        ({"runtime_dir": "tmp; user root"}, "absolute path"),
        ({"log_dir": "/var/log/x y"}, "absolute path"),
        ({"max_body_mb": 0}, "at least 1"),
    ],
)
def test_a_site_refuses_values_that_would_break_the_config(
    change: dict[str, Any], message: str
) -> None:
    site = sidecar_site(**proxy_sections(), trusted_proxies=["10.0.0.0/16"])
    with pytest.raises(ValueError, match=message):
        replace(site, **change)


def test_local_docker_serves_the_media_volume_and_the_rehearsal_its_directory() -> None:
    sections = served_sections(media={"urlPath": "/uploads/"})
    local = local_site(**sections, upstreams=["app-1:8000"], static_dir="/srv/static")
    assert local.media == MediaFiles("/uploads/", LOCAL_MEDIA_MOUNT)
    rehearsal = rehearsal_site(
        **sections,
        listen_port=18080,
        upstream_ports=[18001],
        static_dir="/s",
        runtime_dir="/r",
        media_dir="/m",
    )
    assert rehearsal.media == MediaFiles("/uploads/", "/m")
    off = served_sections(media={"enabled": False})
    assert local_site(**off, upstreams=["app-1:8000"], static_dir="/srv/static").media is None
    no_media = {**sections, "media": None}
    assert local_site(**no_media, upstreams=["app-1:8000"], static_dir="/srv/static").media is None
    rehearsal_off = rehearsal_site(
        **off, listen_port=1, upstream_ports=[2], static_dir="/s", runtime_dir="/r", media_dir="/m"
    )
    assert rehearsal_off.media is None
    # AWS: media is on S3 (public ones through CloudFront), never the sidecar's business.
    assert sidecar_site(**proxy_sections(), trusted_proxies=["10.0.0.0/16"]).media is None


def test_static_files_need_a_prefix_and_a_plain_directory() -> None:
    with pytest.raises(ValueError, match="like /static/"):
        StaticFiles("static", "/srv/static")
    with pytest.raises(ValueError, match="absolute path"):
        StaticFiles("/static/", "srv/static")
    with pytest.raises(ValueError, match="media url_prefix 'media/'"):
        MediaFiles("media/", "/srv/media")
    with pytest.raises(ValueError, match="media directory"):
        MediaFiles("/media/", "/srv/media; autoindex on")


def test_render_proxy_names_the_servers_it_knows() -> None:
    with pytest.raises(ValueError, match="use nginx or caddy"):
        render_proxy("apache", sidecar_site(**proxy_sections(), trusted_proxies=[]))


# --- every variant through the real tools --------------------------------------------------


def _variant(
    name: str, runtime: Path, static: Path, *, gzip_on: bool, static_on: bool
) -> ProxySite:
    sections = served_sections(proxy={"gzip": gzip_on})
    if name == "sidecar":
        site = sidecar_site(
            **proxy_sections(proxy={"gzip": gzip_on}),
            trusted_proxies=["10.0.0.0/16"],
            runtime_dir=str(runtime),
        )
    elif name == "local":
        # Host names, as Docker's replicas have; nginx -t resolves them, so ones this host knows.
        site = local_site(
            **sections,
            upstreams=["localhost:8001", "localhost:8002"],
            static_dir=str(static),
            runtime_dir=str(runtime),
        )
    else:
        site = rehearsal_site(
            **sections,
            listen_port=free_port(),
            upstream_ports=[free_port(), free_port()],
            static_dir=str(static),
            runtime_dir=str(runtime),
        )
    return replace(
        site,
        static=StaticFiles("/static/", str(static)) if static_on else None,
        media=MediaFiles("/media/", str(static)) if static_on else None,
    )


@pytest.mark.parametrize("server", PROXIES)
@pytest.mark.parametrize("variant", ["sidecar", "local", "rehearsal"])
@pytest.mark.parametrize("static_on", [True, False], ids=["static", "no-static"])
@pytest.mark.parametrize("gzip_on", [True, False], ids=["gzip", "no-gzip"])
def test_every_variant_passes_the_servers_own_check(
    server: ProxyServer, variant: str, static_on: bool, gzip_on: bool, static_dir: Path
) -> None:
    with tempfile.TemporaryDirectory(prefix="pd-check-") as directory:
        runtime = Path(directory)
        site = _variant(variant, runtime, static_dir, gzip_on=gzip_on, static_on=static_on)
        config = runtime / CONFIG_NAMES[server]
        config.write_text(render_proxy(server, site))
        check_config(server, config, runtime)


BREAKAGE = {"nginx": ("proxy_pass http://app;", "proxy_pass;"), "caddy": ("request_buffers", "x")}


@pytest.mark.parametrize("server", PROXIES)
def test_the_check_rejects_a_broken_config(server: ProxyServer) -> None:
    """The check above can fail: the real tools do read what they are given."""
    with tempfile.TemporaryDirectory(prefix="pd-check-") as directory:
        runtime = Path(directory)
        site = sidecar_site(**proxy_sections(), trusted_proxies=[], runtime_dir=directory)
        text = render_proxy(server, site)
        config = runtime / CONFIG_NAMES[server]
        directive, broken = BREAKAGE[server]
        assert directive in text
        config.write_text(text.replace(directive, broken))
        with pytest.raises(ProxyError, match=f"{server} rejected"):
            check_config(server, config, runtime)


# --- real requests through real proxies ----------------------------------------------------


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, int]]:
    """Gunicorn and Uvicorn, each serving the echo app with its rendered settings."""
    with (
        tempfile.TemporaryDirectory(prefix="pd-backends-") as directory,
        contextlib.ExitStack() as servers,
    ):
        runtime = Path(directory)
        apps = write_echo_apps(runtime)
        ports = {}
        for server in ("gunicorn", "uvicorn"):
            app = {"server": server, "wsgiApp": apps["gunicorn"], "asgiApp": apps["uvicorn"]}
            settings = app_server_settings(
                app=AppConfig.model_validate(app),
                fleet=FleetConfig(),
                load_balancer=LoadBalancerConfig(),
                port=free_port(),
            )
            servers.enter_context(
                running_app_server(
                    settings,
                    log=runtime / f"{server}.log",
                    cwd=runtime,
                    env={"XDG_RUNTIME_DIR": directory},
                )
            )
            ports[server] = settings.port
        yield ports


@contextlib.contextmanager
def proxy_for(
    server: ProxyServer, upstream_ports: list[int], static: Path, **changes: Any
) -> Iterator[RunningProxy]:
    """A rehearsal-style proxy (1 MiB body limit) in a runtime directory removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="pd-proxy-") as runtime:
        site = rehearsal_site(
            **served_sections(proxy={"maxBodyMb": 1}),
            listen_port=free_port(),
            upstream_ports=upstream_ports,
            static_dir=str(static),
            runtime_dir=runtime,
        )
        with running_proxy(server, replace(site, **changes)) as proxy:
            yield proxy


def fetch(
    proxy: RunningProxy,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    connection = http.client.HTTPConnection(
        proxy.site.listen_host, proxy.site.listen_port, timeout=15
    )
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def echo(proxy: RunningProxy, path: str, **kwargs: Any) -> dict[str, Any]:
    status, _, body = fetch(proxy, path, **kwargs)
    assert status == 200, body
    return dict(json.loads(body))


SPOOFED = {
    "X-Forwarded-For": "198.51.100.1, 203.0.113.9",
    "X-Forwarded-Proto": "https",
    "Host": "bigfoot.example",
}


@pytest.mark.slow
@pytest.mark.parametrize("app_server", ["gunicorn", "uvicorn"])
@pytest.mark.parametrize("server", PROXIES)
def test_forwarded_headers_are_believed_only_from_trusted_proxies(
    server: ProxyServer, app_server: str, backends: dict[str, int], static_dir: Path
) -> None:
    with proxy_for(server, [backends[app_server]], static_dir) as proxy:
        seen = echo(proxy, "/hello?x=1", headers=SPOOFED)
        assert seen["server"] == app_server
        assert seen["path"] == "/hello"
        assert seen["host"] == "bigfoot.example"
        assert seen["forwarded_for"] == "127.0.0.1"
        assert (seen["forwarded_proto"], seen["scheme"]) == ("http", "http")

        proxy.reload(replace(proxy.site, trusted_proxies=(LOOPBACK_CIDR,)))
        seen = echo(proxy, "/hello", headers=SPOOFED)
        # The last address the trusted proxy saw, alone: nothing a client wrote before it.
        assert seen["forwarded_for"] == "203.0.113.9"
        assert (seen["forwarded_proto"], seen["scheme"]) == ("https", "https")
        if app_server == "uvicorn":  # Gunicorn keeps REMOTE_ADDR as the socket's peer
            assert seen["client"] == "203.0.113.9"


@pytest.mark.slow
@pytest.mark.parametrize("server", PROXIES)
def test_a_guaranteed_viewer_scheme_overrides_what_the_load_balancer_says(
    server: ProxyServer, backends: dict[str, int], static_dir: Path
) -> None:
    """Behind CloudFront (HTTPS only) the ALB's HTTP listener still says `http`."""
    with proxy_for(server, [backends["gunicorn"]], static_dir) as proxy:
        proxy.reload(replace(proxy.site, trusted_proxies=(LOOPBACK_CIDR,), viewer_scheme="https"))
        from_alb = {**SPOOFED, "X-Forwarded-Proto": "http"}
        seen = echo(proxy, "/hello", headers=from_alb)
        assert (seen["forwarded_proto"], seen["scheme"]) == ("https", "https")
        assert seen["forwarded_for"] == "203.0.113.9"


def test_the_aws_sidecar_tells_the_app_every_visitor_uses_https() -> None:
    assert (
        sidecar_site(**proxy_sections(), trusted_proxies=["10.0.0.0/16"]).viewer_scheme == "https"
    )


@pytest.mark.slow
@pytest.mark.parametrize("server", PROXIES)
def test_body_limit_static_files_compression_and_health(
    server: ProxyServer, backends: dict[str, int], static_dir: Path
) -> None:
    with proxy_for(server, [backends["gunicorn"]], static_dir) as proxy:
        small = b"x" * (512 * 1024)
        assert echo(proxy, "/upload", method="POST", body=small)["body_length"] == len(small)
        status, _, _ = fetch(proxy, "/upload", method="POST", body=b"x" * (2 * 1024 * 1024))
        assert status == 413

        status, headers, body = fetch(proxy, f"/static/{HASHED_CSS}")
        assert (status, body.decode()) == (200, CSS)
        assert headers["Cache-Control"] == IMMUTABLE
        assert headers["Content-Type"].startswith("text/css")
        status, headers, _ = fetch(proxy, "/static/robots.txt")
        assert (status, headers["Cache-Control"]) == (200, "no-cache")
        status, headers, _ = fetch(proxy, "/static/admin/base.0123456789ab.js")
        assert (status, headers["Cache-Control"]) == (200, IMMUTABLE)
        # Misses are the proxy's own 404s: the echo app would have answered 200.
        for missing in ("/static/app.999999999999.css", "/static/admin/", "/static/"):
            status, headers, _ = fetch(proxy, missing)
            assert status == 404, missing
            assert "immutable" not in headers.get("Cache-Control", ""), missing

        status, headers, body = fetch(proxy, "/text", headers={"Accept-Encoding": "gzip"})
        assert (status, headers["Content-Encoding"]) == (200, "gzip")
        assert gzip.decompress(body) == ("pulumi-django " * TEXT_PAGE_REPEAT).encode()

        assert echo(proxy, "/healthz")["path"] == "/healthz"
        assert echo(proxy, "/logged")["path"] == "/logged"
        access_log = _wait_for_log_line(Path(proxy.site.runtime_dir) / "access.log", "/logged")
        assert "/healthz" not in access_log

        proxy.reload(replace(proxy.site, gzip=False))
        status, headers, body = fetch(proxy, "/text", headers={"Accept-Encoding": "gzip"})
        assert (status, headers.get("Content-Encoding"), len(body)) == (
            200,
            None,
            len("pulumi-django " * TEXT_PAGE_REPEAT),
        )


def _wait_for_log_line(log: Path, needle: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text() if log.exists() else ""
        if needle in text:
            return text
        time.sleep(0.05)
    raise AssertionError(f"{needle} never reached {log}")


@pytest.mark.slow
@pytest.mark.parametrize("server", PROXIES)
def test_a_dead_upstream_is_skipped_and_reloads_move_traffic(
    server: ProxyServer, backends: dict[str, int], static_dir: Path
) -> None:
    dead = free_port()
    with proxy_for(server, [dead, backends["gunicorn"]], static_dir) as proxy:
        for _ in range(6):
            assert echo(proxy, "/retry")["server"] == "gunicorn"
            # A refused connection sent nothing, so even a POST moves to the next upstream.
            assert echo(proxy, "/retry", method="POST", body=b"{}")["body_length"] == 2
        # The rehearsal's proxy names the replica that answered: the live one, not the dead.
        _, headers, _ = fetch(proxy, "/retry")
        assert headers[SERVED_BY_HEADER] == f"127.0.0.1:{backends['gunicorn']}"
        proxy.reload(replace(proxy.site, upstreams=(f"127.0.0.1:{backends['uvicorn']}",)))
        assert {echo(proxy, "/after")["server"] for _ in range(4)} == {"uvicorn"}
        _, headers, _ = fetch(proxy, "/after")
        assert headers[SERVED_BY_HEADER] == f"127.0.0.1:{backends['uvicorn']}"


@pytest.mark.slow
@pytest.mark.parametrize("server", PROXIES)
def test_graceful_stop_lets_requests_in_flight_finish(
    server: ProxyServer, backends: dict[str, int], static_dir: Path
) -> None:
    results: list[dict[str, Any]] = []
    with proxy_for(server, [backends["uvicorn"]], static_dir) as proxy:
        slow = threading.Thread(target=lambda: results.append(echo(proxy, "/slow?1")))
        slow.start()
        time.sleep(0.3)
        proxy.stop()
        slow.join(timeout=15)
        assert proxy.process.poll() is not None
    assert results and results[0]["path"] == "/slow"


@pytest.fixture(scope="module")
def media_dir() -> Iterator[Path]:
    """Uploads as the app wrote them: a picture, a page someone uploaded, a nested file."""
    with tempfile.TemporaryDirectory(prefix="pd-media-") as directory:
        path = Path(directory)
        (path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
        (path / "evil.html").write_text("<script>alert(document.cookie)</script>\n")
        (path / "docs").mkdir()
        (path / "docs" / "report.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
        yield path


@pytest.mark.slow
@pytest.mark.parametrize("server", PROXIES)
def test_uploads_are_served_inert_and_revalidated_and_a_miss_never_reaches_the_app(
    server: ProxyServer, backends: dict[str, int], static_dir: Path, media_dir: Path
) -> None:
    media = MediaFiles("/media/", str(media_dir))
    with proxy_for(server, [backends["gunicorn"]], static_dir, media=media) as proxy:
        status, headers, body = fetch(proxy, "/media/photo.png")
        assert (status, body[:4]) == (200, b"\x89PNG")
        assert headers["Content-Type"] == "image/png"
        assert headers["Cache-Control"] == "no-cache"  # an upload may be replaced by name
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Content-Security-Policy"] == MEDIA_CONTENT_SECURITY_POLICY
        # An uploaded page is served, but its script may not run as the site.
        status, headers, _ = fetch(proxy, "/media/evil.html")
        assert status == 200
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        status, headers, _ = fetch(proxy, "/media/docs/report.pdf")
        assert (status, headers["Content-Type"]) == (200, "application/pdf")
        # Misses and directories are the proxy's own 404s: the echo app would have said 200.
        for missing in ("/media/gone.png", "/media/docs/", "/media/"):
            status, _, _ = fetch(proxy, missing)
            assert status == 404, missing
        # Only what is under /media/ is a file; a path climbing out of it goes to the app.
        assert echo(proxy, "/mediafoo")["path"] == "/mediafoo"
        assert echo(proxy, "/media/../etc/passwd")["server"] == "gunicorn"
