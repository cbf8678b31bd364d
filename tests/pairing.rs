//! Two homes paired through the real binary, shared by the end-to-end
//! tests and the sync benchmark.

use std::io::{BufRead, BufReader};
use std::process::{Child, Output};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::TestEnv;

/// Wait for a child with a bound; kill it and panic if it overstays.
pub fn wait(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    panic!(
        "process did not finish in {limit:?}; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Start `pair invite --yes` on `a`; return the child and the ticket (its first stdout line).
pub fn invite(a: &TestEnv) -> (Child, String) {
    ticket_of(a.duet(["pair", "invite", "--yes", "--timeout", "30"]))
}

/// Spawn a command that prints a ticket as its first stdout line; return it and the ticket.
fn ticket_of(command: crate::DuetCommand) -> (Child, String) {
    let mut child = command.spawn(true);
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let ticket = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a ticket within 20 s");
    (child, ticket.trim().to_owned())
}

/// Pair `a` (inviting) with `b` (joining), both confirming with `--yes`.
/// Returns the ticket, now used up.
pub fn pair(a: &TestEnv, b: &TestEnv) -> String {
    pair_by(
        a.duet(["pair", "invite", "--yes", "--timeout", "30"]),
        |ticket| b.duet(["pair", "join", "--yes", ticket, "--timeout", "20"]),
    )
}

/// Pair by running `invite` (a `pair invite --yes` command, however it is run: on a host of its
/// own, with a relay) and then the join command `join` makes from its ticket. Returns the ticket.
pub fn pair_by(
    invite: crate::DuetCommand,
    join: impl FnOnce(&str) -> crate::DuetCommand,
) -> String {
    let (inviter, ticket) = ticket_of(invite);
    assert!(
        ticket.starts_with("duet"),
        "first stdout line is the ticket: {ticket:?}"
    );
    let joined = join(&ticket).ok();
    assert!(joined.stdout.contains("Paired with"), "{}", joined.stdout);
    let out = wait(inviter, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "invite failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ticket
}

/// A person with a home of their own, ids seeded by `seed`, on `clock`'s pinned clock (so two
/// devices that talk agree on the time), initialized under `name`.
pub fn person(bin: &str, seed: u64, name: &str, clock: Option<&TestEnv>) -> TestEnv {
    let mut env = TestEnv::new(bin).seeded(seed);
    if let Some(other) = clock {
        env = env.sharing_clock_with(other);
    }
    let _ = env.duet(["init", "--name", name]).ok();
    env
}

/// Start `duet serve` and return once it says it is serving.
pub fn serve(env: &TestEnv) -> (Child, mpsc::Receiver<String>) {
    serve_by(env.duet(["serve"]))
}

/// Start a `duet serve` command (run however the test needs) and return once it is serving,
/// with its stderr lines.
pub fn serve_by(command: crate::DuetCommand) -> (Child, mpsc::Receiver<String>) {
    let mut child = command.spawn(true);
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Run with `-v`, it may log before it says it serves.
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = std::iter::from_fn(|| {
        rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok()
    })
    .find(|line| !line.contains(" INFO ") && !line.contains(" DEBUG "));
    let first = first.expect("serve starts");
    assert!(first.contains("Serving"), "{first}");
    (child, rx)
}

/// Stop a `duet serve` the way Ctrl-C does; returns whether it exited cleanly.
pub fn interrupt(mut child: Child) -> bool {
    #[allow(unsafe_code)]
    // SAFETY: sending SIGINT to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            if !status.success() {
                eprintln!("serve ended with {status}");
            }
            return status.success();
        }
        if Instant::now() > deadline {
            eprintln!("serve did not end within 10 s of Ctrl-C");
            let _ = child.kill();
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Link `new` (an empty home) as a device of `a`'s person under `label`, both confirming with
/// `--yes`. Returns the new device's id (hex).
pub fn link(a: &TestEnv, new: &TestEnv, label: &str) -> String {
    let (child, ticket) = ticket_of(a.duet(["device", "link", "--yes", "--timeout", "30"]));
    assert!(ticket.starts_with("duetlink1"), "{ticket:?}");
    let joined = new
        .duet([
            "device",
            "join",
            "--yes",
            &ticket,
            "--label",
            label,
            "--timeout",
            "20",
            "--json",
        ])
        .ok()
        .json();
    let out = wait(child, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "link failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    joined["device"]
        .as_str()
        .expect("the new device's id")
        .to_owned()
}
