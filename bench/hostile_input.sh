#!/usr/bin/env bash
# Resources on large and hostile input (issue 14): peak memory of `check` and `up` against the
# size of the largest migration file, bytes printed by `check`, how `check`'s time grows with
# the number of files, and how fast deeply nested comments are refused.
#
#   - one INSERT-only file and one DDL-only file of SIZE_MB each: `check` and `up` peak RSS
#     (/usr/bin/time -v), and for `up` the same file run by `psql -1 -f` (the plain baseline);
#   - FILES_SMALL and FILES_LARGE empty migration files: `check` wall time (linear growth is
#     FILES_LARGE / FILES_SMALL; quadratic is its square);
#   - 100,000 nested `/* */` comments in one file: `check` wall time.
#
# Run:   bash bench/hostile_input.sh                          (starts its own throwaway cluster)
#        SIZE_MB=50 FILES_LARGE=100000 bash bench/hostile_input.sh    (the issue's sizes)
#        PGSHIFT_BASELINE_BIN=/path/to/older/pgshift bash bench/hostile_input.sh
#                      (the same figures for an older build, for a before/after in one run)
#        PGSHIFT_BIN=target/debug/pgshift PGSHIFT_BIN_PREBUILT=1 bash bench/hostile_input.sh
# Needs GNU time (/usr/bin/time) and psql. Prints its figures last: `name: value unit`.
#
# Measured 2026-11-28 (debug builds, SIZE_MB=5 FILES_SMALL=10000 FILES_LARGE=50000, 2 shared
# cores), main before issue 14 -> branch harden:
#   check peak RSS / file:  INSERTs 181.7x -> 7.5x (866 -> 36 MB), DDL 99.9x -> 8.1x (476 -> 39 MB)
#   up peak RSS / file:     INSERTs 182x -> 191x, DDL 100x -> 112x (not bounded yet; psql: 10 MB)
# Measured 2026-11-28 (release build), prepare reading the script a run at a time, keeping no
# tree past its walk, and `up`/`down` keeping only the statement facts they read:
#   up peak RSS / file:     INSERTs 5 MB 191x -> 12.7x (957 -> 63 MB), 20 MB 9.7x, 50 MB 8.6x
#                           (428 MB; psql: 9 MB); DDL 5 MB 15.1x (76 MB), 20 MB 12.4x (247 MB)
#   check on 50,000 files:  53.8 s -> 1.7 s; growth 10k -> 50k: 32.3x -> 5.8x (linear: 5x)
#   100,000 nested comments: 30.8 s -> 0.07 s (refused)
# Measured 2026-11-28 (release build), the executor borrowing the unit it runs, steps sharing
# their file's text, the parser borrowing text with nothing to mask, the DDL file's SET DEFAULT
# replaced by SET STATISTICS (see the generator: the old file made up and psql fail part-way):
#   SIZE_MB=5:  up INSERTs 8.3x (40 MB), DDL 9.2x (44 MB); check 5.5x / 6.2x; psql 9 MB
#   SIZE_MB=20 FILES_SMALL=20000 FILES_LARGE=100000: up INSERTs 6.3x (120 MB), DDL 7.0x
#               (133 MB); check 3.0x / 3.9x; check on 100,000 files 2.84 s, growth 5.4x
#               (linear: 5.0); 100,000 nested comments 0.02 s
set -euo pipefail
source "$(dirname "$0")/lib.sh"
SIZE_MB="${SIZE_MB:-10}"
FILES_SMALL="${FILES_SMALL:-20000}"
FILES_LARGE="${FILES_LARGE:-100000}"
BASELINE="${PGSHIFT_BASELINE_BIN:-}"
bench_build
bench_cluster_start

WORK="$(mktemp -d /tmp/pgshift-bench-hostile.XXXXXX)"
trap 'rm -rf "$WORK"; bench_cluster_stop' EXIT
FIGURES="$WORK/figures"
: >"$FIGURES"
figure() { echo "$1: $2 $3" >>"$FIGURES"; }

# --- input ---------------------------------------------------------------------------------
python3 - "$WORK" "$SIZE_MB" <<'PY'
import os, sys
work, size = sys.argv[1], int(sys.argv[2]) * 1_000_000
os.makedirs(f"{work}/inserts", exist_ok=True)
os.makedirs(f"{work}/ddl", exist_ok=True)
with open(f"{work}/inserts/20240101000000_data.up.sql", "w") as f:
    f.write("CREATE TABLE t (id bigint PRIMARY KEY, name text, amount numeric);\n")
    i = 0
    while f.tell() < size:
        i += 1
        f.write(f"INSERT INTO t (id, name, amount) VALUES ({i}, 'customer {i} from the import', {i}.25);\n")
with open(f"{work}/ddl/20240101000000_schema.up.sql", "w") as f:
    # DDL on 100 tables, so that one transaction holds few locks (psql -1 must run it too).
    # SET STATISTICS, not SET DEFAULT: each SET DEFAULT drops the previous default and the
    # transaction keeps a lock per dropped object, which ran out of shared memory part-way
    # (for psql as for pgshift; figures before 2026-11-28's last session were of that run).
    for k in range(100):
        f.write(f"CREATE TABLE t{k} (id int PRIMARY KEY, name text NOT NULL);\n")
    i = 0
    while f.tell() < size:
        i += 1
        k = i % 100
        f.write(f"-- revision {i}\nALTER TABLE t{k} ALTER COLUMN name SET STATISTICS {i % 1000};\n"
                f"COMMENT ON TABLE t{k} IS 'revision {i} of table {k}';\n")
PY
bytes_of() { stat -c %s "$1"; }
INS_BYTES=$(bytes_of "$WORK/inserts/20240101000000_data.up.sql")
DDL_BYTES=$(bytes_of "$WORK/ddl/20240101000000_schema.up.sql")

# Peak RSS in kB of a command (its output goes to $WORK/out, its exit code to $WORK/code).
peak_kb() {
    local code=0
    /usr/bin/time -f '%M' -o "$WORK/rss" "$@" >"$WORK/out" 2>"$WORK/err" || code=$?
    echo "$code" >"$WORK/code"
    tail -n 1 "$WORK/rss"
}
ratio() { python3 -c "print(f'{$1 / $2:.1f}')"; }
mb() { python3 -c "print(f'{$1 / 1024:.0f}')"; }

measure() { # measure LABEL BINARY
    local label=$1 bin=$2 kb out_bytes db
    for kind in inserts ddl; do
        local bytes=$INS_BYTES
        [ "$kind" = ddl ] && bytes=$DDL_BYTES
        kb=$(peak_kb "$bin" check "$WORK/$kind")
        out_bytes=$(cat "$WORK/out" "$WORK/err" | wc -c)
        figure "${label}check_peak_rss_$kind" "$(mb "$kb")" MB
        figure "${label}check_rss_over_file_$kind" "$(ratio "$kb * 1024" "$bytes")" x
        figure "${label}check_output_$kind" "$out_bytes" bytes
        db="${label//_/}up_$kind"
        psql -q "$BENCH_URL_BASE/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
        kb=$(peak_kb "$bin" up --database-url "$BENCH_URL_BASE/$db" --dir "$WORK/$kind")
        if [ "$(cat "$WORK/code")" != 0 ]; then
            # A figure of a run that stopped half-way would flatter it: say so instead.
            echo "warning: ${label}up of $kind failed (exit $(cat "$WORK/code")):" >&2
            tail -n 5 "$WORK/err" >&2
            figure "${label}up_failed_$kind" "$(cat "$WORK/code")" exit
        fi
        figure "${label}up_peak_rss_$kind" "$(mb "$kb")" MB
        figure "${label}up_rss_over_file_$kind" "$(ratio "$kb * 1024" "$bytes")" x
    done

    local t0 t1 small large
    for n in "$FILES_SMALL" "$FILES_LARGE"; do
        t0=$(now)
        "$bin" check "$WORK/files_$n" >/dev/null 2>&1 || true
        t1=$(now)
        figure "${label}check_files_$n" "$(python3 -c "print(f'{$t1 - $t0:.2f}')")" s
        [ "$n" = "$FILES_SMALL" ] && small=$(python3 -c "print($t1 - $t0)") || large=$(python3 -c "print($t1 - $t0)")
    done
    figure "${label}check_files_growth" "$(ratio "$large" "$small")" "x (linear: $(ratio "$FILES_LARGE" "$FILES_SMALL"))"

    t0=$(now)
    timeout 120 "$bin" check "$WORK/nested" >/dev/null 2>&1 || true
    t1=$(now)
    figure "${label}check_nested_comments_100000" "$(python3 -c "print(f'{$t1 - $t0:.2f}')")" s
}

for n in "$FILES_SMALL" "$FILES_LARGE"; do
    mkdir -p "$WORK/files_$n"
    (cd "$WORK/files_$n" && seq -f '%014.0f' 1 "$n" | sed 's/$/_m.up.sql/' | xargs touch)
done
mkdir -p "$WORK/nested"
python3 -c "
d = 100_000
open('$WORK/nested/1_deep.sql', 'w').write('SELECT 1;\n' + '/*' * d + 'SELECT 2' + '*/' * d + ';\n')"

# psql's own footprint on the same files: the plain runner.
for kind in inserts ddl; do
    db="psql_$kind"
    psql -q "$BENCH_URL_BASE/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    kb=$(peak_kb psql -q -v ON_ERROR_STOP=1 -1 -f "$WORK/$kind/"*.sql "$BENCH_URL_BASE/$db")
    figure "psql_peak_rss_$kind" "$(mb "$kb")" MB
done

[ -n "$BASELINE" ] && measure baseline_ "$BASELINE"
measure "" "$PGSHIFT_BIN"

echo "input: $SIZE_MB MB per file (inserts $INS_BYTES bytes, ddl $DDL_BYTES bytes)"
cat "$FIGURES"
