#!/usr/bin/env bash
# How much headroom bench/online_change.sh's load has: its p99 at several shares of its own
# capacity, alone and with a sync trigger of the kind an online change puts on the column the
# load writes (BEFORE UPDATE OF abalance ... WHEN (NEW.abalance IS DISTINCT FROM OLD.abalance),
# a PL/pgSQL function that copies abalance into a new bigint column). No pgshift, no backfill:
# what the load's p99 does on this machine when only the trigger is added, and how far it moves
# between 40 % and 50 % of capacity (online_change.sh runs at 50 %, calibrated the same way: an
# 8 s unthrottled pgbench run).
#
# Same table, load and cluster settings as online_change.sh: pgbench -i -s 20 (2M rows), 4
# clients, `UPDATE pgbench_accounts SET abalance = abalance + d` of a random row plus a
# pgbench_history row, fixed rate (-R), latency per transaction (-l, from the scheduled start).
# Each round runs every share without and then with the trigger, SECS seconds each; figures are
# medians over ROUNDS rounds.
#
# Run:   bash bench/load_headroom.sh                       (own throwaway cluster)
#        ROUNDS=5 SECS=30 SHARES="30 40 50" bash bench/load_headroom.sh
# Prints its figures last, one per line: `name: value unit`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ROUNDS="${ROUNDS:-3}"
SECS="${SECS:-20}"
SHARES="${SHARES:-40 50}"
PGBENCH="$PG_BIN/pgbench"
[ -x "$PGBENCH" ] || PGBENCH="$(command -v pgbench)"
bench_cluster_start

WORK="$(mktemp -d /tmp/pgshift-bench-headroom.XXXXXX)"
trap 'rm -rf "$WORK"; bench_cluster_stop' EXIT
URL="$BENCH_URL_BASE/postgres"
q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 "$URL" "$@"; }

"$PGBENCH" -i -q -s 20 "$URL" >"$WORK/init.log" 2>&1 || { cat "$WORK/init.log" >&2; exit 1; }
q -c "ANALYZE"
q -c "ALTER TABLE pgbench_accounts ADD COLUMN abalance_new bigint" \
  -c "CREATE FUNCTION sync_abalance() RETURNS trigger LANGUAGE plpgsql AS \$\$
      BEGIN NEW.abalance_new := NEW.abalance; RETURN NEW; END \$\$"
bench_account_load "$WORK/load.sql" 2000000
CAPACITY=$(cd "$WORK" && "$PGBENCH" -n -c 4 -j 2 -T 8 -f load.sql "$URL" 2>/dev/null | awk '/^tps/ {print int($3); exit}')
[ "${CAPACITY:-0}" -gt 0 ] || { echo "calibration failed: capacity '$CAPACITY' tps" >&2; exit 1; }
echo "capacity: $CAPACITY tps; shares: $SHARES %; $ROUNDS rounds of $SECS s each" >&2

trigger_on() {
    q -c "CREATE TRIGGER zz_sync BEFORE UPDATE OF abalance ON pgbench_accounts FOR EACH ROW
          WHEN (NEW.abalance IS DISTINCT FROM OLD.abalance) EXECUTE FUNCTION sync_abalance()"
}
trigger_off() { q -c "DROP TRIGGER zz_sync ON pgbench_accounts"; }
# p99 in ms of one fixed-rate run: `p99_at RATE`.
p99_at() {
    rm -f "$WORK"/pgbench_log.*
    (cd "$WORK" && "$PGBENCH" -n -c 4 -j 2 -R "$1" -T "$SECS" -f load.sql -l "$URL" >/dev/null 2>&1)
    cat "$WORK"/pgbench_log.* | awk '{print $3}' | sort -n \
        | awk '{a[NR]=$1} END {printf "%.2f\n", a[int(NR*0.99)]/1000}'
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A plain trig
for round in $(seq 1 "$ROUNDS"); do
    for share in $SHARES; do
        rate=$((CAPACITY * share / 100))
        p=$(p99_at "$rate"); trigger_on; t=$(p99_at "$rate"); trigger_off
        plain[$share]+="$p "; trig[$share]+="$t "
        echo "round $round, $share %: p99 alone $p ms, with the trigger $t ms" >&2
    done
done

printf 'load_capacity: %d tps\n' "$CAPACITY"
for share in $SHARES; do
    # shellcheck disable=SC2086
    p=$(median ${plain[$share]}); t=$(median ${trig[$share]})
    printf 'p99_alone_at_%d_percent: %s ms\n' "$share" "$p"
    printf 'p99_with_trigger_at_%d_percent: %s ms\n' "$share" "$t"
    printf 'p99_trigger_vs_alone_at_%d_percent: %.2f x\n' "$share" "$(echo "$t / $p" | bc -l)"
done
