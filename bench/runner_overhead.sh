#!/usr/bin/env bash
# Runner overhead: 300 generated migrations (create tables, add columns, indexes, inserts,
# each with its down) applied to a fresh database by `pgshift up` and, in the same run, by
# `psql -1 -f` one file at a time (the plain-runner baseline) and by sqlx-cli (`sqlx migrate
# run`, then `sqlx migrate revert --target-version 0` against `pgshift down --all`): the peer a
# Rust team would pick instead. Up and down are timed ROUNDS times each (default 5), the tools
# alternating; the medians are compared, and so is the median of each round's own ratio.
#
# sqlx-cli: found on PATH, as $SQLX, or in target/tools/bin; otherwise installed there with
#   cargo install sqlx-cli --no-default-features --features rustls,postgres --root target/tools
# (a few minutes, once). SQLX=none skips the peer, and the script says so.
#
# Run:   bash bench/runner_overhead.sh            (starts its own throwaway cluster)
#        BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bash bench/runner_overhead.sh
#        N=1000 bash bench/runner_overhead.sh      (more migrations)
#        DIR=/path/to/migrations bash bench/runner_overhead.sh
#                                                  (a real folder of *.up.sql / *.down.sql instead
#                                                   of the generated one, read in its own format;
#                                                   the notes' figures use coder/coder's 269, see
#                                                   bench/verify_real.sh)
#        PGSHIFT_BASELINE_BIN=/path/to/older/pgshift bash bench/runner_overhead.sh
#                                                  (also times an older build's up and down on
#                                                   the same migrations, alternating, for a
#                                                   before/after)
# Prints its figures last, one per line: `name: value unit`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
N="${N:-300}"
bench_build
bench_cluster_start

WORK="$(mktemp -d /tmp/pgshift-bench-m.XXXXXX)"
trap 'rm -rf "$WORK"; bench_cluster_stop' EXIT
mkdir -p "$WORK/migrations"
if [ -n "${DIR:-}" ]; then
    cp "$DIR"/*.up.sql "$DIR"/*.down.sql "$WORK/migrations/"
    N=$(ls "$WORK"/migrations/*.up.sql | wc -l)
fi
for i in $(seq 1 "$([ -n "${DIR:-}" ] && echo 0 || echo "$N")"); do
    v=$(printf '2024%010d' "$i")
    t=$(( (i - 1) / 4 ))   # every 4 migrations work on one table: create, add column, index, insert
    case $(( (i - 1) % 4 )) in
        0) sql="CREATE TABLE t$t (id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());"
           down="DROP TABLE t$t;" ;;
        1) sql="ALTER TABLE t$t ADD COLUMN note text;"; down="ALTER TABLE t$t DROP COLUMN note;" ;;
        2) sql="CREATE INDEX t${t}_name_idx ON t$t (name);"; down="DROP INDEX t${t}_name_idx;" ;;
        3) sql="INSERT INTO t$t (id, name) SELECT g, 'n' || g FROM generate_series(1, 100) g;"
           down="DELETE FROM t$t;" ;;
    esac
    printf '%s\n' "$sql" > "$WORK/migrations/${v}_m$i.up.sql"
    printf '%s\n' "$down" > "$WORK/migrations/${v}_m$i.down.sql"
done
[ -n "${DIR:-}" ] || touch "$WORK/pgshift.toml"

psql_cmd() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_cmd "$BENCH_URL_BASE/postgres" -c "DROP DATABASE IF EXISTS bench_psql" -c "DROP DATABASE IF EXISTS bench_exact" -c "DROP DATABASE IF EXISTS bench_safe" \
    -c "CREATE DATABASE bench_psql" -c "CREATE DATABASE bench_exact" -c "CREATE DATABASE bench_safe" >/dev/null


start=$(now)
for f in "$WORK"/migrations/*.up.sql; do psql_cmd "$BENCH_URL_BASE/bench_psql" -1 -f "$f" >/dev/null; done
psql_s=$(echo "$(now) - $start" | bc -l)

start=$(now)
"$PGSHIFT_BIN" up --exact --database-url "$BENCH_URL_BASE/bench_exact" --dir "$WORK/migrations" >/dev/null 2>&1
exact_s=$(echo "$(now) - $start" | bc -l)

start=$(now)
"$PGSHIFT_BIN" up --database-url "$BENCH_URL_BASE/bench_safe" --dir "$WORK/migrations" >/dev/null 2>&1
safe_s=$(echo "$(now) - $start" | bc -l)

applied=$(psql_cmd -At "$BENCH_URL_BASE/bench_exact" -c "SELECT count(*) FROM pgshift.migrations")
[ "$applied" = "$N" ] || { echo "pgshift applied $applied of $N migrations" >&2; exit 1; }

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ROUNDS="${ROUNDS:-5}"

# The peer: sqlx-cli, found or installed (never skipped without saying so).
SQLX="${SQLX:-$(command -v sqlx || true)}"
if [ -z "$SQLX" ] && [ -x "$REPO_ROOT/target/tools/bin/sqlx" ]; then SQLX="$REPO_ROOT/target/tools/bin/sqlx"; fi
if [ -z "$SQLX" ]; then
    echo "sqlx-cli not found: installing it into target/tools (once; SQLX=none skips the peer)" >&2
    cargo install sqlx-cli --no-default-features --features rustls,postgres --locked \
        --root "$REPO_ROOT/target/tools" >&2 && SQLX="$REPO_ROOT/target/tools/bin/sqlx"
fi
if [ "$SQLX" = none ] || [ ! -x "$SQLX" ]; then
    echo "sqlx-cli is missing: the sqlx figures are left out of this run" >&2
    SQLX=""
fi

# One timed whole-process command: `timed CMD...` prints seconds; fails the bench if it fails.
timed() {
    local t0; t0=$(now)
    "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
    echo "$(now) - $t0" | bc -l
}
fresh() { psql_cmd "$BENCH_URL_BASE/postgres" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null; }

up_s=(); down_s=(); sqlx_up_s=(); sqlx_down_s=(); old_s=(); old_down_s=()
for _ in $(seq 1 "$ROUNDS"); do
    fresh bench_up
    up_s+=("$(timed "$PGSHIFT_BIN" up --database-url "$BENCH_URL_BASE/bench_up" --dir "$WORK/migrations")")
    down_s+=("$(timed "$PGSHIFT_BIN" down --all --database-url "$BENCH_URL_BASE/bench_up" --dir "$WORK/migrations")")
    if [ -n "$SQLX" ]; then
        fresh bench_sqlx
        sqlx_up_s+=("$(timed "$SQLX" migrate run --database-url "$BENCH_URL_BASE/bench_sqlx" --source "$WORK/migrations")")
        sqlx_down_s+=("$(timed "$SQLX" migrate revert --target-version 0 --database-url "$BENCH_URL_BASE/bench_sqlx" --source "$WORK/migrations")")
    fi
    if [ -n "${PGSHIFT_BASELINE_BIN:-}" ]; then
        fresh bench_old
        old_s+=("$(timed "$PGSHIFT_BASELINE_BIN" up --database-url "$BENCH_URL_BASE/bench_old" --dir "$WORK/migrations")")
        old_down_s+=("$(timed "$PGSHIFT_BASELINE_BIN" down --all --database-url "$BENCH_URL_BASE/bench_old" --dir "$WORK/migrations")")
    fi
done
left=$(psql_cmd -At "$BENCH_URL_BASE/bench_up" -c "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace")
[ "$left" = 0 ] || { echo "pgshift down --all left $left relations" >&2; exit 1; }
for db in bench_up bench_sqlx bench_old bench_psql bench_exact bench_safe; do
    psql_cmd "$BENCH_URL_BASE/postgres" -c "DROP DATABASE IF EXISTS $db" >/dev/null
done

up_med=$(median "${up_s[@]}"); down_med=$(median "${down_s[@]}")

printf 'migrations: %d count\n' "$N"
printf 'psql_one_by_one: %.3f s\n' "$psql_s"
printf 'pgshift_up_exact: %.3f s\n' "$exact_s"
printf 'pgshift_up_safe_rewrites: %.3f s\n' "$safe_s"
printf 'ratio_exact_vs_psql: %.2f x\n' "$(echo "$exact_s / $psql_s" | bc -l)"
printf 'ratio_safe_vs_psql: %.2f x\n' "$(echo "$safe_s / $psql_s" | bc -l)"
printf 'pgshift_per_migration: %.2f ms\n' "$(echo "$exact_s * 1000 / $N" | bc -l)"
printf 'pgshift_up_median: %.3f s\n' "$up_med"
printf 'pgshift_down_all_median: %.3f s\n' "$down_med"
if [ -n "$SQLX" ]; then
    sqlx_up_med=$(median "${sqlx_up_s[@]}"); sqlx_down_med=$(median "${sqlx_down_s[@]}")
    printf 'sqlx_up_median: %.3f s\n' "$sqlx_up_med"
    printf 'sqlx_revert_all_median: %.3f s\n' "$sqlx_down_med"
    printf 'ratio_up_vs_sqlx: %.2f x\n' "$(echo "$up_med / $sqlx_up_med" | bc -l)"
    printf 'ratio_down_vs_sqlx: %.2f x\n' "$(echo "$down_med / $sqlx_down_med" | bc -l)"
    # The median of each round's own ratio: the two tools ran back to back, so a slow minute of
    # this shared machine weighs on both sides of a round's ratio alike.
    paired() { local -n a=$1 b=$2; local r=(); for i in "${!a[@]}"; do r+=("$(echo "${a[$i]} / ${b[$i]}" | bc -l)"); done; median "${r[@]}"; }
    printf 'ratio_up_vs_sqlx_paired: %.2f x\n' "$(paired up_s sqlx_up_s)"
    printf 'ratio_down_vs_sqlx_paired: %.2f x\n' "$(paired down_s sqlx_down_s)"
fi
if [ -n "${PGSHIFT_BASELINE_BIN:-}" ]; then
    old_med=$(median "${old_s[@]}")
    printf 'baseline_up_median: %.3f s\n' "$old_med"
    printf 'ratio_up_vs_baseline: %.2f x\n' "$(echo "$up_med / $old_med" | bc -l)"
    old_down_med=$(median "${old_down_s[@]}")
    printf 'baseline_down_all_median: %.3f s\n' "$old_down_med"
    printf 'ratio_down_vs_baseline: %.2f x\n' "$(echo "$down_med / $old_down_med" | bc -l)"
fi
