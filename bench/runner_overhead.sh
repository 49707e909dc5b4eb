#!/usr/bin/env bash
# Runner overhead: 300 generated migrations (create tables, add columns, indexes, inserts)
# applied to a fresh database by `pgshift up` and, in the same run, by `psql -1 -f` one file
# at a time (the plain-runner baseline).
#
# Run:   bash bench/runner_overhead.sh            (starts its own throwaway cluster)
#        BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bash bench/runner_overhead.sh
#        N=1000 bash bench/runner_overhead.sh      (more migrations)
#        PGSHIFT_BASELINE_BIN=/path/to/older/pgshift bash bench/runner_overhead.sh
#                                                  (also times an older build on the same
#                                                   migrations, alternating, for a before/after)
# Prints its figures last, one per line: `name: value unit`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
N="${N:-300}"
bench_build
bench_cluster_start

WORK="$(mktemp -d /tmp/pgshift-bench-m.XXXXXX)"
trap 'rm -rf "$WORK"; bench_cluster_stop' EXIT
mkdir -p "$WORK/migrations"
for i in $(seq 1 "$N"); do
    v=$(printf '2024%010d' "$i")
    t=$(( (i - 1) / 4 ))   # every 4 migrations work on one table: create, add column, index, insert
    case $(( (i - 1) % 4 )) in
        0) sql="CREATE TABLE t$t (id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());" ;;
        1) sql="ALTER TABLE t$t ADD COLUMN note text;" ;;
        2) sql="CREATE INDEX t${t}_name_idx ON t$t (name);" ;;
        3) sql="INSERT INTO t$t (id, name) SELECT g, 'n' || g FROM generate_series(1, 100) g;" ;;
    esac
    printf '%s\n' "$sql" > "$WORK/migrations/${v}_m$i.up.sql"
done
touch "$WORK/pgshift.toml"

psql_cmd() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_cmd "$BENCH_URL_BASE/postgres" -c "DROP DATABASE IF EXISTS bench_psql" -c "DROP DATABASE IF EXISTS bench_exact" -c "DROP DATABASE IF EXISTS bench_safe" \
    -c "CREATE DATABASE bench_psql" -c "CREATE DATABASE bench_exact" -c "CREATE DATABASE bench_safe" >/dev/null

# One timed `up` of the migrations into a fresh database: `up_once BIN DB [--exact]`.
up_once() {
    local bin="$1" db="$2"; shift 2
    psql_cmd "$BENCH_URL_BASE/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    local t0; t0=$(now)
    "$bin" up "$@" --database-url "$BENCH_URL_BASE/$db" --dir "$WORK/migrations" >/dev/null 2>&1
    echo "$(now) - $t0" | bc -l
}

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

if [ -n "${PGSHIFT_BASELINE_BIN:-}" ]; then
    # Before/after: this build and the baseline build in turn, three times each; medians.
    ROUNDS="${ROUNDS:-3}"
    new_times=(); old_times=()
    for _ in $(seq 1 "$ROUNDS"); do
        new_times+=("$(up_once "$PGSHIFT_BIN" bench_ab_new)")
        old_times+=("$(up_once "$PGSHIFT_BASELINE_BIN" bench_ab_old)")
    done
    median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
    new_med=$(median "${new_times[@]}"); old_med=$(median "${old_times[@]}")
    psql_cmd "$BENCH_URL_BASE/postgres" -c "DROP DATABASE IF EXISTS bench_ab_new" -c "DROP DATABASE IF EXISTS bench_ab_old" >/dev/null
fi

printf 'migrations: %d count\n' "$N"
printf 'psql_one_by_one: %.3f s\n' "$psql_s"
printf 'pgshift_up_exact: %.3f s\n' "$exact_s"
printf 'pgshift_up_safe_rewrites: %.3f s\n' "$safe_s"
printf 'ratio_exact_vs_psql: %.2f x\n' "$(echo "$exact_s / $psql_s" | bc -l)"
printf 'ratio_safe_vs_psql: %.2f x\n' "$(echo "$safe_s / $psql_s" | bc -l)"
printf 'pgshift_per_migration: %.2f ms\n' "$(echo "$exact_s * 1000 / $N" | bc -l)"
if [ -n "${PGSHIFT_BASELINE_BIN:-}" ]; then
    printf 'pgshift_up_safe_median: %.3f s\n' "$new_med"
    printf 'baseline_up_safe_median: %.3f s\n' "$old_med"
    printf 'ratio_up_vs_baseline: %.2f x\n' "$(echo "$new_med / $old_med" | bc -l)"
fi
