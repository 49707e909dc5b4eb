#!/usr/bin/env bash
# Times `pgshift verify` on a generated directory of 300 migrations, each with a down: a mix
# of new tables, added columns, indexes (some CONCURRENTLY, in no-transaction migrations),
# foreign keys added NOT VALID and validated, and comments — the shape of a real project's
# history. Runs on a throwaway cluster, trace included (and once more with --no-trace), and
# compares with a psql replay of the same folder (up, down, up; one psql per file) in the same
# run. Needs psql and the server binaries (initdb, pg_ctl) on the machine. Then the growth:
# the same kind of folder at each of SCALE (default 100 and 600 migrations, 300 being the main
# run), verified without trace, with the time per migration and the peak memory (maximum
# resident set) at each size — both should stay flat as the history grows.
#
#   bench/verify_300.sh                 # builds pgshift (debug) first
#   PGSHIFT=target/release/pgshift bench/verify_300.sh
#   SCALE="100 600 1000" PGSHIFT=target/release/pgshift bench/verify_300.sh
#
# The last lines are `name: value unit`.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
count="${COUNT:-300}"
pgshift="${PGSHIFT:-}"
if [[ -z "$pgshift" ]]; then
  (cd "$root" && cargo build -q -p pgshift)
  pgshift="$root/target/debug/pgshift"
fi

work="$(mktemp -d)"
trap '[[ -n "${KEEP:-}" ]] || rm -rf "$work"' EXIT
dir="$work/migrations"

# Every 10 migrations: one new table, then nine changes to it. `generate DIR N`.
generate() {
  local into="$1" n="$2" i version t table name up down parent
  mkdir -p "$into"
  for ((i = 1; i <= n; i++)); do
    version=$(printf '2024%010d' "$i")
    t=$(( (i - 1) / 10 ))
    table="t$t"
    case $(( (i - 1) % 10 )) in
      0) name="create_$table"
         up="CREATE TABLE $table (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());"
         down="DROP TABLE $table;" ;;
      1) name="${table}_add_email"
         up="ALTER TABLE $table ADD COLUMN email text;"
         down="ALTER TABLE $table DROP COLUMN email;" ;;
      2) name="${table}_index_email"
         up=$'-- pgshift:no-transaction\n'"CREATE INDEX CONCURRENTLY ${table}_email_idx ON $table (email);"
         down=$'-- pgshift:no-transaction\n'"DROP INDEX CONCURRENTLY ${table}_email_idx;" ;;
      3) name="${table}_add_parent"
         if (( t > 0 )); then parent="t$(( t - 1 ))"; else parent="$table"; fi
         up="ALTER TABLE $table ADD COLUMN parent_id bigint;"
         down="ALTER TABLE $table DROP COLUMN parent_id;" ;;
      4) name="${table}_parent_fk"
         up=$'-- pgshift:no-transaction\n'"ALTER TABLE $table ADD CONSTRAINT ${table}_parent_fk FOREIGN KEY (parent_id) REFERENCES $parent (id) NOT VALID;"$'\n'"ALTER TABLE $table VALIDATE CONSTRAINT ${table}_parent_fk;"
         down="ALTER TABLE $table DROP CONSTRAINT ${table}_parent_fk;" ;;
      5) name="${table}_add_status"
         up="ALTER TABLE $table ADD COLUMN status text NOT NULL DEFAULT 'new';"
         down="ALTER TABLE $table DROP COLUMN status;" ;;
      6) name="${table}_status_check"
         up="ALTER TABLE $table ADD CONSTRAINT ${table}_status_check CHECK (status IN ('new', 'done')) NOT VALID;"
         down="ALTER TABLE $table DROP CONSTRAINT ${table}_status_check;" ;;
      7) name="${table}_comment"
         up="COMMENT ON TABLE $table IS 'table number $t';"
         down="COMMENT ON TABLE $table IS NULL;" ;;
      8) name="${table}_add_score"
         up="ALTER TABLE $table ADD COLUMN score integer;"
         down="ALTER TABLE $table DROP COLUMN score;" ;;
      9) name="${table}_view"
         up="CREATE VIEW ${table}_recent AS SELECT id, name FROM $table WHERE created_at > now() - interval '1 day';"
         down="DROP VIEW ${table}_recent;" ;;
    esac
    printf '%s\n' "$up" > "$into/${version}_${name}.up.sql"
    printf '%s\n' "$down" > "$into/${version}_${name}.down.sql"
  done
}
generate "$dir" "$count"

run() {
  local start end
  start=$(date +%s.%N)
  "$pgshift" verify --dir "$dir" --dir-format pgshift --format json "$@" > "$work/report.json"
  end=$(date +%s.%N)
  python3 -c "import json,sys; r=json.load(open('$work/report.json')); sys.exit(0 if r['passed'] else 1)" \
    || { echo "verify failed on the generated set:" >&2; "$pgshift" verify --dir "$dir" --dir-format pgshift "$@" >&2 || true; exit 1; }
  echo "$end - $start" | bc
}

# The baseline: the same folder replayed with psql, up → down → up, one psql per file (what a
# CI shell loop does), on a cluster of its own; and, tighter, all files in one psql session.
psql_replay() {
  local bin data sock as=()
  bin="${PGSHIFT_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}"
  data="$work/pgdata"; sock="$work/sock"
  mkdir -p "$sock"
  if [[ $(id -u) -eq 0 ]]; then
    chown -R postgres "$work"
    chmod o+rx "$work"
    as=(runuser -u postgres --)
  fi
  "${as[@]}" "$bin/initdb" -D "$data" -A trust -U postgres >/dev/null
  "${as[@]}" "$bin/pg_ctl" -D "$data" -o "-c listen_addresses= -k $sock -c fsync=off" -l "$work/pg.log" -w start >/dev/null
  local psql=(psql -X -q -h "$sock" -U postgres -d postgres -v ON_ERROR_STOP=1)
  local ups downs start end
  mapfile -t ups < <(ls "$dir"/*.up.sql | sort)
  mapfile -t downs < <(ls "$dir"/*.down.sql | sort -r)
  start=$(date +%s.%N)
  for f in "${ups[@]}" "${downs[@]}" "${ups[@]}"; do
    "${psql[@]}" -f "$f" >/dev/null
  done
  end=$(date +%s.%N)
  echo "$end - $start" | bc > "$work/per_file"
  # The tightest replay: one psql session reading every file in turn (`-f` repeated).
  "${psql[@]}" -c "DROP SCHEMA public CASCADE; CREATE SCHEMA public" >/dev/null
  local args=()
  for f in "${ups[@]}" "${downs[@]}" "${ups[@]}"; do args+=(-f "$f"); done
  start=$(date +%s.%N)
  "${psql[@]}" "${args[@]}" >/dev/null
  end=$(date +%s.%N)
  echo "$end - $start" | bc > "$work/one_session"
  "${as[@]}" "$bin/pg_ctl" -D "$data" -m fast stop >/dev/null
}

echo "generated $count migrations in $dir" >&2
psql_replay
baseline=$(cat "$work/per_file")
one_session=$(cat "$work/one_session")
with_trace=$(run)
without_trace=$(run --no-trace)
statements=$(python3 -c "import json; r=json.load(open('$work/report.json')); print(len(r['migrations']))")
# Snapshot cost against schema size, early (small schema, few migrations applied) and late.
snap() { EXPR="$1" python3 -c "import json, os; t=json.load(open('$work/report.json'))['timings']; print('%.2f' % eval(os.environ['EXPR']))"; }
# The report a person reads: terminal and markdown, lines and characters.
"$pgshift" verify --dir "$dir" --dir-format pgshift --no-trace > "$work/report.txt" || true
"$pgshift" verify --dir "$dir" --dir-format pgshift --format markdown > "$work/report.md" || true
# Growth: time per migration and peak memory at each size (without trace), the main size too.
scale_runs=()
for n in ${SCALE:-100 600} "$count"; do
  sdir="$work/scale_$n"
  [[ -d "$sdir" ]] || generate "$sdir" "$n"
  start=$(date +%s.%N)
  # pgshift's own peak (VmHWM), read while it runs: `time -f %M` would report the largest of
  # its children, the throwaway cluster's server processes.
  "$pgshift" verify --dir "$sdir" --dir-format pgshift --no-trace --format json > "$work/scale_$n.json" &
  pid=$!
  hwm=0
  while kill -0 "$pid" 2>/dev/null; do
    now_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    if [[ -n "$now_kb" ]] && (( now_kb > hwm )); then hwm=$now_kb; fi
    sleep 0.05
  done
  wait "$pid" || { echo "verify failed on the generated set of $n" >&2; exit 1; }
  end=$(date +%s.%N)
  seconds=$(echo "$end - $start" | bc)
  scale_runs+=("$n $(echo "scale=2; $seconds * 1000 / $n" | bc) $(echo "scale=1; $hwm / 1024" | bc)")
done
echo "pgshift: $pgshift" >&2
echo "psql_replay_up_down_up_${count}: $baseline s"
echo "psql_replay_one_session_${count}: $one_session s"
echo "verify_${count}_migrations_with_trace: $with_trace s"
echo "verify_${count}_migrations_without_trace: $without_trace s"
echo "verify_per_migration_with_trace: $(echo "scale=1; $with_trace * 1000 / $count" | bc) ms"
echo "verify_with_trace_vs_psql_replay: $(echo "scale=2; $with_trace / $baseline" | bc) x"
echo "verify_without_trace_vs_psql_replay: $(echo "scale=2; $without_trace / $baseline" | bc) x"
echo "verify_with_trace_vs_psql_one_session: $(echo "scale=2; $with_trace / $one_session" | bc) x"
echo "terminal_report: $(wc -l < "$work/report.txt") lines"
echo "terminal_report_size: $(wc -m < "$work/report.txt") characters"
echo "markdown_report: $(wc -l < "$work/report.md") lines"
echo "markdown_report_size: $(wc -m < "$work/report.md") characters"
echo "snapshots_taken: $(snap "t['snapshots']") count"
echo "snapshot_first_tenth: $(snap "t['first_tenth']['ms']") ms"
echo "snapshot_last_tenth: $(snap "t['last_tenth']['ms']") ms"
echo "snapshot_objects_first_tenth: $(snap "t['first_tenth']['objects']") count"
echo "snapshot_objects_last_tenth: $(snap "t['last_tenth']['objects']") count"
echo "snapshot_ms_per_100_objects_first_tenth: $(snap "100 * t['first_tenth']['ms'] / t['first_tenth']['objects']") ms"
echo "snapshot_ms_per_100_objects_last_tenth: $(snap "100 * t['last_tenth']['ms'] / t['last_tenth']['objects']") ms"
echo "snapshot_last_vs_first_tenth: $(snap "t['last_tenth']['ms'] / t['first_tenth']['ms']") x"
echo "migrations_verified: $statements count"
smallest=""; largest=""
for r in $(printf '%s\n' "${scale_runs[@]}" | sort -n -k1,1 | tr ' ' ':'); do
  IFS=: read -r n per mib <<< "$r"
  echo "verify_no_trace_per_migration_at_${n}: $per ms"
  echo "verify_no_trace_peak_memory_at_${n}: $mib MiB"
  [[ -n "$smallest" ]] || smallest="$n:$per:$mib"
  largest="$n:$per:$mib"
done
IFS=: read -r n0 per0 mib0 <<< "$smallest"
IFS=: read -r n1 per1 mib1 <<< "$largest"
echo "per_migration_${n1}_vs_${n0}: $(echo "scale=2; $per1 / $per0" | bc) x"
echo "peak_memory_${n1}_vs_${n0}: $(echo "scale=2; $mib1 / $mib0" | bc) x"
