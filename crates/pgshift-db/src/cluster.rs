//! A throwaway PostgreSQL cluster, started from the server binaries on the machine, for
//! `pgshift verify`/`trace` and for tests.
//!
//! [`TempCluster::start`] finds `initdb`/`pg_ctl`/`postgres` (see [`ClusterOptions::bin_dir`]
//! for the search order), creates a data directory in a fresh temporary directory, and starts
//! the server on a free `127.0.0.1` port with its unix socket inside that directory and
//! durability switched off (`fsync`, `full_page_writes`, `synchronous_commit`): the data is
//! thrown away anyway. Dropping the cluster stops it (`pg_ctl stop -m immediate`) and deletes
//! the directory.
//!
//! **Root and ordinary users.** `initdb` and `postgres` refuse to run as root. When pgshift
//! runs as root, every server program runs as the `postgres` OS user instead (looked up with
//! `getpwnam`); the temporary directory is created `0700` and handed to that user, which is
//! enough because the client connects over TCP and never needs to enter it. As an ordinary
//! user the programs simply run as that user and nothing changes owner.
//!
//! **Nothing left behind.** A `Drop` does not run when the process is killed, and a cluster
//! kept in a `static` is never dropped. So each cluster also starts a small watcher shell
//! (in its own process group, so a Ctrl-C to the terminal does not kill it first) that
//! blocks reading a pipe whose write end only this process holds. When the process ends,
//! however it ends, the pipe closes and the watcher stops the server and removes the
//! directory. (A pipe rather than `kill -0 PID`: as the `postgres` user the watcher may not
//! signal a root process, and a recycled pid would keep it waiting.)

use std::ffi::CString;
use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::url::{DatabaseUrl, HostPort, SslMode};
use crate::DbError;

/// The superuser of every throwaway cluster.
pub const CLUSTER_SUPERUSER: &str = "postgres";

/// How many times the server is started on a new port when another process took the port
/// between our probe and the server's bind.
const PORT_ATTEMPTS: usize = 5;

/// How many lines of a failing program's log go into the error.
const LOG_TAIL_LINES: usize = 15;

/// Settings for [`TempCluster::start`]. `ClusterOptions::default()` is a trust-auth cluster
/// from the first binaries found.
#[derive(Clone, Default)]
pub struct ClusterOptions {
    bin_dir: Option<PathBuf>,
    settings: Vec<(String, String)>,
    password: Option<String>,
    data_dir_files: Vec<(String, Vec<u8>)>,
}

impl ClusterOptions {
    /// Uses the server binaries in `dir`. Without it, pgshift looks at `PGSHIFT_PG_BIN`, then
    /// for `initdb` on `PATH`, then `pg_config --bindir`, then the newest
    /// `/usr/lib/postgresql/*/bin`.
    pub fn bin_dir(mut self, dir: impl Into<PathBuf>) -> ClusterOptions {
        self.bin_dir = Some(dir.into());
        self
    }

    /// Adds a server setting (written to `postgresql.conf`), e.g. `("ssl", "on")`. Later
    /// settings override earlier ones and the defaults.
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> ClusterOptions {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// Requires a password: the cluster is created with `--auth=scram-sha-256` and the
    /// superuser `postgres` gets this password (which [`TempCluster::url`] then contains).
    pub fn password(mut self, password: impl Into<String>) -> ClusterOptions {
        self.password = Some(password.into());
        self
    }

    /// Puts a file into the data directory before the server starts, readable only by the
    /// server's user — for `server.crt`/`server.key` (refer to it by its bare name in a
    /// setting: `ssl_key_file = 'server.key'`).
    pub fn file_in_data_dir(
        mut self,
        name: impl Into<String>,
        contents: impl Into<Vec<u8>>,
    ) -> ClusterOptions {
        self.data_dir_files.push((name.into(), contents.into()));
        self
    }
}

impl fmt::Debug for ClusterOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files: Vec<&str> = self
            .data_dir_files
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        f.debug_struct("ClusterOptions")
            .field("bin_dir", &self.bin_dir)
            .field("settings", &self.settings)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("data_dir_files", &files)
            .finish()
    }
}

/// The OS user the server programs run as, when not the current one.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

/// A running throwaway cluster. See the [module docs](self).
pub struct TempCluster {
    /// `None` only during `drop`, after the directory has been removed.
    dir: Option<tempfile::TempDir>,
    data_dir: PathBuf,
    bin_dir: PathBuf,
    url: DatabaseUrl,
    server_version_num: i32,
    run_as: Option<RunAs>,
    watcher: Option<Watcher>,
    /// Whether `pg_ctl start` was run, so that `drop` knows there may be a server to stop
    /// (even a start that timed out may have left one running).
    start_attempted: bool,
    /// Whether `pg_ctl start` succeeded.
    started: bool,
}

/// The cleanup shell and the write end of its pipe.
struct Watcher {
    child: Child,
    pipe: Option<ChildStdin>,
}

impl TempCluster {
    /// Creates and starts a cluster. Blocking (it waits for `initdb` and `pg_ctl start -w`,
    /// typically one to two seconds); from async code call it in `spawn_blocking`.
    pub fn start(options: ClusterOptions) -> Result<TempCluster, DbError> {
        let bin_dir = find_bin_dir(options.bin_dir.as_deref())?;
        let run_as = server_user()?;

        let dir = tempfile::Builder::new()
            .prefix("pgshift-cluster-")
            .tempdir()
            .map_err(|e| io_error("create a temporary directory", e))?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))
            .map_err(|e| io_error(format!("set permissions on {}", dir.path().display()), e))?;
        hand_over(dir.path(), run_as)?;
        let data_dir = dir.path().join("data");

        let mut cluster = TempCluster {
            data_dir,
            bin_dir,
            url: DatabaseUrl::parse_with_env("postgres://", &|_| None)?,
            server_version_num: 0,
            run_as,
            watcher: None,
            start_attempted: false,
            started: false,
            dir: Some(dir),
        };
        cluster.init(&options)?;
        cluster.server_version_num = cluster.read_server_version_num()?;
        cluster.configure(&options)?;
        // The watcher goes up before the server so that a crash between the two still
        // removes the directory.
        cluster.watcher = Some(cluster.start_watcher()?);
        cluster.start_attempted = true;
        let port = cluster.start_server()?;
        cluster.started = true;

        let mut url = DatabaseUrl::parse_with_env("postgres://", &|_| None)?
            .with_user(CLUSTER_SUPERUSER)
            .with_database("postgres")
            .with_hosts(vec![HostPort {
                host: "127.0.0.1".to_owned(),
                port,
            }])
            .with_password(options.password.as_deref());
        let ssl_on = options
            .settings
            .iter()
            .rev()
            .find(|(name, _)| name == "ssl")
            .is_some_and(|(_, value)| matches!(value.as_str(), "on" | "true" | "1" | "yes"));
        if !ssl_on {
            url = url.with_ssl_mode(SslMode::Disable);
        }
        cluster.url = url;
        Ok(cluster)
    }

    /// A URL for the superuser `postgres` and the database `postgres`, over TCP on
    /// 127.0.0.1 (with the password if the cluster has one).
    pub fn url(&self) -> DatabaseUrl {
        self.url.clone()
    }

    /// The directory of the server binaries in use.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The version of the server binaries, e.g. `150020`.
    pub fn server_version_num(&self) -> i32 {
        self.server_version_num
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.url.hosts().first().map_or(0, |h| h.port)
    }

    fn dir(&self) -> &Path {
        // `dir` is only taken in `drop`, so it is always there while `self` is usable.
        self.dir
            .as_ref()
            .map_or(Path::new("/nonexistent"), |d| d.path())
    }

    fn program(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    /// A command for a server program, as the server's OS user, from inside the cluster
    /// directory (a root-owned working directory would be unreadable for that user).
    fn command(&self, name: &str) -> Command {
        let mut command = Command::new(self.program(name));
        command.current_dir(self.dir()).stdin(Stdio::null());
        if let Some(user) = self.run_as {
            command.uid(user.uid).gid(user.gid);
        }
        command
    }

    fn init(&self, options: &ClusterOptions) -> Result<(), DbError> {
        let mut initdb = self.command("initdb");
        initdb.arg("-D").arg(&self.data_dir).args([
            "-U",
            CLUSTER_SUPERUSER,
            "-E",
            "UTF8",
            "--locale=C",
            "-N",
        ]);
        let password_file = self.dir().join("password");
        if let Some(password) = &options.password {
            self.write_private_file(&password_file, password.as_bytes())?;
            initdb
                .arg("--auth=scram-sha-256")
                .arg(format!("--pwfile={}", password_file.display()));
        } else {
            initdb.args(["-A", "trust"]);
        }
        let result = run(
            initdb,
            &self.program("initdb"),
            "creating the data directory",
        );
        if options.password.is_some() {
            // The password must not outlive initdb on disk.
            let _ = fs::remove_file(&password_file);
        }
        result.map(|_| ())
    }

    /// Writes the settings and files of `options` into the data directory.
    fn configure(&self, options: &ClusterOptions) -> Result<(), DbError> {
        for (name, contents) in &options.data_dir_files {
            if name.contains('/') || name == ".." || name.is_empty() {
                return Err(io_error(
                    format!("put `{name}` into the data directory"),
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, "use a bare file name"),
                ));
            }
            self.write_private_file(&self.data_dir.join(name), contents)?;
        }

        let socket_dir = self.dir().display().to_string();
        let mut settings: Vec<(&str, &str)> = vec![
            ("listen_addresses", "127.0.0.1"),
            ("unix_socket_directories", &socket_dir),
            ("fsync", "off"),
            ("full_page_writes", "off"),
            ("synchronous_commit", "off"),
            // Errors go to the log file that pg_ctl -l writes, which errors quote.
            ("logging_collector", "off"),
        ];
        settings.extend(
            options
                .settings
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let mut conf = String::from("\n# Added by pgshift for a throwaway cluster.\n");
        for (name, value) in settings {
            conf.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
        }
        let conf_path = self.data_dir.join("postgresql.conf");
        fs::OpenOptions::new()
            .append(true)
            .open(&conf_path)
            .and_then(|mut file| file.write_all(conf.as_bytes()))
            .map_err(|e| io_error(format!("append settings to {}", conf_path.display()), e))
    }

    /// Writes a file that only the server's user can read.
    fn write_private_file(&self, path: &Path, contents: &[u8]) -> Result<(), DbError> {
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut file| file.write_all(contents))
            .map_err(|e| io_error(format!("write {}", path.display()), e))?;
        hand_over(path, self.run_as)
    }

    fn read_server_version_num(&self) -> Result<i32, DbError> {
        let mut postgres = self.command("postgres");
        postgres
            .args(["-C", "server_version_num", "-D"])
            .arg(&self.data_dir);
        let output = run(
            postgres,
            &self.program("postgres"),
            "reading the server version",
        )?;
        output.trim().parse().map_err(|_| DbError::UnexpectedValue {
            what: "postgres -C server_version_num",
            value: output,
        })
    }

    /// Starts the server on a free port, retrying with another port if it was taken in the
    /// meantime. Returns the port.
    fn start_server(&self) -> Result<u16, DbError> {
        let log_path = self.dir().join("server.log");
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let log_start = fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
            let mut pg_ctl = self.command("pg_ctl");
            pg_ctl
                .arg("-D")
                .arg(&self.data_dir)
                .arg("-l")
                .arg(&log_path)
                .args(["-w", "-t", "60", "-o"])
                .arg(format!("-p {port}"))
                .arg("start");
            match run(pg_ctl, &self.program("pg_ctl"), "starting the server") {
                Ok(_) => return Ok(port),
                Err(DbError::ClusterCommand {
                    binary,
                    action,
                    status,
                    log_tail,
                }) => {
                    let server_log = read_log_from(&log_path, log_start);
                    let port_taken = server_log.contains("could not bind")
                        || server_log.contains("Address already in use")
                        || server_log.contains("could not create any TCP/IP sockets");
                    let error = DbError::ClusterCommand {
                        binary,
                        action,
                        status,
                        log_tail: tail(&format!("{log_tail}\n{server_log}"), LOG_TAIL_LINES),
                    };
                    if !port_taken {
                        return Err(error);
                    }
                    last_error = Some(error);
                }
                Err(other) => return Err(other),
            }
        }
        Err(last_error
            .unwrap_or_else(|| io_error("find a free port", std::io::ErrorKind::AddrInUse.into())))
    }

    fn start_watcher(&self) -> Result<Watcher, DbError> {
        let mut shell = Command::new("/bin/sh");
        shell
            .arg("-c")
            .arg(r#"cat >/dev/null; "$0" -D "$1" -m immediate -w stop; rm -rf "$2""#)
            .arg(self.program("pg_ctl"))
            .arg(&self.data_dir)
            .arg(self.dir())
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        if let Some(user) = self.run_as {
            shell.uid(user.uid).gid(user.gid);
        }
        let mut child = shell
            .spawn()
            .map_err(|e| io_error("start the cleanup watcher (/bin/sh)", e))?;
        let pipe = child.stdin.take();
        Ok(Watcher { child, pipe })
    }

    fn stop(&self) -> Result<(), DbError> {
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "immediate", "-w", "stop"]);
        run(pg_ctl, &self.program("pg_ctl"), "stopping the server").map(|_| ())
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        if self.start_attempted {
            // After a failed start there is usually nothing to stop; only a server we know
            // is running deserves a complaint when it will not stop.
            if let (Err(err), true) = (self.stop(), self.started) {
                eprintln!("pgshift: could not stop the throwaway cluster: {err}");
            }
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            if let Err(err) = dir.close() {
                eprintln!("pgshift: could not remove {}: {err}", path.display());
            }
        }
        if let Some(mut watcher) = self.watcher.take() {
            // Closing the pipe lets the watcher run its (now no-op) cleanup and exit.
            drop(watcher.pipe.take());
            let _ = watcher.child.wait();
        }
    }
}

impl fmt::Debug for TempCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TempCluster")
            .field("url", &self.url)
            .field("data_dir", &self.data_dir)
            .field("bin_dir", &self.bin_dir)
            .field("server_version_num", &self.server_version_num)
            .finish_non_exhaustive()
    }
}

/// Runs a program to completion; on failure the error names it and quotes the end of its
/// output. Returns its stdout.
fn run(mut command: Command, program: &Path, action: &'static str) -> Result<String, DbError> {
    let output = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| io_error(format!("run {}", program.display()), e))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(DbError::ClusterCommand {
        binary: program.to_path_buf(),
        action,
        status: output.status.to_string(),
        log_tail: tail(&format!("{stdout}\n{stderr}"), LOG_TAIL_LINES),
    })
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn read_log_from(path: &Path, offset: u64) -> String {
    let bytes = fs::read(path).unwrap_or_default();
    let start = usize::try_from(offset).unwrap_or(0).min(bytes.len());
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

fn io_error(action: impl Into<String>, source: std::io::Error) -> DbError {
    DbError::ClusterIo {
        action: action.into(),
        source,
    }
}

/// A port that was free a moment ago. The server may still lose a race for it; the caller
/// retries.
fn free_port() -> Result<u16, DbError> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| io_error("find a free TCP port on 127.0.0.1", e))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|e| io_error("find a free TCP port on 127.0.0.1", e))
}

/// The `postgres` OS user when running as root, `None` otherwise.
fn server_user() -> Result<Option<RunAs>, DbError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name =
        CString::new("postgres").map_err(|e| io_error("look up the postgres user", e.into()))?;
    // SAFETY: `name` is a valid NUL-terminated string; getpwnam returns NULL or a pointer to
    // static storage that we read immediately, before any other passwd call.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return Err(io_error(
            "run the server as root: PostgreSQL refuses root, and there is no `postgres` OS user to run it as (create one, e.g. `useradd --system postgres`, or run pgshift as an ordinary user)",
            std::io::ErrorKind::NotFound.into(),
        ));
    }
    // SAFETY: `entry` is non-null and points to a valid passwd struct (see above).
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Ok(Some(RunAs { uid, gid }))
}

/// Gives a path to the server's OS user (no-op when not root).
fn hand_over(path: &Path, run_as: Option<RunAs>) -> Result<(), DbError> {
    if let Some(user) = run_as {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
            .map_err(|e| io_error(format!("give {} to the postgres user", path.display()), e))?;
    }
    Ok(())
}

const SERVER_PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

fn has_server_programs(dir: &Path) -> bool {
    SERVER_PROGRAMS.iter().all(|p| dir.join(p).is_file())
}

/// Finds the directory of `initdb`, `pg_ctl` and `postgres`. An explicitly named directory
/// (option or `PGSHIFT_PG_BIN`) must hold them: falling back silently would test against a
/// different version than the user asked for.
fn find_bin_dir(explicit: Option<&Path>) -> Result<PathBuf, DbError> {
    if let Some(dir) = explicit {
        return checked_bin_dir(dir, "the bin_dir option");
    }
    if let Some(dir) = std::env::var_os("PGSHIFT_PG_BIN").filter(|v| !v.is_empty()) {
        return checked_bin_dir(Path::new(&dir), "PGSHIFT_PG_BIN");
    }
    let mut searched = vec!["PATH".to_owned()];
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if initdb.is_file() {
                // Distributions link initdb into /usr/bin or /usr/local/bin without its
                // siblings; the real directory is where the link points.
                let real = fs::canonicalize(&initdb).ok();
                if let Some(real_dir) = real.as_deref().and_then(Path::parent) {
                    if has_server_programs(real_dir) {
                        return Ok(real_dir.to_path_buf());
                    }
                }
                if has_server_programs(&dir) {
                    return Ok(dir);
                }
            }
        }
    }
    searched.push("pg_config --bindir".to_owned());
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        if output.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
            if has_server_programs(&dir) {
                return Ok(dir);
            }
        }
    }
    searched.push("/usr/lib/postgresql/*/bin".to_owned());
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(Vec<u32>, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let version: Vec<u32> = name
                    .split('.')
                    .map(|p| p.parse().ok())
                    .collect::<Option<_>>()?;
                let bin = entry.path().join("bin");
                has_server_programs(&bin).then_some((version, bin))
            })
            .collect();
        versions.sort();
        if let Some((_, bin)) = versions.pop() {
            return Ok(bin);
        }
    }
    Err(DbError::BinariesNotFound {
        searched: searched.join(", "),
    })
}

fn checked_bin_dir(dir: &Path, source: &str) -> Result<PathBuf, DbError> {
    if has_server_programs(dir) {
        Ok(dir.to_path_buf())
    } else {
        Err(DbError::BinariesNotFound {
            searched: format!(
                "{} (from {source}), which lacks initdb, pg_ctl or postgres",
                dir.display()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_non_empty_lines() {
        assert_eq!(tail("a\n\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
        assert_eq!(tail("", 5), "");
    }

    #[test]
    fn explicit_bin_dir_without_binaries_is_an_error() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        match find_bin_dir(Some(dir.path())) {
            Ok(found) => panic!("accepted {}", found.display()),
            Err(err) => {
                let text = err.to_string();
                assert!(text.contains("lacks initdb"), "{text}");
                assert!(text.contains("PGSHIFT_PG_BIN"), "{text}");
            }
        }
    }

    #[test]
    fn options_debug_hides_the_password() {
        let options = ClusterOptions::default()
            .password("hunter2")
            .setting("ssl", "on");
        let text = format!("{options:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("ssl"), "{text}");
    }
}
