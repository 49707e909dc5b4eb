#!/usr/bin/env bash
# Times `pgshift verify` on a generated directory of 300 migrations, each with a down: a mix
# of new tables, added columns, indexes (some CONCURRENTLY, in no-transaction migrations),
# foreign keys added NOT VALID and validated, and comments — the shape of a real project's
# history. Runs on a throwaway cluster, trace included (and once more with --no-trace).
#
#   bench/verify_300.sh                 # builds pgshift (debug) first
#   PGSHIFT=target/release/pgshift bench/verify_300.sh
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
mkdir -p "$dir"

# Every 10 migrations: one new table, then nine changes to it.
for ((i = 1; i <= count; i++)); do
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
  printf '%s\n' "$up" > "$dir/${version}_${name}.up.sql"
  printf '%s\n' "$down" > "$dir/${version}_${name}.down.sql"
done

run() {
  local start end
  start=$(date +%s.%N)
  "$pgshift" verify --dir "$dir" --dir-format pgshift --format json "$@" > "$work/report.json"
  end=$(date +%s.%N)
  python3 -c "import json,sys; r=json.load(open('$work/report.json')); sys.exit(0 if r['passed'] else 1)" \
    || { echo "verify failed on the generated set:" >&2; "$pgshift" verify --dir "$dir" --dir-format pgshift "$@" >&2 || true; exit 1; }
  echo "$end - $start" | bc
}

echo "generated $count migrations in $dir" >&2
with_trace=$(run)
without_trace=$(run --no-trace)
statements=$(python3 -c "import json; r=json.load(open('$work/report.json')); print(len(r['migrations']))")
echo "pgshift: $pgshift" >&2
echo "verify_${count}_migrations_with_trace: $with_trace s"
echo "verify_${count}_migrations_without_trace: $without_trace s"
echo "verify_per_migration_with_trace: $(echo "scale=1; $with_trace * 1000 / $count" | bc) ms"
echo "migrations_verified: $statements count"
