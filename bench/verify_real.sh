#!/usr/bin/env bash
# `pgshift verify` on a real migration folder against a psql replay of the same folder (every
# up, every down in reverse, every up again; one psql per file, as a CI shell loop does), in
# one run, alternating ROUNDS times (default 3). verify runs as a user runs it, on a throwaway
# cluster of its own (its start-up counted), with the lock trace; the replay on a cluster the
# script starts once (not counted).
#
# The folder is not in this repository. The one the figures in the notes come from is
# coder/coder's coderd/database/migrations at commit 343f8ec9abe6d4bcdca7ee2f8181edc25245b964
# (269 golang-migrate migrations with downs; the replay passes on PostgreSQL 15). Any folder
# of *.up.sql / *.down.sql files whose replay passes will do.
#
# Run:   DIR=/path/to/migrations bash bench/verify_real.sh
#        DIR=... ROUNDS=5 PGSHIFT_BIN=target/release/pgshift PGSHIFT_BIN_PREBUILT=1 bash bench/verify_real.sh
# Prints its figures last, one per line: `name: value unit`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
: "${DIR:?DIR must name a folder of .up.sql/.down.sql migrations (see the header)}"
ROUNDS="${ROUNDS:-3}"
bench_build
bench_cluster_start

WORK="$(mktemp -d /tmp/pgshift-bench-vr.XXXXXX)"
trap 'rm -rf "$WORK"; bench_cluster_stop' EXIT
mapfile -t ups < <(ls "$DIR"/*.up.sql | sort)
mapfile -t downs < <(ls "$DIR"/*.down.sql | sort -r)
count=${#ups[@]}

psql_cmd() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 "$@"; }
replay() {
    psql_cmd "$BENCH_URL_BASE/postgres" -c "DROP DATABASE IF EXISTS bench_replay" -c "CREATE DATABASE bench_replay" >/dev/null
    local t0; t0=$(now)
    for f in "${ups[@]}" "${downs[@]}" "${ups[@]}"; do
        psql_cmd "$BENCH_URL_BASE/bench_replay" -f "$f" >/dev/null || { echo "the psql replay failed at $f: this folder cannot be the baseline" >&2; exit 1; }
    done
    echo "$(now) - $t0" | bc -l
}
verify_once() {
    local t0; t0=$(now)
    # verify exits 1 when it finds broken downs; the run counts if it went through every up.
    "$PGSHIFT_BIN" verify --dir "$DIR" --format json > "$WORK/report.json" 2>"$WORK/verify.err" || true
    local elapsed; elapsed=$(echo "$(now) - $t0" | bc -l)
    python3 - "$WORK/report.json" "$count" <<'PY' || { cat "$WORK/verify.err" >&2; exit 1; }
import json, sys
r = json.load(open(sys.argv[1]))
ups = [m for m in r["migrations"] if m["up"] == "passed"]
if len(ups) != int(sys.argv[2]):
    sys.exit(f"verify applied {len(ups)} of {sys.argv[2]} ups")
PY
    echo "$elapsed"
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
v=(); p=(); r=()
for _ in $(seq 1 "$ROUNDS"); do
    p+=("$(replay)")
    v+=("$(verify_once)")
    r+=("$(echo "${v[-1]} / ${p[-1]}" | bc -l)")
done
broken=$(python3 -c "import json; r=json.load(open('$WORK/report.json')); print(sum(1 for m in r['migrations'] if m['down'] in ('failed','differs')))")

printf 'migrations: %d count\n' "$count"
printf 'downs_reported_broken: %d count\n' "$broken"
printf 'psql_replay_median: %.1f s\n' "$(median "${p[@]}")"
printf 'verify_with_trace_median: %.1f s\n' "$(median "${v[@]}")"
printf 'verify_vs_psql_replay: %.2f x\n' "$(echo "$(median "${v[@]}") / $(median "${p[@]}")" | bc -l)"
printf 'verify_vs_psql_replay_paired: %.2f x\n' "$(median "${r[@]}")"
