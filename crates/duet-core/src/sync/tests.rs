//! Sessions between in-memory replicas, over a channel that drops,
//! duplicates and reorders messages.

use std::collections::BTreeMap;

use automerge::{AutoCommit, ChangeHash};
use proptest::prelude::*;

use super::mem::MemReplica as Mem;
use super::*;
use crate::id::{ItemId, JournalId, VolumeId};
use crate::item::{Item, Kind};
use crate::rng::SeededRng;
use crate::volume::{VOLUME_CAPACITY, Volume};

/// Pass a batch through the wire encoding and, with chaos, drop, duplicate
/// and reorder its messages.
fn transmit(batch: Batch, chaos: &mut Option<SeededRng>) -> Batch {
    let mut batch = decode_batch(&encode_batch(&batch)).unwrap();
    if let Some(rng) = chaos {
        let mut msgs = Vec::new();
        for m in batch.0 {
            if rng.chance(20) {
                continue;
            }
            if rng.chance(15) {
                msgs.push(m.clone());
            }
            msgs.push(m);
        }
        if msgs.len() > 1 && rng.chance(30) {
            let i = rng.below(msgs.len() as u64) as usize;
            let j = rng.below(msgs.len() as u64) as usize;
            msgs.swap(i, j);
        }
        batch = Batch(msgs);
    }
    batch
}

struct Peer {
    mem: Mem,
    person: u8,
    states: BTreeMap<u8, PeerState>,
}

const JA: JournalId = JournalId([1; 16]);
const JB: JournalId = JournalId([2; 16]);

fn owner(journal: JournalId) -> u8 {
    if journal == JA { 1 } else { 2 }
}

fn shared(me: &Peer, other: &Peer) -> Vec<Shared> {
    [JA, JB]
        .into_iter()
        .map(|journal| Shared {
            journal,
            // A peer may change a journal if it belongs to the journal's owner,
            // or if both devices belong to one person.
            accept_changes: owner(journal) == other.person || me.person == other.person,
        })
        .collect()
}

/// One lock-step session; returns the number of bytes that crossed. Each side works on its
/// own `Docs`, filled on demand from its replica (as a store on disk would be), and the replica
/// takes back what changed at the end.
fn session(a: &mut Peer, a_id: u8, b: &mut Peer, b_id: u8, chaos: Option<SeededRng>) -> usize {
    let sa = SyncSession::new(shared(a, b), a.states.remove(&b_id).unwrap_or_default());
    let sb = SyncSession::new(shared(b, a), b.states.remove(&a_id).unwrap_or_default());
    let (state_a, state_b, bytes) = run(sa, &mut a.mem, sb, &mut b.mem, chaos);
    a.states.insert(b_id, state_a);
    b.states.insert(a_id, state_b);
    bytes
}

/// Runs two prepared sessions against each other's replicas to the end; returns what each
/// side remembers of the other and the bytes that crossed.
fn run(
    mut sa: SyncSession,
    a: &mut Mem,
    mut sb: SyncSession,
    b: &mut Mem,
    mut chaos: Option<SeededRng>,
) -> (PeerState, PeerState, usize) {
    // As the store's driver holds them: volumes that arrive whole and covered rest as bytes.
    let (mut da, mut db) = (Docs::default().resting(), Docs::default().resting());
    let mut bytes = 0;
    prepare(&sa, None, &mut da, a);
    prepare(&sb, None, &mut db, b);
    let mut outgoing = sa.start(&mut da);
    let mut first = true;
    for _round in 0..200 {
        bytes += encode_batch(&outgoing).len();
        let incoming = transmit(outgoing.clone(), &mut chaos);
        prepare(&sb, Some(&incoming), &mut db, b);
        let reply = if first {
            first = false;
            sb.answer_hello(&mut db, incoming).unwrap()
        } else {
            sb.handle(&mut db, incoming).unwrap()
        };
        bytes += encode_batch(&reply).len();
        if outgoing.0.is_empty() && reply.0.is_empty() {
            break;
        }
        let back = transmit(reply, &mut chaos);
        prepare(&sa, Some(&back), &mut da, a);
        outgoing = sa.handle(&mut da, back).unwrap();
        if sa.is_over() {
            assert!(sb.is_over(), "only the listener ends a session level");
            assert!(
                outgoing.0.is_empty(),
                "a level ending is answered by nothing"
            );
            break;
        }
    }
    let (state_a, state_b) = (sa.finish(&mut da), sb.finish(&mut db));
    a.absorb(da);
    b.absorb(db);
    (state_a, state_b, bytes)
}

fn peer(person: u8) -> Peer {
    Peer {
        mem: Mem::default(),
        person,
        states: BTreeMap::new(),
    }
}

#[test]
fn two_partners_exchange_journals() {
    let (mut a, mut b) = (peer(1), peer(2));
    for n in 0..300 {
        a.mem.write(JA, n, 1);
    }
    for n in 1000..1010 {
        b.mem.write(JB, n, 2);
    }
    session(&mut a, 0, &mut b, 1, None);
    assert_eq!(a.mem.items(JA), b.mem.items(JA));
    assert_eq!(a.mem.items(JB), b.mem.items(JB));
    assert_eq!(b.mem.items(JA).len(), 300);

    // Nothing new: only digests cross.
    let idle = session(&mut a, 0, &mut b, 1, None);
    assert!(idle < 300, "an idle sync sent {idle} bytes");

    // One new entry: only its volume is discussed, with saved state.
    a.mem.write(JA, 5000, 1);
    let one = session(&mut a, 0, &mut b, 1, None);
    assert_eq!(b.mem.items(JA).len(), 301);
    assert!(one < 2000, "one new entry cost {one} bytes");
}

#[test]
fn a_first_sync_costs_the_snapshots_whichever_side_dials() {
    let filled = || {
        let mut a = peer(1);
        for n in 0..600 {
            a.mem.write(JA, n, 1);
        }
        a
    };
    // The owner dials: its full inventory's answer names what the receiver lacks.
    let (mut a, mut b) = (filled(), peer(2));
    let owner_dials = session(&mut a, 0, &mut b, 1, None);
    assert_eq!(b.mem.items(JA).len(), 600);
    // The receiver dials, asking for every volume it lacks with an Automerge message.
    let (mut a, mut b) = (filled(), peer(2));
    let receiver_dials = session(&mut b, 1, &mut a, 0, None);
    assert_eq!(b.mem.items(JA).len(), 600);
    assert_eq!(heads_of(&mut a.mem, JA), heads_of(&mut b.mem, JA));
    assert!(
        receiver_dials < owner_dials * 11 / 10,
        "receiver dialing: {receiver_dials} bytes, owner dialing: {owner_dials}"
    );
    // And nothing is left to say afterwards.
    let idle = session(&mut b, 1, &mut a, 0, None);
    assert!(idle < 300, "an idle sync after it sent {idle} bytes");
}

/// A volume of A's journal that A never wrote.
fn forged_volume(id: VolumeId) -> Volume {
    let mut v = Volume::create([9; 16], JA, id, 0);
    v.add(&Item {
        id: ItemId([6; 8]),
        kind: Kind::Entry,
        created_at: 0,
        edited_at: None,
        body: "forged".into(),
        tags: vec![],
        starred: false,
        deleted: false,
        ritual: Default::default(),
    })
    .unwrap();
    v
}

#[test]
fn a_partner_cannot_change_my_journal() {
    let (mut a, mut b) = (peer(1), peer(2));
    a.mem.write(JA, 1, 1);
    session(&mut a, 0, &mut b, 1, None);
    // B forges an item into its replica of A's journal and a whole new volume.
    b.mem.write(JA, 666, 9);
    b.mem.insert(
        JA,
        VolumeId([9; 8]),
        forged_volume(VolumeId([9; 8])).into_doc(),
    );
    session(&mut a, 0, &mut b, 1, None);
    session(&mut b, 1, &mut a, 0, None);
    let ids: Vec<ItemId> = a.mem.items(JA).iter().map(|i| i.id).collect();
    assert_eq!(ids, vec![ItemId(1u64.to_be_bytes())]);
}

#[test]
fn lost_peer_state_still_converges() {
    let (mut a, mut b) = (peer(1), peer(2));
    for n in 0..20 {
        a.mem.write(JA, n, 1);
    }
    session(&mut a, 0, &mut b, 1, None);
    a.mem.write(JA, 99, 1);
    // B forgets everything it knew about A (a restored backup of its state).
    b.states.clear();
    session(&mut b, 1, &mut a, 0, None);
    assert_eq!(a.mem.items(JA), b.mem.items(JA));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Three devices (A; B and C belong to one person), random writes and
    /// sessions over a lossy channel, then a healed network: everyone ends
    /// with every item its owner wrote, and nobody else's writes leak in.
    #[test]
    fn replicas_converge_despite_chaos(
        steps in proptest::collection::vec((0u8..3, 0u8..3, 0u8..4, any::<u64>()), 1..40)
    ) {
        let mut peers = [peer(1), peer(2), peer(2)];
        let mut n = 0u64;
        let mut written: BTreeMap<JournalId, usize> = BTreeMap::new();
        for (x, y, what, seed) in steps {
            let (x, y) = (x as usize, y as usize);
            match what {
                0 | 1 => {
                    let journal = if peers[x].person == 1 { JA } else { JB };
                    for _ in 0..(seed % 5 + 1) {
                        n += 1;
                        peers[x].mem.write(journal, n, x as u8 + 1);
                        *written.entry(journal).or_default() += 1;
                    }
                }
                _ if x != y => {
                    let (lo, hi) = (x.min(y), x.max(y));
                    let (left, right) = peers.split_at_mut(hi);
                    let chaos = Some(SeededRng::new(seed));
                    session(&mut left[lo], lo as u8, &mut right[0], hi as u8, chaos);
                }
                _ => {}
            }
        }
        // Heal: clean sessions between every pair, twice around.
        for _ in 0..2 {
            for (x, y) in [(0, 1), (1, 2), (0, 2)] {
                let (left, right) = peers.split_at_mut(y);
                session(&mut left[x], x as u8, &mut right[0], y as u8, None);
            }
        }
        for journal in [JA, JB] {
            let want = written.get(&journal).copied().unwrap_or(0);
            for p in &peers {
                prop_assert_eq!(p.mem.items(journal).len(), want);
            }
            prop_assert_eq!(peers[0].mem.items(journal), peers[1].mem.items(journal));
            prop_assert_eq!(peers[1].mem.items(journal), peers[2].mem.items(journal));
        }
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_batch(&bytes);
        let _ = decode_peer_state(&bytes);
    }
}

#[test]
fn state_round_trips() {
    let (mut a, mut b) = (peer(1), peer(2));
    a.mem.write(JA, 1, 1);
    session(&mut a, 0, &mut b, 1, None);
    let state = a.states[&1].clone();
    assert_eq!(
        decode_peer_state(&encode_peer_state(&state)).unwrap(),
        state
    );
    assert!(!state.journals[&JA].agreed.is_empty());
}

/// `batch` as a driver receives it over the network: its messages in parts of one to `most`
/// (frames), each handed to a [`Preloader`] as it comes.
fn received_in_parts(docs: &Docs, session: &SyncSession, batch: Batch, most: usize) -> Received {
    let mut preloader = docs.preloader();
    let mut msgs = batch.0.into_iter().peekable();
    let mut size = 1;
    while msgs.peek().is_some() {
        let part: Vec<Msg> = msgs.by_ref().take(size).collect();
        preloader.push(docs, |j| session.accepts_changes(j), part);
        size = size % most + 1;
    }
    preloader.finish()
}

#[test]
fn a_batch_handed_over_in_parts_comes_back_whole_and_in_order_with_its_snapshots_loaded() {
    let (a, b) = (peer(1), peer(2));
    // Sam (b) receives whole volumes of Alex's journal (JA), between other messages; one of
    // them is not a volume at all, one is of a journal Sam takes no changes to from Alex.
    let session = SyncSession::new(shared(&b, &a), PeerState::default());
    let snapshot = |journal, n: u8| Msg::Snapshot {
        journal,
        volume: VolumeId([n; 8]),
        document: forged_volume(VolumeId([n; 8])).save(),
    };
    let batch = Batch(vec![
        Msg::DevicesDigest { digest: [3; 32] },
        snapshot(JA, 1),
        Msg::Level,
        snapshot(JA, 2),
        Msg::Snapshot {
            journal: JA,
            volume: VolumeId([3; 8]),
            document: b"not automerge".to_vec(),
        },
        snapshot(JB, 4),
        snapshot(JA, 5),
    ]);
    let docs = Docs::default().resting();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for most in [1, 2, 7] {
        let received = received_in_parts(&docs, &session, batch.clone(), most);
        assert_eq!(received.batch(), &batch, "parts of at most {most}");
        let loaded: Vec<bool> = received.preloaded.iter().map(Option::is_some).collect();
        let expected = [false, true, false, true, false, false, true];
        // On one core nothing loads ahead: the session loads each in turn, as it did.
        let expected = expected.map(|e| e && cores >= 2);
        assert_eq!(loaded, expected, "parts of at most {most}");
    }
    // One snapshot alone is left to the session (a thread would cost more than it saves).
    let one = Batch(vec![snapshot(JA, 1), Msg::Level]);
    let received = received_in_parts(&docs, &session, one.clone(), 1);
    assert_eq!(received.batch(), &one);
    assert!(received.preloaded.iter().all(Option::is_none));
}

#[test]
fn a_batch_taken_as_received_in_parts_is_answered_as_when_taken_whole() {
    // Alex's journal of three volumes reaches Sam whole, once through `handle` (loaded ahead
    // all at once) and once through a Preloader fed frame by frame: same answer, same items.
    let mut a = peer(1);
    for n in 1..=(2 * VOLUME_CAPACITY as u64 + 5) {
        a.mem.write(JA, n, 1);
    }
    let mut outcomes = Vec::new();
    let mut loaded_ahead = 0;
    for in_parts in [false, true] {
        let mut b = peer(2);
        let mut sa = SyncSession::new(shared(&a, &b), PeerState::default());
        let mut sb = SyncSession::new(shared(&b, &a), PeerState::default());
        let (mut da, mut db) = (Docs::default().resting(), Docs::default().resting());
        prepare(&sa, None, &mut da, &mut a.mem);
        prepare(&sb, None, &mut db, &mut b.mem);
        let mut outgoing = sa.start(&mut da);
        let mut answers = Vec::new();
        for round in 0..20 {
            let incoming = decode_batch(&encode_batch(&outgoing)).unwrap();
            prepare(&sb, Some(&incoming), &mut db, &mut b.mem);
            let reply = if round == 0 {
                sb.answer_hello(&mut db, incoming).unwrap()
            } else if in_parts {
                let received = received_in_parts(&db, &sb, incoming, 2);
                loaded_ahead += received.preloaded.iter().flatten().count();
                sb.handle_received(&mut db, received).unwrap()
            } else {
                sb.handle(&mut db, incoming).unwrap()
            };
            answers.push(encode_batch(&reply));
            if outgoing.0.is_empty() && reply.0.is_empty() {
                break;
            }
            prepare(&sa, Some(&reply), &mut da, &mut a.mem);
            outgoing = sa.handle(&mut da, reply).unwrap();
            if sa.is_over() {
                break;
            }
        }
        sb.finish(&mut db);
        b.mem.absorb(db);
        outcomes.push((answers, b.mem.items(JA)));
    }
    assert_eq!(outcomes[1].1.len(), 2 * VOLUME_CAPACITY + 5);
    if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
        assert_eq!(loaded_ahead, 3, "every volume loaded ahead");
    }
    assert_eq!(outcomes[0], outcomes[1]);
}

#[test]
fn a_forged_snapshot_of_my_journal_is_refused() {
    let (mut a, b) = (peer(1), peer(2));
    a.mem.write(JA, 1, 1);
    let mut forged = forged_volume(VolumeId([7; 8]));
    let mut session = SyncSession::new(shared(&a, &b), PeerState::default());
    let batch = Batch(vec![Msg::Snapshot {
        journal: JA,
        volume: VolumeId([7; 8]),
        document: forged.save(),
    }]);
    session.handle(&mut a.mem, batch).unwrap();
    assert_eq!(session.rejected(), 1);
    assert_eq!(a.mem.items(JA).len(), 1);
}

#[test]
fn compressed_bombs_from_the_partner_are_refused_before_anything_inflates_them() {
    use crate::inflate::testing::{bomb, chunk_of, deflate_zeros};
    let (a, mut b) = (peer(1), peer(2));
    // Sam (b) receives, for Alex's journal (JA, which Alex may change), a snapshot that
    // inflates to 300 MiB from a few hundred kilobytes.
    let mut session = SyncSession::new(shared(&b, &a), PeerState::default());
    let snapshot = Batch(vec![Msg::Snapshot {
        journal: JA,
        volume: VolumeId([7; 8]),
        document: bomb(300 << 20),
    }]);
    session.handle(&mut b.mem, snapshot).unwrap();
    assert_eq!(session.rejected(), 1);
    assert!(b.mem.items(JA).is_empty());
    // And a sync message whose one change is a compressed change chunk of the same size.
    let mut message = message_with_bloom(&[]);
    message.changes = vec![chunk_of(2, &deflate_zeros(300 << 20))].into();
    let volume = Batch(vec![Msg::Volume {
        journal: JA,
        volume: VolumeId([7; 8]),
        message: message.encode(),
    }]);
    let err = session.handle(&mut b.mem, volume).unwrap_err();
    assert!(
        err.to_string().contains("expand past duet's bound"),
        "{err}"
    );
    assert!(b.mem.items(JA).is_empty());
}

/// A message for one of my volumes whose "have" carries `bloom` (raw encoded bytes).
fn message_with_bloom(bloom: &[u8]) -> automerge::sync::Message {
    automerge::sync::Message {
        heads: vec![],
        need: vec![],
        have: vec![automerge::sync::Have {
            last_sync: vec![],
            bloom: automerge::sync::BloomFilter::try_from(bloom).expect("automerge parses it"),
        }],
        changes: Vec::<Vec<u8>>::new().into(),
        flags: None,
        version: automerge::sync::MessageVersion::V1,
    }
}

fn doc_with_an_item() -> AutoCommit {
    let mut vol = Volume::create([1; 16], JournalId([2; 16]), VolumeId([3; 8]), 1);
    vol.add(&Item {
        id: ItemId([4; 8]),
        kind: Kind::Entry,
        created_at: 1,
        edited_at: None,
        body: "mine".into(),
        tags: vec![],
        starred: false,
        deleted: false,
        ritual: Default::default(),
    })
    .unwrap();
    vol.into_doc()
}

#[test]
fn a_bloom_filter_with_no_bits_would_panic_automerge_and_is_replaced() {
    use automerge::sync::SyncDoc;
    // One entry, zero bits per entry, seven probes: automerge divides by zero on it.
    let poisoned = message_with_bloom(&[1, 0, 7]);
    let raw = std::panic::catch_unwind(|| {
        let mut doc = doc_with_an_item();
        let mut state = automerge::sync::State::new();
        let _ = doc
            .sync()
            .receive_sync_message(&mut state, poisoned.clone());
        doc.sync().generate_sync_message(&mut state)
    });
    assert!(
        raw.is_err(),
        "automerge 0.12 panics on this message when given it as is"
    );

    for writable in [false, true] {
        let checked = checked_message(poisoned.clone(), writable).unwrap();
        let mut doc = doc_with_an_item();
        let mut state = automerge::sync::State::new();
        doc.sync()
            .receive_sync_message(&mut state, checked)
            .unwrap();
        let reply = doc.sync().generate_sync_message(&mut state);
        assert!(reply.is_some(), "the peer still gets what it lacks");
    }
}

#[test]
fn oversized_bloom_parameters_and_counts_are_refused_before_automerge() {
    // Four billion probes on one byte of bits: automerge would reserve 16 GiB per hash.
    let huge_probes = [8, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0];
    let checked = checked_message(message_with_bloom(&huge_probes), false).unwrap();
    assert_eq!(
        checked.have[0].bloom,
        automerge::sync::BloomFilter::default()
    );
    // A sane filter, as automerge writes it, is kept.
    let sane = automerge::sync::BloomFilter::from_hashes([ChangeHash([9; 32])].iter());
    let kept = checked_message(message_with_bloom(&sane.to_bytes()), false).unwrap();
    assert_eq!(kept.have[0].bloom, sane);
    // Counts past any honest message end the exchange.
    let mut flood = message_with_bloom(&[]);
    flood.need = vec![ChangeHash([1; 32]); MAX_MESSAGE_HASHES + 1];
    assert!(checked_message(flood, true).is_err());
    // Changes and flags for a read-only journal never reach automerge.
    let mut sneaky = message_with_bloom(&[]);
    sneaky.changes = vec![vec![1, 2, 3]].into();
    let mut reset = automerge::sync::MessageFlags::new();
    reset.set(automerge::sync::MessageFlags::SYNC_RESET);
    sneaky.flags = Some(reset);
    let checked = checked_message(sneaky.clone(), false).unwrap();
    assert!(checked.changes.is_empty() && checked.flags.is_none());
    assert!(!checked_message(sneaky, true).unwrap().changes.is_empty());
}

#[test]
fn volumes_of_my_journal_that_only_the_partner_names_are_not_remembered() {
    let (mut a, mut b) = (peer(1), peer(2));
    a.mem.write(JA, 1, 1);
    session(&mut a, 0, &mut b, 1, None);
    // B claims a thousand volumes of A's journal that A never made.
    let fake: Vec<(VolumeId, HeadsDigest)> = (0..1000u32)
        .map(|n| {
            let mut id = [0u8; 8];
            id[..4].copy_from_slice(&n.to_be_bytes());
            (VolumeId(id), [7; 16])
        })
        .collect();
    let mut sa = SyncSession::new(shared(&a, &b), a.states.remove(&1).unwrap_or_default());
    let _ = sa.start(&mut a.mem);
    let claim = Batch(vec![Msg::Inventory {
        journal: JA,
        full: true,
        volumes: fake.clone(),
    }]);
    let reply = sa.handle(&mut a.mem, claim).unwrap();
    assert!(
        reply.0.iter().all(
            |m| !matches!(m, Msg::Volume { volume, .. } if fake.iter().any(|(v, _)| v == volume))
        ),
        "A does not start exchanges about volumes it never had"
    );
    let state = sa.finish(&mut a.mem);
    assert!(
        encode_peer_state(&state).len() < 4096,
        "peer state stays small"
    );

    // More volumes than any journal may have: refused outright.
    let mut sa = SyncSession::new(shared(&a, &b), PeerState::default());
    let _ = sa.start(&mut a.mem);
    let flood = Batch(vec![Msg::Inventory {
        journal: JB,
        full: true,
        volumes: vec![(VolumeId([1; 8]), [0; 16]); MAX_VOLUMES_PER_JOURNAL + 1],
    }]);
    assert!(sa.handle(&mut a.mem, flood).is_err());
}

/// A genuine Automerge sync message and snapshot about a volume of one item, as a peer sends.
fn genuine_bytes() -> (Vec<u8>, Vec<u8>) {
    use automerge::sync::SyncDoc;
    let mut doc = doc_with_an_item();
    let mut state = automerge::sync::State::new();
    let message = doc
        .sync()
        .generate_sync_message(&mut state)
        .unwrap()
        .encode();
    (message, doc.save())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Whatever a peer does to a real message or snapshot (bytes flipped, cut short, grown),
    /// for a journal it may change or one it may not, the session answers or refuses: it
    /// never panics.
    #[test]
    fn damaged_messages_never_panic_the_session(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in any::<usize>(),
        tail in proptest::collection::vec(any::<u8>(), 0..16),
        snapshot in any::<bool>(),
    ) {
        let (message, document) = genuine_bytes();
        let mut bytes = if snapshot { document } else { message };
        for (at, x) in flips {
            let n = bytes.len();
            bytes[at % n] ^= x;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        bytes.extend(tail);
        let (mut a, b) = (peer(1), peer(2));
        a.mem.write(JA, 1, 1);
        for journal in [JA, JB] {
            let mut session = SyncSession::new(shared(&a, &b), PeerState::default());
            let _ = session.start(&mut a.mem);
            let volume = VolumeId([3; 8]);
            let msg = if snapshot {
                Msg::Snapshot { journal, volume, document: bytes.clone() }
            } else {
                Msg::Volume { journal, volume, message: bytes.clone() }
            };
            let _ = session.handle(&mut a.mem, Batch(vec![msg]));
        }
    }
}

/// Runs a lock-step session like `session`, returning every batch `b` sent.
fn recorded_session(a: &mut Peer, a_id: u8, b: &mut Peer, b_id: u8) -> Vec<Batch> {
    let mut sa = SyncSession::new(shared(a, b), a.states.remove(&b_id).unwrap_or_default());
    let mut sb = SyncSession::new(shared(b, a), b.states.remove(&a_id).unwrap_or_default());
    let mut sent_by_b = Vec::new();
    let mut outgoing = sa.start(&mut a.mem);
    let mut first = true;
    for _ in 0..200 {
        let mut reply = sb.handle(&mut b.mem, outgoing.clone()).unwrap();
        if first {
            let mut hello = sb.start(&mut b.mem);
            hello.0.extend(reply.0);
            reply = hello;
            first = false;
        }
        sent_by_b.push(reply.clone());
        if outgoing.0.is_empty() && reply.0.is_empty() {
            break;
        }
        outgoing = sa.handle(&mut a.mem, reply).unwrap();
    }
    a.states.insert(b_id, sa.finish(&mut a.mem));
    b.states.insert(a_id, sb.finish(&mut b.mem));
    sent_by_b
}

/// The heads of every volume of a journal: what "byte-identical" means in memory.
fn heads_of(mem: &mut Mem, journal: JournalId) -> BTreeMap<VolumeId, Vec<ChangeHash>> {
    mem.inventory(journal)
}

#[test]
fn a_partner_replaying_an_old_session_later_changes_nothing_of_mine() {
    let (mut a, mut b) = (peer(1), peer(2));
    for n in 0..20 {
        a.mem.write(JA, n, 1);
        b.mem.write(JB, 1000 + n, 2);
    }
    let recorded = recorded_session(&mut a, 0, &mut b, 1);
    // Alex writes on; Sam's client replays what it said last time, in a new session that
    // starts from the state Alex saved, and again from no state at all.
    for n in 20..25 {
        a.mem.write(JA, n, 1);
    }
    let mine = heads_of(&mut a.mem, JA);
    let theirs = b.mem.items(JB);
    for state in [a.states[&1].clone(), PeerState::default()] {
        let mut replay = SyncSession::new(shared(&a, &b), state);
        let _ = replay.start(&mut a.mem);
        for batch in recorded.iter().chain(recorded.iter().rev()) {
            let _ = replay.handle(&mut a.mem, batch.clone());
        }
        let _ = replay.finish(&mut a.mem);
        assert_eq!(heads_of(&mut a.mem, JA), mine, "my journal moved");
        assert_eq!(
            a.mem.items(JB),
            theirs,
            "their journal went back or forward"
        );
    }
    // The next genuine session still brings Sam what is new.
    session(&mut a, 0, &mut b, 1, None);
    assert_eq!(b.mem.items(JA), a.mem.items(JA));
    assert_eq!(b.mem.items(JA).len(), 25);
}

#[test]
fn changes_made_with_my_actor_by_someone_else_never_reach_my_journal() {
    use automerge::ReadDoc;
    use automerge::transaction::Transactable;
    let (mut a, mut b) = (peer(1), peer(2));
    a.mem.write(JA, 1, 1);
    session(&mut a, 0, &mut b, 1, None);
    let (volume, _) = a.mem.inventory(JA).into_iter().next().unwrap();
    let mine = heads_of(&mut a.mem, JA);
    // Sam's modified client edits its copy of Alex's volume as if it were Alex (same actor).
    let forged = b.mem.doc_mut(JA, volume).unwrap();
    forged.set_actor(automerge::ActorId::from([1u8; 16]));
    let items = forged.get(automerge::ROOT, "items").unwrap().unwrap().1;
    let item = forged
        .keys(&items)
        .next()
        .and_then(|k| forged.get(&items, k).unwrap())
        .unwrap()
        .1;
    forged.put(&item, "body", "words Alex never wrote").unwrap();
    forged.commit();
    let message = automerge::sync::Message {
        heads: forged.get_heads(),
        need: vec![],
        have: vec![],
        changes: vec![forged.get_last_local_change().unwrap().raw_bytes().to_vec()].into(),
        flags: None,
        version: automerge::sync::MessageVersion::V1,
    };
    let mut session = SyncSession::new(shared(&a, &b), PeerState::default());
    let _ = session.start(&mut a.mem);
    let batch = Batch(vec![
        Msg::Volume {
            journal: JA,
            volume,
            message: message.encode(),
        },
        // And the whole forged document as a snapshot.
        Msg::Snapshot {
            journal: JA,
            volume,
            document: b.mem.doc_mut(JA, volume).unwrap().save(),
        },
    ]);
    let _ = session.handle(&mut a.mem, batch);
    assert_eq!(session.rejected(), 2);
    assert_eq!(heads_of(&mut a.mem, JA), mine);
    assert_eq!(a.mem.items(JA)[0].body, "item 1");
}

#[test]
fn changes_whose_dependencies_never_arrive_change_nothing_and_the_next_sync_heals() {
    let (mut a, mut b) = (peer(1), peer(2));
    b.mem.write(JB, 1, 2);
    session(&mut a, 0, &mut b, 1, None);
    // Sam writes twice more; his client sends Alex only the last change, whose parent never
    // comes.
    b.mem.write(JB, 2, 2);
    b.mem.write(JB, 3, 2);
    let (volume, _) = b.mem.inventory(JB).into_iter().next().unwrap();
    let doc = b.mem.doc_mut(JB, volume).unwrap();
    let last = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
    let message = automerge::sync::Message {
        heads: doc.get_heads(),
        need: vec![],
        have: vec![],
        changes: vec![last].into(),
        flags: None,
        version: automerge::sync::MessageVersion::V1,
    }
    .encode();
    let before = a.mem.items(JB);
    let mut session = SyncSession::new(shared(&a, &b), PeerState::default());
    let _ = session.start(&mut a.mem);
    let _ = session.handle(
        &mut a.mem,
        Batch(vec![Msg::Volume {
            journal: JB,
            volume,
            message,
        }]),
    );
    let _ = session.finish(&mut a.mem);
    assert_eq!(
        a.mem.items(JB),
        before,
        "a change without its parent shows nothing"
    );
    session_heals(&mut a, &mut b);
}

fn session_heals(a: &mut Peer, b: &mut Peer) {
    session(a, 0, b, 1, None);
    assert_eq!(a.mem.items(JB), b.mem.items(JB));
    assert_eq!(a.mem.items(JB).len(), 3);
}

#[test]
fn a_device_list_revoking_the_peer_ends_the_session_before_any_journal_data() {
    use crate::authority::{DeviceList, PersonKey};
    let (mut a, mut b) = (peer(1), peer(2));
    b.mem.write(JB, 1, 2);
    let sam = PersonKey::from_seed([2; 32]);
    let device = [22; 32];
    let mut list = DeviceList::new(sam.id());
    list.add_cert(sam.certify(device, "laptop", 1)).unwrap();
    let before = list.clone();
    list.add_revocation(sam.revoke(device, 5)).unwrap();

    // Sam's device sends its list (revoking itself, as a stolen laptop's owner would have it
    // sent by any device) together with its journal, once the digests show the lists differ.
    let mut sb = SyncSession::new(shared(&b, &a), PeerState::default())
        .with_devices(vec![list.encode(), b"forged".to_vec()]);
    let mut sa = SyncSession::new(shared(&a, &b), PeerState::default()).with_peer(sam.id(), device);
    let lists_and_journal = lists_after_digests(&mut sa, &mut a.mem, &mut sb, &mut b.mem);
    let first_journal_data = lists_and_journal.0.iter().position(|m| {
        matches!(
            m,
            Msg::Volume { .. } | Msg::Snapshot { .. } | Msg::Inventory { .. }
        )
    });
    let last_list = lists_and_journal
        .0
        .iter()
        .rposition(|m| matches!(m, Msg::Devices { .. }));
    assert!(last_list.is_some() && first_journal_data.is_some_and(|d| d > last_list.unwrap()));
    assert_eq!(
        sa.handle(&mut a.mem, lists_and_journal),
        Err(SyncError::PeerRevoked)
    );
    assert_eq!(
        sa.heard_devices(),
        &[list.clone()],
        "the revocation is kept for the caller"
    );
    assert!(a.mem.items(JB).is_empty());

    // The list from before the revocation, replayed: accepted, and nothing is taken back by
    // the caller's merge (lists only grow).
    let mut sb =
        SyncSession::new(shared(&b, &a), PeerState::default()).with_devices(vec![before.encode()]);
    let mut sa = SyncSession::new(shared(&a, &b), PeerState::default()).with_peer(sam.id(), device);
    let lists = lists_after_digests(&mut sa, &mut a.mem, &mut sb, &mut b.mem);
    assert!(sa.handle(&mut a.mem, lists).is_ok());
    let mut known = list.clone();
    known.merge(&sa.heard_devices()[0]).unwrap();
    assert!(!known.admits(&device));
}

/// `sb` dials `sa`: its first batch (digests and hello), `sa`'s answer, and what `sb` sends
/// next, which holds its device lists when the two sides' lists differ.
fn lists_after_digests(
    sa: &mut SyncSession,
    a: &mut Mem,
    sb: &mut SyncSession,
    b: &mut Mem,
) -> Batch {
    let hello = sb.start(b);
    assert!(
        !hello.0.iter().any(|m| matches!(m, Msg::Devices { .. })),
        "lists wait for the digests"
    );
    let answer = sa.handle(a, hello).unwrap();
    let mut reply = sa.start(a);
    reply.0.extend(answer.0);
    sb.handle(b, reply).unwrap()
}

/// Every batch of a session `sa` dials `sb` for, in order, both ways.
fn every_batch(sa: &mut SyncSession, a: &mut Mem, sb: &mut SyncSession, b: &mut Mem) -> Vec<Batch> {
    let mut all = Vec::new();
    let mut outgoing = sa.start(a);
    for turn in 0..50 {
        all.push(outgoing.clone());
        let reply = if turn == 0 {
            sb.answer_hello(b, outgoing.clone()).unwrap()
        } else {
            sb.handle(b, outgoing.clone()).unwrap()
        };
        all.push(reply.clone());
        if outgoing.0.is_empty() && reply.0.is_empty() {
            break;
        }
        outgoing = sa.handle(a, reply).unwrap();
        if sa.is_over() {
            break;
        }
    }
    all
}

#[test]
fn nothing_changed_ends_at_the_listeners_first_answer_in_one_round_trip() {
    let (mut a, mut b) = (peer(1), peer(2));
    for n in 0..300 {
        a.mem.write(JA, n, 1);
    }
    b.mem.write(JB, 1000, 2);
    session(&mut a, 0, &mut b, 1, None);
    let lists = |seed: u8| vec![vec![seed; 40], vec![seed + 1; 40]];
    let level_pair = |a: &mut Peer, b: &mut Peer| {
        let sa = SyncSession::new(shared(a, b), a.states.get(&1).cloned().unwrap_or_default())
            .with_devices(lists(7));
        let sb = SyncSession::new(shared(b, a), b.states.get(&0).cloned().unwrap_or_default())
            .with_devices(lists(7));
        (sa, sb)
    };

    // Level: the dialer's hello, then the listener's `Level` alone; the dialer is done.
    let (mut sa, mut sb) = level_pair(&mut a, &mut b);
    let batches = every_batch(&mut sa, &mut a.mem, &mut sb, &mut b.mem);
    assert_eq!(batches.len(), 2, "one round trip: {batches:?}");
    assert_eq!(batches[1], Batch(vec![Msg::Level]));
    assert!(sa.is_over() && sb.is_over());
    assert_eq!(
        sb.closing(),
        batches[1],
        "the listener ends with the same answer"
    );
    // On the wire, with each batch's frame (length and flag): well under 250 bytes.
    let wire: usize = batches.iter().map(|b| encode_batch(b).len() + 5).sum();
    assert!(wire < 250, "nothing changed cost {wire} bytes");
    // The dialer remembers the agreement: the next change is discussed alone.
    let state = sa.finish(&mut a.mem);
    assert_eq!(state.journals[&JA].agreed.len(), a.mem.inventory(JA).len());

    // Not level: a journal differs, or the device lists do; the full conversation runs.
    a.mem.write(JA, 5000, 1);
    let (mut sa, mut sb) = level_pair(&mut a, &mut b);
    let batches = every_batch(&mut sa, &mut a.mem, &mut sb, &mut b.mem);
    let msgs = |batches: &[Batch]| batches.iter().flat_map(|b| b.0.clone()).collect::<Vec<_>>();
    assert!(!sa.is_over() && !msgs(&batches).contains(&Msg::Level));
    assert!(batches.len() > 2);
    let mut sa = SyncSession::new(shared(&a, &b), PeerState::default()).with_devices(lists(7));
    let mut sb = SyncSession::new(shared(&b, &a), PeerState::default()).with_devices(lists(9));
    let batches = every_batch(&mut sa, &mut a.mem, &mut sb, &mut b.mem);
    assert!(!sa.is_over() && !msgs(&batches).contains(&Msg::Level));
    let lists_sent = msgs(&batches)
        .iter()
        .filter(|m| matches!(m, Msg::Devices { .. }))
        .count();
    assert_eq!(lists_sent, 4, "each side sends its two lists");

    // Hints still travel with a level ending.
    let hint = ([5u8; 32], vec!["127.0.0.1:4000".parse().unwrap()]);
    let (mut sa, sb) = level_pair(&mut a, &mut b);
    let mut sb = sb.with_hints(vec![hint.clone()]);
    let batches = every_batch(&mut sa, &mut a.mem, &mut sb, &mut b.mem);
    assert_eq!(batches.len(), 2);
    assert_eq!(sa.heard_hints(), &[hint][..]);
}

#[test]
fn a_level_ending_out_of_turn_is_refused() {
    let (mut a, mut b) = (peer(1), peer(2));
    let level = Batch(vec![Msg::Level]);
    // To a listener, before or after its hello.
    let mut sb = SyncSession::new(shared(&b, &a), PeerState::default());
    assert!(sb.handle(&mut b.mem, level.clone()).is_err());
    let mut sb = SyncSession::new(shared(&b, &a), PeerState::default());
    let mut sa = SyncSession::new(shared(&a, &b), PeerState::default());
    a.mem.write(JA, 1, 1);
    let hello = sa.start(&mut a.mem);
    let _ = sb.answer_hello(&mut b.mem, hello).unwrap();
    assert!(!sb.is_over());
    assert!(sb.handle(&mut b.mem, level.clone()).is_err());
    // To a dialer that already heard the listener's hello.
    let mut sa = SyncSession::new(shared(&a, &b), PeerState::default());
    let mut sb = SyncSession::new(shared(&b, &a), PeerState::default());
    let hello = sa.start(&mut a.mem);
    let answer = sb.answer_hello(&mut b.mem, hello).unwrap();
    assert!(answer.0.iter().any(|m| matches!(m, Msg::Hello { .. })));
    let _ = sa.handle(&mut a.mem, answer).unwrap();
    assert!(sa.handle(&mut a.mem, level).is_err());
    assert!(!sa.is_over());
}

#[test]
fn device_lists_cross_only_when_the_two_sides_know_different_ones() {
    use crate::authority::{DeviceList, PersonKey};
    let (mut a, mut b) = (peer(1), peer(2));
    let list_of = |seed: u8, devices: &[u8]| {
        let person = PersonKey::from_seed([seed; 32]);
        let mut list = DeviceList::new(person.id());
        for (n, d) in devices.iter().enumerate() {
            list.add_cert(person.certify([*d; 32], "laptop", n as i64 + 1))
                .unwrap();
        }
        list.encode()
    };
    let (alex, sam, sam_newer) = (list_of(1, &[10]), list_of(2, &[20]), list_of(2, &[20, 21]));
    let lists_in = |batches: &[Batch]| {
        batches
            .iter()
            .flat_map(|b| &b.0)
            .filter(|m| matches!(m, Msg::Devices { .. }))
            .count()
    };

    // The same lists on both sides (each holds its own first): only the digests cross.
    let mut sa = SyncSession::new(shared(&a, &b), PeerState::default())
        .with_devices(vec![alex.clone(), sam.clone()]);
    let mut sb = SyncSession::new(shared(&b, &a), PeerState::default())
        .with_devices(vec![sam.clone(), alex.clone()]);
    let batches = every_batch(&mut sa, &mut a.mem, &mut sb, &mut b.mem);
    assert_eq!(lists_in(&batches), 0);
    assert_eq!(
        batches.len(),
        2,
        "the dialer's hello, then the listener's level ending"
    );

    // Sam's side knows a newer list of Sam's: both sides send what they know, and each hears
    // the other's lists.
    let mut sa = SyncSession::new(shared(&a, &b), PeerState::default())
        .with_devices(vec![alex.clone(), sam.clone()]);
    let mut sb = SyncSession::new(shared(&b, &a), PeerState::default())
        .with_devices(vec![sam_newer.clone(), alex.clone()]);
    let batches = every_batch(&mut sa, &mut a.mem, &mut sb, &mut b.mem);
    assert_eq!(lists_in(&batches), 4);
    assert_eq!(sa.heard_devices().len(), 2);
    assert_eq!(sb.heard_devices().len(), 2);
}

/// The couple for the authorship tests: Alex (journal `JA`, a laptop and a home device) and Sam
/// (journal `JB`, a laptop); `stranger` is certified by nobody.
struct Couple {
    alex: crate::authority::DeviceList,
    sam: crate::authority::DeviceList,
}

const ALEX_LAPTOP: [u8; 32] = [10; 32];
const ALEX_HOME: [u8; 32] = [11; 32];
const SAM_LAPTOP: [u8; 32] = [20; 32];

fn key(secret: [u8; 32]) -> crate::authority::DeviceKey {
    crate::authority::DeviceKey::from_bytes(secret)
}

fn the_couple() -> Couple {
    use crate::authority::{DeviceList, PersonKey};
    let (alex, sam) = (PersonKey::from_seed([1; 32]), PersonKey::from_seed([2; 32]));
    let mut a = DeviceList::new(alex.id());
    for (secret, label) in [(ALEX_LAPTOP, "laptop"), (ALEX_HOME, "home")] {
        a.add_cert(alex.certify(key(secret).id(), label, 1))
            .unwrap();
    }
    let mut s = DeviceList::new(sam.id());
    s.add_cert(sam.certify(key(SAM_LAPTOP).id(), "laptop", 1))
        .unwrap();
    Couple { alex: a, sam: s }
}

thread_local! {
    /// Whether Alex's devices in [`signed_session`] are restored and waiting for their journal.
    static RECOVERING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A session of the device `secret` (whose person owns `owned`) with a device of `kind`.
fn signed_session(c: &Couple, secret: [u8; 32], kind: crate::authority::PeerKind) -> SyncSession {
    use crate::authority::{Journals, shared_with};
    let alex_side = secret != SAM_LAPTOP;
    let (mine, partners) = if alex_side { (JA, JB) } else { (JB, JA) };
    let private = JournalId([if alex_side { 3 } else { 4 }; 16]);
    let journals = Journals {
        mine,
        private,
        partners: Some(partners),
        recovering: RECOVERING.with(|r| r.get()) && alex_side,
    };
    let (me, partner) = if alex_side {
        (&c.alex, &c.sam)
    } else {
        (&c.sam, &c.alex)
    };
    let authority = crate::authority::Authority {
        me: me.clone(),
        partner: Some(partner.clone()),
    };
    static CLOCK: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1_000);
    let now = CLOCK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    SyncSession::new(shared_with(kind, &journals), PeerState::default())
        .with_signing(Signing::for_couple(key(secret), now, &authority, &journals))
}

/// Two devices of the couple, each with its replica, meet in one signed session.
fn meet(
    c: &Couple,
    kind: crate::authority::PeerKind,
    a: ([u8; 32], &mut Mem),
    b: ([u8; 32], &mut Mem),
) {
    run(
        signed_session(c, a.0, kind),
        a.1,
        signed_session(c, b.0, kind),
        b.1,
        None,
    );
}

#[test]
fn a_journal_forwarded_by_another_device_keeps_only_what_its_owners_devices_signed() {
    use crate::authority::PeerKind::{Mine, Partners};
    let c = the_couple();
    let (mut sam, mut home, mut laptop) = (Mem::default(), Mem::default(), Mem::default());
    for n in 0..3 {
        sam.write(JB, n, 20);
    }
    // Sam's laptop meets Alex's home device: Sam vouches for what it sends.
    meet(&c, Partners, (SAM_LAPTOP, &mut sam), (ALEX_HOME, &mut home));
    assert_eq!(home.items(JB).len(), 3);

    // The home device (compromised) slips an item of its own into Sam's journal, and vouches
    // for it with its own key, which Sam's person never certified.
    home.write(JB, 99, 11);
    let forged_volume = *home
        .iter()
        .find(|((j, _), _)| *j == JB)
        .map(|(k, _)| &k.1)
        .unwrap();
    let forged_heads = home.doc_copy(JB, forged_volume).unwrap().get_heads();
    home.add_signed(key(ALEX_HOME).sign_heads_at(JB, forged_volume, &forged_heads, 2_000));
    let (mut sh, mut sl) = (
        signed_session(&c, ALEX_HOME, Mine),
        signed_session(&c, ALEX_LAPTOP, Mine),
    );
    sh = sh.with_peer(c.alex.person(), key(ALEX_LAPTOP).id());
    sl = sl.with_peer(c.alex.person(), key(ALEX_HOME).id());
    run(sh, &mut home, sl, &mut laptop, None);
    // Alex's laptop takes Sam's three items, which Sam signed, and not the forged one.
    let bodies: Vec<String> = laptop.items(JB).into_iter().map(|i| i.body).collect();
    assert_eq!(bodies, vec!["item 0", "item 1", "item 2"], "{bodies:?}");

    // Sam writes on; the genuine change reaches the laptop through the same home device, and
    // the forged one still does not.
    sam.write(JB, 3, 20);
    meet(&c, Partners, (SAM_LAPTOP, &mut sam), (ALEX_HOME, &mut home));
    meet(&c, Mine, (ALEX_HOME, &mut home), (ALEX_LAPTOP, &mut laptop));
    let bodies: Vec<String> = laptop.items(JB).into_iter().map(|i| i.body).collect();
    assert!(bodies.contains(&"item 3".to_owned()), "{bodies:?}");
    assert!(!bodies.contains(&"item 99".to_owned()), "{bodies:?}");
}

#[test]
fn a_revoked_device_vouches_for_nothing_from_the_moment_it_is_heard() {
    use crate::authority::PeerKind::Mine;
    let mut c = the_couple();
    let (mut home, mut laptop) = (Mem::default(), Mem::default());
    home.write(JA, 1, 11);
    // Alex revoked the home device, and the laptop knows it: what the home device wrote and
    // vouches for is not taken, even though it arrives over a session the laptop agreed to.
    let alex = crate::authority::PersonKey::from_seed([1; 32]);
    c.alex
        .add_revocation(alex.revoke(key(ALEX_HOME).id(), 5))
        .unwrap();
    meet(&c, Mine, (ALEX_HOME, &mut home), (ALEX_LAPTOP, &mut laptop));
    assert!(laptop.items(JA).is_empty());
}

#[test]
fn a_restored_device_gets_its_journal_back_from_the_partner_and_nothing_the_partner_altered() {
    use crate::authority::PeerKind::Partners;
    const ALEX_NEW: [u8; 32] = [12; 32];
    let mut c = the_couple();
    let alex = crate::authority::PersonKey::from_seed([1; 32]);
    c.alex
        .add_cert(alex.certify(key(ALEX_NEW).id(), "new laptop", 9))
        .unwrap();
    let (mut laptop, mut sam, mut restored) = (Mem::default(), Mem::default(), Mem::default());
    for n in 0..300 {
        laptop.write(JA, n, 10);
    }
    meet(
        &c,
        Partners,
        (ALEX_LAPTOP, &mut laptop),
        (SAM_LAPTOP, &mut sam),
    );
    assert_eq!(sam.items(JA).len(), 300);
    // Sam's modified client alters Alex's journal before handing it back, and vouches for the
    // change with Sam's own key.
    sam.write(JA, 1_000, 20);
    for ((journal, volume), doc) in sam.iter().map(|(k, d)| (*k, d.clone())).collect::<Vec<_>>() {
        if journal == JA {
            let mut doc = doc;
            sam.add_signed(key(SAM_LAPTOP).sign_heads_at(JA, volume, &doc.get_heads(), 5_000));
        }
    }

    // A device of Alex's that is not recovering takes nothing of its own journal from Sam.
    meet(
        &c,
        Partners,
        (SAM_LAPTOP, &mut sam),
        (ALEX_NEW, &mut restored),
    );
    assert!(restored.items(JA).is_empty());

    // Restored from the phrase, it takes back everything Alex's laptop signed, not Sam's item.
    RECOVERING.with(|r| r.set(true));
    meet(
        &c,
        Partners,
        (SAM_LAPTOP, &mut sam),
        (ALEX_NEW, &mut restored),
    );
    RECOVERING.with(|r| r.set(false));
    let items = restored.items(JA);
    assert_eq!(items.len(), 300, "every genuine item came back");
    assert!(items.iter().all(|i| i.body != "item 1000"));
    assert_eq!(items, laptop.items(JA));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Whatever order the three devices (Alex's laptop and home device, Sam's laptop) write and
    /// meet in, with every journal signed and checked, everything reaches everyone once each
    /// pair has met again: forwarding never loses a genuine change.
    #[test]
    fn any_delivery_order_and_forwarding_path_converge_when_signed(
        steps in proptest::collection::vec((0u8..3, 0u8..3, any::<bool>()), 1..24)
    ) {
        use crate::authority::PeerKind::{Mine, Partners};
        let c = the_couple();
        let devices = [ALEX_LAPTOP, ALEX_HOME, SAM_LAPTOP];
        let mut mems = [Mem::default(), Mem::default(), Mem::default()];
        let kind = |a: usize, b: usize| if a < 2 && b < 2 { Mine } else { Partners };
        let mut n = 0u64;
        let meet_at = |mems: &mut [Mem; 3], a: usize, b: usize| {
            if a == b {
                return;
            }
            let (lo, hi) = (a.min(b), a.max(b));
            let (left, right) = mems.split_at_mut(hi);
            meet(&c, kind(lo, hi), (devices[lo], &mut left[lo]), (devices[hi], &mut right[0]));
        };
        for (a, b, write) in steps {
            let (a, b) = (a as usize, b as usize);
            if write {
                // Each person writes into their own journal, on any of their devices.
                let journal = if a < 2 { JA } else { JB };
                n += 1;
                mems[a].write(journal, n, devices[a][0]);
            } else {
                meet_at(&mut mems, a, b);
            }
        }
        for _ in 0..2 {
            for (a, b) in [(0, 1), (1, 2), (0, 2)] {
                meet_at(&mut mems, a, b);
            }
        }
        for journal in [JA, JB] {
            let first = mems[0].items(journal);
            for m in &mems[1..] {
                prop_assert_eq!(&m.items(journal), &first);
            }
        }
        let total = mems[0].items(JA).len() + mems[0].items(JB).len();
        prop_assert_eq!(total as u64, n);
    }
}

#[test]
fn a_volume_taken_in_whole_rests_as_its_bytes_until_the_session_needs_it() {
    let mut source = Mem::default();
    for n in 0..5 {
        source.write(JA, n, 1);
    }
    let (&(_, vol), doc) = source.iter().next().unwrap();
    let mut doc = doc.clone();
    let (bytes, heads) = (doc.save(), doc.get_heads());
    let items = source.items(JA);

    // Covered (no signature asked, or every head signed): held as bytes and contents only.
    let signed: BTreeSet<ChangeHash> = heads.iter().copied().collect();
    for signed in [None, Some(&signed)] {
        let mut docs = Docs::default().resting();
        assert!(docs.adopt(JA, vol, bytes.clone(), None, signed));
        assert_eq!(docs.iter().count(), 0, "no document is held");
        assert_eq!(
            docs.rested().collect::<Vec<_>>(),
            vec![((JA, vol), &heads[..])]
        );
        assert_eq!(docs.heads(JA, vol), Some(heads.clone()));
        assert_eq!(docs.inventory(JA).get(&vol), Some(&heads));
        assert_eq!(docs.snapshot(JA, vol), Some(bytes.clone()));
        let rested = &docs.adopted()[&(JA, vol)];
        assert_eq!(rested.contents.as_ref().unwrap().items, items);
        // The session needs it (an Automerge message about it): loaded again, as it came.
        let woken = docs.doc(JA, vol, true).unwrap().get_heads();
        assert_eq!(woken, heads);
        assert_eq!(docs.rested().count(), 0);
        assert!(
            docs.adopted()[&(JA, vol)].contents.is_none(),
            "read again when stored"
        );
        // Taken back by a replica in memory, it is the same volume.
        let mut back = Mem::default();
        back.absorb(docs);
        assert_eq!(back.items(JA), items);
    }

    // A head nobody signed: the document stays loaded, for the authorship check to cut.
    let mut docs = Docs::default().resting();
    assert!(docs.adopt(JA, vol, bytes.clone(), None, Some(&BTreeSet::new())));
    assert_eq!(docs.rested().count(), 0);
    assert_eq!(docs.iter().count(), 1);
    // Without resting, nothing changes from before.
    let mut docs = Docs::default();
    assert!(docs.adopt(JA, vol, bytes.clone(), None, None));
    assert_eq!(docs.rested().count(), 0);
    // Bytes of another volume id are refused either way.
    let mut docs = Docs::default().resting();
    assert!(!docs.adopt(JA, VolumeId([9; 8]), bytes, None, None));
    assert!(docs.adopted().is_empty());
}
