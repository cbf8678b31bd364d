//! The shared harness of duet's end-to-end tests and of the benchmarks.
//!
//! Every test gets a [`TestEnv`]: its own temporary directory used as both
//! `HOME` and `DUET_HOME`, and a [`DuetCommand`] builder that runs the real
//! `duet` binary with a cleared environment, no network, a clock that starts
//! at [`NOW`] and moves one second per command, and ids drawn from a seed
//! (`DUET_SEED`) that also moves on per command. The tests live in the
//! `duet-cli` package, where cargo builds the binary for them and hands them
//! its path (`env!("CARGO_BIN_EXE_duet")`).
//! [`generate`] fills a home with many items quickly, through the library,
//! the way real use would have written them.

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub mod generate;
pub mod launcher;
pub mod netns;
pub mod pairing;
pub mod rng;

/// The clock every test starts at (a Wednesday), so output is reproducible.
pub const NOW: &str = "2026-11-25T18:00:00Z";

/// [`NOW`] in Unix milliseconds.
fn now_ms() -> i64 {
    NOW.parse::<jiff::Timestamp>()
        .expect("NOW is RFC 3339")
        .as_millisecond()
}

/// The `duet` binary next to the running executable (`target/<profile>/duet`), for the
/// benchmark binaries, which cargo builds beside it (`cargo build -p duet-cli -p duet-tests`).
/// Tests do not use this: they get the path from cargo.
pub fn sibling_duet() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("no path to this executable: {e}"))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let candidate = dir.join(format!("duet{}", std::env::consts::EXE_SUFFIX));
    if candidate.is_file() {
        Ok(candidate)
    } else {
        Err(format!(
            "the duet binary is missing from {}: build it with `cargo build --release -p duet-cli` \
             or pass --duet PATH",
            dir.display()
        ))
    }
}

/// `path` made absolute against the working directory, for a `--duet PATH` given relative:
/// the benchmarks run their commands from other directories.
pub fn absolute(path: impl Into<PathBuf>) -> PathBuf {
    let path = path.into();
    std::path::absolute(&path).unwrap_or(path)
}

/// How a test's commands read time: pinned at [`NOW`] plus one second per command, shared by
/// every home that [`TestEnv::sharing_clock_with`] another; or the real clock.
#[derive(Clone)]
enum TestClock {
    Pinned(Arc<AtomicU64>),
    Real,
}

/// One test's world: a temporary home, a seed and a clock.
pub struct TestEnv {
    dir: tempfile::TempDir,
    home: PathBuf,
    bin: PathBuf,
    clock: TestClock,
    seed: u64,
    commands: AtomicU64,
}

impl TestEnv {
    /// A fresh, uninitialized home whose commands run `bin` (in tests:
    /// `env!("CARGO_BIN_EXE_duet")`), ids seeded from 1, the clock at [`NOW`].
    pub fn new(bin: impl Into<PathBuf>) -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("duet-test-")
            .tempdir()
            .expect("creating a temp dir");
        let home = dir.path().join("home");
        TestEnv {
            dir,
            home,
            bin: bin.into(),
            clock: TestClock::Pinned(Arc::new(AtomicU64::new(0))),
            seed: 1,
            commands: AtomicU64::new(0),
        }
    }

    /// A home already initialized as "Alex".
    pub fn initialized(bin: impl Into<PathBuf>) -> TestEnv {
        let env = TestEnv::new(bin);
        let _ = env.duet(["init", "--name", "Alex"]).ok();
        env
    }

    /// Draw this home's ids from `seed` (two homes in one test need different seeds, or they
    /// would create the same journal id).
    pub fn seeded(mut self, seed: u64) -> TestEnv {
        self.seed = seed;
        self
    }

    /// Run on the same pinned clock as `other`: two homes that talk to each other agree on
    /// the time, and it moves on with the commands of both.
    pub fn sharing_clock_with(mut self, other: &TestEnv) -> TestEnv {
        self.clock = other.clock.clone();
        self
    }

    /// Use the real clock and real randomness (the benchmarks do).
    pub fn with_real_clock(mut self) -> TestEnv {
        self.clock = TestClock::Real;
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

    /// The folder of this home's (shared) journal.
    pub fn journal_dir(&self) -> PathBuf {
        let config = duet_store::Home::new(&self.home)
            .config()
            .expect("the home is initialized");
        self.home.join("journals").join(config.journal.to_string())
    }

    /// `duet ARGS` with a clean environment, the next seed and the next second.
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
            .env("DUET_LAN", "off")
            .current_dir(self.root())
            .args(args);
        if let TestClock::Pinned(ticks) = &self.clock {
            let tick = ticks.fetch_add(1, Ordering::SeqCst) as i64;
            let now = jiff::Timestamp::from_millisecond(now_ms() + tick * 1000)
                .expect("the test clock stays in range");
            let n = self.commands.fetch_add(1, Ordering::SeqCst);
            cmd.env("DUET_NOW", now.to_string())
                .env("DUET_SEED", (self.seed << 32 | n).to_string());
        }
        DuetCommand {
            cmd,
            stdin: None,
            display: String::new(),
            paths: self.paths(),
        }
        .described()
    }

    /// The temporary paths output is normalised by, most specific first.
    fn paths(&self) -> Vec<(String, &'static str)> {
        vec![
            (self.home.display().to_string(), "[HOME]"),
            (self.root().display().to_string(), "[ROOT]"),
        ]
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

/// A `duet` invocation being prepared; nothing runs until [`DuetCommand::run`] (or `ok`,
/// `fails`, `spawn`).
#[must_use = "a duet command does nothing until it is run"]
pub struct DuetCommand {
    cmd: Command,
    stdin: Option<Vec<u8>>,
    display: String,
    paths: Vec<(String, &'static str)>,
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

    /// Run under a limit on its address space (`ulimit -v`, in KiB), through `sh`: an
    /// allocation past it fails and aborts the process.
    pub fn address_space_kib(mut self, kib: u64) -> DuetCommand {
        let mut wrapped = Command::new("sh");
        wrapped
            .arg("-c")
            .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
            .arg(self.cmd.get_program())
            .args(self.cmd.get_args())
            .env_clear();
        for (key, value) in self.cmd.get_envs() {
            if let Some(value) = value {
                wrapped.env(key, value);
            }
        }
        if let Some(dir) = self.cmd.get_current_dir() {
            wrapped.current_dir(dir);
        }
        self.cmd = wrapped;
        self
    }

    /// Feed these bytes on stdin (otherwise stdin is empty).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> DuetCommand {
        self.stdin = Some(bytes.into());
        self
    }

    /// Run to completion and capture everything. Checks only that duet did not panic: use
    /// the result (or call `ok` / `fails`).
    #[must_use = "run() checks nothing about the exit: look at the output, or use ok()/fails()"]
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
        let normalise = |bytes: &[u8]| {
            let mut text = String::from_utf8_lossy(bytes).into_owned();
            for (path, name) in &self.paths {
                text = text.replace(path.as_str(), name);
            }
            text
        };
        let output = Output {
            stdout: normalise(&out.stdout),
            stderr: normalise(&out.stderr),
            command: self.display,
            status: out.status,
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

    /// Run it on a terminal of its own (a pseudo-terminal made by util-linux's `script`), so
    /// that duet asks its questions as it would a person. stdin goes to that terminal; stdout
    /// carries everything the terminal showed (duet's stdout and stderr together).
    pub fn on_a_terminal(self) -> DuetCommand {
        let quoted: Vec<String> = std::iter::once(self.cmd.get_program())
            .chain(self.cmd.get_args())
            .map(|a| format!("'{}'", a.to_string_lossy().replace('\'', r"'\''")))
            .collect();
        let mut cmd = Command::new("script");
        cmd.args(["--quiet", "--return", "--flush", "--command"])
            .arg(quoted.join(" "))
            .arg("/dev/null");
        carry_over(&self.cmd, &mut cmd);
        DuetCommand { cmd, ..self }
    }

    /// The same command run by `program` with `prefix` before it (`nsenter ... -- duet ...`).
    pub(crate) fn wrapped(self, program: &str, prefix: &[&str]) -> DuetCommand {
        let mut cmd = Command::new(program);
        cmd.args(prefix)
            .arg(self.cmd.get_program())
            .args(self.cmd.get_args());
        carry_over(&self.cmd, &mut cmd);
        DuetCommand { cmd, ..self }
    }

    /// Start it with every stream piped (stdin too), for a conversation with a prompt.
    pub fn spawn_interactive(mut self) -> Child {
        self.cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.cmd
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", self.display))
    }

    /// The underlying command, for anything the builder does not cover.
    pub fn command(self) -> Command {
        self.cmd
    }
}

/// Give `to` the clean environment and working directory `from` was set up with.
fn carry_over(from: &Command, to: &mut Command) {
    to.env_clear();
    for (key, value) in from.get_envs() {
        if let Some(value) = value {
            to.env(key, value);
        }
    }
    if let Some(dir) = from.get_current_dir() {
        to.current_dir(dir);
    }
}

/// What a finished `duet` printed, with the test's temporary paths written `[HOME]` and
/// `[ROOT]`.
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
