"""Incremental static publish vs `aws s3 sync`, on the same data and the same S3 server.

Publishes 2,000 collected files, then a release with 5% of them changed (new hashed names, as
collectstatic gives changed files), once with `pulumi-django publish-static` and once with
`aws s3 sync`, each into its own bucket on one moto server running on loopback in its own
process. Both are timed as a pipeline runs them: one command each, process start included.
Each measurement is repeated and the median printed.

    .venv/bin/python benchmarks/bench_static_publish.py [--files 2000] [--changed 0.05] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pulumi_django.cli.rehearsal.servers import (
    LOOPBACK,
    free_port,
    start_process,
    stop_process,
    wait_for_port,
)

BIN = Path(sys.executable).parent


def hashed_name(stem: str, extension: str, content: bytes) -> str:
    return f"{stem}.{hashlib.md5(content, usedforsecurity=False).hexdigest()[:12]}.{extension}"


def make_release(root: Path, files: int, seed: int) -> dict[str, bytes]:
    """A collectstatic-like tree: hashed css/js/svg/png files of 0.2-30 KB."""
    generator = random.Random(seed)
    tree: dict[str, bytes] = {}
    kinds = [("css", "css"), ("js", "js"), ("img", "svg"), ("img", "png")]
    for number in range(files):
        directory, extension = kinds[number % len(kinds)]
        content = generator.randbytes(generator.randint(200, 30_000))
        tree[f"{directory}/f{number}/{hashed_name('file', extension, content)}"] = content
    write_tree(root, tree)
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


def write_tree(root: Path, tree: dict[str, bytes]) -> None:
    for name, content in tree.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return elapsed, done.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--changed", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=3)
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
    port = free_port()
    server = start_process(
        [str(BIN / "moto_server"), "-H", LOOPBACK, "-p", str(port)], work / "moto.log", env=env
    )
    try:
        wait_for_port(port, 30, server)
        at = ["--endpoint-url", f"http://{LOOPBACK}:{port}"]
        first_tree = make_release(work / "release-1", args.files, seed=1)
        second_tree = change_some(first_tree, args.changed, seed=2)
        write_tree(work / "release-2", second_tree)
        new_files = len(set(second_tree) - set(first_tree))

        results: dict[str, list[float]] = {key: [] for key in ("pd-1", "pd-2", "aws-1", "aws-2")}
        summaries = []
        for round_number in range(args.rounds):
            ours, theirs = f"bench-pd-{round_number}", f"bench-aws-{round_number}"
            for bucket in (ours, theirs):
                timed(
                    [str(BIN / "aws"), "s3api", "create-bucket", "--bucket", bucket, *at],
                    env,
                )
            for release in (1, 2):
                source = str(work / f"release-{release}")
                elapsed, summary = timed(
                    [
                        *[str(BIN / "pulumi-django"), "publish-static", "--bucket", ours],
                        *["--source", source, "--release", f"r{release}", *at],
                    ],
                    env,
                )
                results[f"pd-{release}"].append(elapsed)
                summaries.append(f"release {release}: {summary}")
                elapsed, _ = timed(
                    [
                        *[str(BIN / "aws"), "s3", "sync", source, f"s3://{theirs}/static/"],
                        *[*at, "--only-show-errors"],
                    ],
                    env,
                )
                results[f"aws-{release}"].append(elapsed)

        median = {key: statistics.median(values) for key, values in results.items()}
        print(f"files: {args.files}, changed: {new_files}, rounds: {args.rounds} (medians)")
        print(f"publish-static output: {summaries[0]}; {summaries[1]}")
        print(
            f"full publish:        publish-static {median['pd-1']:.2f} s, "
            f"aws s3 sync {median['aws-1']:.2f} s, ratio {median['pd-1'] / median['aws-1']:.2f}"
        )
        print(
            f"incremental publish: publish-static {median['pd-2']:.2f} s, "
            f"aws s3 sync {median['aws-2']:.2f} s, ratio {median['pd-2'] / median['aws-2']:.2f}"
        )
        print("(ratio = publish-static time / aws s3 sync time; below 1 is faster)")
    finally:
        stop_process(server)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
