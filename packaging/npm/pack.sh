#!/usr/bin/env bash
# Packs the npm packages for one platform from a built binary:
#
#   packaging/npm/pack.sh linux-x64 target/release/pgshift OUT_DIR
#
# writes OUT_DIR/pgshift-<version>.tgz (the launcher) and OUT_DIR/pgshift-linux-x64-<version>.tgz
# (the binary), ready for `npm install` or `npm publish`. The binary is copied into a staging
# copy of packaging/npm/<platform>; nothing in the repository is written.
set -euo pipefail

platform="${1:-}"
binary="${2:-}"
out="${3:-}"
here="$(cd "$(dirname "$0")" && pwd)"
if [[ -z "$platform" || -z "$binary" || -z "$out" ]]; then
  echo "usage: $0 PLATFORM BINARY OUT_DIR   (PLATFORM: a folder of $here, e.g. linux-x64)" >&2
  exit 2
fi
[[ -f "$here/$platform/package.json" ]] || { echo "$0: no $here/$platform/package.json" >&2; exit 2; }
[[ -x "$binary" ]] || { echo "$0: $binary is not an executable file" >&2; exit 2; }
command -v npm >/dev/null || { echo "$0: npm is needed (apt-get install npm)" >&2; exit 1; }

mkdir -p "$out"
out="$(cd "$out" && pwd)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp -R "$here/$platform" "$stage/$platform"
mkdir -p "$stage/$platform/bin"
cp "$binary" "$stage/$platform/bin/pgshift"
chmod 755 "$stage/$platform/bin/pgshift"
cp -R "$here/pgshift" "$stage/pgshift"
(cd "$stage/$platform" && npm pack --silent --pack-destination "$out" >/dev/null)
(cd "$stage/pgshift" && npm pack --silent --pack-destination "$out" >/dev/null)
ls "$out"/*.tgz
