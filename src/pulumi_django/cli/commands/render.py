"""`pulumi-django render`: print the proxy config or the app-server settings a stack deploys."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pulumi_django.errors import UsageError

if TYPE_CHECKING:
    from pulumi_django.config import StackConfig

DEFAULT_STACK = "dev"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_subparsers(dest="what", required=True, metavar="WHAT")
    proxy = what.add_parser(
        "proxy",
        help="the proxy's nginx.conf or Caddyfile",
        description="Print the nginx.conf or Caddyfile of the proxy: on AWS the sidecar in the "
        "app's task, on local Docker the container in front of the replicas.",
    )
    proxy.add_argument(
        "--server",
        choices=["nginx", "caddy"],
        help="proxy server (default: the stack's proxy.server)",
    )
    proxy.add_argument(
        "--trusted-cidr",
        action="append",
        metavar="CIDR",
        help="address range allowed to set X-Forwarded-* (repeatable; default: network.cidr, "
        "the VPC's range; AWS stacks only)",
    )
    proxy.add_argument(
        "--runtime-dir",
        metavar="DIR",
        help="directory for pid file and temp files (default: the one the container uses)",
    )
    app_server = what.add_parser(
        "app-server",
        help="the Gunicorn config file or the Uvicorn command",
        description="Print the gunicorn.conf.py, or the Uvicorn command line, the app runs with.",
    )
    for sub in (proxy, app_server):
        sub.add_argument(
            "--stack",
            help=f"stack name (default: {DEFAULT_STACK} if Pulumi.{DEFAULT_STACK}.yaml exists, "
            "else the config defaults)",
        )
        sub.add_argument("--cwd", default=".", help="Pulumi project directory (default: .)")


def run(args: argparse.Namespace) -> int:
    config = _stack_config(args.cwd, args.stack)
    if args.what == "proxy":
        print(_proxy_config(config, args), end="")
    else:
        from pulumi_django.rendering.app_server import app_server_settings, render_app_server

        settings = app_server_settings(
            app=config.app, fleet=config.fleet, load_balancer=config.load_balancer
        )
        print(render_app_server(settings), end="")
    return 0


def _stack_config(cwd: str, stack: str | None) -> StackConfig:
    from pathlib import Path

    from pulumi_django.cli.stackfile import read_stack_config
    from pulumi_django.config import parse_stack_config

    project_dir = Path(cwd)
    if not project_dir.is_dir():
        raise UsageError(f"--cwd {cwd}: no such directory")
    if stack is None and (project_dir / f"Pulumi.{DEFAULT_STACK}.yaml").is_file():
        stack = DEFAULT_STACK
    if stack is None:
        return parse_stack_config({"target": "aws"}, set())
    return read_stack_config(project_dir, stack)


def _proxy_config(config: StackConfig, args: argparse.Namespace) -> str:
    from pulumi_django.rendering.container_definitions import PROXY_RUNTIME_DIR
    from pulumi_django.rendering.proxy import (
        local_site,
        local_static_dir,
        render_proxy,
        sidecar_site,
    )

    server = args.server or config.proxy.server
    if config.target == "local":
        if args.trusted_cidr:
            raise UsageError("--trusted-cidr: the local proxy trusts no forwarder; AWS stacks only")
        # Docker names each replica `<name>-app-<n>-<random suffix>` when `pulumi up` creates it.
        upstreams = [
            f"{config.name}-app-{number}:{config.app.port}"
            for number in range(1, config.local.replicas + 1)
        ]
        print(
            "pulumi-django render: note: a local stack; replica names get a random suffix at "
            f"`pulumi up` (e.g. {upstreams[0].split(':')[0]}-1a2b3c4), shown here without it",
            file=sys.stderr,
        )
        try:
            site = local_site(
                proxy=config.proxy,
                app=config.app,
                load_balancer=config.load_balancer,
                static=config.static,
                media=config.media,
                upstreams=upstreams,
                static_dir=local_static_dir(config.static),
                **({"runtime_dir": args.runtime_dir} if args.runtime_dir else {}),
            )
        except ValueError as error:
            raise UsageError(str(error)) from None
        return render_proxy(server, site)
    trusted = args.trusted_cidr or [config.network.cidr]
    if config.network.existing and not args.trusted_cidr:
        print(
            f"pulumi-django render: note: the stack trusts the existing VPC's own range; "
            f"showing network.cidr {config.network.cidr} (set it with --trusted-cidr)",
            file=sys.stderr,
        )
    try:
        site = sidecar_site(
            proxy=config.proxy,
            app=config.app,
            load_balancer=config.load_balancer,
            trusted_proxies=trusted,
            runtime_dir=args.runtime_dir or PROXY_RUNTIME_DIR,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None
    return render_proxy(server, site)
