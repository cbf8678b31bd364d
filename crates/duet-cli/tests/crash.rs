//! Crash safety and concurrency of the real binary: writes killed at random
//! points, and two processes writing into one home at once.

use std::collections::BTreeSet;
use std::time::Duration;

use duet_tests::TestEnv;
use duet_tests::rng::Rng;

const DUET: &str = env!("CARGO_BIN_EXE_duet");

fn bodies(env: &TestEnv) -> BTreeSet<String> {
    let out = env.duet(["list", "--json"]).ok();
    assert!(
        out.stderr.is_empty(),
        "list after a crash complained:\n{}",
        out.stderr
    );
    out.json()
        .as_array()
        .expect("an array")
        .iter()
        .map(|i| i["body"].as_str().expect("a body").to_owned())
        .collect()
}

#[test]
fn writes_killed_at_random_points_lose_nothing_that_was_confirmed() {
    let env = TestEnv::initialized(DUET);
    let mut rng = Rng::new(0x5eed_d0e7);
    let mut confirmed: Vec<String> = Vec::new();
    let mut killed = 0;
    for i in 0..200 {
        let body = format!("crash test write {i}");
        let mut child = env.duet(["write", "--", &body]).spawn(false);
        std::thread::sleep(Duration::from_millis(rng.below(31)));
        // SIGKILL on Unix; harmless if it already exited.
        let _ = child.kill();
        let status = child.wait().expect("waiting for duet write");
        if status.success() {
            confirmed.push(body);
        } else {
            killed += 1;
        }
        let seen = bodies(&env);
        let lost: Vec<&String> = confirmed.iter().filter(|b| !seen.contains(*b)).collect();
        assert!(
            lost.is_empty(),
            "after kill {i}, confirmed writes lost: {lost:?}"
        );
        // Nothing appears that was never written.
        assert!(
            seen.iter().all(|b| b
                .strip_prefix("crash test write ")
                .is_some_and(|n| n.parse::<usize>().is_ok_and(|n| n <= i))),
            "{seen:?}"
        );
    }
    eprintln!(
        "{} writes confirmed, {killed} killed before confirming",
        confirmed.len()
    );
    // The home still works, and the cache is only a cache.
    env.duet(["write", "after the storm"]).ok();
    std::fs::remove_dir_all(env.home().join("cache")).unwrap();
    let seen = bodies(&env);
    assert!(confirmed.iter().all(|b| seen.contains(b)));
    assert!(seen.contains("after the storm"));
}

#[test]
fn two_writers_at_once_lose_nothing() {
    const EACH: usize = 500;
    let env = TestEnv::initialized(DUET);
    std::thread::scope(|s| {
        for writer in ["left", "right"] {
            let env = &env;
            s.spawn(move || {
                for i in 0..EACH {
                    env.duet(["write", "--", &format!("{writer} writer entry {i}")])
                        .ok();
                }
            });
        }
    });
    let expected: BTreeSet<String> = ["left", "right"]
        .iter()
        .flat_map(|w| (0..EACH).map(move |i| format!("{w} writer entry {i}")))
        .collect();
    let items = env.list_json(&[]);
    assert_eq!(items.len(), 2 * EACH);
    let seen: BTreeSet<String> = items
        .iter()
        .map(|i| i["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, expected);
    let ids: BTreeSet<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2 * EACH, "ids are unique");

    // Everything is in the journal files, not only in the cache.
    std::fs::remove_dir_all(env.home().join("cache")).unwrap();
    assert_eq!(bodies(&env), expected);
    let status = env.duet(["status", "--json"]).ok().json();
    assert_eq!(status["counts"]["mine"]["entry"], 2 * EACH);
}
