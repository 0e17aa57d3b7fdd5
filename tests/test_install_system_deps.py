"""scripts/install-system-deps.sh (the first step of `make test` and `make demo`), run as it is
on a machine where the packages look missing: a private mount namespace hides the real
servers (/usr/sbin, PostgreSQL's binaries) and a PATH of stand-ins holds no package but
stand-in `apt-get` and `dpkg`, which record what the script asked for.

CI runs on a machine that already has every package, so without these tests it could never
see a broken install path (a pre-existing /usr/sbin/policy-rc.d once made the script exit 1
after installing everything)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "install-system-deps.sh"
BASH = shutil.which("bash") or "/bin/bash"
POLICY = "/usr/sbin/policy-rc.d"
IMAGE_POLICY = "#!/bin/sh\n# the container image's own policy\nexit 101\n"
ALL_PACKAGES = [
    "nginx",
    "caddy",
    "redis-server",
    "wget",
    "postgresql",
    "postgresql-client",
    "nodejs",
    "npm",
]
# Real tools the script itself uses (not packages it checks for).
TOOLS = ("tee", "chmod", "rm", "cat", "python3")

# apt-get: logs its arguments and whether policy-rc.d was in place; `install` marks each
# package installed (except those listed in $BROKEN). dpkg -s: succeeds for marked packages.
APT_GET = """#!{bash}
echo "apt-get $* policy=$([ -e {policy} ] && echo yes || echo no)" >> {state}/calls.log
if [ "$1" = install ]; then
  for word in "$@"; do
    case " $BROKEN " in *" $word "*) continue ;; esac
    : > "{state}/installed-$word"
  done
fi
"""
DPKG = """#!{bash}
[ "$1" = -s ] && [ -e "{state}/installed-$2" ]
"""

# A user namespace of its own: root inside it (the mounts need it), whoever runs the tests.
HIDDEN_PACKAGES_NAMESPACE = (
    "unshare",
    "--user",
    "--map-root-user",
    "--mount",
    "--propagation",
    "private",
)


def _can_hide_packages() -> bool:
    """unshare(1) exists and the kernel lets this user make a user and mount namespace (some
    container runtimes and hardened hosts forbid it)."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run([*HIDDEN_PACKAGES_NAMESPACE, "true"], capture_output=True, check=False)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(
    not _can_hide_packages(),
    reason="hiding the installed packages needs unshare(1) and user namespaces, which this "
    "host's kernel or container runtime does not allow",
)


def _stand_ins(tmp_path: Path, *, user_id: int = 0) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {"apt-get": APT_GET, "dpkg": DPKG}.items():
        path = bin_dir / name
        path.write_text(body.format(bash=BASH, policy=POLICY, state=tmp_path))
        path.chmod(0o755)
    identity = bin_dir / "id"
    identity.write_text(f"#!{BASH}\necho {user_id}\n")
    identity.chmod(0o755)
    for tool in TOOLS:
        real = shutil.which(tool)
        assert real, f"{tool} is needed to run the script"
        (bin_dir / tool).symlink_to(real)
    return bin_dir


def _run(
    tmp_path: Path, bin_dir: Path, *, policy: str | None, broken: str = ""
) -> tuple[subprocess.CompletedProcess[str], str | None]:
    """Runs the script with the real packages hidden; returns its result and policy-rc.d as it
    was left (None: absent)."""
    preset = f"printf %s {_quote(policy)} > {POLICY} && chmod +x {POLICY} && " if policy else ""
    hide = (
        "mount -t tmpfs tmpfs /usr/sbin && "
        "{ [ ! -d /usr/lib/postgresql ] || mount -t tmpfs tmpfs /usr/lib/postgresql; } && "
    )
    after = (
        f"; status=$?; [ ! -e {POLICY} ] || cat {POLICY} > {tmp_path}/policy-after; exit $status"
    )
    command = f"{hide}{preset}PATH={bin_dir} BROKEN={_quote(broken)} {BASH} {SCRIPT}{after}"
    result = subprocess.run(
        [*HIDDEN_PACKAGES_NAMESPACE, BASH, "-c", command],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        timeout=60,
    )
    left = tmp_path / "policy-after"
    return result, left.read_text() if left.exists() else None


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_a_pre_existing_policy_rc_d_is_kept_and_the_script_succeeds(tmp_path: Path) -> None:
    bin_dir = _stand_ins(tmp_path)
    result, policy_after = _run(tmp_path, bin_dir, policy=IMAGE_POLICY)
    assert result.returncode == 0, result.stderr
    install = next(call for call in _calls(tmp_path) if call.startswith("apt-get install"))
    assert install.split()[-1] == "policy=yes"
    assert all(f" {package} " in install for package in ALL_PACKAGES)
    assert policy_after == IMAGE_POLICY


def test_a_policy_rc_d_it_creates_holds_during_the_install_and_is_removed(
    tmp_path: Path,
) -> None:
    bin_dir = _stand_ins(tmp_path)
    result, policy_after = _run(tmp_path, bin_dir, policy=None)
    assert result.returncode == 0, result.stderr
    assert [call.split()[0:2] for call in _calls(tmp_path)] == [
        ["apt-get", "update"],
        ["apt-get", "install"],
    ]
    assert all(call.endswith("policy=yes") for call in _calls(tmp_path))
    assert policy_after is None
    assert "installing Debian packages: nginx caddy redis-server" in result.stdout


def test_a_package_that_did_not_install_fails_in_one_line_and_cleans_up(
    tmp_path: Path,
) -> None:
    bin_dir = _stand_ins(tmp_path)
    result, policy_after = _run(tmp_path, bin_dir, policy=None, broken="caddy")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["error: caddy did not install"]
    assert policy_after is None


def test_without_root_or_sudo_it_says_what_to_install(tmp_path: Path) -> None:
    bin_dir = _stand_ins(tmp_path, user_id=1000)
    result, _ = _run(tmp_path, bin_dir, policy=None)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: missing nginx caddy redis-server")
    assert _calls(tmp_path) == []


def test_nothing_missing_installs_nothing(tmp_path: Path) -> None:
    """On this machine, as CI sees it: every package present, apt-get never called."""
    bin_dir = _stand_ins(tmp_path)
    result = subprocess.run(
        [BASH, str(SCRIPT)],
        capture_output=True,
        text=True,
        env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path)},
        timeout=60,
    )
    if result.stdout:  # this machine lacks a package: the first step of `make test` installs it
        pytest.fail(f"install-system-deps.sh wants to install on this machine: {result.stdout}")
    assert result.returncode == 0, result.stderr
    assert _calls(tmp_path) == []
