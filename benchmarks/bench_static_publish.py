"""`pulumi-django publish-static` against its floors, on the same data and the same S3 server.

One moto S3 server runs on loopback in its own process. Release 1 (2,000 collected files of
0.2-30 KB) is published once; then each round, interleaved and in alternating order:

- the incremental publish: release 2, with 5% of the files changed (new hashed names, as
  collectstatic gives changed files), onto release 1. Its floors: the same k PUTs from a bare
  boto3 script at the publish's concurrency (what issue 18 asks the publish to stay within
  1.2x of), and, for reference, that script listing the prefix first (what a publish that
  lists the bucket to learn what changed cannot go below; ours reads the releases index
  instead, and lists only with --verify);
- the no-op publish: release 2 again, nothing to upload. Its floor: a bare boto3 script
  making the same read (the releases index); issue 18 asks for 0.6 s at most;
- `aws s3 sync` of the same two changes into a bucket of its own, as a reference, when the aws
  CLI is installed next to this Python.

Everything is timed as a pipeline runs it: one process each, interpreter start included, with
its CPU seconds (which a busy machine disturbs less than the wall clock). After a round the
buckets are put back to release 1 alone, its index too (untimed). Medians are printed, each
figure with its floor and their ratio, with the requests each publish made (from the server's
log) and the bound issue 18 sets, k + ceil(N/1000) + 3; the last line is one JSON object.

    .venv/bin/python benchmarks/bench_static_publish.py [--files 2000] [--changed 0.05] [--rounds 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from measure import run_timed, succeeded

from pulumi_django.cli.rehearsal.servers import (
    LOOPBACK,
    free_port,
    start_process,
    stop_process,
    wait_for_port,
)
from pulumi_django.static_publish import DEFAULT_WORKERS, index_key

BIN = Path(sys.executable).parent
PREFIX = "static/"
# One werkzeug access-log line per request the server answered.
REQUEST_LINE = re.compile(rb'"(GET|PUT|POST|DELETE|HEAD) /')

# The floors: what a minimal boto3 script does, with boto3's defaults but for the connection
# pool the threads need. argv: endpoint, bucket, then the script's own arguments.
BARE_PUTS = """
import sys, concurrent.futures, boto3
from botocore.config import Config
endpoint, bucket, workers, listing, root, *keys = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=endpoint, config=Config(max_pool_connections=int(workers)))
if listing == "list":
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="static/"):
        pass
def put(key):
    with open(root + "/" + key.removeprefix("static/"), "rb") as body:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
with concurrent.futures.ThreadPoolExecutor(int(workers)) as pool:
    list(pool.map(put, keys))
"""
BARE_READS = """
import sys, boto3
endpoint, bucket, index = sys.argv[1:]
boto3.client("s3", endpoint_url=endpoint).get_object(Bucket=bucket, Key=index)["Body"].read()
"""


def hashed_name(stem: str, extension: str, content: bytes) -> str:
    return f"{stem}.{hashlib.md5(content, usedforsecurity=False).hexdigest()[:12]}.{extension}"


def make_release(files: int, seed: int) -> dict[str, bytes]:
    """A collectstatic-like tree: hashed css/js/svg/png files of 0.2-30 KB."""
    generator = random.Random(seed)
    tree: dict[str, bytes] = {}
    kinds = [("css", "css"), ("js", "js"), ("img", "svg"), ("img", "png")]
    for number in range(files):
        directory, extension = kinds[number % len(kinds)]
        content = generator.randbytes(generator.randint(200, 30_000))
        tree[f"{directory}/f{number}/{hashed_name('file', extension, content)}"] = content
    return tree


def change_some(tree: dict[str, bytes], share: float, seed: int) -> dict[str, bytes]:
    """The next release: `share` of the files changed, so renamed by their new hash."""
    generator = random.Random(seed)
    changed = dict(tree)
    for name in generator.sample(sorted(tree), round(len(tree) * share)):
        directory, _, old = name.rpartition("/")
        extension = old.rsplit(".", 1)[-1]
        content = generator.randbytes(len(tree[name]))
        del changed[name]
        changed[f"{directory}/{hashed_name('file', extension, content)}"] = content
    return changed


def write_tree(root: Path, tree: dict[str, bytes]) -> Path:
    for name, content in tree.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


class Server:
    """The moto server, and how many requests it has answered (its access log)."""

    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.log = work / "moto.log"
        self.process = start_process(
            [str(BIN / "moto_server"), "-H", LOOPBACK, "-p", str(self.port)], self.log, env=env
        )
        wait_for_port(self.port, 30, self.process)
        self.endpoint = f"http://{LOOPBACK}:{self.port}"

    def requests(self) -> int:
        """Requests answered so far, once the log has caught up with the last response."""
        count = -1
        while True:
            now = len(REQUEST_LINE.findall(self.log.read_bytes()))
            if now == count:
                return count
            count = now
            time.sleep(0.2)


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds, and the CPU seconds the process used (steadier on a busy machine)."""
    run = succeeded(run_timed(command, env=env), command[:3])
    return run.wall, run.cpu


def delete_keys(s3: Any, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), 1000):
        batch = [{"Key": key} for key in keys[start : start + 1000]]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})


def aws_cli_reason() -> str | None:
    """Why `aws s3 sync` is not measured, or None when it is."""
    if not (BIN / "aws").exists():
        return f"no aws CLI at {BIN / 'aws'} (pip install awscli)"
    return None


def median_ratio(subject: list[float], floor: list[float]) -> tuple[float, float, float]:
    top, bottom = statistics.median(subject), statistics.median(floor)
    return top, bottom, top / bottom


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--changed", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-static-"))
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")} | {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(work / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(work / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    os.environ.update({key: value for key, value in env.items() if key.startswith("AWS_")})
    server = Server(work, env)
    try:
        return run_rounds(args, work, env, server)
    finally:
        stop_process(server.process)
        shutil.rmtree(work, ignore_errors=True)


def run_rounds(args: argparse.Namespace, work: Path, env: dict[str, str], server: Server) -> int:
    first = make_release(args.files, seed=1)
    second = change_some(first, args.changed, seed=2)
    one, two = write_tree(work / "release-1", first), write_tree(work / "release-2", second)
    new_keys = sorted(PREFIX + name for name in set(second) - set(first))
    k = len(new_keys)
    s3 = boto3.client("s3", endpoint_url=server.endpoint)
    ours, theirs, floor = "bench-publish", "bench-aws-sync", "bench-floor"
    for bucket in (ours, theirs, floor):
        s3.create_bucket(Bucket=bucket)

    at = ["--endpoint-url", server.endpoint]
    aws_reason = aws_cli_reason()

    def publish(source: Path, release: str) -> list[str]:
        return [
            *[str(BIN / "pulumi-django"), "publish-static", "--bucket", ours, "--source"],
            *[str(source), "--release", release, *at],
        ]

    def sync(source: Path) -> list[str]:
        return [str(BIN / "aws"), "s3", "sync", str(source), f"s3://{theirs}/{PREFIX}", *at]

    python = [sys.executable, "-c"]
    puts = [*python, BARE_PUTS, server.endpoint, floor, str(DEFAULT_WORKERS)]
    bare_puts = [*puts, "no-list", str(two), *new_keys]
    listing_puts = [*puts, "list", str(two), *new_keys]
    bare_reads = [*python, BARE_READS, server.endpoint, ours, index_key(PREFIX)]

    seeded, _ = timed(publish(one, "r1"), env)
    release_one_index = s3.get_object(Bucket=ours, Key=index_key(PREFIX))["Body"].read()
    if aws_reason is None:
        timed([*sync(one), "--only-show-errors"], env)
    # The floor's bucket holds release 1 too, so that its listing is as long as the publish's.
    timed([*puts, "no-list", str(one), *sorted(PREFIX + name for name in first)], env)

    times: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    requests: dict[str, int] = {}

    def measure(name: str, command: list[str], then: Callable[[], None] | None = None) -> None:
        before = server.requests()
        elapsed, used = timed(command, env)
        times.setdefault(name, []).append(elapsed)
        cpu.setdefault(name, []).append(used)
        requests[name] = server.requests() - before
        if then:
            then()

    def floor_back() -> None:
        delete_keys(s3, floor, new_keys)

    for round_number in range(args.rounds):
        changed: list[tuple[str, list[str], Callable[[], None] | None]] = [
            ("changed", publish(two, "r2"), None),
            ("changed floor", bare_puts, floor_back),
            ("changed listing floor", listing_puts, floor_back),
        ]
        noop: list[tuple[str, list[str], Callable[[], None] | None]] = [
            ("noop", publish(two, "r2"), None),
            ("noop floor", bare_reads, None),
        ]
        if aws_reason is None:
            changed.append(("aws changed", [*sync(two), "--only-show-errors"], None))
            noop.append(("aws noop", [*sync(two), "--only-show-errors"], None))
        if round_number % 2:
            changed.reverse()
            noop.reverse()
        for name, command, then in [*changed, *noop]:
            measure(name, command, then)
        # Back to release 1 alone.
        delete_keys(s3, ours, new_keys)
        s3.put_object(Bucket=ours, Key=index_key(PREFIX), Body=release_one_index)
        delete_keys(s3, theirs, new_keys)

    listed = len(first)  # release 1's keys: what the incremental publish lists
    bound_changed = k + math.ceil(listed / 1000) + 3
    bound_noop = math.ceil(len(second) / 1000) + 3
    changed_s, changed_floor, changed_ratio = median_ratio(times["changed"], times["changed floor"])
    _, listing_floor, listing_ratio = median_ratio(times["changed"], times["changed listing floor"])
    noop_s, noop_floor, noop_ratio = median_ratio(times["noop"], times["noop floor"])
    cpus = {name: statistics.median(values) for name, values in cpu.items()}

    print(
        f"files: {args.files}, changed: {k}, rounds: {args.rounds} (medians, process start "
        f"included); release 1 published in {seeded:.2f} s"
    )
    print(
        f"incremental publish ({k} new files): {changed_s:.2f} s (CPU {cpus['changed']:.2f} s); "
        f"floor, {k} bare boto3 PUTs at concurrency {DEFAULT_WORKERS}: {changed_floor:.2f} s "
        f"(CPU {cpus['changed floor']:.2f} s), ratio {changed_ratio:.2f}"
    )
    print(
        f"  floor with the listing first ({math.ceil(listed / 1000)} pages): "
        f"{listing_floor:.2f} s (CPU {cpus['changed listing floor']:.2f} s), "
        f"ratio {listing_ratio:.2f}"
    )
    print(
        f"  requests: {requests['changed']} (bound k + ceil(N/1000) + 3 = {bound_changed}, "
        f"N = {listed} keys listed)"
    )
    print(
        f"no-op publish (release 2 again): {noop_s:.2f} s (CPU {cpus['noop']:.2f} s); floor, "
        f"the same read from bare boto3: {noop_floor:.2f} s (CPU {cpus['noop floor']:.2f} s), "
        f"ratio {noop_ratio:.2f}"
    )
    print(
        f"  requests: {requests['noop']} (bound ceil(N/1000) + 3 = {bound_noop}, "
        f"N = {len(second)} files; the bucket holds {len(set(first) | set(second))} keys)"
    )
    aws: dict[str, float] | None = None
    if aws_reason is None:
        aws_changed = statistics.median(times["aws changed"])
        aws_noop = statistics.median(times["aws noop"])
        aws = {"changed_seconds": round(aws_changed, 3), "noop_seconds": round(aws_noop, 3)}
        print(
            f"aws s3 sync (reference): incremental {aws_changed:.2f} s (publish-static / sync "
            f"{changed_s / aws_changed:.2f}), no-op {aws_noop:.2f} s "
            f"({noop_s / aws_noop:.2f})"
        )
    else:
        print(f"aws s3 sync (reference): not measured, {aws_reason}")
    print(
        json.dumps(
            {
                "benchmark": "static_publish",
                "ratio": round(changed_ratio, 3),
                "files": args.files,
                "changed": k,
                "rounds": args.rounds,
                "changed_seconds": round(changed_s, 3),
                "changed_cpu_seconds": round(cpus["changed"], 3),
                "changed_floor_cpu_seconds": round(cpus["changed floor"], 3),
                "changed_floor_seconds": round(changed_floor, 3),
                "changed_listing_floor_seconds": round(listing_floor, 3),
                "changed_listing_ratio": round(listing_ratio, 3),
                "changed_requests": requests["changed"],
                "changed_request_bound": bound_changed,
                "noop_seconds": round(noop_s, 3),
                "noop_cpu_seconds": round(cpus["noop"], 3),
                "noop_floor_cpu_seconds": round(cpus["noop floor"], 3),
                "noop_floor_seconds": round(noop_floor, 3),
                "noop_ratio": round(noop_ratio, 3),
                "noop_requests": requests["noop"],
                "noop_request_bound": bound_noop,
                "aws_s3_sync": aws,
                "aws_s3_sync_skipped": aws_reason,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
