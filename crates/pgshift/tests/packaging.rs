//! pgshift without a Rust toolchain: the Python wheel (`packaging/python`, maturin's `bin`
//! bindings) and the npm packages (`packaging/npm`: a launcher and one package per platform)
//! are built here for this machine, installed offline from the local files into a fresh venv /
//! a fresh node project, and run: `pgshift --version`, and `pgshift check` on a migration with
//! a known finding.
//!
//! maturin comes from PyPI (`scripts/dev.sh test` installs it into `target/tools`; or set
//! `PGSHIFT_MATURIN`), npm from the system. Without one of them the test says loudly that it
//! skips, and why, on the terminal (not in the captured output).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_pgshift");
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A migration every default configuration reports as an error (PGS101).
const BLOCKING_INDEX: &str = "CREATE INDEX users_email_idx ON users (email);\n";

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// Says something on the terminal even though libtest captures the test's output: a skip
/// must be seen, and the sizes and times are what the packaging costs.
fn announce(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "\npackaging: {message}");
}

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(out.status.success(), "{shown} failed:\n{}", text(&out));
    out
}

/// Runs an installed `pgshift`: `--version` names the release and the supported PostgreSQL
/// majors, and `check` reports the blocking index with exit code 1.
fn assert_installed_pgshift_works(pgshift: &Path, work: &Path) {
    let out = run(Command::new(pgshift).arg("--version"));
    let version = String::from_utf8_lossy(&out.stdout);
    assert!(
        version.starts_with(&format!("pgshift {VERSION}\n")),
        "{version}"
    );
    assert!(version.contains("supported"), "{version}");

    let migrations = work.join("migrations");
    std::fs::create_dir_all(&migrations).expect("mkdir");
    std::fs::write(migrations.join("001_index.sql"), BLOCKING_INDEX).expect("write");
    let out = Command::new(pgshift)
        .args(["check", "--format", "json", "migrations"])
        .current_dir(work)
        .env("NO_COLOR", "1")
        .output()
        .expect("run the installed pgshift");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)));
    let codes: Vec<&str> = report["findings"]
        .as_array()
        .map(|f| f.iter().filter_map(|f| f["code"].as_str()).collect())
        .unwrap_or_default();
    assert!(codes.contains(&"PGS101"), "{}", text(&out));
}

fn size_kib(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len() / 1024).unwrap_or(0)
}

fn find_maturin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PGSHIFT_MATURIN") {
        return Some(PathBuf::from(p));
    }
    let found = Command::new("maturin").arg("--version").output();
    found
        .ok()
        .filter(|o| o.status.success())
        .map(|_| "maturin".into())
}

#[test]
fn the_wheel_installs_into_a_fresh_venv_and_runs() {
    let Some(maturin) = find_maturin() else {
        announce(
            "SKIPPED the wheel test: maturin was not found (neither PGSHIFT_MATURIN nor `maturin` \
             on PATH). `scripts/dev.sh test` installs it from PyPI; or `pip install maturin`.",
        );
        return;
    };
    let has_venv = Command::new("python3")
        .args(["-c", "import ensurepip, venv"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_venv {
        announce(
            "SKIPPED the wheel test: python3 with venv is missing (apt-get install python3-venv).",
        );
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let wheels = work.path().join("wheels");

    // The same target directory and profile as the test build, so cargo (run by maturin)
    // finds pgshift built and only packs it.
    let target_dir = Path::new(BIN)
        .parent()
        .and_then(Path::parent)
        .expect("target dir");
    let mut maturin = Command::new(&maturin);
    maturin
        .args(["build", "--profile", "dev", "--out"])
        .arg(&wheels)
        .current_dir(repository().join("packaging/python"))
        .env("CARGO_TARGET_DIR", target_dir);
    // cargo runs this test with the package's variables set (CARGO_PKG_NAME, ...); some build
    // scripts (ring's) ask to be rerun when those change, so a cargo that inherits them would
    // rebuild half the tree, twice a run (once here, once for the next `cargo test`).
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|p| name.starts_with(p))
            || [
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
            ]
            .contains(&name.as_ref())
        {
            maturin.env_remove(name.as_ref());
        }
    }
    let started = Instant::now();
    let out = run(&mut maturin);
    let built = started.elapsed();
    let compiled: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.trim_start().starts_with("Compiling"))
        .map(str::to_string)
        .collect();
    if !compiled.is_empty() {
        announce(&format!(
            "maturin's cargo rebuilt {} crates instead of reusing the test build (an \
             environment variable a build script watches differs?): {compiled:?}",
            compiled.len()
        ));
    }
    let wheel = std::fs::read_dir(&wheels)
        .expect("wheels")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .expect("maturin wrote a wheel");
    let name = wheel
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    assert!(
        name.starts_with(&format!("pgshift-{VERSION}-py3-none-")) && name.contains("x86_64"),
        "{name}"
    );

    let venv = work.path().join("venv");
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    // Offline: the wheel is the only package, and pip may not look anywhere else.
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--no-index", "--no-deps", "--quiet"])
        .arg(&wheel));
    assert_installed_pgshift_works(&venv.join("bin/pgshift"), work.path());
    announce(&format!(
        "wheel {name}: {} KiB (a dev build; the release wheel is smaller), maturin {:.1} s, \
         the whole test {:.1} s",
        size_kib(&wheel),
        built.as_secs_f64(),
        started.elapsed().as_secs_f64()
    ));
}

#[test]
fn the_npm_package_installs_into_a_fresh_project_and_runs() {
    let has_npm = Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_npm {
        announce("SKIPPED the npm test: npm was not found (apt-get install npm).");
        return;
    }
    let started = Instant::now();
    let work = tempfile::tempdir().expect("tempdir");
    let tarballs = work.path().join("tarballs");
    // The binary this suite built, packed as it is: npm packs files, it builds nothing.
    run(Command::new(repository().join("packaging/npm/pack.sh"))
        .arg("linux-x64")
        .arg(BIN)
        .arg(&tarballs));
    let launcher = tarballs.join(format!("pgshift-{VERSION}.tgz"));
    let platform = tarballs.join(format!("pgshift-linux-x64-{VERSION}.tgz"));
    assert!(launcher.is_file() && platform.is_file(), "{tarballs:?}");

    let npm_install = |project: &Path, args: &[&Path], extra: &[&str]| {
        std::fs::create_dir_all(project).expect("mkdir");
        std::fs::write(
            project.join("package.json"),
            r#"{ "name": "app", "version": "1.0.0", "private": true }"#,
        )
        .expect("package.json");
        // Offline, with a cache of its own: everything comes from the tarballs.
        run(Command::new("npm")
            .args(["install", "--offline", "--no-audit", "--no-fund", "--cache"])
            .arg(work.path().join("npm-cache"))
            .args(extra)
            .args(args)
            .current_dir(project));
    };

    let project = work.path().join("app");
    npm_install(&project, &[&platform, &launcher], &[]);
    let pgshift = project.join("node_modules/.bin/pgshift");
    assert_installed_pgshift_works(&pgshift, work.path());

    // Without the platform package (`--omit=optional`), the launcher says what is missing.
    let bare = work.path().join("bare");
    npm_install(&bare, &[&launcher], &["--omit=optional"]);
    let out = Command::new(bare.join("node_modules/.bin/pgshift"))
        .arg("--version")
        .output()
        .expect("run the launcher");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("@pgshift/linux-x64") && text(&out).contains("--omit=optional"),
        "{}",
        text(&out)
    );
    announce(&format!(
        "npm {}: {} KiB, {}: {} KiB (a dev build), the whole test {:.1} s",
        platform.file_name().unwrap_or_default().to_string_lossy(),
        size_kib(&platform),
        launcher.file_name().unwrap_or_default().to_string_lossy(),
        size_kib(&launcher),
        started.elapsed().as_secs_f64()
    ));
}

/// The packages carry the crate's version, and every platform the launcher knows has its
/// package folder and its optional dependency (a release adds all three together).
#[test]
fn package_versions_and_platforms_agree() {
    let npm = repository().join("packaging/npm");
    let read = |p: &Path| -> serde_json::Value {
        let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let launcher = read(&npm.join("pgshift/package.json"));
    assert_eq!(
        launcher["version"], VERSION,
        "packaging/npm/pgshift/package.json"
    );
    let optional = launcher["optionalDependencies"]
        .as_object()
        .expect("optionalDependencies");

    let shim = std::fs::read_to_string(npm.join("pgshift/bin/pgshift.js")).expect("shim");
    let table = shim
        .split_once("const PLATFORMS = {")
        .and_then(|(_, rest)| rest.split_once("};"))
        .expect("the launcher's PLATFORMS table")
        .0;
    let mut known: Vec<&str> = table
        .lines()
        .filter_map(|l| l.split_once(": \""))
        .filter_map(|(_, pkg)| pkg.split_once('"'))
        .map(|(pkg, _)| pkg)
        .collect();
    known.sort_unstable();
    let mut listed: Vec<&str> = optional.keys().map(String::as_str).collect();
    listed.sort_unstable();
    assert_eq!(known, listed, "launcher table vs optionalDependencies");

    for (pkg, version) in optional {
        assert_eq!(version, VERSION, "optionalDependencies[{pkg}]");
        let folder = pkg.strip_prefix("@pgshift/").expect("@pgshift/ scope");
        let manifest = read(&npm.join(folder).join("package.json"));
        assert_eq!(manifest["name"], pkg.as_str());
        assert_eq!(manifest["version"], VERSION, "{folder}/package.json");
    }

    // The wheel's version is read from Cargo.toml by maturin: no copy to keep in step.
    let pyproject = std::fs::read_to_string(repository().join("packaging/python/pyproject.toml"))
        .expect("pyproject");
    let pyproject: toml::Value = pyproject.parse().expect("pyproject.toml is TOML");
    assert_eq!(pyproject["project"]["dynamic"][0].as_str(), Some("version"));
    assert_eq!(
        pyproject["tool"]["maturin"]["bindings"].as_str(),
        Some("bin")
    );
}
