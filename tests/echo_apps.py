"""Tiny WSGI and ASGI apps that echo what reached them, for the app-server and proxy tests.

`GET /slow?SECONDS` answers after a pause (graceful stops); `/text` is a compressible page;
every other path answers JSON: which server, path, Host, X-Forwarded-*, the scheme and client
the server derived, and the body length.
"""

from __future__ import annotations

from pathlib import Path

WSGI_MODULE = "echo_wsgi"
ASGI_MODULE = "echo_asgi"
TEXT_PAGE_REPEAT = 400

# What both apps answer; `header` reads a request header by its lower-case name. `pid` is the
# process that answered, `imported_in` the one that imported the app (a preloading server's
# main process).
ANSWER_SOURCE = f"""
IMPORTED_IN = os.getpid()

def answer(server, path, header, scheme, client, body):
    if path == "/text":
        return "text/plain", ("pulumi-django " * {TEXT_PAGE_REPEAT}).encode()
    return "application/json", json.dumps({{
        "server": server,
        "path": path,
        "host": header("host"),
        "forwarded_for": header("x-forwarded-for"),
        "forwarded_proto": header("x-forwarded-proto"),
        "forwarded_host": header("x-forwarded-host"),
        "scheme": scheme,
        "client": client,
        "body_length": len(body),
        "pid": os.getpid(),
        "imported_in": IMPORTED_IN,
    }}).encode()
"""

WSGI_SOURCE = f"""
import json
import os
import time
{ANSWER_SOURCE}

def application(environ, start_response):
    path = environ["PATH_INFO"]
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    if path == "/slow":
        time.sleep(float(environ.get("QUERY_STRING") or 1))
    content_type, payload = answer(
        "gunicorn",
        path,
        lambda name: environ.get("HTTP_" + name.upper().replace("-", "_")),
        environ["wsgi.url_scheme"],
        environ.get("REMOTE_ADDR"),
        body,
    )
    start_response(
        "200 OK", [("Content-Type", content_type), ("Content-Length", str(len(payload)))]
    )
    return [payload]
"""

ASGI_SOURCE = f"""
import asyncio
import json
import os
{ANSWER_SOURCE}

async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({{"type": message["type"] + ".complete"}})
            if message["type"] == "lifespan.shutdown":
                return
    headers = {{name.decode(): value.decode() for name, value in scope["headers"]}}
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    path = scope["path"]
    if path == "/slow":
        await asyncio.sleep(float(scope["query_string"] or 1))
    content_type, payload = answer(
        "uvicorn", path, headers.get, scope["scheme"], scope["client"][0], body
    )
    await send({{
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(payload)).encode()),
        ],
    }})
    await send({{"type": "http.response.body", "body": payload}})
"""


def write_echo_apps(directory: Path) -> dict[str, str]:
    """Writes both modules into `directory`; returns server -> `module:attribute`."""
    (directory / f"{WSGI_MODULE}.py").write_text(WSGI_SOURCE)
    (directory / f"{ASGI_MODULE}.py").write_text(ASGI_SOURCE)
    return {"gunicorn": f"{WSGI_MODULE}:application", "uvicorn": f"{ASGI_MODULE}:application"}
