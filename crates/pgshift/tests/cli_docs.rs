//! The command line describing itself: `pgshift completions`, `pgshift man` and
//! `pgshift --version`, run as a user runs them. No database is involved.

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

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", text(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The command names `pgshift --help` lists, read from its `Commands:` section.
fn subcommands() -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let help = stdout(&pgshift(&["--help"], dir.path()));
    let names: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect();
    for expected in ["check", "up", "verify", "completions", "man"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    names
}

#[test]
fn every_shell_script_completes_every_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let commands = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout(&pgshift(&["completions", shell], dir.path()));
        for name in &commands {
            assert!(
                script.contains(name.as_str()),
                "the {shell} completion script does not mention `{name}`"
            );
        }
    }
}

/// The bash script, loaded into a real bash, completes a command name and a flag.
#[test]
fn bash_completes_commands_and_flags_after_sourcing_the_script() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin_dir = Path::new(BIN).parent().expect("bin dir");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let complete = |words: &str| -> Vec<String> {
        // What bash does on <Tab>: the function the script registered, called with the words.
        let script = format!(
            r#"source <(pgshift completions bash) || exit 3
            spec="$(complete -p pgshift)" || exit 4
            fn="${{spec#*-F }}"; fn="${{fn%% *}}"
            COMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
            COMP_LINE="{words}"; COMP_POINT=${{#COMP_LINE}}
            "$fn" pgshift "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
            printf '%s\n' "${{COMPREPLY[@]}}""#
        );
        let out = Command::new("bash")
            .args(["-c", &script])
            .current_dir(dir.path())
            .env("PATH", &path)
            .output()
            .expect("run bash");
        stdout(&out).lines().map(|l| l.trim().to_string()).collect()
    };
    let words = complete("pgshift ch");
    assert!(words.contains(&"check".to_string()), "{words:?}");
    let words = complete("pgshift check --pg");
    assert!(words.contains(&"--pg-version".to_string()), "{words:?}");
    let words = complete("pgshift completions ''");
    for shell in ["bash", "zsh", "fish"] {
        assert!(words.contains(&shell.to_string()), "{words:?}");
    }
}

#[test]
fn the_man_page_lists_every_command_and_each_command_has_its_own_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = stdout(&pgshift(&["man"], dir.path()));
    assert!(page.contains(".TH pgshift 1"), "{page}");
    for name in subcommands() {
        // roff escapes the hyphen of a name: `pgshift\-check`.
        assert!(
            page.contains(&format!("pgshift\\-{name}")) || page.contains(&name),
            "the man page does not name `{name}`"
        );
    }
    let check = stdout(&pgshift(&["man", "check"], dir.path()));
    assert!(check.contains(".TH pgshift-check 1"), "{check}");
    assert!(
        check.contains("pg\\-version"),
        "check's page has its flags: {check}"
    );

    // `--help` hides DATABASE_URL's value, and so does the page made from the same definitions.
    let out = Command::new(BIN)
        .args(["man", "up"])
        .env("DATABASE_URL", "postgres://app:s3cret-pw@db/app")
        .output()
        .expect("run pgshift man");
    assert!(!text(&out).contains("s3cret-pw"), "{}", text(&out));

    let out = pgshift(&["man", "chek"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no command named `chek`") && text(&out).contains("check"),
        "{}",
        text(&out)
    );
}

/// `completions` and `man` describe the command line, so a project whose pgshift.toml is
/// broken still gets them; other commands still refuse that configuration.
#[test]
fn completions_and_man_work_beside_a_broken_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("pgshift.toml"), "this is [not toml\n").expect("write");
    stdout(&pgshift(&["completions", "bash"], dir.path()));
    stdout(&pgshift(&["man"], dir.path()));
    let out = pgshift(&["check"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn version_names_the_supported_postgresql_majors_and_the_parser() {
    let dir = tempfile::tempdir().expect("tempdir");
    let version = stdout(&pgshift(&["--version"], dir.path()));
    let majors = pgshift::supported_pg_majors();
    let grammar = pgshift::sql::grammar_version().expect("grammar version");
    assert!(
        version.starts_with(&format!("pgshift {}\n", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    assert!(
        version.contains(&format!(
            "PostgreSQL {} to {} supported",
            majors.start(),
            majors.end()
        )),
        "{version}"
    );
    assert!(
        version.contains(&format!("PostgreSQL {grammar} grammar")),
        "{version}"
    );
    // The majors CI runs the suite on (the machine's, 14 and 18) are all inside the range.
    for tested in [14, 18] {
        assert!(majors.contains(&tested), "{majors:?}");
    }
    // The README says the same.
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README");
    assert!(
        readme.contains(&format!(
            "supports ({} to {})",
            majors.start(),
            majors.end()
        )),
        "README: `pgshift --version` names the PostgreSQL majors pgshift supports (..)"
    );
    // `-V` is the short form: the release alone, as scripts parse it.
    let short = stdout(&pgshift(&["-V"], dir.path()));
    assert_eq!(
        short.trim(),
        format!("pgshift {}", env!("CARGO_PKG_VERSION"))
    );
}

/// `scripts/fetch-pg.sh` offers every major `--version` says pgshift supports, so each can be
/// tested on; the oldest is the one `check` assumes by default.
#[test]
fn fetch_pg_offers_the_supported_majors() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fetch-pg.sh");
    let text = std::fs::read_to_string(&script).expect("read fetch-pg.sh");
    let mut offered: Vec<u32> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix('['))
        .filter_map(|l| l.split_once("]="))
        .filter_map(|(major, _)| major.parse().ok())
        .collect();
    offered.sort_unstable();
    let supported: Vec<u32> = pgshift::supported_pg_majors().collect();
    for major in &supported {
        assert!(
            offered.contains(major),
            "scripts/fetch-pg.sh's versions table lacks {major}: {offered:?}"
        );
    }
    assert_eq!(
        Some(pgshift::lint::PgVersion::DEFAULT.major),
        supported.first().copied(),
        "check's default --pg-version is the oldest supported major"
    );
}
