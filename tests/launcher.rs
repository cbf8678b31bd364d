//! A small process that starts the benchmarks' commands, so that their peak memory is their own.
//!
//! The kernel's peak RSS of a child (`wait4`) includes what the child shared with its parent
//! when it was forked: a bench that holds a big generated journal would see every command's
//! peak at least that high. [`Launcher::start`] forks a helper first thing in `main`, while the
//! bench is still small; the helper starts each command, waits for it with `wait4` and sends back
//! its wall time and peak memory. Only the helper's own few MiB are inherited.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::fd::FromRawFd as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One finished command: wall time (spawn to exit), peak resident memory (KiB), success.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    pub wall: Duration,
    pub rss_kib: u64,
    pub ok: bool,
}

/// The parent's end of the helper.
pub struct Launcher {
    /// Requests; `None` once closed, which ends the helper.
    to: Option<std::fs::File>,
    from: BufReader<std::fs::File>,
    pid: libc::pid_t,
}

fn pipe() -> (std::fs::File, std::fs::File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes; both are owned from here on.
    #[allow(unsafe_code)]
    unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0, "pipe");
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    }
}

impl Launcher {
    /// Forks the helper. Call it first in `main`, before any thread or big allocation exists.
    pub fn start() -> Launcher {
        let (req_read, req_write) = pipe();
        let (resp_read, resp_write) = pipe();
        // SAFETY: called while the process has one thread; the child only runs `serve` (which
        // allocates and spawns, fine in a single-threaded child) and then `_exit`s.
        #[allow(unsafe_code)]
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            drop((req_write, resp_read));
            serve(req_read, resp_write);
            // SAFETY: ends the helper without running the parent's exit handlers twice.
            #[allow(unsafe_code)]
            unsafe {
                libc::_exit(0)
            }
        }
        drop((req_read, resp_write));
        Launcher {
            to: Some(req_write),
            from: BufReader::new(resp_read),
            pid,
        }
    }

    /// Runs `cmd` (its program, arguments, the variables set on it and nothing else of the
    /// environment, its directory) with no input and its output discarded, or written to
    /// `stdout_to`.
    pub fn run(&mut self, cmd: &Command, stdout_to: Option<&std::path::Path>) -> Run {
        let envs: Vec<(String, String)> = cmd
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_string_lossy().into(), v?.to_string_lossy().into())))
            .collect();
        let request = serde_json::json!({
            "program": cmd.get_program().to_string_lossy(),
            "args": cmd.get_args().map(|a| a.to_string_lossy()).collect::<Vec<_>>(),
            "envs": envs,
            "dir": cmd.get_current_dir().map(|d| d.to_string_lossy()),
            "stdout": stdout_to.map(|p| p.to_string_lossy()),
        });
        let to = self.to.as_mut().expect("the launcher runs until dropped");
        writeln!(to, "{request}").expect("the launcher takes requests");
        let mut line = String::new();
        self.from
            .read_line(&mut line)
            .expect("the launcher answers");
        let v: serde_json::Value = serde_json::from_str(&line).expect("the launcher's answer");
        Run {
            wall: Duration::from_nanos(v["wall_ns"].as_u64().unwrap_or(0)),
            rss_kib: v["rss_kib"].as_u64().unwrap_or(0),
            ok: v["ok"].as_bool().unwrap_or(false),
        }
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        // Closing the request pipe ends the helper; reap it.
        self.to = None;
        // SAFETY: our own child, waited once.
        #[allow(unsafe_code)]
        unsafe {
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

fn serve(requests: std::fs::File, mut answers: std::fs::File) {
    for line in BufReader::new(requests).lines() {
        let Ok(line) = line else { return };
        let Ok(req) = serde_json::from_str::<serde_json::Value>(&line) else {
            return;
        };
        let mut cmd = Command::new(req["program"].as_str().unwrap_or_default());
        cmd.env_clear().stdin(Stdio::null()).stderr(Stdio::null());
        for a in req["args"].as_array().into_iter().flatten() {
            cmd.arg(a.as_str().unwrap_or_default());
        }
        for kv in req["envs"].as_array().into_iter().flatten() {
            cmd.env(
                kv[0].as_str().unwrap_or_default(),
                kv[1].as_str().unwrap_or_default(),
            );
        }
        if let Some(dir) = req["dir"].as_str() {
            cmd.current_dir(dir);
        }
        let out = req["stdout"]
            .as_str()
            .and_then(|p| std::fs::File::create(PathBuf::from(p)).ok());
        cmd.stdout(out.map_or_else(Stdio::null, Stdio::from));
        let started = Instant::now();
        let (ok, rss_kib) = match cmd.spawn() {
            Ok(child) => wait4(child),
            Err(_) => (false, 0),
        };
        let answer = serde_json::json!({
            "ok": ok,
            "wall_ns": started.elapsed().as_nanos() as u64,
            "rss_kib": rss_kib,
        });
        if writeln!(answers, "{answer}").is_err() {
            return;
        }
    }
}

/// Reaps `child`: whether it exited with 0, and its peak memory in KiB.
fn wait4(child: std::process::Child) -> (bool, u64) {
    let mut status = 0i32;
    // SAFETY: `rusage` is plain data that wait4 fills; the pid is our own child, waited once
    // (here, not by `Child::wait`).
    #[allow(unsafe_code)]
    let (pid, usage) = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let pid = libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage);
        (pid, usage)
    };
    std::mem::forget(child);
    let ok = pid > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    (ok, usage.ru_maxrss as u64)
}
