#!/usr/bin/env bash
# `pgshift check` throughput: 1,000 generated migration files of 10 statements each (a realistic
# mix: CREATE TABLE, ADD COLUMN with and without defaults, plain and concurrent indexes, foreign
# keys, checks, UPDATE backfills, comments, a DO block, a plpgsql function), checked as one folder;
# then a single small file, which is mostly start-up cost. No database is needed.
#
# squawk, the peer, checks the same files in the same run: found on PATH, as SQUAWK=/path, or
# under target/tools/npm; otherwise installed there from the npm registry (`npm install
# --prefix target/tools/npm squawk-cli`, whose binary comes in the optional
# `@squawk-cli/linux-x64` package). SQUAWK=none leaves it out, and the script says so. Peak
# memory (maximum resident set) of both is measured too.
#
# Run:   bash bench/check_throughput.sh
#        N=5000 RUNS=5 bash bench/check_throughput.sh     (more files, more timed runs)
#        PGSHIFT_BIN=target/debug/pgshift PGSHIFT_BIN_PREBUILT=1 bash bench/check_throughput.sh
# Prints its figures last, one per line: `name: value unit`. Times are the best of RUNS runs.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
N="${N:-1000}"
RUNS="${RUNS:-3}"
STATEMENTS_PER_FILE=10
bench_build

WORK="$(mktemp -d /tmp/pgshift-bench-check.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/migrations"
# pgshift's runner sets lock_timeout itself; an empty config keeps the folder in pgshift's format.
touch "$WORK/pgshift.toml"

# One migration: a new table, changes to the previous migration's table, and the code around them.
write_migration() {
    local i=$1 p=$(( $1 - 1 )) file
    file="$WORK/migrations/$(printf '2024%010d' "$i")_change_$i.up.sql"
    {
        if (( i % 5 == 0 )); then
            # Every fifth migration builds its index concurrently, outside a transaction.
            echo "-- pgshift:no-transaction"
        fi
        cat <<SQL
CREATE TABLE t$i (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parent_id bigint,
    name text NOT NULL,
    amount numeric(12, 2),
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE t$p ADD COLUMN note text;
ALTER TABLE t$p ADD COLUMN status text NOT NULL DEFAULT 'new';
SQL
        if (( i % 5 == 0 )); then
            echo "CREATE INDEX CONCURRENTLY IF NOT EXISTS t${p}_name_idx ON t$p (name);"
        else
            echo "CREATE INDEX t${p}_name_idx ON t$p (name);"
        fi
        cat <<SQL
ALTER TABLE t$i ADD CONSTRAINT t${i}_parent_fk FOREIGN KEY (parent_id) REFERENCES t$p (id);
ALTER TABLE t$p ADD CONSTRAINT t${p}_amount_check CHECK (amount >= 0) NOT VALID;
UPDATE t$p SET status = 'active' WHERE created_at < now() - interval '30 days';
COMMENT ON TABLE t$i IS 'Rows of kind $i; see the docs.';
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'reader_$i') THEN
        CREATE ROLE reader_$i;
    END IF;
END
\$\$;
CREATE OR REPLACE FUNCTION t${i}_touch() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
    NEW.created_at := coalesce(NEW.created_at, now());
    RETURN NEW;
END;
\$\$;
SQL
    } >"$file"
}
for i in $(seq 1 "$N"); do write_migration "$i"; done
SMALL="$WORK/small.sql"
printf 'ALTER TABLE users ADD COLUMN note text;\n' >"$SMALL"

# Best wall time of RUNS runs of a command (its output and exit status ignored: findings give
# exit 1), in seconds.
best_of() {
    local best="" start elapsed
    for _ in $(seq 1 "$RUNS"); do
        start=$(now)
        "$@" >/dev/null 2>&1 || true
        elapsed=$(echo "$(now) - $start" | bc -l)
        if [ -z "$best" ] || (( $(echo "$elapsed < $best" | bc -l) )); then best=$elapsed; fi
    done
    echo "$best"
}

# The binary must work on the folder before it is timed: a usage error (exit 2) would time nothing.
set +e
"$PGSHIFT_BIN" check "$WORK/migrations" --format json >"$WORK/out.json" 2>"$WORK/err.txt"
code=$?
set -e
if [ "$code" -gt 1 ]; then
    echo "pgshift check failed with exit $code:" >&2
    cat "$WORK/err.txt" >&2
    exit 1
fi
findings=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["findings"]))' "$WORK/out.json")

statements=$(( N * STATEMENTS_PER_FILE ))
folder_s=$(best_of "$PGSHIFT_BIN" check "$WORK/migrations" --format json)
small_s=$(best_of "$PGSHIFT_BIN" check "$SMALL" --format json)

SQUAWK="${SQUAWK:-$(command -v squawk || true)}"
NPM_SQUAWK="$REPO_ROOT/target/tools/npm/node_modules/@squawk-cli/linux-x64/bin/squawk"
if [ -z "$SQUAWK" ] && [ ! -x "$NPM_SQUAWK" ] && command -v npm >/dev/null; then
    echo "squawk not found: installing squawk-cli from npm into target/tools/npm (SQUAWK=none skips it)" >&2
    npm install --silent --prefix "$REPO_ROOT/target/tools/npm" squawk-cli >&2 || true
fi
if [ -z "$SQUAWK" ] && [ -x "$NPM_SQUAWK" ]; then SQUAWK="$NPM_SQUAWK"; fi
if [ "$SQUAWK" = none ]; then SQUAWK=""; fi

# Peak resident memory of one run, in MiB.
peak_mib() {
    /usr/bin/time -f '%M' -o "$WORK/rss" "$@" >/dev/null 2>&1 || true
    echo "$(tail -n 1 "$WORK/rss") / 1024" | bc -l
}
folder_mib=$(peak_mib "$PGSHIFT_BIN" check "$WORK/migrations" --format json)

squawk_s=""
if [ -n "$SQUAWK" ]; then
    squawk_version=$("$SQUAWK" --version 2>/dev/null || echo "squawk (unknown version)")
    squawk_s=$(best_of "$SQUAWK" --reporter json "$WORK"/migrations/*.sql)
    squawk_small_s=$(best_of "$SQUAWK" --reporter json "$SMALL")
    squawk_mib=$(peak_mib "$SQUAWK" --reporter json "$WORK"/migrations/*.sql)
else
    echo "squawk is missing (no npm, or SQUAWK=none): the comparison with it is left out of this run" >&2
fi

echo "files: $N files"
echo "statements: $statements statements"
echo "pgshift_findings: $findings findings"
echo "pgshift_check_folder: $(printf '%.3f' "$folder_s") s"
echo "pgshift_check_throughput: $(echo "$statements / $folder_s" | bc) statements/s"
echo "pgshift_check_single_small_file: $(echo "$small_s * 1000" | bc -l | xargs printf '%.1f') ms"
echo "pgshift_check_folder_peak_memory: $(printf '%.1f' "$folder_mib") MiB"
if [ -n "$squawk_s" ]; then
    echo "squawk_version: $squawk_version"
    echo "squawk_check_folder: $(printf '%.3f' "$squawk_s") s"
    echo "squawk_check_throughput: $(echo "$statements / $squawk_s" | bc) statements/s"
    echo "squawk_check_single_small_file: $(echo "$squawk_small_s * 1000" | bc -l | xargs printf '%.1f') ms"
    echo "squawk_check_folder_peak_memory: $(printf '%.1f' "$squawk_mib") MiB"
    echo "pgshift_vs_squawk_folder_time: $(echo "$folder_s / $squawk_s" | bc -l | xargs printf '%.2f') x"
    echo "pgshift_vs_squawk_peak_memory: $(echo "$folder_mib / $squawk_mib" | bc -l | xargs printf '%.2f') x"
fi
