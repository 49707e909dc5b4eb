#!/usr/bin/env bash
# Online column change benchmark: `int -> bigint` of a non-key column on a busy table, done
# three ways in the same run, each under the same write load, each on a fresh copy of the
# table (CREATE DATABASE ... TEMPLATE):
#   plain     `ALTER TABLE pgbench_accounts ALTER COLUMN abalance TYPE bigint` through psql
#             (rewrites the table under ACCESS EXCLUSIVE)
#   reshape   reshape 0.11 (`reshape migration start`, then `reshape migration complete`), an
#             alter_column action; the load keeps using `public`, as the old application does
#   pgshift   a migration folder holding that ALTER as one plain SQL file: `pgshift start`
#             (expand: new column, sync trigger, backfill), then `pgshift complete` (contract)
# and a key change, on pgbench's tables with foreign keys (`pgbench -i --foreign-keys`):
# `int -> bigint` of pgbench_branches.bid, the primary key that pgbench_accounts (SCALE *
# 100000 rows), pgbench_tellers and pgbench_history reference, written as a plain migration
# that changes the three referencing columns, then the key:
#   plain_key    that file through `psql -1` (rewrites pgbench_accounts under ACCESS EXCLUSIVE)
#   pgshift_key  the same file, `pgshift start` then `pgshift complete`, with complete's
#                statements logged by the server (log_statement = all for its session):
#                pgshift_key_contract_tables counts the tables complete's LOCK and ALTER
#                statements name, pgshift_key_contract_transactions_per_table the most
#                committed transactions any one table is locked in (1: one ACCESS EXCLUSIVE
#                acquisition per table, every statement after it in the transaction finds it
#                held), pgshift_key_contract_attempts the transactions complete began (the
#                lock-queue guard's NOWAIT looks that found a table busy, rolled back, holding
#                nothing); from the last run
# and a column rename, `pgbench_accounts.filler` to `note` (a column the load does not write,
# so that the load, the old code, keeps working after each way's end):
#   plain_rename         `ALTER TABLE ... RENAME COLUMN` through psql (catalog only, but old
#                        code naming `filler` would fail from that moment)
#   pgshift_rename_copy  `-- pgshift:rename copy`: a second column kept in step by triggers,
#                        backfilled; start then complete
#   pgshift_rename_view  `-- pgshift:rename view`: renamed in place behind a view named as the
#                        table; start then complete
# The key ways' load runs on the tables with foreign keys, at half of its own capacity there
# (calibrated the same way); their p99 ratio is against the load alone on those tables
# (load_p99_alone_key).
#
# Table: pgbench_accounts of `pgbench -i -s SCALE` (SCALE * 100000 rows; 2M at the default 20).
# Load: pgbench on loopback, CLIENTS clients, fixed rate (-R) = half of its capacity measured
# once in a short run, each transaction `UPDATE pgbench_accounts SET abalance = abalance + d` of a
# random row plus the matching pgbench_history row, latency logged per transaction (-l; under
# -R measured from the scheduled start, so time spent queued behind a lock counts). It starts
# WARM seconds before the change and runs until its backlog has drained after it (bounded by
# LOAD_MAX seconds). Figures for each way, medians of RUNS runs:
#   <way>_total              seconds the change took (reshape and pgshift: start + complete,
#                            also given apart as <way>_start and <way>_complete)
#   <way>_p99, <way>_max     the load's p99 and max latency over the transactions alive during
#                            the change, and <way>_p99_ratio = that p99 / the p99 of the load
#                            alone (ALONE_SECS seconds, same run), per run then median
#   <way>_lock_wait_max      the load's longest lock wait in the change's run (log_lock_waits
#                            with deadlock_timeout = 20ms; lines of the pgbench sessions only)
#   <way>_failed             failed load transactions; <way>_aborted_clients: load clients
#                            stopped by an error (both summed over the runs)
#   <way>_balance_mismatches accounts whose abalance differs from the sum of their history
#                            deltas after the change: updates lost or doubled (summed over runs)
#   <way>_host_other_cpu     the share of the machine's CPU time that processes with niceness
#                            0 took during the change (/proc/stat's user column): with the bench
#                            itself under nice (as on a shared machine), other people's work;
#                            a high figure in a run means its latencies are partly the machine's
# and for pgshift, write throughput with its triggers installed (after `pgshift start`, before
# complete) vs a copy without them, both VACUUM FULLed (so that only the triggers and the
# extra column differ, not the backfill's dead rows), both without load: a bulk
# `UPDATE pgbench_accounts SET abalance = abalance + 1` (the synced column; target >= 0.7) and
# `SET filler = filler` (another column; target >= 0.95), ratio = time without / time with;
# also the same UPDATEs on the expanded copy with its triggers disabled (the extra column alone).
# The defaults (SCALE 20, RUNS 3) take about 20 minutes on 2 shared cores.
#
# A way whose tool is missing is skipped with the reason printed: reshape when no binary is
# found (RESHAPE_BIN, else `reshape` on PATH, else /work/.reshape/bin/reshape; install it with
# `cargo install reshape --version '0.11.*' --root DIR`), pgshift when its binary has no
# `start` command. Any other error stops the script.
#
# Run:   bash bench/online_change.sh                          (its own throwaway cluster)
#        nice -n 19 bash bench/online_change.sh              (on a machine others build on)
#        SCALE=20 RUNS=3 bash bench/online_change.sh
#        WAYS="plain pgshift" RUNS=1 bash bench/online_change.sh
#        RESHAPE_BIN=/path/to/reshape PGSHIFT_BIN=target/release/pgshift PGSHIFT_BIN_PREBUILT=1 \
#            bash bench/online_change.sh
#        TRIGGER_TEST=0 bash bench/online_change.sh          (skips the bulk UPDATE comparison)
#        START_ARGS="--when-busy 0.3" bash bench/online_change.sh   (flags for pgshift start)
#        KEEP_WORK=1 bash bench/online_change.sh             (keeps the load's logs, the tools'
#                                              output and the server log in a folder it names)
# Needs psql and pgbench (next to the server binaries). Prints its figures last, one per line:
# `name: value unit`.
set -euo pipefail
shopt -s inherit_errexit
source "$(dirname "$0")/lib.sh"
SCALE="${SCALE:-20}"
RUNS="${RUNS:-3}"
WAYS="${WAYS:-plain reshape pgshift plain_key pgshift_key plain_rename pgshift_rename_copy pgshift_rename_view}"
CLIENTS="${CLIENTS:-4}"
ALONE_SECS="${ALONE_SECS:-20}"
WARM="${WARM:-3}"
LOAD_MAX="${LOAD_MAX:-1800}"
TRIGGER_TEST="${TRIGGER_TEST:-1}"
KEEP_WORK="${KEEP_WORK:-0}"
# Extra flags for every `pgshift start` (e.g. START_ARGS="--when-busy 0.3").
START_ARGS="${START_ARGS:-}"
ROWS=$((SCALE * 100000))
PGBENCH="$PG_BIN/pgbench"
[ -x "$PGBENCH" ] || PGBENCH="$(command -v pgbench)"

bench_build
bench_cluster_start
# The ways run from their own folders: absolute paths.
PGSHIFT_BIN="$(realpath -m "$PGSHIFT_BIN")"
WORK="$(mktemp -d /tmp/pgshift-bench-oc.XXXXXX)"
chmod 777 "$WORK"
cleanup() {
    if [ "$KEEP_WORK" = 1 ]; then
        if [ -n "${BENCH_DIR:-}" ]; then cp "$BENCH_DIR/log" "$WORK/server.log" 2>/dev/null || true; fi
        echo "logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    bench_cluster_stop
}
trap cleanup EXIT
q() { PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" psql -X -q -t -A -v ON_ERROR_STOP=1 "$@"; }
# Lock waits longer than 20 ms are logged, with how long they took and which session waited.
q "$BENCH_URL_BASE/postgres" -c "ALTER SYSTEM SET log_lock_waits = on" -c "ALTER SYSTEM SET deadlock_timeout = '20ms'" \
    -c "ALTER SYSTEM SET log_line_prefix = '%m [%p] %a '" -c "SELECT pg_reload_conf()" >/dev/null
SERVER_LOG="${BENCH_DIR:+$BENCH_DIR/log}"
LOAD_APP=online_change_load

# --- which ways can run ----------------------------------------------------------------------
NOTES=()
has_way() { case " $WAYS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
skip_way() {
    echo "skipping $1: $2" >&2
    NOTES+=("$1: skipped ($2)")
    WAYS=" $WAYS "; WAYS="${WAYS/ $1 / }"
}
if has_way reshape; then
    RESHAPE_BIN="${RESHAPE_BIN:-$(command -v reshape || echo /work/.reshape/bin/reshape)}"
    RESHAPE_BIN="$(realpath -m "$RESHAPE_BIN")"
    if [ ! -x "$RESHAPE_BIN" ]; then
        skip_way reshape "no reshape binary at $RESHAPE_BIN (set RESHAPE_BIN, or cargo install reshape --version '0.11.*')"
    else
        NOTES+=("reshape: $("$RESHAPE_BIN" --version 2>&1 | head -1)")
    fi
fi
if [[ " $WAYS " == *" pgshift"* ]]; then
    if ! "$PGSHIFT_BIN" start --help >/dev/null 2>&1 || ! "$PGSHIFT_BIN" complete --help >/dev/null 2>&1; then
        for way in pgshift pgshift_key pgshift_rename_copy pgshift_rename_view; do
            skip_way "$way" "$PGSHIFT_BIN has no start/complete commands"
        done
    else
        # The database URL flag: --url if start has it, else the other commands' --database-url.
        if "$PGSHIFT_BIN" start --help 2>&1 | grep -q -- '--url'; then PGSHIFT_URL_FLAG=--url; else PGSHIFT_URL_FLAG=--database-url; fi
    fi
fi
has_way pgshift || TRIGGER_TEST=0
key_ways() { case " $WAYS " in *_key*) return 0 ;; *) return 1 ;; esac; }

# --- fixtures ------------------------------------------------------------------------------
mkdir -p "$WORK/reshape/migrations" "$WORK/pgshift/migrations"
cat > "$WORK/reshape/migrations/1_abalance_bigint.toml" <<'EOF'
[[actions]]
type = "alter_column"
table = "pgbench_accounts"
column = "abalance"
up = "CAST(abalance AS BIGINT)"
down = "CAST(abalance AS INTEGER)"

	[actions.changes]
	type = "BIGINT"
EOF
printf 'ALTER TABLE pgbench_accounts ALTER COLUMN abalance TYPE bigint;\n' \
    > "$WORK/pgshift/migrations/20260101000000_abalance_bigint.up.sql"
: > "$WORK/pgshift/pgshift.toml"
mkdir -p "$WORK/pgshift_key/migrations"
cat > "$WORK/pgshift_key/migrations/20260101000000_bid_bigint.up.sql" <<'EOF'
ALTER TABLE pgbench_accounts ALTER COLUMN bid TYPE bigint;
ALTER TABLE pgbench_tellers ALTER COLUMN bid TYPE bigint;
ALTER TABLE pgbench_history ALTER COLUMN bid TYPE bigint;
ALTER TABLE pgbench_branches ALTER COLUMN bid TYPE bigint;
EOF
: > "$WORK/pgshift_key/pgshift.toml"
for how in copy view; do
    mkdir -p "$WORK/pgshift_rename_$how/migrations"
    printf -- '-- pgshift:rename %s\nALTER TABLE pgbench_accounts RENAME COLUMN filler TO note;\n' "$how" \
        > "$WORK/pgshift_rename_$how/migrations/20260101000000_filler_note.up.sql"
    : > "$WORK/pgshift_rename_$how/pgshift.toml"
done
bench_account_load "$WORK/load.sql" "$ROWS"

# --- helpers -------------------------------------------------------------------------------
# template NAME: a database holding pgbench's tables at SCALE, to copy from.
echo "building pgbench tables (scale $SCALE, $ROWS rows)..." >&2
q "$BENCH_URL_BASE/postgres" -c "DROP DATABASE IF EXISTS base" -c "CREATE DATABASE base" >/dev/null
"$PGBENCH" -i -q -s "$SCALE" "$BENCH_URL_BASE/base" >"$WORK/init.log" 2>&1 || { cat "$WORK/init.log" >&2; exit 1; }
q "$BENCH_URL_BASE/base" -c "ANALYZE" >/dev/null
if key_ways; then
    echo "building pgbench tables with foreign keys..." >&2
    q "$BENCH_URL_BASE/postgres" -c "DROP DATABASE IF EXISTS keybase" -c "CREATE DATABASE keybase" >/dev/null
    "$PGBENCH" -i -q --foreign-keys -s "$SCALE" "$BENCH_URL_BASE/keybase" >"$WORK/init.log" 2>&1 || { cat "$WORK/init.log" >&2; exit 1; }
    q "$BENCH_URL_BASE/keybase" -c "ANALYZE" >/dev/null
fi
# template_of WAY: the database a way's runs copy.
template_of() { case "$1" in *_key) echo keybase ;; *) echo base ;; esac; }
# fresh TEMPLATE: a new copy in $URL (the previous copy is dropped). Not in $(...): N counts.
N=0
fresh() {
    N=$((N + 1))
    q "$BENCH_URL_BASE/postgres" -c "DROP DATABASE IF EXISTS run_$((N - 1)) WITH (FORCE)" \
        -c "CREATE DATABASE run_$N TEMPLATE $1" >/dev/null
    URL="$BENCH_URL_BASE/run_$N"
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print 0; else print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
elapsed() { echo "$2 - $1" | bc -l; }
log_lines() { if [ -n "$SERVER_LOG" ]; then wc -l < "$SERVER_LOG"; else echo 0; fi; }
column_type() { q "$1" -c "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '$2'::regclass AND attname = '$3'"; }
# changed_type WAY URL: the types the way's change leaves (bigint when it did its job): abalance,
# or for a key change the key and every column that references it.
changed_type() {
    case "$1" in
        *_key) for tc in pgbench_branches.bid pgbench_accounts.bid pgbench_tellers.bid pgbench_history.bid; do
                   column_type "$2" "${tc%.*}" "${tc#*.}"
               done | sort -u | paste -sd, ;;
        *_rename*) column_type "$2" pgbench_accounts note ;;
        *) column_type "$2" pgbench_accounts abalance ;;
    esac
}
# expected_type WAY: what changed_type gives when the way did its job.
expected_type() { case "$1" in *_rename*) echo 'character(84)' ;; *) echo bigint ;; esac; }
# mismatches URL: accounts whose balance is not the sum of their history (all start at 0).
mismatches() {
    q "$1" -c "SELECT count(*) FROM pgbench_accounts a FULL JOIN (SELECT aid, sum(delta) AS s FROM pgbench_history GROUP BY aid) h USING (aid)
               WHERE coalesce(a.abalance, 0) <> coalesce(h.s, 0)"
}

# The changes. Each writes "start_s complete_s" (complete_s 0 for one step) to $WORK/op.times.
op_alone() { sleep "$ALONE_SECS"; echo "$ALONE_SECS 0" > "$WORK/op.times"; }
op_plain() {
    local t0 t1
    t0=$(now)
    q "$1" -c "ALTER TABLE pgbench_accounts ALTER COLUMN abalance TYPE bigint" >"$WORK/op.log" 2>&1 || return 1
    t1=$(now)
    echo "$(elapsed "$t0" "$t1") 0" > "$WORK/op.times"
}
op_reshape() {
    local t0 t1 t2
    t0=$(now)
    # DB_URL would win over --url; a .env file in the current folder is read too.
    (cd "$WORK/reshape" && env -u DB_URL "$RESHAPE_BIN" migration start --url "$1" --dirs migrations) >"$WORK/op.log" 2>&1 || return 1
    t1=$(now)
    (cd "$WORK/reshape" && env -u DB_URL "$RESHAPE_BIN" migration complete --url "$1") >>"$WORK/op.log" 2>&1 || return 1
    t2=$(now)
    echo "$(elapsed "$t0" "$t1") $(elapsed "$t1" "$t2")" > "$WORK/op.times"
}
# pgshift_start URL [FOLDER], pgshift_complete URL [FOLDER]: FOLDER under $WORK, default pgshift.
# shellcheck disable=SC2086
pgshift_start() { (cd "$WORK/${2:-pgshift}" && "$PGSHIFT_BIN" start "$PGSHIFT_URL_FLAG" "$1" --dir migrations $START_ARGS) >>"$WORK/op.log" 2>&1; }
pgshift_complete() { (cd "$WORK/${2:-pgshift}" && "$PGSHIFT_BIN" complete "$PGSHIFT_URL_FLAG" "$1" --dir migrations) >>"$WORK/op.log" 2>&1; }
op_pgshift() {
    local t0 t1 t2
    : > "$WORK/op.log"
    t0=$(now)
    pgshift_start "$1" "${2:-pgshift}" || return 1
    t1=$(now)
    pgshift_complete "$1" "${2:-pgshift}" || return 1
    t2=$(now)
    echo "$(elapsed "$t0" "$t1") $(elapsed "$t1" "$t2")" > "$WORK/op.times"
}
op_plain_rename() {
    local t0 t1
    t0=$(now)
    q "$1" -c "ALTER TABLE pgbench_accounts RENAME COLUMN filler TO note" >"$WORK/op.log" 2>&1 || return 1
    t1=$(now)
    echo "$(elapsed "$t0" "$t1") 0" > "$WORK/op.times"
}
op_pgshift_rename_copy() { op_pgshift "$1" pgshift_rename_copy; }
op_pgshift_rename_view() { op_pgshift "$1" pgshift_rename_view; }
op_plain_key() {
    local t0 t1
    t0=$(now)
    q "$1" -1 -f "$WORK/pgshift_key/migrations/20260101000000_bid_bigint.up.sql" >"$WORK/op.log" 2>&1 || return 1
    t1=$(now)
    echo "$(elapsed "$t0" "$t1") 0" > "$WORK/op.times"
}
op_pgshift_key() {
    local t0 t1 t2 mark
    : > "$WORK/op.log"
    t0=$(now)
    pgshift_start "$1" pgshift_key || return 1
    t1=$(now)
    mark=$(log_lines)
    pgshift_complete "$1?options=-c%20log_statement%3Dall" pgshift_key || return 1
    t2=$(now)
    echo "$(elapsed "$t0" "$t1") $(elapsed "$t1" "$t2")" > "$WORK/op.times"
    if [ -n "$SERVER_LOG" ]; then
        # "table transaction" for each table a LOCK or ALTER TABLE names in a transaction
        # that committed (an attempt the guard or lock_timeout rolled back holds nothing
        # after), and the number of attempts (transactions begun).
        tail -n +"$((mark + 1))" "$SERVER_LOG" | grep 'statement: ' | awk -v attempts="$WORK/key.attempts" '
            /statement: BEGIN/ { txn++; n = 0 }
            /(LOCK|ALTER) TABLE/ { line = $0
                while (match(line, /pgbench_[a-z]+/)) { seen[++n] = substr(line, RSTART, RLENGTH); line = substr(line, RSTART + RLENGTH) } }
            /statement: (.*; )?COMMIT/ { for (i = 1; i <= n; i++) print seen[i], txn; n = 0 }
            /statement: ROLLBACK/ { n = 0 }
            END { print txn + 0 > attempts }' \
            | sort -u > "$WORK/key.locks"
    fi
}

# cpu_mark: /proc/stat's user (niceness 0) ticks and all ticks; cpu_other MARK: the share (%)
# of all CPU time since MARK that processes with niceness 0 took.
cpu_mark() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print $2, t; exit}' /proc/stat; }
cpu_other() {
    local u0 t0 u1 t1
    read -r u0 t0 <<< "$1"
    read -r u1 t1 < <(cpu_mark)
    if [ "$t1" -gt "$t0" ]; then echo "100 * ($u1 - $u0) / ($t1 - $t0)" | bc -l; else echo 0; fi
}

# under_load NAME OP URL: starts the load, runs OP after WARM seconds, waits until the load's
# schedule lag is back under 50 ms (at least 3 s, at most the change's length + 10 s), stops
# the load, and prints: p99_ms max_ms transactions failed aborted_clients lock_wait_ms
# other_cpu_pct.
under_load() {
    local name=$1 op=$2 url=$3 mark load ws we
    mark=$(log_lines)
    local rate=$LOAD_RATE
    case "$name" in *_key) rate=$LOAD_RATE_KEY ;; esac
    (cd "$WORK" && PGAPPNAME=$LOAD_APP exec "$PGBENCH" -n -c "$CLIENTS" -j 2 -R "$rate" -T "$LOAD_MAX" -P 1 \
        -f load.sql -l --log-prefix="$name" "$url" >"$WORK/$name.out" 2>"$WORK/$name.err") &
    load=$!
    sleep "$WARM"
    local cpu0
    cpu0=$(cpu_mark)
    ws=$(now)
    if ! "$op" "$url"; then
        kill -TERM "$load" 2>/dev/null || true
        wait "$load" 2>/dev/null || true
        echo "$name: the change failed:" >&2
        cat "$WORK/op.log" >&2
        exit 1
    fi
    we=$(now)
    local other_cpu
    other_cpu=$(cpu_other "$cpu0")
    # The load keeps going until it has caught up with its schedule. pgbench writes its
    # per-transaction log through stdio, so stopping it loses the last few KB: transactions
    # that ended after the drain, outside the window.
    local seen waited=0 maxwait lag lines
    seen=$(grep -c '^progress' "$WORK/$name.err" || true)
    maxwait=$(echo "$we - $ws + 10" | bc | cut -d. -f1)
    while [ "$waited" -lt "$maxwait" ] && kill -0 "$load" 2>/dev/null; do
        sleep 1
        waited=$((waited + 1))
        lines=$(grep -c '^progress' "$WORK/$name.err" || true)
        lag=$(grep '^progress' "$WORK/$name.err" | tail -1 | sed -n 's/.*lag \([0-9.]*\) ms.*/\1/p' || true)
        if [ "$waited" -ge 3 ] && [ "$lines" -gt "$seen" ] && [ -n "$lag" ] && [ "$(echo "$lag < 50" | bc)" = 1 ]; then
            break
        fi
    done
    kill -TERM "$load" 2>/dev/null || true
    wait "$load" 2>/dev/null || true
    # Log lines: client tx latency_us|failed|skipped script epoch_s epoch_us lag_us. Under -R
    # latency_us counts from the scheduled start. A transaction counts when it was alive
    # during [ws, we].
    cat "$WORK/$name".[0-9]* | awk -v s="$ws" -v e="$we" -v lat="$WORK/$name.lat" '
        $3 ~ /^[0-9]+$/ { end_t = $5 + $6 / 1e6; begin_t = end_t - $3 / 1e6
                          if (begin_t <= e && end_t >= s) print $3 / 1000 > lat; next }
        $3 == "failed" { end_t = $5 + $6 / 1e6; if (end_t >= s) failed++ }
        END { print failed + 0 }' > "$WORK/$name.failed"
    touch "$WORK/$name.lat"
    sort -g -o "$WORK/$name.lat" "$WORK/$name.lat"
    local n p99 max failed aborted wait_ms=0
    n=$(wc -l < "$WORK/$name.lat")
    p99=$(awk -v n="$n" 'NR == int(n * 0.99 + 0.999999) {print; exit}' "$WORK/$name.lat")
    max=$(tail -1 "$WORK/$name.lat")
    failed=$(cat "$WORK/$name.failed")
    aborted=$(grep -c 'aborted in command' "$WORK/$name.err" || true)
    if [ "$aborted" -gt 0 ]; then
        echo "$name: $aborted load clients stopped by an error, e.g.:" >&2
        grep -A2 -m1 'aborted in command' "$WORK/$name.err" | sed 's/^/    /' >&2
    fi
    if [ -n "$SERVER_LOG" ]; then
        # "process P acquired L on X after N ms", or "still waiting ... after N ms" when it
        # never got it; only the load's sessions (application_name in log_line_prefix).
        wait_ms=$(tail -n +"$((mark + 1))" "$SERVER_LOG" | grep " $LOAD_APP " \
            | grep -E 'process [0-9]+ (acquired|still waiting for) .* after [0-9.]+ ms' \
            | sed -E 's/.* after ([0-9.]+) ms.*/\1/' | sort -g | tail -1 || true)
        wait_ms=${wait_ms:-0}
    fi
    if [ "$KEEP_WORK" = 1 ]; then
        mkdir -p "$WORK/keep.$name.$N"
        mv "$WORK/$name".[0-9]* "$WORK/$name.err" "$WORK/keep.$name.$N/"
        cp "$WORK/op.log" "$WORK/keep.$name.$N/" 2>/dev/null || true
        echo "$ws $we" > "$WORK/keep.$name.$N/window"
    fi
    rm -f "$WORK/$name".[0-9]*
    echo "${p99:-0} ${max:-0} $n ${failed:-0} ${aborted:-0} $wait_ms $other_cpu"
}

# --- calibration ---------------------------------------------------------------------------
fresh base
CAPACITY=$(cd "$WORK" && "$PGBENCH" -n -c "$CLIENTS" -j 2 -T 8 -f load.sql "$URL" 2>/dev/null | awk '/^tps/ {print int($3); exit}')
LOAD_RATE=$((CAPACITY / 2))
[ "$LOAD_RATE" -gt 0 ] || { echo "calibration failed: capacity '$CAPACITY' tps" >&2; exit 1; }
echo "load: $LOAD_RATE tps (half of $CAPACITY), ways: $WAYS" >&2
# With foreign keys each load transaction also checks them: its own capacity, its own half.
if key_ways; then
    fresh keybase
    CAPACITY_KEY=$(cd "$WORK" && "$PGBENCH" -n -c "$CLIENTS" -j 2 -T 8 -f load.sql "$URL" 2>/dev/null | awk '/^tps/ {print int($3); exit}')
    LOAD_RATE_KEY=$((CAPACITY_KEY / 2))
    [ "$LOAD_RATE_KEY" -gt 0 ] || { echo "calibration failed: capacity '$CAPACITY_KEY' tps with foreign keys" >&2; exit 1; }
    echo "load on the tables with foreign keys: $LOAD_RATE_KEY tps (half of $CAPACITY_KEY)" >&2
fi

# --- under load ------------------------------------------------------------------------------
# $WORK/res.<way>: one line per run:
#   start_s complete_s p99 max transactions failed aborted lock_wait mismatches p99_ratio other_cpu
# The load alone on each template the ways copy (alone: pgbench's tables; alone_key: with
# their foreign keys, which the load's inserts then check).
ALONES="alone"
if key_ways; then ALONES="alone alone_key"; fi
for i in $(seq "$RUNS"); do
    for alone in $ALONES; do
        fresh "$(template_of "$alone")"; url=$URL
        under_load "$alone" op_alone "$url" > "$WORK/r"
        read -r a_p99 a_max a_n a_failed a_aborted a_wait a_cpu < "$WORK/r"
        printf 'run %s %s: p99 %s ms, max %s ms, %s transactions, lock wait %s ms, others %.0f%% CPU\n' \
            "$i" "$alone" "$a_p99" "$a_max" "$a_n" "$a_wait" "$a_cpu" >&2
        echo "$ALONE_SECS 0 $a_p99 $a_max $a_n $a_failed $a_aborted $a_wait $(mismatches "$url") 1 $a_cpu" >> "$WORK/res.$alone"
        printf -v "p99_$alone" '%s' "$a_p99"
    done
    for way in $WAYS; do
        fresh "$(template_of "$way")"; url=$URL
        under_load "$way" "op_$way" "$url" > "$WORK/r"
        read -r p99 max n failed aborted wait_ms other_cpu < "$WORK/r"
        type=$(changed_type "$way" "$url")
        if [ "$type" != "$(expected_type "$way")" ]; then
            echo "$way: the changed columns are '$type' after the change, not $(expected_type "$way"):" >&2
            cat "$WORK/op.log" >&2
            exit 1
        fi
        case "$way" in *_key) a_p99=$p99_alone_key ;; *) a_p99=$p99_alone ;; esac
        read -r t_start t_complete < "$WORK/op.times"
        mis=$(mismatches "$url")
        echo "$t_start $t_complete $p99 $max $n $failed $aborted $wait_ms $mis $(echo "$p99 / $a_p99" | bc -l) $other_cpu" >> "$WORK/res.$way"
        echo "run $i $way: $(tail -1 "$WORK/res.$way")" >&2
    done
done

# --- pgshift's triggers: bulk writes with and without them ---------------------------------
if [ "$TRIGGER_TEST" = 1 ]; then
    echo "pgshift triggers: expanding a copy without load..." >&2
    q "$BENCH_URL_BASE/postgres" -c "DROP DATABASE IF EXISTS expanded" -c "CREATE DATABASE expanded TEMPLATE base" >/dev/null
    : > "$WORK/op.log"
    t0=$(now)
    pgshift_start "$BENCH_URL_BASE/expanded" || { cat "$WORK/op.log" >&2; exit 1; }
    PGSHIFT_START_NO_LOAD=$(elapsed "$t0" "$(now)")
    TRIGGERS=$(q "$BENCH_URL_BASE/expanded" -c "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'pgbench_accounts'::regclass AND NOT tgisinternal")
    if [ "$TRIGGERS" -eq 0 ]; then
        echo "pgshift start left no trigger on pgbench_accounts:" >&2
        cat "$WORK/op.log" >&2
        exit 1
    fi
    q "$BENCH_URL_BASE/expanded" -c "VACUUM FULL pgbench_accounts" -c "ANALYZE pgbench_accounts" >/dev/null
    q "$BENCH_URL_BASE/postgres" -c "DROP DATABASE IF EXISTS packed" -c "CREATE DATABASE packed TEMPLATE base" >/dev/null
    q "$BENCH_URL_BASE/packed" -c "VACUUM FULL pgbench_accounts" -c "ANALYZE pgbench_accounts" >/dev/null
    bulk() { local t0; t0=$(now); q "$1" -c "$2" >/dev/null || return 1; elapsed "$t0" "$(now)"; }
    SYNCED="UPDATE pgbench_accounts SET abalance = abalance + 1"
    OTHER="UPDATE pgbench_accounts SET filler = filler"
    for i in $(seq "$RUNS"); do
        fresh packed; s0=$(bulk "$URL" "$SYNCED")
        fresh expanded; s1=$(bulk "$URL" "$SYNCED")
        fresh packed; o0=$(bulk "$URL" "$OTHER")
        fresh expanded; o1=$(bulk "$URL" "$OTHER")
        fresh expanded; q "$URL" -c "ALTER TABLE pgbench_accounts DISABLE TRIGGER USER" >/dev/null
        s2=$(bulk "$URL" "$SYNCED")
        fresh expanded; q "$URL" -c "ALTER TABLE pgbench_accounts DISABLE TRIGGER USER" >/dev/null
        o2=$(bulk "$URL" "$OTHER")
        echo "$s0 $s1 $o0 $o1 $s2 $o2" >> "$WORK/res.trigger"
        echo "run $i triggers: abalance $s0 s without, $s1 s with, $s2 s disabled; filler $o0 s without, $o1 s with, $o2 s disabled" >&2
    done
    q "$BENCH_URL_BASE/postgres" -c "DROP DATABASE IF EXISTS run_$N WITH (FORCE)" -c "DROP DATABASE expanded WITH (FORCE)" -c "DROP DATABASE packed" >/dev/null
fi

# --- figures ---------------------------------------------------------------------------------
col() { cut -d' ' -f"$2" "$WORK/res.$1" | median; }
echo
for note in "${NOTES[@]}"; do echo "# $note"; done
printf 'load_rate: %d tps\n' "$LOAD_RATE"
printf 'load_capacity: %d tps\n' "$CAPACITY"
printf 'load_p99_alone: %.1f ms\n' "$(col alone 3)"
printf 'load_max_alone: %.1f ms\n' "$(col alone 4)"
printf 'load_lock_wait_max_alone: %.0f ms\n' "$(col alone 8)"
printf 'host_other_cpu_alone: %.0f %%\n' "$(col alone 11)"
if key_ways; then
    printf 'load_rate_key: %d tps\n' "$LOAD_RATE_KEY"
    printf 'load_capacity_key: %d tps\n' "$CAPACITY_KEY"
    printf 'load_p99_alone_key: %.1f ms\n' "$(col alone_key 3)"
    printf 'load_max_alone_key: %.1f ms\n' "$(col alone_key 4)"
fi
for way in $WAYS; do
    total=$(paste -d+ <(cut -d' ' -f1 "$WORK/res.$way") <(cut -d' ' -f2 "$WORK/res.$way") | bc -l | median)
    printf '%s_total: %.1f s\n' "$way" "$total"
    if [ "${way#plain}" = "$way" ]; then
        printf '%s_start: %.1f s\n' "$way" "$(col "$way" 1)"
        printf '%s_complete: %.1f s\n' "$way" "$(col "$way" 2)"
    fi
    printf '%s_p99: %.1f ms\n' "$way" "$(col "$way" 3)"
    printf '%s_max: %.1f ms\n' "$way" "$(col "$way" 4)"
    printf '%s_p99_ratio: %.2f x\n' "$way" "$(col "$way" 10)"
    printf '%s_lock_wait_max: %.0f ms\n' "$way" "$(col "$way" 8)"
    printf '%s_failed: %d transactions\n' "$way" "$(cut -d' ' -f6 "$WORK/res.$way" | paste -sd+ | bc)"
    printf '%s_aborted_clients: %d clients\n' "$way" "$(cut -d' ' -f7 "$WORK/res.$way" | paste -sd+ | bc)"
    printf '%s_balance_mismatches: %d rows\n' "$way" "$(cut -d' ' -f9 "$WORK/res.$way" | paste -sd+ | bc)"
    printf '%s_host_other_cpu: %.0f %%\n' "$way" "$(col "$way" 11)"
done
if has_way pgshift_key && [ -s "$WORK/key.locks" ]; then
    printf 'pgshift_key_contract_tables: %d tables\n' "$(cut -d' ' -f1 "$WORK/key.locks" | sort -u | wc -l)"
    printf 'pgshift_key_contract_transactions_per_table: %d transactions\n' "$(cut -d' ' -f1 "$WORK/key.locks" | sort | uniq -c | sort -g | tail -1 | awk '{print $1}')"
    printf 'pgshift_key_contract_attempts: %d transactions\n' "$(cat "$WORK/key.attempts")"
fi
if [ "$TRIGGER_TEST" = 1 ]; then
    printf 'pgshift_start_no_load: %.1f s\n' "$PGSHIFT_START_NO_LOAD"
    printf 'pgshift_bulk_synced_without_triggers: %.1f s\n' "$(col trigger 1)"
    printf 'pgshift_bulk_synced_with_triggers: %.1f s\n' "$(col trigger 2)"
    printf 'pgshift_trigger_bulk_synced_ratio: %.2f x\n' "$(awk '{print $1 / $2}' "$WORK/res.trigger" | median)"
    printf 'pgshift_bulk_synced_triggers_disabled: %.1f s\n' "$(col trigger 5)"
    printf 'pgshift_bulk_synced_ratio_triggers_disabled: %.2f x\n' "$(awk '{print $1 / $5}' "$WORK/res.trigger" | median)"
    printf 'pgshift_bulk_other_without_triggers: %.1f s\n' "$(col trigger 3)"
    printf 'pgshift_bulk_other_with_triggers: %.1f s\n' "$(col trigger 4)"
    printf 'pgshift_trigger_bulk_other_ratio: %.2f x\n' "$(awk '{print $3 / $4}' "$WORK/res.trigger" | median)"
    printf 'pgshift_bulk_other_triggers_disabled: %.1f s\n' "$(col trigger 6)"
    printf 'pgshift_bulk_other_ratio_triggers_disabled: %.2f x\n' "$(awk '{print $3 / $6}' "$WORK/res.trigger" | median)"
fi
