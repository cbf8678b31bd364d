//! A hostile partner: a journal that arrived holding what a modified client can put in it.
//! The journal is written through the library, as a sync would have stored it, then read by
//! the real binary.

use duet_core::item::Ritual;
use duet_core::{Item, ItemId, JournalId, Kind, Volume, VolumeId};
use duet_store::volumes::{FileKind, JournalFiles};
use duet_store::{Home, Partner};
use duet_tests::TestEnv;

const DUET: &str = env!("CARGO_BIN_EXE_duet");
const THEIRS: JournalId = JournalId([0x42; 16]);
/// 2026-11-25T12:00:00Z
const NOON: i64 = 1_764_072_000_000;

fn item(n: u8, kind: Kind, body: &str) -> Item {
    Item {
        id: ItemId([n; 8]),
        kind,
        created_at: NOON + i64::from(n),
        edited_at: None,
        body: body.to_owned(),
        tags: vec![],
        starred: false,
        deleted: false,
        ritual: Ritual::default(),
    }
}

/// A partner record, as pairing would have written it.
fn partner(name: &str, journal: JournalId) -> Partner {
    Partner {
        name: name.into(),
        endpoint_id: "ab".repeat(32),
        journal,
        addrs: vec![],
        relay_url: None,
        paired_at: NOON,
        paired_epoch: None,
        last_sync: None,
        unpaired: false,
        person: None,
    }
}

/// A home paired (on paper) with a partner whose journal holds `items`.
fn with_partner_journal(items: &[Item]) -> TestEnv {
    let env = TestEnv::initialized(DUET);
    let home = Home::new(env.home());
    home.pin_partner(&partner("Sam", THEIRS)).unwrap();
    let mut vol = Volume::create([7; 16], THEIRS, VolumeId([5; 8]), NOON);
    for item in items {
        vol.add(item).unwrap();
    }
    JournalFiles::new(home.journal_dir(THEIRS), THEIRS)
        .write(vol.id(), FileKind::Snapshot, &vol.save())
        .unwrap();
    env
}

#[test]
fn escape_sequences_from_the_partner_are_shown_not_obeyed() {
    let nasty = "clear\x1b[2J\x1b]0;title\x07 back\rover \u{9b}31m \u{202e}desrever";
    let env = with_partner_journal(&[item(1, Kind::Entry, nasty)]);
    let id = ItemId([1; 8]).to_string();
    let list = env.duet(["list"]).ok().stdout;
    assert_eq!(list.lines().count(), 1, "one item, one line:\n{list}");
    assert!(
        list.contains("clear␛[2J␛]0;title␇ back␍over <U+009B>31m <U+202E>desrever"),
        "{list}"
    );
    for args in [
        vec!["show", id.as_str()],
        vec!["export", "--format", "markdown"],
    ] {
        let out = env.duet(&args).ok().stdout;
        assert!(
            !out.contains('\x1b') && !out.contains('\r') && !out.contains('\u{9b}'),
            "{args:?} printed a raw control: {out:?}"
        );
        assert!(
            !out.contains('\u{202e}'),
            "{args:?} printed a bidi override"
        );
    }
    // JSON keeps the exact text.
    let json = env.list_json(&[]);
    assert_eq!(json[0]["body"], nasty);
}

#[test]
fn items_no_write_of_mine_could_make_are_skipped_with_one_warning() {
    let mut huge_time = item(2, Kind::Entry, "from the end of time");
    huge_time.created_at = i64::MAX;
    let mut bad_tag = item(3, Kind::Entry, "bad tag");
    bad_tag.tags = vec!["Two Words\x1b".into()];
    let unanswered = item(4, Kind::Answer, "an answer to nothing");
    let env = with_partner_journal(&[
        item(1, Kind::Entry, "a fine entry"),
        huge_time,
        bad_tag,
        unanswered,
        item(5, Kind::Other("virus".into()), "unknown kind"),
        item(6, Kind::Entry, &"x".repeat(duet_core::BODY_LIMIT + 1)),
    ]);
    let out = env.duet(["list", "--json"]).ok();
    let listed = out.json();
    let bodies: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, vec!["a fine entry"]);
    let warnings = out.warnings();
    assert_eq!(warnings.len(), 1, "{}", out.stderr);
    assert!(
        warnings[0].starts_with("duet: warning: skipped 5 item(s) of volume ")
            && warnings[0].contains(&THEIRS.to_string()),
        "{}",
        warnings[0]
    );
    // Every command still works, and the warning is not repeated.
    for args in [
        vec!["week"],
        vec!["pulse"],
        vec!["memories"],
        vec!["question"],
        vec!["status"],
    ] {
        let out = env.duet(&args).ok();
        assert!(out.warnings().is_empty(), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn forgetting_a_partner_never_touches_my_journal() {
    let env = TestEnv::initialized(DUET);
    let _ = env.write("mine, and staying");
    let home = Home::new(env.home());
    let config = home.config().unwrap();
    // A record that names my own journal (a partner who announced it, or a tampered file).
    home.set_partner(&partner("Eve", config.journal)).unwrap();
    let _ = env.duet(["unpair", "--forget"]).ok();
    assert_eq!(env.bodies(&[]), vec!["mine, and staying"]);
}

#[test]
fn a_volume_from_a_newer_duet_is_refused_by_name_and_the_rest_loads() {
    use automerge::transaction::Transactable as _;
    let env = TestEnv::initialized(DUET);
    let _ = env.write("written by this duet");
    let home = Home::new(env.home());
    let journal = home.config().unwrap().journal;
    let mut vol = Volume::create([7; 16], journal, VolumeId([6; 8]), NOON);
    vol.add(&item(1, Kind::Entry, "from the future")).unwrap();
    vol.doc_mut().put(automerge::ROOT, "duet", 2_i64).unwrap();
    JournalFiles::new(home.journal_dir(journal), journal)
        .write(vol.id(), FileKind::Snapshot, &vol.save())
        .unwrap();
    let out = env.duet(["list", "--json"]).ok();
    assert_eq!(env.bodies(&[]), vec!["written by this duet"]);
    let warnings = out.warnings();
    assert_eq!(warnings.len(), 1, "{}", out.stderr);
    assert!(
        warnings[0].contains(&VolumeId([6; 8]).to_string())
            && warnings[0].contains("written by a newer duet (format 2); upgrade duet to read it"),
        "{}",
        warnings[0]
    );
}

/// An Automerge document chunk whose one change column inflates to `inflated` zero bytes: a
/// few hundred kilobytes on disk or on the wire per hundred megabytes in memory.
fn inflation_bomb(inflated: usize) -> Vec<u8> {
    use std::io::Write as _;
    fn leb(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![0u8; 1 << 20];
    for _ in 0..inflated >> 20 {
        enc.write_all(&block).unwrap();
    }
    let data = enc.finish().unwrap();
    let mut body = vec![0, 0, 1]; // no actors, no heads, one change column:
    leb(&mut body, (1 << 4) | 0b1000); // id 1, deflated
    leb(&mut body, data.len() as u64);
    body.push(0); // no op columns
    body.extend(&data);
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 0];
    leb(&mut chunk, body.len() as u64);
    chunk.extend(&body);
    chunk
}

#[test]
fn a_snapshot_that_would_inflate_a_thousandfold_is_skipped_within_twice_the_bound() {
    let env = with_partner_journal(&[item(1, Kind::Entry, "a fine entry")]);
    let home = Home::new(env.home());
    let bomb = inflation_bomb(1 << 30);
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    let file = JournalFiles::new(home.journal_dir(THEIRS), THEIRS)
        .write(VolumeId([8; 8]), FileKind::Snapshot, &bomb)
        .unwrap();
    // Twice duet's bound (256 MiB) of address space: Automerge inflating the column would
    // abort the process; the walk that measures it first needs almost nothing.
    let limit_kib = 2 * duet_core::inflate::MAX_INFLATED / 1024;
    let out = env
        .duet(["list", "--json"])
        .address_space_kib(limit_kib)
        .ok();
    let stderr = &out.stderr;
    assert_eq!(out.json().as_array().unwrap().len(), 1);
    assert!(
        stderr.contains(&file.name)
            && stderr.contains("it would expand to more than 256 MiB in memory, over duet's bound"),
        "{stderr}"
    );
    // The doctor names it too, and says why.
    let doctor = env.duet(["doctor"]).address_space_kib(limit_kib).run();
    assert_eq!(doctor.code(), Some(1), "{}", doctor.stderr);
    assert!(
        doctor.stdout.contains(&file.name) && doctor.stdout.contains("over duet's bound"),
        "{}",
        doctor.stdout
    );
}

#[test]
fn a_volume_holding_more_items_than_any_writer_makes_is_read_up_to_the_bound() {
    let many: Vec<Item> = (0..duet_core::MAX_ITEMS_PER_VOLUME + 50)
        .map(|n| {
            let mut it = item(0, Kind::Entry, &format!("entry {n}"));
            it.id = ItemId((n as u64).to_be_bytes());
            it.created_at = NOON + n as i64;
            it
        })
        .collect();
    let env = with_partner_journal(&many);
    let out = env
        .duet(["list", "--json", "--author", "partner", "-n", "100000"])
        .ok();
    assert_eq!(
        out.json().as_array().unwrap().len(),
        duet_core::MAX_ITEMS_PER_VOLUME
    );
    let warnings = out.warnings();
    assert_eq!(warnings.len(), 1, "{}", out.stderr);
    assert!(
        warnings[0].contains("holds more than 1024 items")
            && warnings[0].contains(&THEIRS.to_string()),
        "{}",
        warnings[0]
    );
}
