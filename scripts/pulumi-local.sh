#!/usr/bin/env bash
# `make up` / `make down`: the `local` stack on this machine's Docker engine, with Pulumi's local
# file backend (the state `pulumi login --local` uses, in ~/.pulumi) and no cloud account.
#
#   scripts/pulumi-local.sh up|preview|destroy|refresh [more pulumi flags, e.g. --yes]
#
# Secrets (the generated database and Redis passwords, the Django key) are encrypted with
# PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE). When neither is set, this stack
# uses an empty passphrase: its secrets only protect throwaway containers on 127.0.0.1.
# docs/local-docker.md explains both choices.
set -euo pipefail

STACK=local
say() { echo "pulumi-local: $*" >&2; }

case "${1:-}" in
  up | preview | destroy | refresh) action=$1; shift ;;
  *)
    say "usage: scripts/pulumi-local.sh up|preview|destroy|refresh [pulumi flags]"
    exit 2
    ;;
esac
case "$action" in
  up) again="make up" ;;
  destroy) again="make down" ;;
  *) again="scripts/pulumi-local.sh $action" ;;
esac

if ! command -v pulumi >/dev/null 2>&1; then
  say "the Pulumi CLI is not installed (no \`pulumi\` on PATH)."
  say "Install it (https://www.pulumi.com/docs/install/), open a new shell, then run $again again."
  exit 1
fi
if ! command -v docker >/dev/null 2>&1; then
  say "Docker is not installed (no \`docker\` on PATH); the local stack runs on a Docker engine."
  say "Install Docker Desktop or Docker Engine, then run $again again."
  exit 1
fi
if ! docker info >/dev/null 2>&1; then
  say "Docker is installed but its engine does not answer (\`docker info\` failed)."
  say "Start Docker Desktop (or the docker service), then run $again again."
  exit 1
fi

# pulumi-docker talks to DOCKER_HOST; take the docker CLI's current context when it is unset.
if [ -z "${DOCKER_HOST:-}" ]; then
  context_host=$(docker context inspect --format '{{.Endpoints.docker.Host}}' 2>/dev/null || true)
  if [ -n "$context_host" ]; then
    export DOCKER_HOST=$context_host
  fi
fi

# What `pulumi login --local` selects, for these commands only: other projects keep their login.
export PULUMI_BACKEND_URL="file://~"
if [ -z "${PULUMI_CONFIG_PASSPHRASE+set}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  say "PULUMI_CONFIG_PASSPHRASE is not set: the $STACK stack's secrets use an empty passphrase."
  export PULUMI_CONFIG_PASSPHRASE=""
fi

here=${BASH_SOURCE[0]%/*}
[ "$here" != "${BASH_SOURCE[0]}" ] || here=.
cd "$here/.."
pulumi stack select --create "$STACK" --non-interactive
exec pulumi "$action" --stack "$STACK" "$@"
