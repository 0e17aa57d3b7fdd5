"""The local counterpart of `StaticRelease`: each release's collected static files, published into
a named volume the proxy serves `/static/` from, next to the files of the last `keep` releases.

A one-off container of the new image does it: STATIC_ROOT is in the image, and a named volume is
only reachable from a container (on Docker Desktop it lives inside the VM). It runs
`pulumi_django.static_publish`, the same engine and keep-N rule as the S3 publish, uploaded
into the container with a few lines that call it on the volume. The image's Python must be 3.11+.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pulumi
import pulumi_docker as docker

from pulumi_django import static_publish
from pulumi_django.components.args import arg
from pulumi_django.config.app import AppConfig
from pulumi_django.config.static import StaticConfig
from pulumi_django.providers.local_release import LocalStaticVerdict
from pulumi_django.rendering.proxy import LOCAL_STATIC_MOUNT

# The engine inside the publisher container; /tmp exists in every image.
ENGINE_FILE = "/tmp/pulumi_django_static_publish.py"  # noqa: S108 - the container's own /tmp
ENGINE_MODULE = PurePosixPath(ENGINE_FILE).stem

# Prints the engine's progress, then one JSON line the verdict reads (providers.local_release).
PUBLISHER = f"""\
import json, sys
if sys.version_info < (3, 11):
    sys.exit("static release: the image's Python is %d.%d; publishing needs 3.11 or newer"
             % sys.version_info[:2])
engine_dir, source, target, release, prefix, keep = sys.argv[1:]
sys.path.insert(0, engine_dir)
from pathlib import Path
import {ENGINE_MODULE} as engine
try:
    result = engine.publish(
        engine.DirectoryStorage(Path(target)), Path(source), release,
        prefix=prefix, keep=int(keep), on_progress=engine.progress_printer(print))
except engine.PublishError as error:
    sys.exit("static release: %s" % error)
print(json.dumps({{"release": result.release, **result.counts(),
                  "keptReleases": list(result.kept_releases)}}))
"""


def publisher_command(
    *,
    engine_file: str,
    source: str,
    target: str,
    release_id: pulumi.Input[str],
    prefix: str,
    keep: int,
) -> list[pulumi.Input[str]]:
    """Arguments of `python` that publish `source` into `target` as `release_id`."""
    static_publish.check_layout(prefix, keep)
    engine_dir = str(PurePosixPath(engine_file).parent)
    return ["-c", PUBLISHER, engine_dir, source, target, release_id, prefix, str(keep)]


@dataclass(frozen=True, kw_only=True)
class LocalStaticReleaseArgs:
    """Which image's static files are published, as which release, and how many are kept."""

    image: pulumi.Input[str] = arg(
        "The release's image (an image ID or name): its `app.staticRoot` holds the collected "
        "files, and its Python (3.11+) runs the publisher."
    )
    release_id: pulumi.Input[str] | None = arg(
        "The release's name in the volume's releases index. Default (None): `image`, so every new "
        "image is a new release.",
        default=None,
    )
    config: StaticConfig = arg(
        "The static section: the URL `prefix` the files are published under and "
        "`keepReleases`, how many releases' files stay for replicas still running them. "
        "Default: the section's defaults.",
        default_factory=StaticConfig,
    )
    app: AppConfig = arg(
        "The app section: `staticRoot`, where the image holds the collected files. Default: "
        "the section's defaults.",
        default_factory=AppConfig,
    )


class LocalStaticRelease(pulumi.ComponentResource):
    """The static-files volume and this release's publish into it."""

    volume_name: pulumi.Output[str]
    release_id: pulumi.Output[str]
    kept_releases: pulumi.Output[list[str]]
    volume: docker.Volume
    publisher: docker.Container
    verdict: LocalStaticVerdict

    def __init__(
        self, name: str, args: LocalStaticReleaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pulumi-django:local:StaticRelease", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        release_id = args.image if args.release_id is None else args.release_id
        self.volume = docker.Volume(f"{name}-files", name=f"{name}-files", opts=child)
        engine = Path(static_publish.__file__)
        self.publisher = docker.Container(
            f"{name}-publish",
            image=args.image,
            entrypoints=["python"],
            command=publisher_command(
                engine_file=ENGINE_FILE,
                source=args.app.static_root,
                target=LOCAL_STATIC_MOUNT,
                release_id=release_id,
                prefix=args.config.prefix,
                keep=args.config.keep_releases,
            ),
            envs=["PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"],
            # A fresh named volume belongs to root; the files it gets are world-readable.
            user="0:0",
            network_mode="none",
            volumes=[
                docker.ContainerVolumeArgs(
                    volume_name=self.volume.name, container_path=LOCAL_STATIC_MOUNT
                )
            ],
            # Read from this package at `pulumi up`; the hash makes a changed engine run again.
            uploads=[
                docker.ContainerUploadArgs(
                    file=ENGINE_FILE,
                    source=str(engine),
                    source_hash=hashlib.sha256(engine.read_bytes()).hexdigest(),
                )
            ],
            attach=True,
            logs=True,
            must_run=False,
            opts=child,
        )
        self.verdict = LocalStaticVerdict(
            f"{name}-verdict",
            container=self.publisher,
            release_id=release_id,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.publisher]),
        )
        self.volume_name = self.volume.name
        self.release_id = self.verdict.release_id
        self.kept_releases = self.verdict.kept_releases
        self.register_outputs(
            {
                "volume_name": self.volume_name,
                "release_id": self.release_id,
                "kept_releases": self.kept_releases,
            }
        )
