//! The shared harness of duet's end-to-end tests and of `duet-bench`.
//!
//! Every test gets a [`TestEnv`]: its own temporary directory used as both
//! `HOME` and `DUET_HOME`, and a [`DuetCommand`] builder that runs the real
//! `duet` binary with a cleared environment, a pinned clock and no network.
//! [`generate`] fills a home with many items quickly, through the library,
//! the way real use would have written them.

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

pub mod generate;
pub mod pairing;
pub mod rng;

/// The clock every test runs at (a Wednesday), so output is reproducible.
pub const NOW: &str = "2026-11-25T18:00:00Z";

/// Where the `duet` binary is: `$DUET_BIN` if set, else next to (or one
/// directory above) the running executable, i.e. `target/<profile>/duet`.
///
/// `duet` is a binary of another package, so `cargo test -p duet-tests`
/// does not build it; `cargo test --workspace` does.
pub fn duet_bin() -> PathBuf {
    find_duet_bin().unwrap_or_else(|why| panic!("{why}"))
}

/// [`duet_bin`] without the panic.
pub fn find_duet_bin() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("DUET_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|e| format!("no path to this executable: {e}"))?;
    // target/<profile>/deps/<test>-<hash>  or  target/<profile>/duet-bench
    for dir in exe.ancestors().skip(1).take(2) {
        let candidate = dir.join(format!("duet{}", std::env::consts::EXE_SUFFIX));
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    let profile_dir = exe
        .ancestors()
        .nth(if exe.parent().is_some_and(|p| p.ends_with("deps")) {
            2
        } else {
            1
        })
        .map(Path::to_path_buf)
        .unwrap_or_default();
    Err(format!(
        "the duet binary is missing from {}: run `cargo build -p duet-cli` \
         (or `cargo test --workspace`, which builds it) first, or set DUET_BIN",
        profile_dir.display()
    ))
}

/// One test's world: a temporary home and a fixed clock.
pub struct TestEnv {
    dir: tempfile::TempDir,
    home: PathBuf,
    bin: PathBuf,
    now: Option<String>,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    /// A fresh, uninitialized home; the clock pinned at [`NOW`].
    pub fn new() -> TestEnv {
        TestEnv::using(duet_bin())
    }

    /// A fresh home whose commands run `bin`.
    pub fn using(bin: PathBuf) -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("duet-test-")
            .tempdir()
            .expect("creating a temp dir");
        let home = dir.path().join("home");
        TestEnv {
            dir,
            home,
            bin,
            now: Some(NOW.to_owned()),
        }
    }

    /// A home already initialized as "Alex".
    pub fn initialized() -> TestEnv {
        let env = TestEnv::new();
        env.duet(["init", "--name", "Alex"]).ok();
        env
    }

    /// Use the real clock instead of [`NOW`] (the benchmark does).
    pub fn with_real_clock(mut self) -> TestEnv {
        self.now = None;
        self
    }

    /// Keep the directory after the end (for inspection); returns it.
    pub fn keep(self) -> PathBuf {
        self.dir.keep()
    }

    /// The temp directory: also `$HOME` of every command.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `DUET_HOME`.
    pub fn home(&self) -> &Path {
        &self.home
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The folder of this home's (shared) journal.
    pub fn journal_dir(&self) -> PathBuf {
        let config = duet_store::Home::new(&self.home)
            .config()
            .expect("the home is initialized");
        self.home.join("journals").join(config.journal.to_string())
    }

    /// `duet ARGS` with a clean environment.
    pub fn duet<I, S>(&self, args: I) -> DuetCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(&self.bin);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.root())
            .env("DUET_HOME", &self.home)
            .env("TZ", "UTC")
            .env("NO_COLOR", "1")
            .env("DUET_RELAY", "disabled")
            .env("DUET_BIND", "127.0.0.1:0")
            .current_dir(self.root())
            .args(args);
        if let Some(now) = &self.now {
            cmd.env("DUET_NOW", now);
        }
        DuetCommand {
            cmd,
            stdin: None,
            display: String::new(),
        }
        .described()
    }

    /// `duet write TEXT --json`: the new item's full id.
    pub fn write(&self, text: &str) -> String {
        self.write_with(text, &[])
    }

    /// `duet write TEXT EXTRA... --json`: the new item's full id.
    pub fn write_with(&self, text: &str, extra: &[&str]) -> String {
        let mut args = vec!["write", "--json"];
        args.extend_from_slice(extra);
        args.push("--");
        args.push(text);
        let item = self.duet(args).ok().json();
        item["id"]
            .as_str()
            .expect("write --json has an id")
            .to_owned()
    }

    /// `duet list --json ARGS...` parsed.
    pub fn list_json(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let mut all = vec!["list", "--json"];
        all.extend_from_slice(args);
        match self.duet(all).ok().json() {
            serde_json::Value::Array(items) => items,
            other => panic!("list --json printed {other}"),
        }
    }

    /// The bodies `duet list --json ARGS...` shows, in order.
    pub fn bodies(&self, args: &[&str]) -> Vec<String> {
        self.list_json(args)
            .iter()
            .map(|i| i["body"].as_str().expect("items have a body").to_owned())
            .collect()
    }
}

/// A `duet` invocation being prepared.
pub struct DuetCommand {
    cmd: Command,
    stdin: Option<Vec<u8>>,
    display: String,
}

impl DuetCommand {
    fn described(mut self) -> DuetCommand {
        let args: Vec<String> = self
            .cmd
            .get_args()
            .map(|a| {
                let a = a.to_string_lossy();
                if a.len() > 60 {
                    format!("{}…", a.chars().take(60).collect::<String>())
                } else {
                    a.into_owned()
                }
            })
            .collect();
        self.display = format!("duet {}", args.join(" "));
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> DuetCommand {
        self.cmd.arg(arg);
        self.described()
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> DuetCommand {
        self.cmd.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> DuetCommand {
        self.cmd.env_remove(key);
        self
    }

    /// Feed these bytes on stdin (otherwise stdin is empty).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> DuetCommand {
        self.stdin = Some(bytes.into());
        self
    }

    /// Run to completion and capture everything.
    pub fn run(mut self) -> Output {
        self.cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self
            .cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.display));
        let input = self.stdin.take().unwrap_or_default();
        let mut pipe = child.stdin.take().expect("stdin is piped");
        // Feed stdin from a thread so a big input cannot deadlock with a
        // child that fills its stdout first. A child that stops reading
        // early (it refused the input) is not our problem: ignore EPIPE.
        let feeder = std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("waiting for {}: {e}", self.display));
        let _ = feeder.join();
        let output = Output {
            command: self.display,
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        output.assert_no_panic();
        output
    }

    /// Run and require exit code 0.
    pub fn ok(self) -> Output {
        let out = self.run();
        assert!(
            out.status.success(),
            "`{}` failed with {:?}\nstdout:\n{}\nstderr:\n{}",
            out.command,
            out.status.code(),
            out.stdout,
            out.stderr
        );
        out
    }

    /// Run and require a duet error: exit code 1, nothing on stdout, one
    /// line on stderr starting `duet: error:`. Returns that line.
    pub fn fails(self) -> Output {
        let out = self.run();
        out.assert_error();
        out
    }

    /// Start it and hand back the child (stdin null, output discarded
    /// unless `piped`).
    pub fn spawn(mut self, piped: bool) -> Child {
        let (o, e) = if piped {
            (Stdio::piped(), Stdio::piped())
        } else {
            (Stdio::null(), Stdio::null())
        };
        self.cmd.stdin(Stdio::null()).stdout(o).stderr(e);
        self.cmd
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", self.display))
    }

    /// The underlying command, for anything the builder does not cover.
    pub fn command(self) -> Command {
        self.cmd
    }
}

/// What a finished `duet` printed.
#[derive(Debug)]
pub struct Output {
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`{}` did not print JSON ({e}):\n{}",
                self.command, self.stdout
            )
        })
    }

    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// The stderr lines that are warnings.
    pub fn warnings(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("duet: warning:"))
            .collect()
    }

    pub fn assert_no_panic(&self) {
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"),
            "`{}` panicked:\n{}",
            self.command,
            self.stderr
        );
        // 101 is Rust's exit code after a panic.
        assert_ne!(self.code(), Some(101), "`{}` panicked", self.command);
    }

    /// Exit 1, no data on stdout, exactly one `duet: error:` line on stderr.
    pub fn assert_error(&self) {
        assert_eq!(
            self.code(),
            Some(1),
            "`{}` should fail with exit code 1\nstdout:\n{}\nstderr:\n{}",
            self.command,
            self.stdout,
            self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert!(
            lines.len() == 1 && lines[0].starts_with("duet: error: "),
            "`{}` should print exactly one `duet: error:` line, got:\n{}",
            self.command,
            self.stderr
        );
        assert!(
            self.stdout.is_empty(),
            "`{}` failed but printed on stdout:\n{}",
            self.command,
            self.stdout
        );
    }

    /// The single error line (for failures).
    pub fn error_line(&self) -> &str {
        self.stderr.lines().next().unwrap_or("")
    }
}

/// Insta filters that replace the random parts of human output.
pub fn redactions(env: &TestEnv) -> Vec<(String, String)> {
    vec![
        (
            regex_escape(&env.home().display().to_string()),
            "[HOME]".into(),
        ),
        // Full ids (13 chars) before short ids (the first 7).
        (r"\b[a-z2-7]{13}\b".into(), "[ID]".into()),
        (r"\b[a-z2-7]{26}\b".into(), "[JOURNAL]".into()),
    ]
}

/// Escape a literal for a regex (paths have `.` and maybe `+`).
pub fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
