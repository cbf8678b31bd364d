//! Two people, two homes, two processes: pairing, sync and serve through
//! the real binary, on loopback with relays disabled.

use std::io::{Read, Write};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use duet_tests::TestEnv;
use duet_tests::pairing::{interrupt, link, pair, serve, wait};

const DUET: &str = env!("CARGO_BIN_EXE_duet");

/// These tests each run several processes that talk to each other; one at
/// a time keeps them from starving each other on a small machine.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn person(seed: u64, name: &str, clock: Option<&TestEnv>) -> TestEnv {
    duet_tests::pairing::person(DUET, seed, name, clock)
}

/// Alex and Sam, not yet paired.
fn couple() -> (TestEnv, TestEnv) {
    let alex = person(1, "Alex", None);
    let sam = person(2, "Sam", Some(&alex));
    (alex, sam)
}

/// Both run `duet sync` at the same moment; both must succeed.
fn sync_both(a: &TestEnv, b: &TestEnv) -> (String, String) {
    let left = a.duet(["sync", "--timeout", "20"]).spawn(true);
    let right = b.duet(["sync", "--timeout", "20"]).spawn(true);
    let (l, r) = (
        wait(left, Duration::from_secs(40)),
        wait(right, Duration::from_secs(40)),
    );
    for out in [&l, &r] {
        assert!(
            out.status.success(),
            "sync failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (
        String::from_utf8_lossy(&l.stdout).into_owned(),
        String::from_utf8_lossy(&r.stdout).into_owned(),
    )
}

fn authors_and_bodies(env: &TestEnv) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = env
        .list_json(&[])
        .iter()
        .map(|i| {
            (
                i["author_name"].as_str().unwrap().to_owned(),
                i["body"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn two_devices_that_dial_each_other_at_the_same_moment_hold_one_session() {
    let _g = serial();
    let (alex, sam) = couple();
    pair(&alex, &sam);
    // A first sync big enough that a second session would show in the bytes.
    let now_ms = duet_tests::NOW
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond();
    duet_tests::generate::populate(alex.home(), 1500, now_ms - 60_000, 0xc2055).unwrap();
    alex.duet(["list", "-n", "1"]).ok();
    let snapshots: u64 = std::fs::read_dir(alex.journal_dir())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    for round in 0..3 {
        if round == 1 {
            // Nothing new now: the crossing is decided within the handshakes.
            alex.write("one more, to have something to carry");
        }
        let started =
            [&alex, &sam].map(|env| env.duet(["sync", "--json", "--timeout", "20"]).spawn(true));
        let [a, s] = started.map(|child| wait(child, Duration::from_secs(40)));
        for out in [&a, &s] {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let [a, s] =
            [&a, &s].map(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap());
        let carried = s["bytes_received"].as_u64().unwrap();
        if round == 0 {
            // Two sessions side by side would each carry the whole journal.
            assert!(
                carried < snapshots * 13 / 10,
                "Sam received {carried} bytes for {snapshots} bytes of snapshots: {s}"
            );
            let new: u64 = s["new"]
                .as_object()
                .unwrap()
                .values()
                .map(|n| n.as_u64().unwrap())
                .sum();
            assert!(new > 1000, "{s}");
        } else if round == 1 {
            assert_eq!(s["new"]["entry"], 1, "{s}");
        }
        for report in [&a, &s] {
            assert_eq!(report["reached"].as_array().unwrap().len(), 1, "{report}");
            if round == 2 {
                one_session_with_nothing_new(report);
            }
        }
    }
}

#[test]
fn a_sync_started_before_the_partner_is_up_holds_one_session_with_it() {
    let _g = serial();
    let (alex, sam) = couple();
    pair(&alex, &sam);
    alex.write("something to carry first");
    sync_both(&alex, &sam);
    // Sam dials while Alex's device is not up yet, and that dial goes unanswered for a while.
    // Meanwhile Alex comes up and dials Sam, and their session (nothing new: a few
    // milliseconds) runs. Sam's own dial, still waiting, must not add a second session.
    let sam_sync = sam.duet(["sync", "--json", "--timeout", "20"]).spawn(true);
    std::thread::sleep(Duration::from_millis(100));
    let alex_sync = alex.duet(["sync", "--json", "--timeout", "20"]).spawn(true);
    for out in [
        wait(sam_sync, Duration::from_secs(40)),
        wait(alex_sync, Duration::from_secs(40)),
    ] {
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{log}");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["reached"].as_array().unwrap().len(), 1, "{report}");
        one_session_with_nothing_new(&report);
    }
}

/// A `sync --json` report of one session that found nothing new: the listener's first answer
/// ends it, one round trip, few bytes (two sessions side by side would count two).
fn one_session_with_nothing_new(report: &serde_json::Value) {
    let r = &report["reached"][0];
    assert_eq!(r["round_trips"], 1, "{report}");
    let both = r["bytes_sent"].as_u64().unwrap() + r["bytes_received"].as_u64().unwrap();
    assert!(both < 250, "nothing new cost {both} bytes: {report}");
}

#[test]
fn pair_write_sync_and_write_apart() {
    let _g = serial();
    let (alex, sam) = couple();
    pair(&alex, &sam);

    let a_status = alex.duet(["status", "--json"]).ok().json();
    let s_status = sam.duet(["status", "--json"]).ok().json();
    assert_eq!(a_status["partner"]["name"], "Sam");
    assert_eq!(s_status["partner"]["name"], "Alex");
    assert!(a_status["partner"]["device"].as_str().unwrap().len() == 64);
    assert!(a_status["partner"]["last_sync"].is_null(), "{a_status}");
    let pinned = std::fs::read(alex.home().join("partner.toml")).unwrap();

    alex.write("Alex: pancakes on Sunday");
    alex.duet(["thanks", "for fixing the bike"]).ok();
    alex.duet(["write", "--private", "a secret plan for the anniversary"])
        .ok();
    sam.write("Sam: the long walk by the river");
    let (a_out, s_out) = sync_both(&alex, &sam);
    assert!(a_out.contains("1 new entry from Sam"), "{a_out}");
    assert!(
        s_out.contains("1 new entry, 1 new note of thanks from Alex"),
        "{s_out}"
    );
    // Both know when they last synced (from the address book: the pinned partner record is
    // not written again by a sync).
    for env in [&alex, &sam] {
        let status = env.duet(["status", "--json"]).ok().json();
        assert!(status["partner"]["last_sync"].is_string(), "{status}");
        let text = env.duet(["status"]).ok().stdout;
        assert!(!text.contains("last sync: never"), "{text}");
    }
    assert_eq!(
        std::fs::read(alex.home().join("partner.toml")).unwrap(),
        pinned
    );

    let expected = vec![
        ("Alex".to_owned(), "Alex: pancakes on Sunday".to_owned()),
        ("Alex".to_owned(), "for fixing the bike".to_owned()),
        (
            "Sam".to_owned(),
            "Sam: the long walk by the river".to_owned(),
        ),
    ];
    assert_eq!(
        authors_and_bodies(&sam),
        expected,
        "the private entry never leaves Alex's device"
    );
    let mut with_private = expected.clone();
    with_private.insert(
        1,
        (
            "Alex".to_owned(),
            "a secret plan for the anniversary".to_owned(),
        ),
    );
    assert_eq!(authors_and_bodies(&alex), with_private);
    let partner_only = sam.list_json(&["--author", "partner"]);
    assert_eq!(partner_only.len(), 2);
    assert!(partner_only.iter().all(|i| i["author"] == "partner"));

    // Apart: both write, then meet again.
    alex.write("Alex, apart: a quiet evening");
    sam.write("Sam, apart: missed you at lunch");
    sam.write("Sam, apart: booked the train");
    sync_both(&alex, &sam);
    assert_eq!(authors_and_bodies(&alex).len(), 7);
    let mut a_public: Vec<_> = authors_and_bodies(&alex);
    a_public.retain(|(_, b)| !b.contains("secret"));
    assert_eq!(a_public, authors_and_bodies(&sam));

    // Only the author may change an item; starring the partner's is fine and stays mine.
    let sams = alex.list_json(&["--author", "partner", "-n", "1"]);
    let id = sams[0]["id"].as_str().unwrap().to_owned();
    let only_the_author = format!(
        "duet: error: item {id} was written by your partner; only its author can change it \
         (you can still star it)"
    );
    let refused = alex
        .duet(["edit", id.as_str(), "--body", "rewritten"])
        .fails();
    assert_eq!(refused.error_line(), only_the_author);
    let refused = alex.duet(["delete", id.as_str()]).fails();
    assert_eq!(refused.error_line(), only_the_author);
    alex.duet(["star", id.as_str()]).ok();
    assert_eq!(alex.list_json(&["--starred"]).len(), 1);
    sync_both(&alex, &sam);
    assert!(
        sam.list_json(&["--starred"]).is_empty(),
        "my star on Sam's item is mine alone"
    );
    assert!(sam.bodies(&[]).iter().all(|b| b != "rewritten"));
}

#[test]
fn serve_on_both_sides_carries_a_new_entry_quickly() {
    let _g = serial();
    let (alex, sam) = couple();
    pair(&alex, &sam);
    let serving = vec![serve(&alex).0, serve(&sam).0];
    // Let the first exchange settle.
    std::thread::sleep(Duration::from_millis(800));

    // It must arrive with nobody running `duet sync`; how fast is for the benchmark
    // (`duet-sync-bench`), not for a test on a loaded machine.
    alex.write("written while both serve");
    assert!(
        eventually(Duration::from_secs(30), || {
            sam.bodies(&[])
                .iter()
                .any(|b| b == "written while both serve")
        }),
        "serve pushed the entry to Sam"
    );

    // And back, from a `duet sync` run while serve holds the port.
    sam.write("Sam answers");
    assert!(eventually(Duration::from_secs(30), || {
        alex.bodies(&[]).iter().any(|b| b == "Sam answers")
    }));
    alex.write("one more, synced by hand");
    alex.duet(["sync", "--timeout", "10"]).ok();
    assert!(
        sam.bodies(&[])
            .iter()
            .any(|b| b == "one more, synced by hand")
    );

    for child in serving {
        assert!(interrupt(child), "serve stops cleanly on Ctrl-C");
    }
}

/// The addresses `env`'s address book holds for `device` (hex id).
fn book_addrs(env: &TestEnv, device: &str) -> Vec<String> {
    duet_store::Home::new(env.home())
        .address_book()
        .devices
        .remove(device)
        .map(|seen| seen.addrs)
        .unwrap_or_default()
}

/// Each side of a session learns where the other was reached, the side that was dialed as well
/// as the side that dialed: it is how the partner's later devices learn where a device is (a
/// laptop that a home device dialed hands on the home device's address).
#[test]
fn both_sides_of_a_session_remember_where_the_other_was_reached() {
    let _g = serial();
    let (alex, sam) = couple();
    pair(&alex, &sam);
    let alex_id = alex.duet(["device", "list", "--json"]).ok().json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sam_id = sam.duet(["device", "list", "--json"]).ok().json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for env in [&alex, &sam] {
        let _ = std::fs::remove_file(env.home().join("peers.toml"));
    }
    let (server, _lines) = serve(&sam);
    alex.write("a first page");
    alex.duet(["sync", "--timeout", "10"]).ok();
    assert!(interrupt(server));
    let dialed = book_addrs(&alex, &sam_id);
    let listened = book_addrs(&sam, &alex_id);
    assert!(
        dialed.iter().any(|a| a.starts_with("127.0.0.1:")),
        "{dialed:?}"
    );
    assert!(
        listened.iter().any(|a| a.starts_with("127.0.0.1:")),
        "{listened:?}"
    );
}

/// The session that first tells Sam of a device Alex linked (a home device) also tells where
/// it is: Sam can reach it next time without Alex.
#[test]
fn a_device_learns_where_a_new_device_is_in_the_session_that_tells_of_it() {
    let _g = serial();
    let (alex, sam) = couple();
    pair(&alex, &sam);
    let home = TestEnv::new(DUET).seeded(3).sharing_clock_with(&alex);
    let home_id = link(&alex, &home, "home server");
    // The laptop reaches the home device once: it knows where the home device is.
    let (home_server, _lines) = serve(&home);
    alex.duet(["sync", "--timeout", "10"]).ok();
    assert!(interrupt(home_server));
    assert!(!book_addrs(&alex, &home_id).is_empty());
    // Sam hears of the home device from the laptop, in one session: its id and its address.
    let (alex_server, _lines) = serve(&alex);
    sam.duet(["sync", "--timeout", "10"]).ok();
    assert!(interrupt(alex_server));
    let addrs = book_addrs(&sam, &home_id);
    assert!(
        addrs.iter().any(|a| a.starts_with("127.0.0.1:")),
        "{addrs:?}"
    );
    // With the laptop away, Sam reaches the home device.
    let (home_server, _lines) = serve(&home);
    let out = sam.duet(["sync", "--json", "--timeout", "10"]).ok().json();
    assert!(interrupt(home_server));
    assert_eq!(out["reached"][0]["device"], home_id.as_str(), "{out}");
}

#[test]
fn unpaired_partner_is_refused() {
    let _g = serial();
    let (alex, sam) = couple();
    pair(&alex, &sam);
    sam.write("before unpairing");
    sync_both(&alex, &sam);

    // Alex keeps `duet serve` running and unpairs in another terminal: from that moment the
    // serving device turns Sam away at its gate.
    let (serving, lines) = serve(&alex);
    let _ = alex.duet(["unpair"]).ok();
    let note = wait_for_line(&lines, Duration::from_secs(10), "You unpaired from Sam");
    assert!(note.contains("refused from now on"), "{note}");
    let out = sam.duet(["sync", "--timeout", "10"]).fails();
    assert_eq!(
        out.error_line(),
        "duet: error: Alex refused this device: it no longer accepts it (an unpair, or this \
         device was revoked)"
    );
    assert!(interrupt(serving), "serve stops cleanly on Ctrl-C");

    // Alex keeps Sam's old journal until asked to forget it; syncing is over for Alex too.
    assert!(alex.bodies(&[]).iter().any(|b| b == "before unpairing"));
    let out = alex.duet(["sync", "--timeout", "2"]).fails();
    assert!(
        out.error_line()
            .starts_with("duet: error: you unpaired from Sam"),
        "{}",
        out.error_line()
    );
    let _ = alex.duet(["unpair", "--forget"]).ok();
    assert!(alex.bodies(&[]).is_empty());
}

#[test]
fn a_used_ticket_is_refused_while_the_inviter_still_listens() {
    let _g = serial();
    let (alex, sam) = couple();
    let eve = person(3, "Eve", Some(&alex));

    // Alex invites on a terminal, so the invite stays open while Alex compares the codes.
    let mut inviter = alex
        .duet(["pair", "invite", "--timeout", "60"])
        .on_a_terminal()
        .spawn_interactive();
    let mut answer = inviter.stdin.take().expect("piped stdin");
    let mut screen = Screen::new(inviter.stdout.take().expect("piped stdout"));
    screen.wait_for("Waiting for them to join", Duration::from_secs(20));
    let ticket = screen
        .text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("duet"))
        .expect("the ticket is on a line of its own")
        .to_owned();

    let joiner = sam
        .duet(["pair", "join", "--yes", ticket.as_str(), "--timeout", "60"])
        .spawn(true);
    screen.wait_for("Does their screen show", Duration::from_secs(20));
    assert!(screen.text.contains("Sam is connecting"), "{}", screen.text);

    // Sam proved the secret and the ticket is spent, while Alex's invite still listens.
    let out = eve
        .duet(["pair", "join", "--yes", ticket.as_str(), "--timeout", "20"])
        .fails();
    assert_eq!(
        out.error_line(),
        "duet: error: this ticket has already been used; ask your partner to run \
         `duet pair invite` again for a fresh one"
    );

    answer.write_all(b"y\n").expect("answering the prompt");
    let joined = wait(joiner, Duration::from_secs(30));
    assert!(
        joined.status.success(),
        "{}",
        String::from_utf8_lossy(&joined.stderr)
    );
    let invited = wait(inviter, Duration::from_secs(30));
    assert!(invited.status.success());
    assert_eq!(
        alex.duet(["status", "--json"]).ok().json()["partner"]["name"],
        "Sam"
    );
    assert_eq!(
        sam.duet(["status", "--json"]).ok().json()["partner"]["name"],
        "Alex"
    );
    assert!(eve.duet(["status", "--json"]).ok().json()["partner"].is_null());
}

/// Poll `check` until it holds or `limit` passes.
fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// What a terminal showed so far: prompts end without a newline, so it is read as it comes,
/// not line by line.
struct Screen {
    chunks: mpsc::Receiver<Vec<u8>>,
    text: String,
}

impl Screen {
    fn new(mut stream: impl Read + Send + 'static) -> Screen {
        let (tx, chunks) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stream.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Screen {
            chunks,
            text: String::new(),
        }
    }

    /// Read until the screen shows `needle`; panics after `limit`.
    fn wait_for(&mut self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.text.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.text.push_str(&String::from_utf8_lossy(&chunk)),
                Err(_) => panic!(
                    "the screen never showed {needle:?}; it shows:\n{}",
                    self.text
                ),
            }
        }
    }
}

/// The first line (from now) that contains `needle`; panics after `limit`.
fn wait_for_line(lines: &mpsc::Receiver<String>, limit: Duration, needle: &str) -> String {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    panic!(
        "no line with {needle:?} within {limit:?}; saw:\n{}",
        seen.join("\n")
    );
}

#[test]
fn network_commands_explain_themselves() {
    let _g = serial();
    let alex = person(1, "Alex", None);
    for (args, line) in [
        (
            vec!["sync"],
            "you are not paired yet; run `duet pair invite` here and `duet pair join TICKET` \
             on your partner's device",
        ),
        (
            vec!["pair", "join", "--yes", "not-a-ticket"],
            "this is not a duet pairing ticket; copy the whole line that `duet pair invite` \
             printed",
        ),
        (
            vec!["--relay", "sometimes", "pair", "invite", "--yes"],
            "`sometimes` is not a relay setting; use `disabled`, `default` or a relay URL such \
             as `https://relay.example.org`",
        ),
        (
            vec!["--bind", "here", "pair", "invite", "--yes"],
            "`here` is not an address to listen on; use IP:PORT such as 0.0.0.0:0 or \
             127.0.0.1:4433",
        ),
        (
            vec!["pair", "invite"],
            "cannot ask you to confirm the code without a terminal; compare the codes by other \
             means and pass --yes",
        ),
    ] {
        let out = alex.duet(&args).fails();
        assert_eq!(out.error_line(), format!("duet: error: {line}"), "{args:?}");
    }
}

/// Every way Sam could read Alex's journal, as text: what must never show a hidden answer.
fn everything_readable(env: &TestEnv, ids: &[&str]) -> String {
    let mut seen = String::new();
    for args in [
        vec!["list"],
        vec!["list", "--json"],
        vec!["list", "--kind", "answer", "--json"],
        vec!["list", "--author", "partner", "--json"],
        vec!["list", "--contains", "lighthouse", "--json"],
        vec!["export", "--format", "json"],
        vec!["export", "--format", "markdown"],
        vec!["question"],
        vec!["question", "--json"],
        vec!["question", "--history", "--json"],
        vec!["week", "--json"],
        vec!["week"],
        vec!["pulse", "--json"],
        vec!["memories", "--json"],
        vec!["status", "--json"],
    ] {
        let out = env.duet(&args).ok();
        seen.push_str(&out.stdout);
        seen.push_str(&out.stderr);
    }
    for id in ids {
        let out = env.duet(["show", "--json", id]).run();
        seen.push_str(&out.stdout);
    }
    seen
}

#[test]
fn rituals_between_two_homes_answer_first_then_see() {
    let _g = serial();
    let (alex, sam) = couple();
    pair(&alex, &sam);

    // Both check in; Alex names a need. Alex answers the question of the day, Sam not yet.
    let checkin = alex
        .duet([
            "checkin",
            "--mood",
            "2",
            "--energy",
            "3",
            "--need",
            "a walk after dinner",
            "--json",
        ])
        .ok()
        .json();
    let need_id = checkin["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (checkin["mood"].as_u64(), checkin["energy"].as_u64()),
        (Some(2), Some(3))
    );
    let _ = sam.duet(["checkin", "--mood", "4", "--energy", "5"]).ok();
    let asked = alex.duet(["question", "--json"]).ok().json();
    let same = sam.duet(["question", "--json"]).ok().json();
    assert_eq!(
        asked["id"], same["id"],
        "one question for both, with no coordination"
    );
    assert_eq!(asked["date"], "2026-11-25");
    let alex_answer = alex
        .duet([
            "answer",
            "--json",
            "The lighthouse, the night it rained sideways",
        ])
        .ok()
        .json();
    assert_eq!(alex_answer["partner"], serde_json::Value::Null);
    let alex_answer_id = alex_answer["mine"]["id"].as_str().unwrap().to_owned();
    sync_both(&alex, &sam);

    // Sam has Alex's answer on disk but sees it nowhere until answering too.
    let q = sam.duet(["question", "--json"]).ok().json();
    assert_eq!(q["partner"], serde_json::Value::Null);
    assert_eq!(q["partner_answered"], true);
    let human = sam.duet(["question"]).ok();
    assert!(
        human
            .stdout
            .contains("Alex has answered; their answer opens once you have answered too.")
    );
    let seen = everything_readable(&sam, &[&alex_answer_id, &alex_answer_id[..5]]);
    assert!(
        !seen.contains("lighthouse"),
        "the hidden answer leaked:\n{seen}"
    );
    let out = sam.duet(["show", &alex_answer_id]).fails();
    assert_eq!(
        out.error_line(),
        format!("duet: error: no item matches `{alex_answer_id}`; `duet list` shows the ids")
    );
    // Alex's check-in, with its need, did arrive; a reply threads under it.
    let partner_checkins = sam.list_json(&["--kind", "checkin", "--author", "partner"]);
    assert_eq!(partner_checkins[0]["body"], "a walk after dinner");
    let _ = sam
        .duet([
            "thanks",
            "--re",
            &need_id[..6],
            "for saying it plainly; let's go at eight",
        ])
        .ok();
    let listed = sam.duet(["list"]).ok().stdout;
    let lines: Vec<&str> = listed.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("needs: a walk after dinner"))
        .unwrap();
    assert!(
        lines[at + 1].starts_with("    ↳") && lines[at + 1].contains("for saying it plainly"),
        "{listed}"
    );

    // Sam answers: both answers side by side, on both devices after a sync.
    let both = sam
        .duet(["answer", "--json", "The kitchen floor picnic"])
        .ok()
        .json();
    assert_eq!(
        both["partner"]["text"],
        "The lighthouse, the night it rained sideways"
    );
    assert_eq!(both["mine"]["text"], "The kitchen floor picnic");
    assert!(sam.bodies(&["--contains", "lighthouse"]).len() == 1);
    sync_both(&alex, &sam);
    let q = alex.duet(["question", "--json"]).ok().json();
    assert_eq!(q["partner"]["text"], "The kitchen floor picnic");
    assert_eq!(q["mine"]["edited_after_reveal"], false);

    // Alex rewrites after seeing Sam's: marked, and the mark travels.
    let _ = alex
        .duet([
            "edit",
            &alex_answer_id,
            "--body",
            "The lighthouse, and the picnic too",
        ])
        .ok();
    assert_eq!(
        alex.duet(["question", "--json"]).ok().json()["mine"]["edited_after_reveal"],
        true
    );
    sync_both(&alex, &sam);
    let q = sam.duet(["question", "--json"]).ok().json();
    assert_eq!(q["partner"]["edited_after_reveal"], true);
    assert!(
        sam.duet(["question"])
            .ok()
            .stdout
            .contains("(edited after reveal)")
    );

    // The week, from Alex's side, worked out by hand.
    let week = alex.duet(["week", "--json"]).ok().json();
    assert_eq!(week["from"], "2026-11-19");
    assert_eq!(week["to"], "2026-11-25");
    assert_eq!(
        week["me"],
        serde_json::json!({"entries": 0, "thanks": 0, "checkins": 1, "answers": 1,
                           "mood": [2], "energy": [3]})
    );
    assert_eq!(
        week["partner"],
        serde_json::json!({"entries": 0, "thanks": 1, "checkins": 1, "answers": 1,
                           "mood": [4], "energy": [5]})
    );
    assert_eq!(week["both_answered"].as_array().unwrap().len(), 1);
    assert_eq!(week["needs"][0]["text"], "a walk after dinner");
    assert_eq!(week["needs"][0]["answered"], true);
}

#[test]
fn rituals_refuse_bad_input_with_one_line() {
    let _g = serial();
    let alex = person(1, "Alex", None);
    for (args, line) in [
        (
            vec!["checkin", "--mood", "6"],
            "the mood is 6; give a number from 1 to 5",
        ),
        (
            vec!["checkin", "--energy", "0"],
            "the energy is 0; give a number from 1 to 5",
        ),
        (
            vec!["checkin"],
            "say how you are with --mood 1-5, --energy 1-5 or --need \"...\" (or run it in a \
             terminal to be asked)",
        ),
        (
            vec!["answer", "--date", "2026-12-01", "too soon"],
            "2026-12-01 has not come yet; answer today's question or an earlier day's with --date",
        ),
    ] {
        let out = alex.duet(&args).fails();
        assert_eq!(out.error_line(), format!("duet: error: {line}"), "{args:?}");
    }
    // An untouched thanks template is an empty note, and refused.
    let out = alex.duet(["thanks"]).env("EDITOR", "true").fails();
    assert_eq!(
        out.error_line(),
        "duet: error: the text is empty, so nothing was saved"
    );
    let _ = alex.duet(["answer", "first"]).ok();
    let out = alex.duet(["answer", "second"]).fails();
    assert!(out.error_line().starts_with(
        "duet: error: you already answered the question of 2026-11-25; change it with `duet edit "
    ));
    // Another day's question by a friendly date.
    let yesterday = alex
        .duet(["question", "--date", "yesterday", "--json"])
        .ok()
        .json();
    assert_eq!(yesterday["date"], "2026-11-24");
    assert_ne!(
        yesterday["id"],
        alex.duet(["question", "--json"]).ok().json()["id"]
    );
}

#[test]
fn pairing_pins_the_partner_person_and_device_list_shows_both_people() {
    let _guard = serial();
    let (alex, sam) = couple();
    pair(&alex, &sam);
    let devices = |env: &TestEnv| -> Vec<serde_json::Value> {
        env.duet(["device", "list", "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .clone()
    };
    let (a, s) = (devices(&alex), devices(&sam));
    for (list, me, partner) in [(&a, "Alex", "Sam"), (&s, "Sam", "Alex")] {
        assert_eq!(list.len(), 2, "{list:?}");
        let own: Vec<_> = list.iter().filter(|d| d["owner"] == "me").collect();
        let theirs: Vec<_> = list.iter().filter(|d| d["owner"] == "partner").collect();
        assert_eq!((own.len(), theirs.len()), (1, 1));
        assert_eq!(own[0]["this_device"], true);
        assert_eq!(own[0]["owner_name"], me);
        assert_eq!(theirs[0]["owner_name"], partner);
        assert_eq!(theirs[0]["label"], "first device");
        assert!(theirs[0]["revoked"].is_null());
    }
    // Each side's view of the other's device is that device's own id.
    let own_id = |list: &[serde_json::Value]| {
        list.iter().find(|d| d["owner"] == "me").unwrap()["id"].clone()
    };
    let partner_id = |list: &[serde_json::Value]| {
        list.iter().find(|d| d["owner"] == "partner").unwrap()["id"].clone()
    };
    assert_eq!(partner_id(&a), own_id(&s));
    assert_eq!(partner_id(&s), own_id(&a));
    let text = alex.duet(["device", "list"]).ok().stdout;
    assert!(
        text.contains("Your devices:") && text.contains("Sam's devices:"),
        "{text}"
    );
    assert!(text.contains("this device"), "{text}");
}

#[test]
fn a_revocation_travels_with_the_next_sync_and_the_revoked_device_is_refused() {
    let _g = serial();
    let (alex, sam) = couple();
    pair(&alex, &sam);
    let (serving, _lines) = serve(&alex);
    // Sam's person key revokes the device Sam is on (a stolen laptop, as seen from another of
    // Sam's devices; the list reaches this one first).
    let home = duet_store::Home::new(sam.home());
    let (person, mut list) = home.identity("first device", 0).unwrap();
    let device = duet_core::authority::DeviceKey::from_bytes(home.device_key().unwrap()).id();
    list.add_revocation(person.revoke(device, 1_800_000_000_000))
        .unwrap();
    home.save_devices(&list).unwrap();
    sam.write("written after the revocation");

    // The session that carries the list ends before Sam's journal is taken.
    let out = sam.duet(["sync", "--timeout", "10"]).run();
    assert_ne!(out.code(), Some(0), "{}", out.stderr);
    let seen = alex.duet(["device", "list", "--json"]).ok().json();
    let sams: Vec<_> = seen
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["owner"] == "partner")
        .collect();
    assert_eq!(sams.len(), 1);
    assert_eq!(sams[0]["revoked"], 1_800_000_000_000_i64, "{seen}");
    // From then on Alex's serve turns that device away at the gate.
    let out = sam.duet(["sync", "--timeout", "10"]).fails();
    assert_eq!(
        out.error_line(),
        "duet: error: Alex refused this device: it no longer accepts it (an unpair, or this \
         device was revoked)"
    );
    assert!(interrupt(serving));
    assert!(
        !alex
            .bodies(&[])
            .iter()
            .any(|b| b == "written after the revocation"),
        "nothing the revoked device wrote arrived"
    );
}

/// The names of the devices a `duet sync --json` reached.
fn reached(out: &serde_json::Value) -> Vec<String> {
    out["reached"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_home_device_carries_both_journals_between_laptops_that_are_never_awake_together() {
    let _g = serial();
    let (alex, sam) = couple();
    pair(&alex, &sam);
    alex.write("written before the home device existed");

    // Alex links an always-on device: a new, empty home that becomes one of Alex's devices.
    let home = TestEnv::new(DUET).seeded(3).sharing_clock_with(&alex);
    let home_id = link(&alex, &home, "home server");
    let devices = home.duet(["device", "list", "--json"]).ok().json();
    let mine: Vec<_> = devices
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["owner"] == "me")
        .map(|d| d["label"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(mine.len(), 2, "{devices}");
    assert!(mine.contains(&"home server".to_owned()));
    let status = home.duet(["status", "--json"]).ok().json();
    assert_eq!(
        status["partner"]["name"], "Sam",
        "the partner came with the link"
    );
    // Linking twice with the same home is refused, and so is a pairing ticket.
    let again = home
        .duet(["device", "join", "--yes", "duetlink1aaaa"])
        .fails();
    assert!(
        again.error_line().contains("already holds a journal"),
        "{}",
        again.stderr
    );

    // Alex and Sam meet once: Sam hears of the new device and where it was reached.
    sync_both(&alex, &sam);

    // The home device runs; the laptop writes, syncs with it, and goes away.
    let (serving, _lines) = serve(&home);
    alex.write("written on the laptop, which then closes");
    alex.write_with("only for me", &["--private"]);
    let out = alex.duet(["sync", "--json", "--timeout", "10"]).ok().json();
    assert_eq!(reached(&out), vec!["your home server".to_owned()], "{out}");
    assert_eq!(
        out["unreached"].as_array().unwrap().len(),
        1,
        "Sam was away: {out}"
    );

    // Sam's laptop, with Alex's laptop away, gets the entry from the home device.
    let out = sam.duet(["sync", "--json", "--timeout", "10"]).ok().json();
    assert_eq!(out["reached"][0]["device"], home_id.as_str(), "{out}");
    assert_eq!(out["reached"][0]["owner"], "partner");
    let bodies = sam.bodies(&[]);
    assert!(
        bodies
            .iter()
            .any(|b| b == "written on the laptop, which then closes"),
        "{bodies:?}"
    );
    assert!(
        !bodies.iter().any(|b| b == "only for me"),
        "a private entry never reaches the partner"
    );
    sam.write("Sam's answer, written while the laptop sleeps");
    sam.duet(["sync", "--timeout", "10"]).ok();

    // Later the laptop wakes and gets Sam's answer from the home device.
    let out = alex.duet(["sync", "--json", "--timeout", "10"]).ok().json();
    assert!(
        reached(&out).contains(&"your home server".to_owned()),
        "{out}"
    );
    assert!(
        alex.bodies(&[])
            .iter()
            .any(|b| b == "Sam's answer, written while the laptop sleeps")
    );

    // A phone joins, then is revoked on the laptop; the revocation reaches Sam through the
    // home device, and the phone is refused from then on.
    let phone = TestEnv::new(DUET).seeded(4).sharing_clock_with(&alex);
    let phone_id = link(&alex, &phone, "phone");
    // The link told the phone where the laptop last reached the home device.
    let book = std::fs::read_to_string(phone.home().join("peers.toml")).unwrap();
    assert!(book.contains(&home_id), "{book}");
    sync_both(&alex, &phone);
    assert!(
        phone.bodies(&[]).iter().any(|b| b == "only for me"),
        "my own devices carry my private journal"
    );
    let out = alex.duet(["device", "revoke", &phone_id[..10]]).ok();
    assert!(out.stdout.starts_with("Revoked phone"), "{}", out.stdout);
    alex.duet(["sync", "--timeout", "10"]).ok();
    sam.duet(["sync", "--timeout", "10"]).ok();
    let seen = sam.duet(["device", "list", "--json"]).ok().json();
    let revoked = seen
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == phone_id.as_str())
        .unwrap_or_else(|| panic!("Sam knows the phone: {seen}"));
    assert!(revoked["revoked"].is_i64(), "{seen}");
    let home_seen = seen
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == home_id.as_str())
        .unwrap();
    assert!(
        home_seen["last_seen"].is_i64(),
        "Sam saw the home device: {seen}"
    );
    let out = phone.duet(["sync", "--timeout", "5"]).fails();
    assert!(
        out.error_line().contains("refused this device"),
        "{}",
        out.stderr
    );
    assert!(interrupt(serving));
}

#[test]
fn a_wiped_laptop_restored_with_the_phrase_gets_its_whole_journal_back_from_the_partner() {
    let _g = serial();
    let (alex, sam) = couple();
    pair(&alex, &sam);
    for n in 0..30 {
        alex.write(&format!("a page of Alex's journal, number {n}"));
    }
    alex.write_with("only on the lost laptop", &["--private"]);
    sync_both(&alex, &sam);
    let phrase = alex.duet(["recovery", "show"]).ok();
    assert_eq!(
        phrase.stdout.split_whitespace().count(),
        24,
        "{}",
        phrase.stdout
    );
    assert!(
        phrase.stderr.contains("Anyone"),
        "the phrase comes with a warning"
    );
    let lost_laptop = alex.duet(["device", "list", "--json"]).ok().json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A wrong phrase is one clear line, and leaves no home behind.
    let fresh = TestEnv::new(DUET).seeded(7).sharing_clock_with(&alex);
    let wrong = fresh
        .duet(["init", "--recover", "--name", "Alex"])
        .stdin("apple banana cherry")
        .fails();
    assert!(
        wrong.error_line().contains("not a recovery phrase"),
        "{}",
        wrong.stderr
    );
    assert!(!fresh.home().join("config.toml").exists());

    // The laptop is wiped; a new one is restored from the phrase.
    let restored = fresh;
    restored
        .duet([
            "init",
            "--recover",
            "--name",
            "Alex",
            "--label",
            "new laptop",
        ])
        .stdin(phrase.stdout.clone())
        .ok();
    assert!(
        restored.bodies(&[]).is_empty(),
        "nothing is back before a sync"
    );
    // Sam stays paired with Alex; the restored device joins as one more device of Alex.
    let (inviter, ticket) = duet_tests::pairing::invite(&sam);
    let joined = restored
        .duet(["pair", "join", "--yes", ticket.as_str(), "--timeout", "20"])
        .ok();
    assert!(
        joined.stdout.contains("Paired with Sam"),
        "{}",
        joined.stdout
    );
    let out = wait(inviter, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alexes = sam.duet(["device", "list", "--json"]).ok().json();
    let labels: Vec<&str> = alexes
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["owner"] == "partner")
        .map(|d| d["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 2, "one more device of Alex: {alexes}");
    assert!(labels.contains(&"new laptop"));
    let status = sam.duet(["status", "--json"]).ok().json();
    assert_eq!(status["partner"]["name"], "Alex", "still the same partner");

    // Sam's modified client slips a volume of its own making into Alex's journal before
    // handing it back: the restored laptop keeps everything Alex's devices signed, not that.
    let alex_journal = duet_store::Home::new(sam.home())
        .partner()
        .unwrap()
        .unwrap()
        .journal;
    let mut forged =
        duet_core::Volume::create([9; 16], alex_journal, duet_core::VolumeId([3; 8]), 0);
    forged
        .add(&duet_core::Item {
            id: duet_core::ItemId([9; 8]),
            kind: duet_core::Kind::Entry,
            created_at: 1,
            edited_at: None,
            body: "words Alex never wrote".into(),
            tags: vec![],
            starred: false,
            deleted: false,
            ritual: Default::default(),
        })
        .unwrap();
    duet_store::volumes::JournalFiles::new(
        duet_store::Home::new(sam.home()).journal_dir(alex_journal),
        alex_journal,
    )
    .write(
        forged.id(),
        duet_store::volumes::FileKind::Snapshot,
        &forged.save(),
    )
    .unwrap();
    let (serving, _lines) = serve(&sam);
    let out = restored.duet(["sync", "--timeout", "10"]).ok();
    assert!(interrupt(serving));
    assert!(
        out.stderr.contains("no device of their author signed"),
        "the restored laptop says what it refused: {}",
        out.stderr
    );
    let back = restored.bodies(&["--author", "me"]);
    assert!(
        !back.iter().any(|b| b == "words Alex never wrote"),
        "{back:?}"
    );
    assert_eq!(
        back.len(),
        30,
        "the whole shared journal came back: {back:?}"
    );
    assert!(
        !back.iter().any(|b| b == "only on the lost laptop"),
        "the private journal never left the lost laptop"
    );

    // Back whole: the next sync brings nothing more of it, and the laptop is an ordinary device
    // of Alex again (no longer taking its journal from Sam).
    assert!(
        restored.home().join("recovering").exists(),
        "waiting until nothing more comes"
    );
    sync_both(&restored, &sam);
    assert!(!restored.home().join("recovering").exists());

    // Writing on goes on from there, and the lost laptop can be revoked.
    restored.write("the first page after the restore");
    let out = restored.duet(["device", "revoke", &lost_laptop[..12]]).ok();
    assert!(out.stdout.starts_with("Revoked"), "{}", out.stdout);
    sync_both(&restored, &sam);
    assert!(
        sam.bodies(&[])
            .iter()
            .any(|b| b == "the first page after the restore")
    );
    let seen = sam.duet(["device", "list", "--json"]).ok().json();
    let lost = seen
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == lost_laptop.as_str())
        .unwrap();
    assert!(lost["revoked"].is_i64(), "{seen}");
}

/// With a relay configured that cannot be reached, `pair invite` says it is trying, waits a
/// bounded time, says it could not, and still prints a ticket (with the direct addresses).
#[test]
fn an_invite_waits_for_its_relay_and_says_so_when_it_cannot_reach_it() {
    let _guard = serial();
    let alex = person(1, "Alex", None);
    let started = Instant::now();
    let out = alex
        .duet(["pair", "invite", "--yes", "--timeout", "1"])
        .env("DUET_RELAY", "http://127.0.0.1:9")
        .run();
    let took = started.elapsed();
    assert!(!out.status.success(), "nobody joined");
    assert!(
        out.stderr
            .contains("Reaching the relay http://127.0.0.1:9/"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("could not reach the relay") && out.stderr.contains("within 10 s"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("duet")),
        "{}",
        out.stdout
    );
    assert!(took < Duration::from_secs(20), "{took:?}");
}
