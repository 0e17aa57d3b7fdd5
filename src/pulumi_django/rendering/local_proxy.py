"""How the local proxy container switches from one replica set to the next without a restart.

A container's files and command cannot change without replacing it, and a replacement cannot
hold the published port while the old proxy still does. So the proxy container stays put, and
its config lives in a volume it shares with each release's one-off "switch" container:

- `render_supervisor` is the proxy container's command: it waits for `nginx.conf` (or
  `Caddyfile`) in the shared directory, runs nginx or Caddy on a copy of it, and every second
  compares the file with what it serves. A changed file is checked (`nginx -t`, `caddy
  validate`) and applied by a graceful reload (requests in flight finish on the old config),
  then acknowledged in `loaded` (its MD5); a config the server refuses is recorded in
  `rejected` and the old one keeps serving.
- `render_switch` is the switch container's command: it checks the new config itself, writes it
  to that file by an atomic rename, waits until `loaded` names it (or `rejected` does), then
  asks for the health path through the proxy. Its exit status is the release step's verdict.

Both are POSIX sh for the stock Alpine images (busybox), and equally for a host shell in tests.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Literal

from .proxy import CONTAINER_RUNTIME_DIR

ProxyServer = Literal["nginx", "caddy"]

# The shared volume's mount point in the proxy and switch containers.
CONFIG_DIR = "/etc/pulumi-django/proxy"
# Named per server: after a switch from one server to the other, the new proxy waits for its
# own config instead of failing on the other's.
WANTED: dict[str, str] = {"nginx": "nginx.conf", "caddy": "Caddyfile"}
LOADED = "loaded"
REJECTED = "rejected"
# How often the proxy looks at the shared config file.
POLL_SECONDS = 1
# `nginx -s reload` only signals the master, which then starts new workers and, right after,
# tells the old ones to stop accepting: the acknowledgement waits for a new worker to appear
# (at most NGINX_WORKERS_WAIT_SECONDS), then this long more. `caddy reload` returns once the
# new config serves.
SETTLE_SECONDS: dict[str, int] = {"nginx": 1, "caddy": 0}
NGINX_WORKERS_WAIT_SECONDS = 10
# Caddy swaps its listening socket on every reload, and two swaps within a second can reset
# new connections (seen in the release rehearsal); the server's start counts as one. Even one
# swap can reset a new connection arriving in its instant (docs/local-docker.md has figures).
RELOAD_GAP_SECONDS = 2  # with `date +%s`'s whole seconds: at least one second apart
# nginx stops gracefully on SIGQUIT (SIGTERM is its fast stop); Caddy on SIGTERM.
STOP_SIGNALS: dict[str, str] = {"nginx": "QUIT", "caddy": "TERM"}
SWITCH_TIMEOUT_SECONDS = 60
PROBE_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class ProxyControl:
    """Where the proxy's files are and how its server is started, checked and reloaded.

    `runtime_dir` is the rendered config's own runtime directory (pid file, Caddy's admin
    socket), where the proxy also keeps the copy it serves."""

    server: ProxyServer
    config_dir: str = CONFIG_DIR
    runtime_dir: str = CONTAINER_RUNTIME_DIR

    @property
    def wanted(self) -> str:
        return f"{self.config_dir}/{WANTED[self.server]}"

    @property
    def loaded(self) -> str:
        return f"{self.config_dir}/{LOADED}"

    @property
    def rejected(self) -> str:
        return f"{self.config_dir}/{REJECTED}"

    @property
    def active(self) -> str:
        """The copy the server runs; nginx re-reads this same path on every reload."""
        return f"{self.runtime_dir}/pulumi-django-proxy.conf"

    @property
    def candidate(self) -> str:
        return f"{self.runtime_dir}/pulumi-django-proxy.next.conf"

    @property
    def new_config(self) -> str:
        """Where the switch container finds the config it hands over (a pulumi-docker upload)."""
        return f"{self.runtime_dir}/pulumi-django-proxy.new.conf"

    # The commands below take `config` as a shell word, e.g. "$active".

    def start(self, config: str) -> str:
        if self.server == "nginx":
            return f"nginx -c {config} -g 'daemon off;'"
        return f"caddy run --config {config} --adapter caddyfile"

    def check(self, config: str) -> str:
        if self.server == "nginx":
            return f"nginx -t -q -c {config}"
        return f"caddy validate --config {config} --adapter caddyfile"

    def reload(self, config: str) -> str:
        if self.server == "nginx":
            return f"nginx -s reload -c {config}"
        # The admin socket the rendered Caddyfile opens (rendering.proxy.render_caddy).
        socket = shlex.quote(f"unix/{self.runtime_dir}/caddy-admin.sock")
        return f"caddy reload --config {config} --adapter caddyfile --address {socket}"


# The nginx master's children are its workers: a PID not seen before the reload is a new one.
NGINX_WORKER_FUNCTIONS = """\
workers() { pgrep -P "$server" | tr '\\n' ' '; }
await_new_worker() {
    tries=$1
    while [ "$tries" -gt 0 ]; do
        for pid in $(workers); do
            case " $before " in *" $pid "*) ;; *) return 0 ;; esac
        done
        sleep 0.1
        tries=$((tries - 1))
    done
}
"""


def render_supervisor(control: ProxyControl) -> str:
    """The proxy container's command (see the module docstring)."""
    q = shlex.quote
    server = control.server
    settle = f"            sleep {SETTLE_SECONDS[server]}\n" if SETTLE_SECONDS[server] else ""
    nginx = server == "nginx"
    remember_workers = "        before=$(workers)\n" if nginx else ""
    new_workers = (
        f"            await_new_worker $(( {NGINX_WORKERS_WAIT_SECONDS} * 10 ))\n" if nginx else ""
    )
    worker_functions = NGINX_WORKER_FUNCTIONS if nginx else ""
    return f"""\
# Rendered by pulumi-django: serves the {server} config a release writes to the shared
# volume ({control.wanted}) and reloads it gracefully whenever that file changes.
set -u
wanted={q(control.wanted)}
active={q(control.active)}
candidate={q(control.candidate)}
say() {{ echo "pulumi-django proxy: $*" >&2; }}
digest() {{ md5sum < "$1" | cut -d ' ' -f 1; }}
record() {{ printf '%s\\n' "$2" > "$1.tmp" && mv "$1.tmp" "$1"; }}
{worker_functions}
say "waiting for $wanted"
until [ -s "$wanted" ]; do sleep {POLL_SECONDS}; done
cp "$wanted" "$active"
loaded=$(digest "$active")
rejected=
stopping=
{control.start('"$active"')} &
server=$!
changed=$(date +%s)
trap 'stopping=1; kill -{STOP_SIGNALS[server]} "$server" 2>/dev/null' TERM INT QUIT
record {q(control.loaded)} "$loaded"
say "serving config $loaded"
while kill -0 "$server" 2>/dev/null; do
    sleep {POLL_SECONDS} &
    wait $! || true
    [ -z "$stopping" ] && [ -s "$wanted" ] || continue
    next=$(digest "$wanted")
    [ "$next" != "$loaded" ] && [ "$next" != "$rejected" ] || continue
    cp "$wanted" "$candidate"
    if problem=$({control.check('"$candidate"')} 2>&1); then
        mv "$candidate" "$active"
        while [ $(( $(date +%s) - changed )) -lt {RELOAD_GAP_SECONDS} ]; do sleep 0.2; done
{remember_workers}        if problem=$({control.reload('"$active"')} 2>&1); then
            changed=$(date +%s)
{new_workers}{settle}            loaded=$next
            record {q(control.loaded)} "$loaded"
            say "reloaded: serving config $loaded"
            continue
        fi
    fi
    rejected=$next
    record {q(control.rejected)} "$next $(printf '%s' "$problem" | tr '\\n' ' ')"
    say "rejected config $next, still serving $loaded: $problem"
done
wait "$server"
"""


def render_switch(
    control: ProxyControl,
    *,
    probe_url: str,
    probe_host: str,
    timeout_seconds: int = SWITCH_TIMEOUT_SECONDS,
) -> str:
    """The switch container's command: exit 0 once the proxy serves the new config and
    `probe_url` answers through it (with `Host: probe_host`), non-zero with the reason."""
    if timeout_seconds < 1:
        raise ValueError("timeout_seconds must be at least 1")
    q = shlex.quote
    server = control.server
    return f"""\
# Rendered by pulumi-django: hands the proxy its new {server} config, waits until it serves it.
set -u
new={q(control.new_config)}
wanted={q(control.wanted)}
loaded={q(control.loaded)}
rejected={q(control.rejected)}
say() {{ echo "pulumi-django proxy switch: $*"; }}
fail() {{ say "error: $*"; exit 1; }}

{control.check('"$new"')} 2>&1 || fail "{server} refused the new config (above); \
the proxy keeps serving the previous one"
want=$(md5sum < "$new" | cut -d ' ' -f 1)
cp "$new" "$wanted.tmp" && mv "$wanted.tmp" "$wanted" || fail "cannot write $wanted"
say "config $want written to $wanted"
deadline=$(( $(date +%s) + {timeout_seconds} ))
until [ "$(cat "$loaded" 2>/dev/null)" = "$want" ]; do
    if [ -s "$rejected" ] && read -r digest reason < "$rejected" && [ "$digest" = "$want" ]; then
        fail "the proxy refused config $want and keeps serving the previous one: $reason"
    fi
    [ "$(date +%s)" -lt "$deadline" ] || fail "the proxy did not load config $want within \
{timeout_seconds} s: is the proxy container running? (docker ps, docker logs)"
    sleep 1
done
say "the proxy serves config $want"
until wget -q -O /dev/null -T {PROBE_TIMEOUT_SECONDS} --header {q(f"Host: {probe_host}")} \
{q(probe_url)}; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "{probe_url} did not answer through the proxy \
within {timeout_seconds} s"
    sleep 1
done
say "{probe_url} answers through the proxy"
"""
