#!/usr/bin/env bash
# Backfill benchmark: `pgshift backfill` against one plain UPDATE and the seeds' batch loop
# (`UPDATE ... WHERE id IN (SELECT id ... WHERE b IS NULL LIMIT n FOR UPDATE SKIP LOCKED)` +
# pg_sleep), on the same table in the same run, with and without an application writing to it.
#
# Table: bench (id bigint PRIMARY KEY, a int, b int, payload text), ROWS rows; the backfill is
# `SET b = a * 2 WHERE b IS NULL`. Each measurement starts from a fresh copy of the table
# (CREATE DATABASE ... TEMPLATE). Throughput figures are medians of RUNS runs.
#   no load      plain UPDATE, pgshift backfill, the seeds' loop (capped at LOOP_CAP seconds)
#   scaling      pgshift backfill at BIG_ROWS rows vs ROWS rows (medians of RUNS runs each)
#   under load   pgbench (4 clients, fixed rate = half of its measured capacity, updating `a` of
#                random rows, latency logged per transaction) alone, during the plain UPDATE, and
#                during pgshift backfill (defaults, which yield to the load: 10 ms batches, 10%
#                of the time; and --when-busy off, full speed): p99 in the operation's window,
#                failed transactions, and the longest lock wait (log_lock_waits with
#                deadlock_timeout = 20ms). The load's p99 alone swings 2-6 ms from one 20 s window
#                to the next on a shared 2-core machine (and was 19-85 ms in 20 s windows on
#                2026-11-29, against 6-14 ms during a 4-minute yielding backfill: windows are
#                ALONE_SECS, 60 s, now), so "alone" and "during pgshift" are each
#                the median of RUNS windows, taken in turn.
#   partitioned  the same table split into 4 range partitions: plain UPDATE, pgshift backfill
#                (each leaf walked on its own, 2 at once) and --partitions-at-once 1
#   kill -9      pgshift backfill killed KILLS times at random moments, then resumed: rows
#                updated twice (a trigger counts updates per row) and rows still needing it
#
# Run:   bash bench/backfill.sh                             (its own throwaway cluster)
#        ROWS=2000000 BIG_ROWS=8000000 RUNS=3 bash bench/backfill.sh
#        PGSHIFT_BIN=target/release/pgshift PGSHIFT_BIN_PREBUILT=1 bash bench/backfill.sh
#        BF_ARGS="--batch-time 50ms" bash bench/backfill.sh   (extra flags for every
#                                                  pgshift backfill it runs)
# Needs psql and pgbench (next to the server binaries). Prints its figures last, one per
# line: `name: value unit`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ROWS="${ROWS:-2000000}"
BIG_ROWS="${BIG_ROWS:-8000000}"
RUNS="${RUNS:-3}"
KILLS="${KILLS:-10}"
BF_ARGS="${BF_ARGS:-}"
LOOP_CAP="${LOOP_CAP:-60}"
# The load alone is measured for this long (a short window's p99 is a few seconds' hiccup).
ALONE_SECS="${ALONE_SECS:-60}"
bench_build
bench_cluster_start
WORK="$(mktemp -d /tmp/pgshift-bench-bf.XXXXXX)"
chmod 777 "$WORK"
trap 'rm -rf "$WORK"; bench_cluster_stop' EXIT
# Lock waits longer than 20 ms are logged, with how long they took.
q() { PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" psql -X -q -t -A -v ON_ERROR_STOP=1 "$@"; }
q "$BENCH_URL_BASE/postgres" -c "ALTER SYSTEM SET log_lock_waits = on" -c "ALTER SYSTEM SET deadlock_timeout = '20ms'" -c "SELECT pg_reload_conf()" >/dev/null
SERVER_LOG="${BENCH_DIR:+$BENCH_DIR/log}"

# template NAME ROWS: a database holding the table, to copy from.
template() {
    q "$BENCH_URL_BASE/postgres" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
    q "$BENCH_URL_BASE/$1" -c "CREATE TABLE bench (id bigint PRIMARY KEY, a int NOT NULL, b int, payload text)" \
        -c "INSERT INTO bench SELECT g, g % 1000, NULL, md5(g::text) FROM generate_series(1, $2) g" \
        -c "VACUUM ANALYZE bench" >/dev/null
}
# template_partitioned NAME ROWS: the same table, partitioned by id range in 4 leaves.
template_partitioned() {
    q "$BENCH_URL_BASE/postgres" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
    local quarter=$(($2 / 4 + 1))
    q "$BENCH_URL_BASE/$1" -c "CREATE TABLE bench (id bigint PRIMARY KEY, a int NOT NULL, b int, payload text) PARTITION BY RANGE (id)" \
        -c "CREATE TABLE bench_0 PARTITION OF bench FOR VALUES FROM (MINVALUE) TO ($quarter)" \
        -c "CREATE TABLE bench_1 PARTITION OF bench FOR VALUES FROM ($quarter) TO ($((2 * quarter)))" \
        -c "CREATE TABLE bench_2 PARTITION OF bench FOR VALUES FROM ($((2 * quarter))) TO ($((3 * quarter)))" \
        -c "CREATE TABLE bench_3 PARTITION OF bench FOR VALUES FROM ($((3 * quarter))) TO (MAXVALUE)" \
        -c "INSERT INTO bench SELECT g, g % 1000, NULL, md5(g::text) FROM generate_series(1, $2) g" \
        -c "VACUUM ANALYZE bench" >/dev/null
}
# fresh TEMPLATE: a new copy, its URL on stdout.
N=0
fresh() {
    N=$((N + 1))
    q "$BENCH_URL_BASE/postgres" -c "DROP DATABASE IF EXISTS run_$N" -c "CREATE DATABASE run_$N TEMPLATE $1" >/dev/null
    echo "$BENCH_URL_BASE/run_$N"
}
wal() { q "$1" -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

plain() { q "$1" -c "UPDATE bench SET b = a * 2 WHERE b IS NULL"; }
# shellcheck disable=SC2086
backfill() { "$PGSHIFT_BIN" backfill --database-url "$1" --table bench --set "b = a * 2" --where "b IS NULL" $BF_ARGS >"$WORK/bf.out" 2>"$WORK/bf.err"; }
# shellcheck disable=SC2086
backfill_full_speed() { "$PGSHIFT_BIN" backfill --database-url "$1" --table bench --set "b = a * 2" --where "b IS NULL" --when-busy off $BF_ARGS >"$WORK/bf_full.out" 2>"$WORK/bf_full.err"; }
seeds_loop() {
    # The seeds' loop, as a procedure (COMMIT per batch), stopped after LOOP_CAP seconds.
    q "$1" -c "CREATE PROCEDURE seed_loop() LANGUAGE plpgsql AS \$\$
      DECLARE n int;
      BEGIN
        LOOP
          UPDATE bench SET b = a * 2 WHERE id IN (SELECT id FROM bench WHERE b IS NULL LIMIT 1000 FOR UPDATE SKIP LOCKED);
          GET DIAGNOSTICS n = ROW_COUNT;
          EXIT WHEN n = 0;
          PERFORM pg_sleep(0.01);
          COMMIT;
        END LOOP;
      END \$\$" >/dev/null
    PGOPTIONS="-c statement_timeout=${LOOP_CAP}s" q "$1" -c "CALL seed_loop()" >/dev/null 2>&1 || true
}
# rate OP URL ROWS: rows/s of OP on a fresh copy (whole process time), WAL bytes per row.
rate() {
    local url="$2" start end w0 w1 done_rows
    w0=$(wal "$url"); start=$(now)
    "$1" "$url"
    end=$(now); w1=$(wal "$url")
    done_rows=$(q "$url" -c "SELECT count(*) FROM bench WHERE b IS NOT NULL")
    echo "$(echo "$done_rows / ($end - $start)" | bc -l) $(echo "($w1 - $w0) / ($done_rows + 0.000001)" | bc -l)"
}

echo "building tables ($ROWS and $BIG_ROWS rows)..." >&2
template base "$ROWS"

# --- no load -------------------------------------------------------------------------------
: > "$WORK/plain"; : > "$WORK/pgshift"; : > "$WORK/loop"
for i in $(seq "$RUNS"); do
    rate plain "$(fresh base)" >> "$WORK/plain"
    rate backfill "$(fresh base)" >> "$WORK/pgshift"
    echo "run $i: plain $(tail -1 "$WORK/plain"), pgshift $(tail -1 "$WORK/pgshift")" >&2
done
rate seeds_loop "$(fresh base)" >> "$WORK/loop"
PLAIN_RATE=$(cut -d' ' -f1 "$WORK/plain" | median)
PGSHIFT_RATE=$(cut -d' ' -f1 "$WORK/pgshift" | median)
LOOP_RATE=$(cut -d' ' -f1 "$WORK/loop" | median)
PLAIN_WAL=$(cut -d' ' -f2 "$WORK/plain" | median)
PGSHIFT_WAL=$(cut -d' ' -f2 "$WORK/pgshift" | median)

# --- partitioned ---------------------------------------------------------------------------
template_partitioned parted "$ROWS"
# shellcheck disable=SC2086
backfill_one_leaf_at_a_time() { "$PGSHIFT_BIN" backfill --database-url "$1" --table bench --set "b = a * 2" --where "b IS NULL" --partitions-at-once 1 $BF_ARGS >"$WORK/bf.out" 2>"$WORK/bf.err"; }
: > "$WORK/p_plain"; : > "$WORK/p_pgshift"; : > "$WORK/p_one"
for i in $(seq "$RUNS"); do
    rate plain "$(fresh parted)" >> "$WORK/p_plain"
    rate backfill "$(fresh parted)" >> "$WORK/p_pgshift"
    rate backfill_one_leaf_at_a_time "$(fresh parted)" >> "$WORK/p_one"
    echo "partitioned run $i: plain $(tail -1 "$WORK/p_plain"), pgshift $(tail -1 "$WORK/p_pgshift"), one at a time $(tail -1 "$WORK/p_one")" >&2
done
P_PLAIN_RATE=$(cut -d' ' -f1 "$WORK/p_plain" | median)
P_PGSHIFT_RATE=$(cut -d' ' -f1 "$WORK/p_pgshift" | median)
P_ONE_RATE=$(cut -d' ' -f1 "$WORK/p_one" | median)
q "$BENCH_URL_BASE/postgres" -c "DROP DATABASE parted" >/dev/null

# --- scaling -------------------------------------------------------------------------------
template big "$BIG_ROWS"
: > "$WORK/big"
for i in $(seq "$RUNS"); do
    rate backfill "$(fresh big)" | cut -d' ' -f1 >> "$WORK/big"
    echo "scaling run $i: pgshift at $BIG_ROWS rows $(tail -1 "$WORK/big")" >&2
done
BIG_RATE=$(median < "$WORK/big")
q "$BENCH_URL_BASE/postgres" -c "DROP DATABASE big" >/dev/null

# --- under load ----------------------------------------------------------------------------
cat > "$WORK/load.sql" <<EOF
\set id random(1, $ROWS)
UPDATE bench SET a = a + 1 WHERE id = :id;
EOF
CAL=$(fresh base)
CAPACITY=$(cd "$WORK" && "$PG_BIN/pgbench" -n -c 4 -j 2 -T 8 -f load.sql "$CAL" 2>/dev/null | awk '/^tps/ {print int($3); exit}')
LOAD_RATE=$((CAPACITY / 2))
echo "load: $LOAD_RATE tps (half of $CAPACITY)" >&2
# under_load NAME OP: runs OP on a fresh copy while the load runs; prints p99 (ms) in OP's
# window, failed transactions and the longest logged lock wait (ms) in that window. The load
# is stopped when OP ends (its log is written as it goes; an error that aborts a client is
# printed at once, a failed transaction is logged as `failed`).
under_load() {
    local url log_mark start end
    url=$(fresh base)
    # CREATE DATABASE writes the copy through WAL: flushed now, not by a checkpoint during
    # the window. (It did not explain the noisy 20 s alone windows: those are 60 s now.)
    q "$url" -c "CHECKPOINT" >/dev/null
    log_mark=$(wc -l < "$SERVER_LOG" 2>/dev/null || echo 0)
    (cd "$WORK" && exec "$PG_BIN/pgbench" -n -c 4 -j 2 -R "$LOAD_RATE" -T 3600 -f load.sql -l --log-prefix="$1" "$url" > "$WORK/$1.out" 2>&1) &
    local load=$!
    sleep 3
    start=$(date +%s)
    local t0; t0=$(now)
    if [ "$2" != none ]; then "$2" "$url"; else sleep "$ALONE_SECS"; fi
    echo "$(now) - $t0" | bc -l > "$WORK/$1.secs"
    q "$url" -c "SELECT count(*) FROM bench WHERE b IS NOT NULL" > "$WORK/$1.rows"
    end=$(date +%s)
    sleep 1
    kill -TERM "$load" 2>/dev/null || true
    wait "$load" 2>/dev/null || true
    # Log lines: client tx latency_us script epoch_s epoch_us [lag]; under -R the latency is
    # measured from the scheduled start, so it includes any queueing.
    cat "$WORK/$1".[0-9]* | awk -v s="$start" -v e="$end" '$5 >= s && $5 <= e {print $3 / 1000}' | sort -g > "$WORK/$1.lat"
    local n p99 failed wait_ms
    n=$(wc -l < "$WORK/$1.lat")
    p99=$(awk -v n="$n" 'NR == int(n * 0.99) + 1 {print; exit}' "$WORK/$1.lat")
    failed=$(( $(cat "$WORK/$1".[0-9]* | awk -v s="$start" -v e="$end" '$5 >= s && $5 <= e && $3 == "failed"' | wc -l) + $(grep -c 'aborted' "$WORK/$1.out" || true) ))
    wait_ms=0
    if [ -n "$SERVER_LOG" ]; then
        wait_ms=$(tail -n +"$((log_mark + 1))" "$SERVER_LOG" | grep -o 'acquired [A-Za-z]* on [a-z ]*[^a]* after [0-9.]* ms' | grep -o '[0-9.]* ms' | sort -g | tail -1 | cut -d' ' -f1)
        wait_ms=${wait_ms:-0}
    fi
    rm -f "$WORK/$1".[0-9]*
    echo "${p99:-0} ${failed:-0} $wait_ms"
}
# RUNS windows' "p99 failed wait" lines as one: the median p99, the failed transactions summed,
# the longest lock wait of any window.
windows() {
    echo "$(cut -d' ' -f1 "$1" | median) $(cut -d' ' -f2 "$1" | paste -sd+ | bc) $(cut -d' ' -f3 "$1" | sort -g | tail -1)"
}
: > "$WORK/alone"; : > "$WORK/during"; : > "$WORK/load_rate"
for i in $(seq "$RUNS"); do
    # (In a command substitution, as the single calls below: a grep that finds no lock wait
    # must not stop the script.)
    r=$(under_load alone none); echo "$r" >> "$WORK/alone"
    r=$(under_load pgshift_load backfill); echo "$r" >> "$WORK/during"
    # rows/s over the whole process (its summary gives minutes once it runs 2 min or more)
    echo "$(cat "$WORK/pgshift_load.rows") / $(cat "$WORK/pgshift_load.secs")" | bc -l >> "$WORK/load_rate"
    echo "under load $i: alone $(tail -1 "$WORK/alone"), during pgshift $(tail -1 "$WORK/during")" >&2
done
ALONE=$(windows "$WORK/alone")
DURING_PGSHIFT=$(windows "$WORK/during")
LOAD_PGSHIFT_RATE=$(median < "$WORK/load_rate")
DURING_PLAIN=$(under_load plain_load plain)
DURING_FULL=$(under_load full_load backfill_full_speed)
FULL_RATE=$(echo "$(cat "$WORK/full_load.rows") / $(cat "$WORK/full_load.secs")" | bc -l)

# --- kill -9 and resume --------------------------------------------------------------------
KURL=$(fresh base)
q "$KURL" -c "ALTER TABLE bench ADD COLUMN touched int NOT NULL DEFAULT 0" \
    -c "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN NEW.touched := OLD.touched + 1; RETURN NEW; END \$\$" \
    -c "CREATE TRIGGER touch BEFORE UPDATE ON bench FOR EACH ROW EXECUTE FUNCTION touch()" >/dev/null
MAX_BATCH=0
for k in $(seq "$KILLS"); do
    "$PGSHIFT_BIN" backfill --database-url "$KURL" --table bench --set "b = a * 2" --where "b IS NULL" >/dev/null 2>&1 &
    pid=$!
    sleep "$(awk -v r="$RANDOM" 'BEGIN {print 0.3 + (r % 1200) / 1000}')"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    b=$(q "$KURL" -c "SELECT coalesce(max(batch_size), 0) FROM pgshift.backfills" 2>/dev/null || echo 0)
    [ "$b" -gt "$MAX_BATCH" ] && MAX_BATCH=$b
    sleep 0.3
done
"$PGSHIFT_BIN" backfill --database-url "$KURL" --table bench --set "b = a * 2" --where "b IS NULL" >/dev/null 2>"$WORK/kill.err"
TWICE=$(q "$KURL" -c "SELECT count(*) FROM bench WHERE touched > 1")
LEFT=$(q "$KURL" -c "SELECT count(*) FROM bench WHERE b IS DISTINCT FROM a * 2")

p99() { echo "$1" | cut -d' ' -f1; }
echo
printf 'plain_update_rows_per_s: %.0f rows/s\n' "$PLAIN_RATE"
printf 'pgshift_backfill_rows_per_s: %.0f rows/s\n' "$PGSHIFT_RATE"
printf 'seeds_loop_rows_per_s: %.0f rows/s\n' "$LOOP_RATE"
printf 'throughput_ratio_no_load: %.2f x\n' "$(echo "$PGSHIFT_RATE / $PLAIN_RATE" | bc -l)"
printf 'seeds_loop_ratio_no_load: %.2f x\n' "$(echo "$LOOP_RATE / $PLAIN_RATE" | bc -l)"
printf 'partitioned_plain_update_rows_per_s: %.0f rows/s\n' "$P_PLAIN_RATE"
printf 'partitioned_pgshift_backfill_rows_per_s: %.0f rows/s\n' "$P_PGSHIFT_RATE"
printf 'partitioned_pgshift_one_leaf_at_a_time_rows_per_s: %.0f rows/s\n' "$P_ONE_RATE"
printf 'partitioned_throughput_ratio_no_load: %.2f x\n' "$(echo "$P_PGSHIFT_RATE / $P_PLAIN_RATE" | bc -l)"
printf 'partitioned_two_at_once_vs_one: %.2f x\n' "$(echo "$P_PGSHIFT_RATE / $P_ONE_RATE" | bc -l)"
printf 'pgshift_rows_per_s_under_load: %.0f rows/s\n' "${LOAD_PGSHIFT_RATE:-0}"
printf 'throughput_ratio_under_load: %.2f x\n' "$(echo "${LOAD_PGSHIFT_RATE:-0} / $PLAIN_RATE" | bc -l)"
printf 'scaling_ratio_%s_vs_%s: %.2f x\n' "$BIG_ROWS" "$ROWS" "$(echo "$BIG_RATE / $PGSHIFT_RATE" | bc -l)"
printf 'wal_per_row_ratio: %.2f x\n' "$(echo "$PGSHIFT_WAL / $PLAIN_WAL" | bc -l)"
printf 'load_p99_alone: %.1f ms\n' "$(p99 "$ALONE")"
printf 'load_p99_during_plain_update: %.1f ms\n' "$(p99 "$DURING_PLAIN")"
printf 'load_p99_during_pgshift: %.1f ms\n' "$(p99 "$DURING_PGSHIFT")"
printf 'p99_ratio_pgshift_vs_alone: %.2f x\n' "$(echo "$(p99 "$DURING_PGSHIFT") / $(p99 "$ALONE")" | bc -l)"
printf 'load_p99_during_pgshift_full_speed: %.1f ms\n' "$(p99 "$DURING_FULL")"
printf 'p99_ratio_pgshift_full_speed_vs_alone: %.2f x\n' "$(echo "$(p99 "$DURING_FULL") / $(p99 "$ALONE")" | bc -l)"
printf 'pgshift_full_speed_rows_per_s_under_load: %.0f rows/s\n' "$FULL_RATE"
printf 'load_failed_during_pgshift: %d transactions\n' "$(echo "$DURING_PGSHIFT" | cut -d' ' -f2)"
printf 'longest_lock_wait_during_pgshift: %.0f ms\n' "$(echo "$DURING_PGSHIFT" | cut -d' ' -f3)"
printf 'longest_lock_wait_during_pgshift_full_speed: %.0f ms\n' "$(echo "$DURING_FULL" | cut -d' ' -f3)"
printf 'longest_lock_wait_during_plain_update: %.0f ms\n' "$(echo "$DURING_PLAIN" | cut -d' ' -f3)"
printf 'kill9_rows_updated_twice: %d rows\n' "$TWICE"
printf 'kill9_largest_batch: %d rows\n' "$MAX_BATCH"
printf 'kill9_rows_still_needed: %d rows\n' "$LEFT"
