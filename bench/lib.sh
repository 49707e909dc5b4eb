# Shared by the bench scripts: a throwaway PostgreSQL cluster (or $BENCH_DATABASE_URL), and
# the pgshift binary. Source it; call `bench_cluster_start`, then use $BENCH_URL_BASE/<db>.

PG_BIN="${PGSHIFT_PG_BIN:-$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PGSHIFT_BIN="${PGSHIFT_BIN:-$REPO_ROOT/target/release/pgshift}"

bench_build() {
    if [ ! -x "$PGSHIFT_BIN" ] || [ -z "${PGSHIFT_BIN_PREBUILT:-}" ]; then
        (cd "$REPO_ROOT" && cargo build --release -p pgshift --quiet) >&2
    fi
}

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

bench_cluster_start() {
    if [ -n "${BENCH_DATABASE_URL:-}" ]; then
        BENCH_URL_BASE="${BENCH_DATABASE_URL%/*}"
        return
    fi
    BENCH_DIR="$(mktemp -d /tmp/pgshift-bench.XXXXXX)"
    if [ "$(id -u)" = 0 ]; then chown postgres "$BENCH_DIR"; fi
    BENCH_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    as_postgres "$PG_BIN/initdb" -D "$BENCH_DIR/data" -U postgres -A trust -E UTF8 --locale=C -N >/dev/null
    as_postgres "$PG_BIN/pg_ctl" -D "$BENCH_DIR/data" -l "$BENCH_DIR/log" -w \
        -o "-p $BENCH_PORT -k $BENCH_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null
    BENCH_URL_BASE="postgres://postgres@127.0.0.1:$BENCH_PORT"
    trap bench_cluster_stop EXIT
}

bench_cluster_stop() {
    if [ -n "${BENCH_DIR:-}" ]; then
        as_postgres "$PG_BIN/pg_ctl" -D "$BENCH_DIR/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$BENCH_DIR"
    fi
}

now() { date +%s.%N; }

# The online benches' load (online_change.sh, load_headroom.sh), one pgbench script: a random
# account's balance moved and its history row written. `bench_account_load FILE ROWS`.
bench_account_load() {
    cat >"$1" <<EOF
\set aid random(1, $2)
\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, :aid, :delta, CURRENT_TIMESTAMP);
END;
EOF
}
