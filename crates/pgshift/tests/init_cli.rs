//! `pgshift init` as a user runs it: in a new project, and in a project another tool already
//! keeps its migrations in, where it must point at that folder rather than create another.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_pgshift");

fn pgshift(args: &[&str], cwd: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .output()
        .expect("run pgshift")
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn write(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create dirs");
    }
    std::fs::write(path, body).expect("write");
}

/// The entries of a directory, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `init` in `project`, then the `dir` it wrote and its output.
fn init(project: &Path) -> (String, String) {
    let out = pgshift(&["init"], project);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let config = std::fs::read_to_string(project.join("pgshift.toml")).expect("pgshift.toml");
    let dir = config
        .lines()
        .find_map(|l| l.strip_prefix("dir = "))
        .unwrap_or_else(|| panic!("no dir in {config}"))
        .to_owned();
    (dir, String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn init_points_at_the_folder_prisma_drizzle_or_dbmate_already_uses() {
    let tmp = tempfile::tempdir().expect("tempdir");

    let prisma = tmp.path().join("prisma-app");
    write(
        &prisma,
        "prisma/migrations/20240101000000_init/migration.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY);\n",
    );
    write(
        &prisma,
        "prisma/migrations/migration_lock.toml",
        "provider = \"postgresql\"\n",
    );
    let (dir, said) = init(&prisma);
    assert_eq!(dir, "\"prisma/migrations\"");
    assert!(
        said.contains("Prisma") && said.contains("prisma/migrations"),
        "{said}"
    );

    let drizzle = tmp.path().join("drizzle-app");
    write(&drizzle, "drizzle/meta/_journal.json", "{\"entries\":[]}");
    assert_eq!(init(&drizzle).0, "\"drizzle\"");

    let configured = tmp.path().join("drizzle-configured");
    write(
        &configured,
        "drizzle.config.ts",
        "export default defineConfig({ dialect: \"postgresql\", out: \"./src/migrations\" });\n",
    );
    write(
        &configured,
        "src/migrations/meta/_journal.json",
        "{\"entries\":[]}",
    );
    assert_eq!(init(&configured).0, "\"src/migrations\"");

    let dbmate = tmp.path().join("dbmate-app");
    write(
        &dbmate,
        "db/migrations/20240101000000_users.sql",
        "-- migrate:up\nCREATE TABLE users (id bigint PRIMARY KEY);\n-- migrate:down\nDROP TABLE users;\n",
    );
    write(
        &dbmate,
        "db/schema.sql",
        "CREATE TABLE users (id bigint);\n",
    );
    let (dir, said) = init(&dbmate);
    assert_eq!(dir, "\"db/migrations\"");
    assert!(said.contains("dbmate"), "{said}");

    // Nothing else is created: no empty `migrations/` beside the tool's folder.
    for project in [&prisma, &drizzle, &configured, &dbmate] {
        assert!(
            !project.join("migrations").exists(),
            "{}: {:?}",
            project.display(),
            entries(project)
        );
    }
    // And pgshift then reads the tool's migrations from the project root.
    let out = pgshift(&["check"], &dbmate);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("20240101000000_users.sql"),
        "{}",
        text(&out)
    );
}

#[test]
fn init_in_a_new_project_creates_migrations() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, said) = init(tmp.path());
    assert_eq!(dir, "\"migrations\"");
    assert!(tmp.path().join("migrations").is_dir());
    assert!(said.contains("pgshift new"), "{said}");
    let config = std::fs::read_to_string(tmp.path().join("pgshift.toml")).expect("config");
    let default = pgshift::lint::PgVersion::DEFAULT.to_string();
    assert!(
        config.contains(&format!("pg_version = \"{default}\"")),
        "{config}"
    );
}
