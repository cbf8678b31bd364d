//! Two people, two homes, two processes: pairing, sync and serve through
//! the real binary, on loopback with relays disabled.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use duet_tests::TestEnv;
use duet_tests::pairing::{interrupt, pair, serve, wait};

/// These tests each run several processes that talk to each other; one at
/// a time keeps them from starving each other on a small machine.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn person(name: &str) -> TestEnv {
    let env = TestEnv::new().with_real_clock();
    env.duet(["init", "--name", name]).ok();
    env
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
fn pair_write_sync_and_write_apart() {
    let _g = serial();
    let (alex, sam) = (person("Alex"), person("Sam"));
    let ticket = pair(&alex, &sam);

    let a_status = alex.duet(["status", "--json"]).ok().json();
    let s_status = sam.duet(["status", "--json"]).ok().json();
    assert_eq!(a_status["partner"]["name"], "Sam");
    assert_eq!(s_status["partner"]["name"], "Alex");
    assert!(a_status["partner"]["device"].as_str().unwrap().len() == 64);

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
    let refused = alex
        .duet(["edit", id.as_str(), "--body", "rewritten"])
        .fails();
    assert!(
        refused.error_line().contains("only its author"),
        "{}",
        refused.error_line()
    );
    alex.duet(["delete", id.as_str()]).fails();
    alex.duet(["star", id.as_str()]).ok();
    assert_eq!(alex.list_json(&["--starred"]).len(), 1);
    sync_both(&alex, &sam);
    assert!(
        sam.list_json(&["--starred"]).is_empty(),
        "my star on Sam's item is mine alone"
    );
    assert!(sam.bodies(&[]).iter().all(|b| b != "rewritten"));

    // A third person with the used ticket gets nowhere.
    let eve = person("Eve");
    let out = eve
        .duet(["pair", "join", "--yes", ticket.as_str(), "--timeout", "5"])
        .fails();
    assert!(!out.error_line().is_empty());
    assert!(eve.duet(["status", "--json"]).ok().json()["partner"].is_null());
}

#[test]
fn serve_on_both_sides_carries_a_new_entry_quickly() {
    let _g = serial();
    let (alex, sam) = (person("Alex"), person("Sam"));
    pair(&alex, &sam);
    let serving = vec![serve(&alex).0, serve(&sam).0];
    // Let the first exchange settle.
    std::thread::sleep(Duration::from_millis(800));

    alex.write("written while both serve");
    let written = Instant::now();
    let mut arrived = None;
    while written.elapsed() < Duration::from_secs(10) {
        if sam
            .bodies(&[])
            .iter()
            .any(|b| b == "written while both serve")
        {
            arrived = Some(written.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = arrived.expect("the entry reached Sam");
    assert!(took < Duration::from_secs(2), "took {took:?}");

    // And back, from a `duet sync` run while serve holds the port.
    sam.write("Sam answers");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !alex.bodies(&[]).iter().any(|b| b == "Sam answers") {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(alex.bodies(&[]).iter().any(|b| b == "Sam answers"));
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

#[test]
fn unpaired_partner_is_refused() {
    let _g = serial();
    let (alex, sam) = (person("Alex"), person("Sam"));
    pair(&alex, &sam);
    sam.write("before unpairing");
    sync_both(&alex, &sam);
    alex.duet(["unpair"]).ok();
    // Sam can no longer get through; Alex keeps Sam's old journal.
    let out = sam.duet(["sync", "--timeout", "3"]).fails();
    assert!(out.error_line().contains("Alex"), "{}", out.error_line());
    assert!(alex.bodies(&[]).iter().any(|b| b == "before unpairing"));
    alex.duet(["sync", "--timeout", "2"]).fails();
    alex.duet(["unpair", "--forget"]).ok();
    assert!(alex.bodies(&[]).is_empty());
}

#[test]
fn network_commands_explain_themselves() {
    let _g = serial();
    let alex = person("Alex");
    let out = alex.duet(["sync"]).fails();
    assert!(
        out.error_line().contains("duet pair invite"),
        "{}",
        out.error_line()
    );
    let out = alex.duet(["pair", "join", "--yes", "not-a-ticket"]).fails();
    assert!(out.error_line().contains("ticket"), "{}", out.error_line());
    let out = alex
        .duet(["--relay", "sometimes", "pair", "invite", "--yes"])
        .fails();
    assert!(out.error_line().contains("relay"), "{}", out.error_line());
    let out = alex
        .duet(["--bind", "here", "pair", "invite", "--yes"])
        .fails();
    assert!(out.error_line().contains("here"), "{}", out.error_line());
    let out = alex.duet(["pair", "invite"]).fails();
    assert!(out.error_line().contains("--yes"), "{}", out.error_line());
}
