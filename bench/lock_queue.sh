#!/usr/bin/env bash
# Lock-queue benchmark: what a schema change does to an application's writes.
#
# A table of 1 million rows; a writer (pgbench, custom script, fixed rate with -R, 4 clients)
# updating random rows and logging every transaction's latency (measured from its scheduled
# start, so time spent queued counts). Scenarios, each under a fresh writer run:
#   baseline        the writer alone
#   alter_plain     a 5 s transaction holds ACCESS SHARE; `ALTER TABLE ... ADD COLUMN` through
#                   psql with no lock_timeout (it queues behind the reader, writes queue behind it)
#   alter_pgshift   the same, through `pgshift up` (lock_timeout + retry, lock-queue guard)
#   index_plain     `CREATE INDEX` through psql (SHARE lock: writes wait for the whole build)
#   index_pgshift   the same migration through `pgshift up` (rewritten to CONCURRENTLY)
#
# Run:   bash bench/lock_queue.sh                      (starts its own throwaway cluster)
#        BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bash bench/lock_queue.sh
#        PGSHIFT_BIN=target/debug/pgshift PGSHIFT_BIN_PREBUILT=1 bash bench/lock_queue.sh
#        RATE=200 ROWS=1000000 bash bench/lock_queue.sh
# Needs psql and pgbench (found next to the server binaries). Prints its figures last, one
# per line: `name: value unit`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RATE="${RATE:-200}"
ROWS="${ROWS:-1000000}"
HOLD_SECONDS="${HOLD_SECONDS:-5}"
bench_build
bench_cluster_start

WORK="$(mktemp -d /tmp/pgshift-bench-lq.XXXXXX)"
chmod 777 "$WORK"
trap 'rm -rf "$WORK"; bench_cluster_stop' EXIT
DB="$BENCH_URL_BASE/bench_lock_queue"
psql_cmd() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_cmd "$BENCH_URL_BASE/postgres" -c "DROP DATABASE IF EXISTS bench_lock_queue" -c "CREATE DATABASE bench_lock_queue" >/dev/null
psql_cmd "$DB" -c "CREATE TABLE bench_items (id int PRIMARY KEY, v int NOT NULL, payload text)" \
    -c "INSERT INTO bench_items SELECT g, 0, md5(g::text) FROM generate_series(1, $ROWS) g" \
    -c "VACUUM ANALYZE bench_items" >/dev/null

cat > "$WORK/writer.sql" <<EOF
\set id random(1, $ROWS)
UPDATE bench_items SET v = v + 1 WHERE id = :id;
EOF

mkdir -p "$WORK/alter" "$WORK/index"
printf 'ALTER TABLE bench_items ADD COLUMN shifted_note text;\n' > "$WORK/alter/20240101000000_add_note.up.sql"
printf 'CREATE INDEX bench_items_v_shift_idx ON bench_items (v);\n' > "$WORK/index/20240102000000_index_v.up.sql"
: > "$WORK/pgshift.toml"

# writer NAME SECONDS: runs pgbench in the background, logging per-transaction latency.
writer() {
    (cd "$WORK" && "$PG_BIN/pgbench" -n -c 4 -j 2 -R "$RATE" -T "$2" -f writer.sql -l --log-prefix="$1" "$DB" \
        > "$WORK/$1.out" 2>&1) &
    WRITER_PID=$!
}

# latency NAME: p99 and max per-transaction latency in ms from pgbench's logs.
latency() {
    # Under -R, pgbench's `time` (field 3) is measured from the scheduled start, so it already
    # holds the schedule lag (field 7) of a transaction whose client was stuck behind a lock:
    # adding the lag again counted that wait twice (checked on PostgreSQL 15: a transaction
    # queued 2.48 s behind an ACCESS EXCLUSIVE logs time 2,478,532 us, lag 2,477,989 us). Figures
    # printed before 2026-11-28 were up to 2x too high for the scenarios that queue.
    cat "$WORK/$1".[0-9]* 2>/dev/null | awk '{print $3}' | sort -n > "$WORK/$1.lat"
    local n
    n=$(wc -l < "$WORK/$1.lat")
    if [ "$n" -eq 0 ]; then echo "0 0 0"; return; fi
    local p99_idx=$(( (n * 99 + 99) / 100 ))
    local p99 max
    p99=$(sed -n "${p99_idx}p" "$WORK/$1.lat")
    max=$(tail -n 1 "$WORK/$1.lat")
    echo "$(echo "$p99 / 1000" | bc -l) $(echo "$max / 1000" | bc -l) $n"
}

# holder: a transaction holding ACCESS SHARE on the table for HOLD_SECONDS.
holder() {
    psql_cmd "$DB" -c "BEGIN" -c "SELECT 1 FROM bench_items LIMIT 1" -c "SELECT pg_sleep($HOLD_SECONDS)" -c "COMMIT" >/dev/null &
    HOLDER_PID=$!
}

run_pgshift() {
    (cd "$WORK" && "$PGSHIFT_BIN" up --database-url "$DB" --dir "$1" --dir-format pgshift) >> "$WORK/pgshift.log" 2>&1
}

declare -A FIG

scenario() {
    local name=$1 kind=$2
    writer "$name" 12
    sleep 2
    local start end
    case "$kind" in
        baseline) ;;
        alter_plain)
            holder; sleep 0.5
            start=$(now)
            psql_cmd "$DB" -c "ALTER TABLE bench_items ADD COLUMN plain_note text" >/dev/null
            end=$(now) ;;
        alter_pgshift)
            holder; sleep 0.5
            start=$(now); run_pgshift "$WORK/alter"; end=$(now) ;;
        index_plain)
            start=$(now)
            psql_cmd "$DB" -c "CREATE INDEX bench_items_v_plain_idx ON bench_items (v)" >/dev/null
            end=$(now) ;;
        index_pgshift)
            start=$(now); run_pgshift "$WORK/index"; end=$(now) ;;
    esac
    if [ -n "${HOLDER_PID:-}" ]; then wait "$HOLDER_PID" || true; HOLDER_PID=; fi
    wait "$WRITER_PID" || { cat "$WORK/$name.out" >&2; exit 1; }
    read -r p99 max n < <(latency "$name")
    FIG[$name.p99]=$p99; FIG[$name.max]=$max; FIG[$name.n]=$n
    if [ "$kind" != baseline ]; then FIG[$name.duration]=$(echo "$end - $start" | bc -l); fi
}

for s in baseline alter_plain alter_pgshift index_plain index_pgshift; do
    echo "running $s ..." >&2
    scenario "$s" "$s"
done

echo "--- pgshift log ---" >&2
cat "$WORK/pgshift.log" >&2
printf 'rows: %d rows\nwriter_rate: %d tx/s\nholder: %d s\n' "$ROWS" "$RATE" "$HOLD_SECONDS"
for s in baseline alter_plain alter_pgshift index_plain index_pgshift; do
    printf '%s_writer_transactions: %d tx\n' "$s" "${FIG[$s.n]}"
    printf '%s_writer_p99: %.1f ms\n' "$s" "${FIG[$s.p99]}"
    printf '%s_writer_max: %.1f ms\n' "$s" "${FIG[$s.max]}"
    if [ -n "${FIG[$s.duration]:-}" ]; then printf '%s_migration: %.2f s\n' "$s" "${FIG[$s.duration]}"; fi
done
