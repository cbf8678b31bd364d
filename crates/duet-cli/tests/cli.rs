//! End to end: every command of the real `duet` binary in normal use, and
//! every bad input, each in its own temporary home.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use duet_tests::TestEnv;

const DUET: &str = env!("CARGO_BIN_EXE_duet");

/// An executable editor script in the test's directory.
fn editor(env: &TestEnv, name: &str, body: &str) -> PathBuf {
    let path = env.root().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn item<'a>(items: &'a [serde_json::Value], body: &str) -> &'a serde_json::Value {
    items
        .iter()
        .find(|i| i["body"] == body)
        .unwrap_or_else(|| panic!("no item `{body}` in {items:#?}"))
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

// ---------------------------------------------------------------- init

#[test]
fn init_welcomes_and_points_to_the_next_step() {
    let env = TestEnv::new(DUET);
    let out = env.duet(["init", "--name", "Alex"]).ok();
    insta::assert_snapshot!(
        format!("{}---\n{}", out.stdout, out.stderr),
        @r#"
    Welcome, Alex. Your journal lives in [HOME].
    ---
    Write a first line with `duet write "..."`, then pair with your partner: `duet pair invite`.
    "#
    );
    assert!(env.home().join("config.toml").is_file());
    let json = TestEnv::new(DUET);
    let v = json.duet(["init", "--name", "Sam", "--json"]).ok().json();
    assert_eq!(v["name"], "Sam");
    assert_eq!(v["journal"].as_str().unwrap().len(), 26);
}

#[test]
fn init_twice_is_refused() {
    let env = TestEnv::initialized(DUET);
    let out = env.duet(["init", "--name", "Other"]).fails();
    assert!(
        out.error_line().contains("already holds a duet journal"),
        "{}",
        out.stderr
    );
    // The first identity is untouched.
    assert_eq!(env.duet(["status", "--json"]).ok().json()["name"], "Alex");
}

#[test]
fn a_home_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let env = TestEnv::initialized(DUET);
    std::fs::set_permissions(env.home(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = env.duet(["list"]).fails();
    assert_eq!(
        out.error_line(),
        "duet: error: [HOME] can be changed by other users; make it private with `chmod go-w` \
         on it, or pass another --home"
    );
    std::fs::set_permissions(env.home(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let _ = env.duet(["list"]).ok();
    // A home that belongs to someone else (CI runs as root, which may give it away).
    if std::os::unix::fs::chown(env.home(), Some(4242), None).is_ok() {
        let out = env.duet(["list"]).fails();
        assert_eq!(
            out.error_line(),
            "duet: error: [HOME] belongs to another user; duet keeps private words only in a \
             directory of your own (pass another --home)"
        );
    }
    // A fresh home inside a shared directory is refused too.
    let shared = TestEnv::new(DUET);
    std::fs::create_dir(shared.home()).unwrap();
    std::fs::set_permissions(shared.home(), std::fs::Permissions::from_mode(0o777)).unwrap();
    assert!(
        shared
            .duet(["init", "--name", "Sam"])
            .fails()
            .error_line()
            .contains("can be changed by other users")
    );
}

#[test]
fn init_refuses_an_empty_name() {
    let env = TestEnv::new(DUET);
    env.duet(["init", "--name", "  "]).fails();
    env.duet(["list"]).fails();
}

#[test]
fn every_command_before_init_says_to_run_init() {
    let env = TestEnv::new(DUET);
    for args in [
        vec!["list"],
        vec!["list", "--json"],
        vec!["write", "hello"],
        vec!["thanks", "hello"],
        vec!["show", "abc"],
        vec!["edit", "abc", "--body", "x"],
        vec!["delete", "abc"],
        vec!["star", "abc"],
        vec!["export", "--format", "json"],
        vec!["status"],
    ] {
        let out = env.duet(&args).fails();
        assert!(
            out.error_line().contains("run `duet init"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

// ---------------------------------------------------------------- write

#[test]
fn write_inline_joins_the_words() {
    let env = TestEnv::initialized(DUET);
    let out = env
        .duet(["write", "Dinner", "by", "the", "lake", "with", "@Sam"])
        .ok();
    let items = env.list_json(&[]);
    assert_eq!(items.len(), 1);
    let id = items[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 13);
    assert_eq!(out.stdout, format!("Saved an entry: {}\n", &id[..7]));
    assert_eq!(items[0]["body"], "Dinner by the lake with @Sam");
    assert_eq!(items[0]["tags"], serde_json::json!(["sam"]));
    assert_eq!(items[0]["kind"], "entry");
    assert_eq!(items[0]["author"], "me");
    assert_eq!(items[0]["author_name"], "Alex");
    // init ran at 18:00:00, this write at 18:00:01: every command moves the clock a second.
    assert_eq!(items[0]["created_at"], "2026-11-25T18:00:01Z");
    assert_eq!(items[0]["edited_at"], serde_json::Value::Null);
    assert_eq!(items[0]["starred"], false);
    assert_eq!(items[0]["private"], false);
}

#[test]
fn write_reads_stdin_with_a_dash() {
    let env = TestEnv::initialized(DUET);
    env.duet(["write", "-"])
        .stdin("from a script\nsecond line\n")
        .ok();
    assert_eq!(env.bodies(&[]), vec!["from a script\nsecond line"]);
}

#[test]
fn write_without_text_opens_the_editor() {
    let env = TestEnv::initialized(DUET);
    let script = editor(
        &env,
        "ed.sh",
        "printf 'Written in the editor @cozy\\n' > \"$1\"",
    );
    env.duet(["write"]).env("EDITOR", &script).ok();
    let items = env.list_json(&[]);
    assert_eq!(items[0]["body"], "Written in the editor @cozy");
    assert_eq!(items[0]["tags"], serde_json::json!(["cozy"]));
    // The draft is removed afterwards.
    let tmp = env.home().join("tmp");
    assert!(!tmp.exists() || files_in(&tmp).is_empty());
}

#[test]
fn visual_wins_over_editor() {
    let env = TestEnv::initialized(DUET);
    let visual = editor(&env, "visual.sh", "echo from-visual > \"$1\"");
    let ed = editor(&env, "ed.sh", "echo from-editor > \"$1\"");
    env.duet(["write"])
        .env("VISUAL", &visual)
        .env("EDITOR", &ed)
        .ok();
    assert_eq!(env.bodies(&[]), vec!["from-visual"]);
}

#[test]
fn editor_failures_save_nothing() {
    let env = TestEnv::initialized(DUET);
    let empty = editor(&env, "empty.sh", "true");
    let out = env.duet(["write"]).env("EDITOR", &empty).fails();
    assert!(out.error_line().contains("empty"), "{}", out.stderr);
    let failing = editor(&env, "fail.sh", "echo text > \"$1\"; exit 3");
    let out = env.duet(["write"]).env("EDITOR", &failing).fails();
    assert!(
        out.error_line().contains("nothing was saved"),
        "{}",
        out.stderr
    );
    let out = env.duet(["write"]).fails();
    assert!(out.error_line().contains("$EDITOR"), "{}", out.stderr);
    assert!(env.list_json(&[]).is_empty());
}

#[test]
fn write_with_tags_star_and_private() {
    let env = TestEnv::initialized(DUET);
    env.duet([
        "write",
        "--tag",
        "Walk",
        "-t",
        "@evening",
        "--star",
        "Long walk @walk",
    ])
    .ok();
    let out = env.duet(["write", "--private", "Only for me"]).ok();
    assert!(
        out.stdout
            .starts_with("Saved a private entry (it stays on this device): "),
        "{}",
        out.stdout
    );
    let items = env.list_json(&[]);
    let walk = item(&items, "Long walk @walk");
    assert_eq!(walk["tags"], serde_json::json!(["walk", "evening"]));
    assert_eq!(walk["starred"], true);
    let private = item(&items, "Only for me");
    assert_eq!(private["private"], true);
    let status = env.duet(["status", "--json"]).ok().json();
    assert_eq!(status["counts"]["private"], 1);
    assert_eq!(status["counts"]["starred"], 1);
}

#[test]
fn write_at_natural_dates() {
    let env = TestEnv::initialized(DUET);
    // Each write runs one second after the one before (it and its `show` are two commands),
    // and a day named without a time keeps the time of day the command ran at.
    for (at, expected) in [
        ("yesterday", "2026-11-24T18:00:01Z"),
        ("today 08:30", "2026-11-25T08:30:00Z"),
        ("2026-11-20 21:00", "2026-11-20T21:00:00Z"),
        ("monday", "2026-11-23T18:00:07Z"),
        ("3 days ago", "2026-11-22T18:00:09Z"),
        ("2026-11-20T21:00:00+01:00", "2026-11-20T20:00:00Z"),
    ] {
        let id = env.write_with(&format!("at {at}"), &["--at", at]);
        let shown = env.duet(["show", "--json", &id]).ok().json();
        assert_eq!(shown["created_at"], expected, "--at {at}");
    }
}

#[test]
fn thanks_is_a_note_for_the_partner() {
    let env = TestEnv::initialized(DUET);
    let out = env.duet(["thanks", "for", "waiting", "up"]).ok();
    assert!(
        out.stdout
            .starts_with("Saved a thank-you for your partner: "),
        "{}",
        out.stdout
    );
    let items = env.list_json(&[]);
    assert_eq!(items[0]["kind"], "thanks");
    assert_eq!(items[0]["body"], "for waiting up");
    env.duet(["thanks", "-"]).stdin("for the soup").ok();
    assert_eq!(env.list_json(&["--kind", "thanks"]).len(), 2);
}

// ---------------------------------------------------------------- list

/// A small journal with one item per filter to tell apart.
fn journal() -> TestEnv {
    let env = TestEnv::initialized(DUET);
    env.duet(["write", "--at", "2026-11-01 09:00", "Early November coffee"])
        .ok();
    env.duet([
        "write",
        "--at",
        "2026-11-20 21:00",
        "--tag",
        "walk",
        "Long walk by the LAKE",
    ])
    .ok();
    env.duet(["thanks", "--at", "yesterday", "for the soup"])
        .ok();
    env.duet([
        "write",
        "--star",
        "--at",
        "today 08:30",
        "Morning @walk and @talk",
    ])
    .ok();
    env.duet(["write", "--private", "A secret"]).ok();
    env
}

#[test]
fn list_human_output() {
    let env = journal();
    let out = env.duet(["list"]).ok();
    assert_eq!(out.stderr, "");
    insta::assert_snapshot!(out.stdout, @r"
      5n2jrvr  Wed 2026-11-25 18:00  entry   Alex      (private) A secret
    ★ ypkhthe  Wed 2026-11-25 08:30  entry   Alex      Morning @walk and @talk #walk #talk
      zb67h2s  Tue 2026-11-24 18:00  thanks  Alex      for the soup
      xxexaha  Fri 2026-11-20 21:00  entry   Alex      Long walk by the LAKE #walk
      xtt5ab5  Sun 2026-11-01 09:00  entry   Alex      Early November coffee
    ");
}

#[test]
fn list_is_newest_first() {
    let env = journal();
    assert_eq!(
        env.bodies(&[]),
        vec![
            "A secret",
            "Morning @walk and @talk",
            "for the soup",
            "Long walk by the LAKE",
            "Early November coffee"
        ]
    );
}

#[test]
fn list_filters() {
    let env = journal();
    let cases: &[(&[&str], &[&str])] = &[
        (&["--kind", "thanks"], &["for the soup"]),
        (
            &["--kind", "thanks", "--kind", "entry", "-n", "2"],
            &["A secret", "Morning @walk and @talk"],
        ),
        (
            &["--tag", "walk"],
            &["Morning @walk and @talk", "Long walk by the LAKE"],
        ),
        (
            &["--tag", "walk", "--tag", "TALK"],
            &["Morning @walk and @talk"],
        ),
        (&["--tag", "@talk"], &["Morning @walk and @talk"]),
        (&["--starred"], &["Morning @walk and @talk"]),
        (&["--contains", "lake"], &["Long walk by the LAKE"]),
        (&["--contains", "SOUP"], &["for the soup"]),
        (&["--contains", "nowhere"], &[]),
        (
            &["--from", "2026-11-20", "--to", "yesterday"],
            &["for the soup", "Long walk by the LAKE"],
        ),
        (
            &["--from", "monday"],
            &["A secret", "Morning @walk and @talk", "for the soup"],
        ),
        (&["--to", "2026-11-19"], &["Early November coffee"]),
        (&["--author", "partner"], &[]),
        (&["-n", "1"], &["A secret"]),
        (&["--limit", "0"], &[]),
    ];
    for (args, expected) in cases {
        assert_eq!(&env.bodies(args), expected, "list {args:?}");
    }
    assert_eq!(env.bodies(&["--author", "me"]).len(), 5);
}

#[test]
fn list_of_an_empty_journal_guides_on_stderr() {
    let env = TestEnv::initialized(DUET);
    let out = env.duet(["list"]).ok();
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("duet write"), "{}", out.stderr);
    assert_eq!(env.duet(["list", "--json"]).ok().stdout.trim(), "[]");
    let quiet = env.duet(["list", "-q"]).ok();
    assert_eq!((quiet.stdout.as_str(), quiet.stderr.as_str()), ("", ""));
}

// ---------------------------------------------------------------- show, edit, delete, star

#[test]
fn show_by_full_id_and_by_prefix() {
    let env = TestEnv::initialized(DUET);
    let id = env.write_with("Dinner at @home\nwith candles", &["--at", "yesterday"]);
    let out = env.duet(["show", &id]).ok();
    insta::assert_snapshot!(out.stdout, @r"
    entry xtt5ab53iwsxy by Alex · Tuesday 24 November 2026, 18:00
    #home

    Dinner at @home
    with candles
    ");
    for prefix in [&id[..4], &id[..7], &id.to_uppercase()] {
        let shown = env.duet(["show", "--json", prefix]).ok().json();
        assert_eq!(shown["id"], id.as_str());
        assert_eq!(shown["body"], "Dinner at @home\nwith candles");
    }
}

#[test]
fn edit_with_body_and_with_the_editor() {
    let env = TestEnv::initialized(DUET);
    let id = env.write("first draft");
    let out = env
        .duet(["edit", &id[..5], "--body", "second draft @better"])
        .env("DUET_NOW", "2026-11-26T07:00:00Z")
        .ok();
    assert_eq!(out.stdout, format!("Edited {}.\n", &id[..7]));
    let shown = env.duet(["show", "--json", &id]).ok().json();
    assert_eq!(shown["body"], "second draft @better");
    assert_eq!(shown["tags"], serde_json::json!(["better"]));
    assert_eq!(shown["edited_at"], "2026-11-26T07:00:00Z");
    assert_eq!(shown["created_at"], "2026-11-25T18:00:01Z");

    let unchanged = env
        .duet(["edit", &id, "--body", "second draft @better"])
        .ok();
    assert_eq!(unchanged.stdout, "No changes.\n");

    // The editor opens on the current text, ending in a newline as editors expect.
    let script = editor(&env, "append.sh", "printf 'third line\\n' >> \"$1\"");
    env.duet(["edit", &id]).env("EDITOR", &script).ok();
    let shown = env.duet(["show", "--json", &id]).ok().json();
    assert_eq!(shown["body"], "second draft @better\nthird line");

    env.duet(["edit", &id, "--body", "-"])
        .stdin("from stdin")
        .ok();
    assert_eq!(env.bodies(&[]), vec!["from stdin"]);

    let json = env
        .duet(["edit", &id, "--body", "again", "--json"])
        .ok()
        .json();
    assert_eq!(json, serde_json::json!({ "id": id, "action": "edited" }));
    env.duet(["edit", &id, "--body", "  "]).fails();
}

#[test]
fn delete_removes_from_list_and_export() {
    let env = TestEnv::initialized(DUET);
    let keep = env.write("keep me");
    let gone = env.write("delete me");
    let out = env.duet(["delete", &gone]).ok();
    assert_eq!(out.stdout, format!("Deleted {}.\n", &gone[..7]));
    assert_eq!(env.bodies(&[]), vec!["keep me"]);
    let export = env.duet(["export", "--format", "json"]).ok().json();
    assert_eq!(export["items"].as_array().unwrap().len(), 1);
    assert_eq!(export["items"][0]["id"], keep.as_str());
    let status = env.duet(["status", "--json"]).ok().json();
    assert_eq!(status["counts"]["mine"]["entry"], 1);
    // No read path shows it any more, not even by its id.
    for cmd in ["show", "edit", "star", "delete"] {
        let out = env.duet([cmd, gone.as_str()]).fails();
        assert_eq!(
            out.error_line(),
            format!("duet: error: no item matches `{gone}`; `duet list` shows the ids")
        );
    }
}

#[test]
fn star_and_unstar() {
    let env = TestEnv::initialized(DUET);
    let id = env.write("shine");
    let out = env.duet(["star", &id]).ok();
    assert_eq!(out.stdout, format!("Starred {}.\n", &id[..7]));
    assert_eq!(env.bodies(&["--starred"]), vec!["shine"]);
    let list = env.duet(["list"]).ok();
    assert!(list.stdout.starts_with('★'), "{}", list.stdout);
    let out = env.duet(["star", "--off", &id]).ok();
    assert_eq!(out.stdout, format!("Unstarred {}.\n", &id[..7]));
    assert!(env.bodies(&["--starred"]).is_empty());
    let json = env.duet(["star", &id, "--json"]).ok().json();
    assert_eq!(json["action"], "starred");
}

// ---------------------------------------------------------------- export, status

#[test]
fn export_json_oldest_first() {
    let env = journal();
    let export = env.duet(["export", "--format", "json"]).ok().json();
    assert_eq!(export["format"], "duet-export/1");
    // Six commands made the journal; the export is the seventh.
    assert_eq!(export["exported_at"], "2026-11-25T18:00:06Z");
    assert_eq!(export["me"], "Alex");
    assert_eq!(export["partner"], serde_json::Value::Null);
    let bodies: Vec<&str> = export["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        vec![
            "Early November coffee",
            "Long walk by the LAKE",
            "for the soup",
            "Morning @walk and @talk",
            "A secret"
        ]
    );
    // Default format is JSON (exported a second later).
    let mut again = env.duet(["export"]).ok().json();
    assert_eq!(again["exported_at"], "2026-11-25T18:00:07Z");
    again["exported_at"] = export["exported_at"].clone();
    assert_eq!(again, export);
}

#[test]
fn export_of_many_volumes_is_the_list_oldest_first_read_a_volume_at_a_time() {
    let env = TestEnv::initialized(DUET);
    // Three volumes of generated items, then entries backdated into their spans (the open
    // volume then spans years and overlaps every other).
    duet_tests::generate::populate(env.home(), 700, 1_790_000_000_000, 3).unwrap();
    for at in ["2026-01-02 10:00", "2025-06-01 08:00", "2026-11-25 09:00"] {
        env.duet(["write", "--at", at, "--", &format!("backdated to {at}")])
            .ok();
    }
    let listed: Vec<String> = env
        .list_json(&["-n", "100000"])
        .iter()
        .rev()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    let export = env.duet(["export", "--format", "json"]).ok().json();
    let exported: Vec<String> = export["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(exported.len(), 703);
    assert_eq!(exported, listed);
}

#[test]
fn show_finds_every_reply_wherever_it_is_and_however_it_is_dated() {
    let env = TestEnv::initialized(DUET);
    let checkin = env
        .duet([
            "checkin",
            "--json",
            "--mood",
            "2",
            "--energy",
            "1",
            "--at",
            "2025-03-01 08:00",
        ])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A reply in the volume of the check-in, then hundreds of items (new volumes), then a
    // reply in the newest volume, and one dated before the check-in itself.
    env.duet(["thanks", "--re", &checkin, "--", "for telling me early"])
        .ok();
    duet_tests::generate::populate(env.home(), 700, 1_790_000_000_000, 5).unwrap();
    env.duet(["thanks", "--re", &checkin, "--", "for the tea later on"])
        .ok();
    env.duet([
        "thanks",
        "--re",
        &checkin,
        "--at",
        "2025-02-28 20:00",
        "--",
        "written the night before",
    ])
    .ok();
    let shown = env.duet(["show", &checkin]).ok().stdout;
    let replies: Vec<&str> = shown.lines().filter(|l| l.starts_with("↳")).collect();
    assert_eq!(replies.len(), 3, "{shown}");
    for (line, body) in replies.iter().zip([
        "written the night before",
        "for telling me early",
        "for the tea later on",
    ]) {
        assert!(line.ends_with(body), "{line} in {shown}");
    }
    // A deleted reply is gone from under it; an item nobody answered shows none.
    let json = env.list_json(&["--contains", "tea later"]);
    env.duet(["delete", json[0]["id"].as_str().unwrap()]).ok();
    let shown = env.duet(["show", &checkin]).ok().stdout;
    assert_eq!(
        shown.lines().filter(|l| l.starts_with("↳")).count(),
        2,
        "{shown}"
    );
    let other = env.list_json(&["-n", "300"])[299]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = env.duet(["show", &other]).ok().stdout;
    assert!(!shown.contains('↳'), "{shown}");
}

#[test]
fn export_markdown() {
    let env = TestEnv::initialized(DUET);
    env.write_with("Long walk", &["--at", "2026-11-20 21:00", "--tag", "walk"]);
    env.write_with("Soup", &["--star", "--at", "today 08:30"]);
    let out = env.duet(["export", "--format", "markdown"]).ok();
    insta::assert_snapshot!(out.stdout, @r"
    # Alex's journal

    ## Friday 20 November 2026

    ### 21:00 · entry · Alex

    Long walk

    #walk

    <!-- id xtt5ab53iwsxy -->

    ## Wednesday 25 November 2026

    ### 08:30 · entry · Alex ★

    Soup

    <!-- id xxexahag2z53c -->
    ");
}

#[test]
fn export_to_a_file() {
    let env = journal();
    let target = env.root().join("out").join("journal.md");
    std::fs::create_dir(target.parent().unwrap()).unwrap();
    let out = env
        .duet(["export", "--format", "markdown", "--out"])
        .arg(&target)
        .ok();
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("Exported 5 items"), "{}", out.stderr);
    let stdout = env.duet(["export", "--format", "markdown"]).ok().stdout;
    assert_eq!(std::fs::read_to_string(&target).unwrap(), stdout);

    let json = env.root().join("journal.json");
    env.duet(["export", "--format", "json", "--out"])
        .arg(&json)
        .ok();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 5);

    // Relative to the current directory.
    env.duet(["export", "--out", "rel.json"]).ok();
    assert!(env.root().join("rel.json").is_file());

    let missing = env.root().join("no").join("such").join("dir.md");
    env.duet(["export", "--out"]).arg(&missing).fails();
}

#[test]
fn status_human_and_json() {
    let env = journal();
    let out = env.duet(["status"]).ok();
    let text = out.stdout.clone();
    let (head, size) = text.split_once("  store: ").unwrap();
    insta::assert_snapshot!(head, @r"
    Alex · home [HOME]
      your journal: 4 entries, 1 thanks
      of which private (this device only): 1
      partner: not paired yet (run `duet pair invite`)
      starred: 1
    ");
    assert!(
        size.ends_with(" in 2 volumes\n") && size.contains('B'),
        "{size}"
    );
    let v = env.duet(["status", "--json"]).ok().json();
    assert_eq!(v["name"], "Alex");
    assert_eq!(v["partner"], serde_json::Value::Null);
    assert_eq!(
        v["counts"],
        serde_json::json!({
            "mine": { "entry": 4, "thanks": 1 },
            "partner": {},
            "private": 1,
            "starred": 1
        })
    );
    assert_eq!(v["volumes"], 2);
    assert!(v["store_bytes"].as_u64().unwrap() > 0);
    assert_eq!(v["home"], "[HOME]", "output names the test's home [HOME]");
}

// ---------------------------------------------------------------- the two programs

#[test]
fn duet_alone_keeps_the_journal_and_names_the_program_the_network_commands_need() {
    // `duet` copied to a directory of its own, without `duet-net`: every command that stays on
    // the device works, and each network command fails with one line that says what is
    // missing and how to get it, touching nothing.
    let holder = TestEnv::new(DUET);
    let lone = holder.root().join("lone").join("duet");
    std::fs::create_dir_all(lone.parent().unwrap()).unwrap();
    std::fs::copy(DUET, &lone).unwrap();
    let env = TestEnv::new(&lone);
    env.duet(["init", "--name", "Alex"]).ok();
    env.duet(["write", "written by duet alone"]).ok();
    let items = env.duet(["list", "--json"]).ok().json();
    assert_eq!(items[0]["body"], "written by duet alone");
    let journal = files_in(&env.home().join("journals")).remove(0);
    let before = files_in(&journal);
    let missing = lone.with_file_name("duet-net");
    for args in [
        &["sync"][..],
        &["serve"],
        &["pair", "invite"],
        &["device", "list"],
        &["sync", "--json"],
    ] {
        let out = env.duet(args.iter().copied()).fails();
        assert_eq!(out.code(), Some(1), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("duet: error: cannot start ")
                && out.stderr.contains(&missing.display().to_string())
                && out.stderr.contains("cargo build --release"),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert_eq!(files_in(&journal), before);
    // Beside `duet-net` again, the same home syncs as far as this device goes: not paired.
    let paired = TestEnv::new(DUET);
    paired.duet(["init", "--name", "Sam"]).ok();
    let out = paired.duet(["sync"]).fails();
    assert!(out.stderr.contains("not paired yet"), "{}", out.stderr);
}

// ---------------------------------------------------------------- bad input

#[test]
fn unknown_id_is_refused() {
    let env = TestEnv::initialized(DUET);
    env.write("something");
    for cmd in ["show", "delete", "star"] {
        let out = env.duet([cmd, "zzzzzzz"]).fails();
        assert!(
            out.error_line().contains("no item matches `zzzzzzz`"),
            "{}",
            out.stderr
        );
    }
    env.duet(["edit", "zzzzzzz", "--body", "x"]).fails();
    env.duet(["show", ""]).fails();
    env.duet(["show", "not-base32!"]).fails();
}

#[test]
fn ambiguous_prefix_lists_the_candidates() {
    let env = TestEnv::initialized(DUET);
    let mut ids: Vec<String> = Vec::new();
    // 32 possible first characters: a shared one comes quickly.
    let (a, b) = loop {
        assert!(ids.len() < 100, "no two ids share a first character");
        let id = env.write(&format!("item {}", ids.len()));
        if let Some(other) = ids.iter().find(|o| o[..1] == id[..1]) {
            break (other.clone(), id);
        }
        ids.push(id);
    };
    let prefix = &a[..1];
    let out = env.duet(["show", prefix]).fails();
    let line = out.error_line();
    assert!(line.contains(&format!("`{prefix}` matches ")), "{line}");
    assert!(line.contains(&a) && line.contains(&b), "{line}");
    assert!(line.contains("type more of the id"), "{line}");
    env.duet(["delete", prefix]).fails();
    env.duet(["edit", prefix, "--body", "x"]).fails();
    // Nothing was deleted or changed.
    assert_eq!(env.list_json(&[]).len(), ids.len() + 1);
}

#[test]
fn empty_text_is_refused() {
    let env = TestEnv::initialized(DUET);
    for (args, stdin) in [
        (vec!["write", ""], ""),
        (vec!["write", "  ", " "], ""),
        (vec!["write", "\n\n"], ""),
        (vec!["write", "-"], ""),
        (vec!["write", "-"], " \n \n"),
        (vec!["thanks", ""], ""),
    ] {
        let out = env.duet(&args).stdin(stdin).fails();
        assert!(
            out.error_line().contains("empty"),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert!(env.list_json(&[]).is_empty());
}

#[test]
fn body_over_one_mib_is_refused_naming_the_limit() {
    let env = TestEnv::initialized(DUET);
    let out = env
        .duet(["write", "-"])
        .stdin(vec![b'x'; 1_048_577])
        .fails();
    assert!(
        out.error_line().contains("1048576 bytes (1 MiB)"),
        "{}",
        out.stderr
    );
    assert!(env.list_json(&[]).is_empty());
    // Exactly the limit is fine.
    env.duet(["write", "-"]).stdin(vec![b'y'; 1_048_576]).ok();
    let id = env.list_json(&[])[0]["id"].as_str().unwrap().to_owned();
    let out = env
        .duet(["edit", &id, "--body", "-"])
        .stdin(vec![b'z'; 1_048_577])
        .fails();
    assert!(out.error_line().contains("1 MiB"), "{}", out.stderr);
}

#[test]
fn bad_dates_are_refused() {
    let env = TestEnv::initialized(DUET);
    for when in ["soon", "25:00", "2026-13-01", "today 8", "x days ago", ""] {
        let out = env.duet(["write", "--at", when, "text"]).fails();
        assert!(
            out.error_line().contains("as a date"),
            "{when}: {}",
            out.stderr
        );
        env.duet(["list", "--from", when]).fails();
        env.duet(["list", "--to", when]).fails();
    }
    assert!(env.list_json(&[]).is_empty());
}

#[test]
fn bad_kind_and_bad_tag_are_refused() {
    let env = TestEnv::initialized(DUET);
    let out = env.duet(["list", "--kind", "diary"]).fails();
    assert!(
        out.error_line().contains("unknown kind `diary`"),
        "{}",
        out.stderr
    );
    let out = env.duet(["write", "--tag", "two words", "x"]).fails();
    assert!(out.error_line().contains("is not a tag"), "{}", out.stderr);
    env.duet(["list", "--tag", "a/b"]).fails();
}

#[test]
fn bad_clock_is_refused() {
    let env = TestEnv::initialized(DUET);
    let out = env.duet(["list"]).env("DUET_NOW", "tuesday").fails();
    assert!(out.error_line().contains("DUET_NOW"), "{}", out.stderr);
}

#[test]
fn usage_errors_exit_2_without_panicking() {
    let env = TestEnv::initialized(DUET);
    for args in [
        vec!["frobnicate"],
        vec!["list", "--bogus"],
        vec!["list", "-n", "many"],
        vec!["list", "--author", "neighbour"],
        vec!["export", "--format", "pdf"],
        vec!["show"],
        vec![],
    ] {
        let out = env.duet(&args).run();
        assert_eq!(out.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(env.duet(["--help"]).run().code(), Some(0));
    assert!(env.duet(["--version"]).ok().stdout.starts_with("duet "));
}

// ---------------------------------------------------------------- damaged store

/// Write `body` and return the journal file it created.
fn write_new_file(env: &TestEnv, body: &str) -> PathBuf {
    let dir = env.journal_dir();
    let before = if dir.exists() { files_in(&dir) } else { vec![] };
    env.write(body);
    let mut new: Vec<PathBuf> = files_in(&dir)
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    assert_eq!(new.len(), 1, "one write, one new file");
    new.remove(0)
}

#[test]
fn a_truncated_chunk_is_reported_by_name_and_the_rest_loads() {
    let env = TestEnv::initialized(DUET);
    env.duet(["write", "--private", "private and safe"]).ok();
    let snap = write_new_file(&env, "first");
    assert!(snap.to_string_lossy().ends_with(".snap"));
    write_new_file(&env, "second");
    let last = write_new_file(&env, "third");
    assert!(last.to_string_lossy().ends_with(".chunk"));
    let len = std::fs::metadata(&last).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    // The cache still remembers the item: drop it, as a user may.
    std::fs::remove_dir_all(env.home().join("cache")).unwrap();
    let out = env.duet(["list", "--json"]).ok();
    let name = last.file_name().unwrap().to_string_lossy().into_owned();
    let warnings = out.warnings();
    assert!(!warnings.is_empty(), "no warning: {}", out.stderr);
    assert!(
        warnings
            .iter()
            .all(|w| w.starts_with("duet: warning: skipped ") && w.contains(&name)),
        "{}",
        out.stderr
    );
    let mut bodies: Vec<String> = out
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["body"].as_str().unwrap().to_owned())
        .collect();
    bodies.sort();
    assert_eq!(bodies, vec!["first", "private and safe", "second"]);
    // Human list and status still work, and warn.
    let human = env.duet(["list"]).ok();
    assert_eq!(human.stdout_lines().len(), 3);
    assert!(!human.warnings().is_empty());
    env.duet(["status"]).ok();
}

#[test]
fn a_damaged_snapshot_is_reported_and_other_journals_load() {
    let env = TestEnv::initialized(DUET);
    env.duet(["write", "--private", "private and safe"]).ok();
    let snap = write_new_file(&env, "first");
    std::fs::write(&snap, b"garbage, not automerge").unwrap();
    std::fs::remove_dir_all(env.home().join("cache")).unwrap();
    let out = env.duet(["list", "--json"]).ok();
    let name = snap.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        out.warnings().iter().any(|w| w.contains(&name)),
        "{}",
        out.stderr
    );
    assert_eq!(env.bodies(&[]), vec!["private and safe"]);
}

#[test]
fn a_damaged_chunk_loses_nothing_the_later_chunks_hold() {
    let env = TestEnv::initialized(DUET);
    write_new_file(&env, "first");
    let second = write_new_file(&env, "second");
    write_new_file(&env, "third");
    write_new_file(&env, "fourth");
    std::fs::write(&second, b"damaged").unwrap();
    std::fs::remove_dir_all(env.home().join("cache")).unwrap();
    // Every chunk carries all changes since the snapshot, so the later ones
    // still hold what the damaged one did.
    let out = env.duet(["list"]).ok();
    assert_eq!(out.warnings().len(), 1, "{}", out.stderr);
    let mut bodies = env.bodies(&[]);
    bodies.sort();
    assert_eq!(bodies, vec!["first", "fourth", "second", "third"]);
}

#[test]
fn writing_still_works_after_a_damaged_snapshot() {
    let env = TestEnv::initialized(DUET);
    let snap = write_new_file(&env, "first");
    // The cache still describes the volume (its file names did not change).
    std::fs::write(&snap, b"garbage, not automerge").unwrap();
    for _ in 0..2 {
        env.duet(["write", "written after the damage"]).ok();
    }
    assert_eq!(env.bodies(&[]).len(), 2);
}

#[test]
fn each_warning_is_printed_once() {
    let env = TestEnv::initialized(DUET);
    let id = env.write("first");
    write_new_file(&env, "second");
    let last = write_new_file(&env, "third");
    std::fs::write(&last, b"damaged").unwrap();
    std::fs::remove_dir_all(env.home().join("cache")).unwrap();
    let out = env.duet(["show", &id]).ok();
    assert_eq!(out.warnings().len(), 1, "{}", out.stderr);
}

#[test]
fn the_cache_can_be_deleted_at_any_time() {
    let env = journal();
    let before = env.list_json(&[]);
    std::fs::remove_dir_all(env.home().join("cache")).unwrap();
    assert_eq!(env.list_json(&[]), before);
    std::fs::remove_dir_all(env.home().join("cache")).unwrap();
    env.write("after the cache went");
    assert_eq!(env.list_json(&[]).len(), 6);
    // A garbage cache is rebuilt, not trusted.
    for f in std::fs::read_dir(env.home().join("cache")).unwrap() {
        let p = f.unwrap().path();
        if p.is_file() {
            std::fs::write(&p, b"junk").unwrap();
        }
    }
    let out = env.duet(["list", "--json"]).ok();
    assert_eq!(out.json().as_array().unwrap().len(), 6);
}

// ---------------------------------------------------------------- pipes and terminals

#[test]
fn a_pipe_closed_early_ends_duet_quietly() {
    let env = TestEnv::initialized(DUET);
    duet_tests::generate::populate(env.home(), 1000, 1_790_000_000_000, 7).unwrap();
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["export", "--format", "markdown"],
    ] {
        let mut child = env.duet(args).spawn(true);
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        assert!(!first.is_empty());
        drop(stdout); // like `| head -1`
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "{args:?}: {status:?} {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
    // And the whole output really is bigger than a pipe buffer.
    let full = env.duet(["list"]).ok();
    assert_eq!(full.stdout_lines().len(), 1000);
    assert!(full.stdout.len() > 64 * 1024);
}

#[test]
fn piped_output_has_no_escape_codes() {
    let env = journal();
    let id = env.list_json(&["--starred"])[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for args in [
        vec!["list"],
        vec!["show", id.as_str()],
        vec!["status"],
        vec!["export", "--format", "markdown"],
        vec!["show", "nosuchid"],
    ] {
        // Not a terminal, even though TERM says colours would work.
        let out = env
            .duet(&args)
            .env_remove("NO_COLOR")
            .env("TERM", "xterm-256color")
            .run();
        assert!(
            !out.stdout.contains("\x1b[") && !out.stderr.contains("\x1b["),
            "{args:?}: {out:?}"
        );
    }
}

// ---------------------------------------------------------------- rituals, one home

#[test]
fn checkin_asks_three_short_questions_on_a_terminal() {
    let env = TestEnv::initialized(DUET);
    let mut child = env.duet(["checkin"]).on_a_terminal().spawn_interactive();
    let mut stdin = child.stdin.take().unwrap();
    use std::io::Write as _;
    // A wrong score is asked again; Enter skips the energy.
    stdin.write_all(b"9\n4\n\nsome quiet time\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains("How are you feeling, 1 (low) to 5 (bright)?"),
        "{screen}"
    );
    assert!(
        screen.contains("A number from 1 to 5, please (or Enter to skip)."),
        "{screen}"
    );
    let items = env.list_json(&["--kind", "checkin"]);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["mood"], 4);
    assert_eq!(items[0]["energy"], serde_json::Value::Null);
    assert_eq!(items[0]["body"], "some quiet time");
    let line = env.duet(["list"]).ok().stdout;
    assert!(
        line.contains("checkin Alex      mood 4/5 · needs: some quiet time"),
        "{line}"
    );
}

#[test]
fn answer_in_the_editor_shows_the_question_and_keeps_only_the_answer() {
    let env = TestEnv::initialized(DUET);
    let question = env.duet(["question", "--json"]).ok().json();
    let text = question["text"].as_str().unwrap().to_owned();
    // The editor sees the question as a comment, and writes an answer above it.
    let script = editor(
        &env,
        "answer.sh",
        "grep -q '^# ' \"$1\" && cp \"$1\" seen.txt; printf 'Our first kitchen\\n' > new.txt; \
         cat \"$1\" >> new.txt; mv new.txt \"$1\"",
    );
    let _ = env.duet(["answer"]).env("EDITOR", &script).ok();
    let seen = std::fs::read_to_string(env.root().join("seen.txt")).unwrap();
    assert!(seen.contains(&format!("# {text}")), "{seen}");
    let answered = env.duet(["question", "--json"]).ok().json();
    assert_eq!(answered["mine"]["text"], "Our first kitchen");
    assert_eq!(answered["partner"], serde_json::Value::Null);
    // An untouched editor saves nothing.
    let quiet = TestEnv::initialized(DUET);
    let out = quiet.duet(["answer"]).env("EDITOR", "true").fails();
    assert_eq!(
        out.error_line(),
        "duet: error: the text is empty, so nothing was saved"
    );
}

#[test]
fn memories_are_this_day_in_earlier_months_and_years() {
    let env = TestEnv::initialized(DUET);
    for (at, body) in [
        ("2025-11-25 09:00", "a year ago today"),
        ("2026-10-25 20:00", "a month ago today"),
        ("2026-11-24 20:00", "only yesterday"),
        ("2026-08-03 10:00", "another day"),
    ] {
        let _ = env.duet(["write", "--at", at, body]).ok();
    }
    let bodies = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["memories", "--json"];
        all.extend_from_slice(args);
        env.duet(all)
            .ok()
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["body"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(bodies(&[]), vec!["a month ago today", "a year ago today"]);
    assert_eq!(bodies(&["--date", "2026-12-03"]), vec!["another day"]);
    let none = env.duet(["memories", "--date", "2026-11-30"]).ok();
    assert_eq!(none.stdout, "");
    assert!(
        none.stderr
            .contains("Nothing from a 30th of an earlier month yet."),
        "{}",
        none.stderr
    );
}

#[test]
fn doctor_names_damaged_files_and_fix_moves_them_aside() {
    let env = TestEnv::initialized(DUET);
    let _ = write_new_file(&env, "first");
    let _ = write_new_file(&env, "second");
    let last = write_new_file(&env, "third");
    let healthy = env.duet(["doctor"]).ok();
    assert!(
        healthy.stdout.ends_with("Everything reads.\n"),
        "{}",
        healthy.stdout
    );

    // A bit flip in the last chunk, and a stranger's file in the journal folder.
    let mut bytes = std::fs::read(&last).unwrap();
    bytes[10] ^= 0x40;
    std::fs::write(&last, &bytes).unwrap();
    std::fs::write(env.journal_dir().join("notes.txt"), b"not duet").unwrap();
    let found = env.duet(["doctor"]).run();
    assert_eq!(found.code(), Some(1));
    let name = last.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        found.stdout.contains("damaged: ") && found.stdout.contains(&name),
        "{}",
        found.stdout
    );
    assert!(
        found.stdout.contains("notes.txt (not a duet file)"),
        "{}",
        found.stdout
    );
    assert_eq!(
        found.error_line(),
        "duet: error: 2 damaged file(s); `duet doctor --fix` moves them aside (nothing is deleted)"
    );

    let fixed = env.duet(["doctor", "--fix", "--json"]).ok().json();
    assert_eq!(fixed["damaged"].as_array().unwrap().len(), 2);
    let aside = env
        .home()
        .join("damaged")
        .join(env.journal_dir().file_name().unwrap());
    assert!(aside.join(&name).is_file(), "moved, not deleted");
    assert!(aside.join("notes.txt").is_file());
    assert_eq!(env.bodies(&[]), vec!["second", "first"]);
    let again = env.duet(["doctor"]).ok();
    assert!(again.stdout.ends_with("Everything reads.\n"));
}

#[test]
fn a_damaged_newest_snapshot_no_longer_loses_its_volume() {
    let env = TestEnv::initialized(DUET);
    // 60 writes into one volume: two compactions (each after 24 files), so the volume holds
    // the newest snapshot (items 1–46), the one before it (items 1–24), and 14 chunks.
    for n in 1..=60 {
        let _ = env.write(&format!("entry {n}"));
    }
    let files = files_in(&env.journal_dir());
    let named = |ext: &str| -> Vec<PathBuf> {
        files
            .iter()
            .filter(|f| f.to_string_lossy().ends_with(ext))
            .cloned()
            .collect()
    };
    let (snaps, reserve) = (named(".snap"), named(".prev"));
    assert_eq!(
        (snaps.len(), reserve.len()),
        (1, 1),
        "the previous snapshot is kept one generation, in reserve: {files:?}"
    );
    let newest = snaps[0].clone();
    let mut bytes = std::fs::read(&newest).unwrap();
    bytes[20] ^= 0x01;
    std::fs::write(&newest, bytes).unwrap();
    std::fs::remove_dir_all(env.home().join("cache")).unwrap();

    let out = env.duet(["list", "--json"]).ok();
    let name = newest.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        out.warnings().iter().any(|w| w.contains(&name)),
        "{}",
        out.stderr
    );
    let bodies: Vec<String> = out
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        bodies.len(),
        24,
        "the volume still loads from the snapshot before: {bodies:?}"
    );
    assert!(bodies.contains(&"entry 1".to_owned()) && bodies.contains(&"entry 24".to_owned()));
}

#[test]
fn the_snapshot_in_reserve_is_read_only_when_needed_and_checked_by_doctor() {
    let env = TestEnv::initialized(DUET);
    for n in 1..=60 {
        let _ = env.write(&format!("entry {n}"));
    }
    let reserve: Vec<PathBuf> = files_in(&env.journal_dir())
        .into_iter()
        .filter(|f| f.to_string_lossy().ends_with(".prev"))
        .collect();
    assert_eq!(reserve.len(), 1, "{reserve:?}");
    let mut bytes = std::fs::read(&reserve[0]).unwrap();
    bytes[20] ^= 0x01;
    std::fs::write(&reserve[0], bytes).unwrap();
    std::fs::remove_dir_all(env.home().join("cache")).unwrap();
    // The newest snapshot is whole: the damaged reserve is not read, and nothing is missing.
    let out = env.duet(["list", "--json"]).ok();
    assert!(out.warnings().is_empty(), "{}", out.stderr);
    assert_eq!(out.json().as_array().unwrap().len(), 60);
    let name = reserve[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let doctor = env.duet(["doctor"]).run();
    assert_eq!(doctor.code(), Some(1));
    assert!(doctor.stdout.contains(&name), "{}", doctor.stdout);
    // The next compaction lets it go.
    for n in 61..=90 {
        let _ = env.write(&format!("entry {n}"));
    }
    assert!(!reserve[0].exists());
    assert_eq!(env.bodies(&[]).len(), 90);
}

#[test]
fn an_empty_chunk_is_reported_by_name_and_the_rest_loads() {
    let env = TestEnv::initialized(DUET);
    write_new_file(&env, "first");
    let last = write_new_file(&env, "second");
    std::fs::File::create(&last).unwrap(); // emptied, as a crash of another program might
    std::fs::remove_dir_all(env.home().join("cache")).unwrap();
    let out = env.duet(["list", "--json"]).ok();
    let name = last.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        out.warnings().iter().any(|w| w.contains(&name)),
        "{}",
        out.stderr
    );
    assert_eq!(env.bodies(&[]), vec!["first"]);
    let doctor = env.duet(["doctor"]).run();
    assert_eq!(doctor.code(), Some(1));
    assert!(
        doctor.stdout.contains(&name) && doctor.stdout.contains("it is empty"),
        "{}",
        doctor.stdout
    );
}
