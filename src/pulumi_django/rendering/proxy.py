"""The reverse proxy's config, rendered for nginx or Caddy from one description of the site.

One `ProxySite` serves the three deployments: the AWS sidecar (one upstream on localhost,
static files on S3), local Docker (app replicas by host name, static files from a volume) and
the release rehearsal (replicas on loopback ports, everything under a throwaway runtime
directory). Both renderers give the same behaviour; docs/proxy-and-app-server.md says what and
why. The Caddy config needs Caddy 2.8 or newer (`client_ip`, `log_skip`, `request_buffers`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pulumi_django.config.app import AppConfig
from pulumi_django.config.load_balancer import LoadBalancerConfig
from pulumi_django.config.media import MediaConfig
from pulumi_django.config.proxy import ProxyConfig
from pulumi_django.config.static import StaticConfig
from pulumi_django.static_publish import IMMUTABLE_CACHE_CONTROL as IMMUTABLE

from .app_server import KEEPALIVE_MARGIN_SECONDS, app_keepalive_seconds
from .media import LOCAL_MEDIA_MOUNT, MEDIA_RESPONSE_HEADERS

MIN_CADDY_VERSION = (2, 8)
# Where pid file, temp directories and admin socket go unless told otherwise: writable in
# every stock proxy image, for any user.
CONTAINER_RUNTIME_DIR = "/tmp"  # noqa: S108 - the proxy image's own /tmp
# Processes in the same task or container (health probes) may set X-Forwarded-* too.
LOOPBACK_CIDR = "127.0.0.1/32"
# Local Docker: the static volume's mount point in the publisher and (read-only) in the proxy.
LOCAL_STATIC_MOUNT = "/srv/pulumi-django/static"
CONNECT_TIMEOUT_SECONDS = 5
HEADER_TIMEOUT_SECONDS = 10
# How long a request may be passed from a failed upstream to the next one.
RETRY_WINDOW_SECONDS = 5
# A replica that failed a connection sits out this long (passive health).
FAIL_TIMEOUT_SECONDS = 10
UPSTREAM_IDLE_CONNECTIONS = 32
# Caddy holds responses in memory (nginx spools them to a temp file instead).
CADDY_RESPONSE_BUFFER = "4MiB"
# ManifestStaticFilesStorage names: app.3f2a9c01b7d4.css (12 hex digits of the MD5).
HASHED_STATIC_NAME = r"\.[0-9a-f]{12}\.[A-Za-z0-9]+$"
REVALIDATE = "no-cache"
GZIP_MIN_LENGTH = 1024
COMPRESSIBLE_TYPES = (
    "text/html",
    "text/plain",
    "text/css",
    "text/javascript",
    "text/xml",
    "application/javascript",
    "application/json",
    "application/xml",
    "application/manifest+json",
    "image/svg+xml",
)
# nginx's own table, kept inline so the config needs no include path on any host.
STATIC_TYPES = {
    "text/html": "html htm",
    "text/css": "css",
    "text/plain": "txt",
    "text/xml": "xml",
    "application/javascript": "js mjs",
    "application/json": "json map",
    "application/manifest+json": "webmanifest",
    "application/wasm": "wasm",
    "application/pdf": "pdf",
    "image/svg+xml": "svg",
    "image/png": "png",
    "image/jpeg": "jpg jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/avif": "avif",
    "image/x-icon": "ico",
    "font/woff": "woff",
    "font/woff2": "woff2",
    "font/ttf": "ttf",
    "font/otf": "otf",
    "video/mp4": "mp4",
    "video/webm": "webm",
}

# Values that end up inside the config text: nothing that could close a directive or block.
_SAFE_PATH = re.compile(r"^/[\w./@+-]*$")
_UPSTREAM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*:\d{1,5}$")
_URL_PREFIX = re.compile(r"^/([\w.-]+/)+$")
_HEADER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
# The rehearsal's proxy names the replica (host:port) that answered each request in this header.
SERVED_BY_HEADER = "X-Served-By"


@dataclass(frozen=True)
class StaticFiles:
    """Static files served by the proxy itself, never by the app."""

    url_prefix: str
    directory: str
    kind: ClassVar[str] = "static"

    def __post_init__(self) -> None:
        if not _URL_PREFIX.match(self.url_prefix):
            raise ValueError(
                f"{self.kind} url_prefix {self.url_prefix!r} must look like /static/ or /media/"
            )
        _check_path(f"{self.kind} directory", self.directory)


@dataclass(frozen=True)
class MediaFiles(StaticFiles):
    """Uploaded media served by the proxy itself (local Docker, the rehearsal): revalidated on
    every use, since an upload may be replaced under its name, and sent with the headers that
    keep an uploaded HTML or SVG file from running script as the site."""

    kind: ClassVar[str] = "media"


@dataclass(frozen=True)
class ProxySite:
    """What the proxy does, independent of nginx or Caddy."""

    listen_host: str
    listen_port: int
    upstreams: tuple[str, ...]
    max_body_mb: int
    read_timeout_seconds: int
    # Longer than the load balancer's idle timeout: the proxy never closes a connection the
    # load balancer is about to reuse.
    client_keepalive_seconds: int
    # Shorter than the app's keep-alive: the app never closes a connection the proxy reuses.
    upstream_keepalive_seconds: int
    graceful_timeout_seconds: int
    gzip: bool
    health_path: str
    # Peers allowed to set X-Forwarded-For/-Proto/-Host (the load balancer's subnets).
    trusted_proxies: tuple[str, ...] = ()
    static: StaticFiles | None = None
    media: MediaFiles | None = None
    # Holds the pid file, temp directories and Caddy's admin socket.
    runtime_dir: str = CONTAINER_RUNTIME_DIR
    # None: access log to stdout, errors to stderr (containers); else log files there.
    log_dir: str | None = None
    connect_timeout_seconds: int = CONNECT_TIMEOUT_SECONDS
    # The scheme every visitor uses, when the way in guarantees it: sent to the app as
    # X-Forwarded-Proto whatever the peer says (None: believe trusted peers, else our own).
    viewer_scheme: str | None = None
    # A response header naming the upstream (host:port) that answered, for the release
    # rehearsal to tell which version served a failed request; None in deployments, where it
    # would tell visitors about the inside of the site.
    served_by_header: str | None = None

    def __post_init__(self) -> None:
        try:
            ipaddress.IPv4Address(self.listen_host)
        except ValueError:
            raise ValueError(f"listen_host {self.listen_host!r} is not an IPv4 address") from None
        _check_port("listen_port", self.listen_port)
        if not self.upstreams:
            raise ValueError("a proxy needs at least one upstream")
        for upstream in self.upstreams:
            if not _UPSTREAM.match(upstream):
                raise ValueError(f"upstream {upstream!r} must be host:port")
            _check_port(f"upstream {upstream}", int(upstream.rsplit(":", 1)[1]))
        if len(set(self.upstreams)) != len(self.upstreams):
            raise ValueError(f"upstreams repeat: {', '.join(self.upstreams)}")
        for cidr in self.trusted_proxies:
            try:
                ipaddress.ip_network(cidr)
            except ValueError:
                hint = _cidr_hint(cidr)
                raise ValueError(f"trusted proxy {cidr!r} is not a CIDR{hint}") from None
        for name in (
            "max_body_mb",
            "read_timeout_seconds",
            "client_keepalive_seconds",
            "upstream_keepalive_seconds",
            "graceful_timeout_seconds",
            "connect_timeout_seconds",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.served_by_header is not None and not _HEADER_NAME.match(self.served_by_header):
            raise ValueError(f"served_by_header {self.served_by_header!r} is not a header name")
        if self.viewer_scheme not in (None, "http", "https"):
            raise ValueError(f"viewer_scheme {self.viewer_scheme!r} is not http or https")
        _check_path("health_path", self.health_path)
        _check_path("runtime_dir", self.runtime_dir)
        if self.log_dir is not None:
            _check_path("log_dir", self.log_dir)

    @property
    def load_balanced(self) -> bool:
        """Several upstreams: retries and passive health checks matter."""
        return len(self.upstreams) > 1


def _cidr_hint(text: str) -> str:
    """The network a CIDR with host bits set meant, else an example."""
    try:
        return f": host bits are set; the network is {ipaddress.ip_network(text, strict=False)}"
    except ValueError:
        return " (e.g. 10.0.0.0/16)"


def site_from_config(
    *,
    proxy: ProxyConfig,
    app: AppConfig,
    load_balancer: LoadBalancerConfig,
    listen_host: str,
    listen_port: int,
    upstreams: Sequence[str],
    trusted_proxies: Sequence[str] = (),
    static: StaticFiles | None = None,
    media: MediaFiles | None = None,
    runtime_dir: str = CONTAINER_RUNTIME_DIR,
    log_dir: str | None = None,
    viewer_scheme: str | None = None,
    served_by_header: str | None = None,
) -> ProxySite:
    """The settings that come from the config sections (the proxy's limits, the app's health
    path and graceful time, the load balancer's idle timeout the keep-alives nest around); the
    caller says where things are."""
    idle = load_balancer.idle_timeout_seconds
    return ProxySite(
        listen_host=listen_host,
        listen_port=listen_port,
        upstreams=tuple(upstreams),
        max_body_mb=proxy.max_body_mb,
        read_timeout_seconds=proxy.read_timeout_seconds,
        client_keepalive_seconds=idle + KEEPALIVE_MARGIN_SECONDS,
        upstream_keepalive_seconds=app_keepalive_seconds(load_balancer) - KEEPALIVE_MARGIN_SECONDS,
        graceful_timeout_seconds=app.graceful_timeout_seconds,
        gzip=proxy.gzip,
        health_path=app.health_check_path,
        trusted_proxies=tuple(trusted_proxies),
        static=static,
        media=media,
        runtime_dir=runtime_dir,
        log_dir=log_dir,
        viewer_scheme=viewer_scheme,
        served_by_header=served_by_header,
    )


def sidecar_site(
    *,
    proxy: ProxyConfig,
    app: AppConfig,
    load_balancer: LoadBalancerConfig,
    trusted_proxies: Sequence[str],
    runtime_dir: str = CONTAINER_RUNTIME_DIR,
) -> ProxySite:
    """AWS: the proxy container of the app's task. Static files are on S3/CloudFront; only the
    load balancer (`trusted_proxies`: the VPC's CIDR) and the task itself may set
    X-Forwarded-For.

    Every visitor uses HTTPS: CloudFront redirects HTTP to HTTPS and is the only way in (the
    prefix list and the secret origin header). The ALB's HTTP listener, though, rewrites
    X-Forwarded-Proto to `http`, so the app is told `https` outright, or Django would build
    http:// URLs and see no request as secure."""
    return site_from_config(
        proxy=proxy,
        app=app,
        load_balancer=load_balancer,
        listen_host="0.0.0.0",  # noqa: S104 - the task's network interface, behind the ALB
        listen_port=proxy.port,
        upstreams=[f"127.0.0.1:{app.port}"],
        trusted_proxies=[*trusted_proxies, LOOPBACK_CIDR],
        runtime_dir=runtime_dir,
        viewer_scheme="https",
    )


def local_static_dir(static: StaticConfig) -> str:
    """Local Docker: where the proxy container finds the kept releases' static files."""
    return f"{LOCAL_STATIC_MOUNT}/{static.prefix.rstrip('/')}"


def local_site(
    *,
    proxy: ProxyConfig,
    app: AppConfig,
    load_balancer: LoadBalancerConfig,
    static: StaticConfig,
    media: MediaConfig | None,
    upstreams: Sequence[str],
    static_dir: str,
    runtime_dir: str = CONTAINER_RUNTIME_DIR,
) -> ProxySite:
    """Local Docker: the proxy container in front of the replicas (`app-1:8000`, ...), serving
    `static_dir`, which holds several releases' files, and the media volume's mount (none
    when `media` is None or off)."""
    return site_from_config(
        proxy=proxy,
        app=app,
        load_balancer=load_balancer,
        listen_host="0.0.0.0",  # noqa: S104 - inside the container; published on 127.0.0.1
        listen_port=proxy.port,
        upstreams=upstreams,
        static=StaticFiles(static_url_prefix(static), static_dir),
        media=media_files(media, LOCAL_MEDIA_MOUNT) if media else None,
        runtime_dir=runtime_dir,
    )


def rehearsal_site(
    *,
    proxy: ProxyConfig,
    app: AppConfig,
    load_balancer: LoadBalancerConfig,
    static: StaticConfig,
    media: MediaConfig,
    listen_port: int,
    upstream_ports: Sequence[int],
    static_dir: str,
    runtime_dir: str,
    media_dir: str | None = None,
) -> ProxySite:
    """The release rehearsal: a throwaway proxy on loopback in front of replicas on loopback;
    pid file, temp directories and logs all in `runtime_dir`; uploads served from `media_dir`
    (the replicas' MEDIA_ROOT) when media is on; each answer names the replica that gave it
    (SERVED_BY_HEADER), so a failure is pinned on the old or the new version."""
    return site_from_config(
        proxy=proxy,
        app=app,
        load_balancer=load_balancer,
        listen_host="127.0.0.1",
        listen_port=listen_port,
        upstreams=[f"127.0.0.1:{port}" for port in upstream_ports],
        static=StaticFiles(static_url_prefix(static), static_dir),
        media=media_files(media, media_dir) if media_dir else None,
        runtime_dir=runtime_dir,
        log_dir=runtime_dir,
        served_by_header=SERVED_BY_HEADER,
    )


def static_url_prefix(static: StaticConfig) -> str:
    return "/" + static.prefix


def media_files(media: MediaConfig, directory: str) -> MediaFiles | None:
    """`directory` served under `media.urlPath`; None when media is off."""
    return MediaFiles(media.url_path, directory) if media.enabled else None


def render_proxy(server: str, site: ProxySite) -> str:
    if server == "nginx":
        return render_nginx(site)
    if server == "caddy":
        return render_caddy(site)
    raise ValueError(f"unknown proxy server {server!r}: use nginx or caddy")


def render_nginx(site: ProxySite) -> str:
    """nginx.conf, run as `nginx -c FILE -g 'daemon off;'` (the stock image's foreground flag,
    so the file itself leaves `daemon` alone)."""
    base = site.runtime_dir
    logs = site.log_dir
    error_log = f"{logs}/error.log" if logs else "stderr"
    access_log = f"{logs}/access.log" if logs else "/dev/stdout"
    lines = [
        "# Rendered by pulumi-django. Do not edit: change the stack config and render again.",
        "worker_processes auto;",
        f"pid {base}/nginx.pid;",
        f"error_log {error_log} warn;",
        # On a graceful stop (SIGQUIT) or reload, in-flight requests get this long to finish.
        f"worker_shutdown_timeout {site.graceful_timeout_seconds}s;",
        "",
        "events {",
        "    worker_connections 1024;",
        "}",
        "",
        "http {",
        "    types {",
        *(f"        {mime} {extensions};" for mime, extensions in STATIC_TYPES.items()),
        "    }",
        "    default_type application/octet-stream;",
        "    server_tokens off;",
        "    sendfile on;",
        "    tcp_nopush on;",
        "",
        "    log_format main '$remote_addr - $remote_user [$time_local] \"$request\" $status '",
        '                    \'$body_bytes_sent "$http_referer" "$http_user_agent" \'',
        "                    'rt=$request_time upstream=$upstream_addr '",
        "                    'urt=$upstream_response_time';",
        "    map $uri $loggable {",
        f"        {site.health_path} 0;",
        "        default 1;",
        "    }",
        f"    access_log {access_log} main if=$loggable;",
        "",
        f"    client_body_temp_path {base}/nginx-client-body;",
        f"    proxy_temp_path {base}/nginx-proxy;",
        f"    fastcgi_temp_path {base}/nginx-fastcgi;",
        f"    uwsgi_temp_path {base}/nginx-uwsgi;",
        f"    scgi_temp_path {base}/nginx-scgi;",
        "",
        f"    client_max_body_size {site.max_body_mb}m;",
        f"    client_header_timeout {HEADER_TIMEOUT_SECONDS}s;",
        f"    client_body_timeout {site.read_timeout_seconds}s;",
        f"    keepalive_timeout {site.client_keepalive_seconds}s;",
        "    reset_timedout_connection on;",
        "",
        *_nginx_forwarding(site),
        "",
        *_nginx_gzip(site),
        "",
        "    upstream app {",
        "        least_conn;",
        *(
            f"        server {upstream} max_fails=1 fail_timeout={FAIL_TIMEOUT_SECONDS}s;"
            for upstream in site.upstreams
        ),
        f"        keepalive {UPSTREAM_IDLE_CONNECTIONS};",
        f"        keepalive_timeout {site.upstream_keepalive_seconds}s;",
        "    }",
        "",
        "    server {",
        f"        listen {site.listen_host}:{site.listen_port} default_server;",
        "        server_name _;",
        *_nginx_static(site),
        *_nginx_media(site),
        "        location / {",
        "            proxy_pass http://app;",
        "            proxy_http_version 1.1;",
        "            proxy_set_header Host $http_host;",
        "            proxy_set_header X-Forwarded-For $remote_addr;",
        "            proxy_set_header X-Forwarded-Proto $forwarded_proto;",
        "            proxy_set_header X-Forwarded-Host $forwarded_host;",
        "            proxy_set_header Upgrade $http_upgrade;",
        "            proxy_set_header Connection $connection_upgrade;",
        "            proxy_redirect off;",
        # The whole request, then the whole response, pass through the proxy's buffers: a
        # slow client never holds an app worker.
        "            proxy_request_buffering on;",
        "            proxy_buffering on;",
        "            proxy_buffer_size 16k;",
        "            proxy_buffers 16 16k;",
        "            proxy_busy_buffers_size 32k;",
        f"            proxy_connect_timeout {site.connect_timeout_seconds}s;",
        f"            proxy_send_timeout {site.read_timeout_seconds}s;",
        f"            proxy_read_timeout {site.read_timeout_seconds}s;",
        # Only a failed connection or a timeout moves a request to another upstream, and
        # nginx never resends a non-idempotent request (POST) once it reached an upstream.
        "            proxy_next_upstream error timeout;",
        f"            proxy_next_upstream_timeout {RETRY_WINDOW_SECONDS}s;",
        *(
            [f"            add_header {site.served_by_header} $upstream_addr always;"]
            if site.served_by_header
            else []
        ),
        "        }",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _nginx_forwarding(site: ProxySite) -> list[str]:
    """X-Forwarded-* from a trusted proxy are believed; from anyone else, replaced."""
    lines = [f"    set_real_ip_from {cidr};" for cidr in site.trusted_proxies]
    if site.trusted_proxies:
        lines += ["    real_ip_header X-Forwarded-For;", "    real_ip_recursive on;"]
    return [
        *lines,
        "    geo $realip_remote_addr $from_trusted_proxy {",
        "        default 0;",
        *(f"        {cidr} 1;" for cidr in site.trusted_proxies),
        "    }",
        *_nginx_forwarded_proto(site),
        '    map "$from_trusted_proxy|$http_x_forwarded_host" $forwarded_host {',
        "        default $http_host;",
        '        "~^1\\|(?<trusted_host>.+)$" $trusted_host;',
        "    }",
        "    map $http_upgrade $connection_upgrade {",
        "        default upgrade;",
        '        "" "";',
        "    }",
    ]


def _nginx_forwarded_proto(site: ProxySite) -> list[str]:
    if site.viewer_scheme:
        return [f"    map $host $forwarded_proto {{ default {site.viewer_scheme}; }}"]
    return [
        '    map "$from_trusted_proxy|$http_x_forwarded_proto" $forwarded_proto {',
        "        default $scheme;",
        '        "~^1\\|(?<trusted_proto>https?)$" $trusted_proto;',
        "    }",
    ]


def _nginx_gzip(site: ProxySite) -> list[str]:
    if not site.gzip:
        return ["    gzip off;"]
    return [
        "    gzip on;",
        "    gzip_vary on;",
        "    gzip_proxied any;",
        "    gzip_comp_level 5;",
        f"    gzip_min_length {GZIP_MIN_LENGTH};",
        # text/html is always compressed by nginx and may not be listed again.
        f"    gzip_types {' '.join(t for t in COMPRESSIBLE_TYPES if t != 'text/html')};",
    ]


def _nginx_static(site: ProxySite) -> list[str]:
    if site.static is None:
        return []
    return [
        f"        location {site.static.url_prefix} {{",
        f"            alias {site.static.directory.rstrip('/')}/;",
        # A missing file is a 404 here: it never falls through to the app.
        "            try_files $uri =404;",
        f'            add_header Cache-Control "{REVALIDATE}";',
        f'            location ~ "{HASHED_STATIC_NAME}" {{',
        f'                add_header Cache-Control "{IMMUTABLE}";',
        "            }",
        "        }",
    ]


def _nginx_media(site: ProxySite) -> list[str]:
    if site.media is None:
        return []
    return [
        f"        location {site.media.url_prefix} {{",
        f"            alias {site.media.directory.rstrip('/')}/;",
        # A missing file is a 404 here: it never falls through to the app.
        "            try_files $uri =404;",
        f'            add_header Cache-Control "{REVALIDATE}";',
        *(
            f'            add_header {name} "{value}";'
            for name, value in MEDIA_RESPONSE_HEADERS.items()
        ),
        "        }",
    ]


def render_caddy(site: ProxySite) -> str:
    """A Caddyfile for `caddy run --adapter caddyfile --config FILE` (Caddy 2.8+)."""
    base = site.runtime_dir
    logs = site.log_dir
    lines = [
        "# Rendered by pulumi-django. Do not edit: change the stack config and render again.",
        "{",
        # `caddy reload --address unix/<socket>` applies a new config without dropping requests.
        f"\tadmin unix/{base}/caddy-admin.sock",
        "\tpersist_config off",
        "\tauto_https off",
        f"\tgrace_period {site.graceful_timeout_seconds}s",
    ]
    if logs:
        lines += ["\tlog {", f"\t\toutput file {logs}/caddy.log", "\t}"]
    lines += ["\tservers {"]
    if site.trusted_proxies:
        lines += [
            f"\t\ttrusted_proxies static {' '.join(site.trusted_proxies)}",
            "\t\ttrusted_proxies_strict",
            "\t\tclient_ip_headers X-Forwarded-For",
        ]
    lines += [
        "\t\ttimeouts {",
        f"\t\t\tread_header {HEADER_TIMEOUT_SECONDS}s",
        f"\t\t\tread_body {site.read_timeout_seconds}s",
        f"\t\t\tidle {site.client_keepalive_seconds}s",
        "\t\t}",
        "\t}",
        "}",
        "",
        f"http://:{site.listen_port} {{",
        f"\tbind {site.listen_host}",
        "\tlog {",
        f"\t\toutput {f'file {logs}/access.log' if logs else 'stdout'}",
        "\t}",
        f"\tlog_skip {site.health_path}",
        "\trequest_body {",
        f"\t\tmax_size {site.max_body_mb}MiB",
        "\t}",
        *_caddy_gzip(site),
        *_caddy_static(site),
        *_caddy_media(site),
        "\thandle {",
        f"\t\treverse_proxy {' '.join(site.upstreams)} {{",
        *_caddy_load_balancing(site),
        # Buffer the whole request (it is at most max_size) and the response: a slow client
        # never holds an app worker.
        f"\t\t\trequest_buffers {site.max_body_mb}MiB",
        f"\t\t\tresponse_buffers {CADDY_RESPONSE_BUFFER}",
        # Caddy appends to a trusted X-Forwarded-For; the app gets the client alone, as from nginx.
        "\t\t\theader_up X-Forwarded-For {client_ip}",
        *(
            [f"\t\t\theader_up X-Forwarded-Proto {site.viewer_scheme}"]
            if site.viewer_scheme
            else []
        ),
        *(
            [f"\t\t\theader_down {site.served_by_header} {{http.reverse_proxy.upstream.hostport}}"]
            if site.served_by_header
            else []
        ),
        "\t\t\ttransport http {",
        f"\t\t\t\tdial_timeout {site.connect_timeout_seconds}s",
        f"\t\t\t\tresponse_header_timeout {site.read_timeout_seconds}s",
        f"\t\t\t\tkeepalive {site.upstream_keepalive_seconds}s",
        f"\t\t\t\tkeepalive_idle_conns_per_host {UPSTREAM_IDLE_CONNECTIONS}",
        "\t\t\t}",
        "\t\t}",
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _caddy_load_balancing(site: ProxySite) -> list[str]:
    """Like nginx: with one upstream there is nowhere to retry and nothing to take out."""
    if not site.load_balanced:
        return []
    return [
        "\t\t\tlb_policy least_conn",
        # Connection failures are retried for any method (nothing was sent); other failures
        # only for GET, Caddy's default `lb_retry_match`.
        f"\t\t\tlb_try_duration {RETRY_WINDOW_SECONDS}s",
        f"\t\t\tfail_duration {FAIL_TIMEOUT_SECONDS}s",
        "\t\t\tmax_fails 1",
    ]


def _caddy_gzip(site: ProxySite) -> list[str]:
    if not site.gzip:
        return []
    return [
        "\tencode gzip {",
        f"\t\tminimum_length {GZIP_MIN_LENGTH}",
        "\t\tmatch {",
        *(f"\t\t\theader Content-Type {mime}*" for mime in COMPRESSIBLE_TYPES),
        "\t\t}",
        "\t}",
    ]


def _caddy_static(site: ProxySite) -> list[str]:
    if site.static is None:
        return []
    return [
        f"\thandle_path {site.static.url_prefix}* {{",
        f"\t\troot * {site.static.directory}",
        "\t\t@immutable {",
        f"\t\t\tpath_regexp {HASHED_STATIC_NAME}",
        "\t\t\tfile",
        "\t\t}",
        "\t\t@revalidate {",
        f"\t\t\tnot path_regexp {HASHED_STATIC_NAME}",
        "\t\t\tfile",
        "\t\t}",
        f'\t\theader @immutable Cache-Control "{IMMUTABLE}"',
        f'\t\theader @revalidate Cache-Control "{REVALIDATE}"',
        # A missing file is a 404 here: it never falls through to the app.
        "\t\tfile_server",
        "\t}",
    ]


def _caddy_media(site: ProxySite) -> list[str]:
    if site.media is None:
        return []
    return [
        f"\thandle_path {site.media.url_prefix}* {{",
        f"\t\troot * {site.media.directory}",
        f'\t\theader Cache-Control "{REVALIDATE}"',
        *(f'\t\theader {name} "{value}"' for name, value in MEDIA_RESPONSE_HEADERS.items()),
        # A missing file is a 404 here: it never falls through to the app.
        "\t\tfile_server",
        "\t}",
    ]


def _check_port(name: str, port: int) -> None:
    if not 1 <= port <= 65535:
        raise ValueError(f"{name}: port {port} is outside 1-65535")


def _check_path(name: str, path: str) -> None:
    if not _SAFE_PATH.match(path):
        raise ValueError(
            f"{name} {path!r} must be an absolute path of letters, digits and . _ - / @ +"
        )
