//! The bodies of duet's fuzz targets, and the real messages their corpora start from.
//!
//! `fuzz/` (cargo-fuzz, libFuzzer) calls these functions; the test `corpus_replays` in this
//! crate runs every file of `fuzz/corpus/` and `fuzz/regressions/` through them on every test
//! run, so what a long fuzzing run found stays fixed. Each function must return normally for
//! any input: a panic is a finding.
//!
//! Compiled for tests and with the `fuzzing` feature only.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use crate::id::{JournalId, VolumeId};
use crate::pairing::{
    Confirm, Invitation, InviteReply, JoinRequest, Joiner, LocalPeer, PairMessage, Reveal, Ticket,
    invite_proof, join_proof,
};
use crate::sync::mem::MemReplica;
use crate::sync::{
    Batch, PeerState, Shared, SyncSession, decode_batch, decode_peer_state, encode_batch,
    encode_peer_state,
};
use crate::volume::Volume;

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// The fuzz targets: name and body.
pub const TARGETS: [(&str, Target); 3] = [
    ("pairing", pairing),
    ("sync_message", sync_message),
    ("volume", volume),
];

const NOW: i64 = 1_800_000_000;
const SECRET: [u8; 16] = [7; 16];
/// Alex's journal and Sam's, as the replica under test sees them.
const MINE: JournalId = JournalId([1; 16]);
const THEIRS: JournalId = JournalId([2; 16]);

/// Person `n`'s device as the pairing tests and targets use it.
pub(crate) fn local(n: u8, name: &str) -> LocalPeer {
    LocalPeer {
        endpoint_id: [n; 32],
        name: name.to_owned(),
        journal_id: [n.wrapping_add(100); 16],
        addrs: vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 4000 + u16::from(n)))],
        relay_url: None,
        taken_journals: vec![],
        devices: devices_of(n),
        only_person: None,
    }
}

/// Person `n`'s id.
fn person_of(n: u8) -> crate::authority::PersonId {
    crate::authority::PersonKey::from_seed([n.wrapping_add(50); 32]).id()
}

/// Person `n`'s device list, certifying device `[n; 32]`.
pub(crate) fn devices_of(n: u8) -> Vec<u8> {
    let person = crate::authority::PersonKey::from_seed([n.wrapping_add(50); 32]);
    let mut list = crate::authority::DeviceList::new(person.id());
    list.add_cert(person.certify([n; 32], "laptop", 1))
        .expect("a valid certificate");
    list.encode()
}

/// Splits fuzz input into messages: each a little-endian `u16` length and that many bytes.
fn messages(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 2 && out.len() < 8 {
        let len = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
        out.push(&data[2..2 + len]);
        data = &data[2 + len..];
    }
    out
}

/// The reverse of [`messages`], for seeds.
fn framed<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        out.extend((part.len() as u16).to_le_bytes());
        out.extend(part);
    }
    out
}

/// Pairing, from both sides. The first byte chooses the side and whether the input's proofs
/// are replaced by correct ones (a peer who holds the ticket but sends anything else it likes:
/// names, addresses, relays, nonces); the rest is the peer's messages in order.
pub fn pairing(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let honest_proofs = mode & 2 != 0;
    let peer_messages = messages(rest);
    let (alex, sam) = (local(1, "Alex"), local(2, "Sam"));
    // Every message alone decodes or is refused; a ticket of the same bytes too.
    for m in &peer_messages {
        if let Ok(decoded) = PairMessage::decode(m) {
            let again = PairMessage::decode(&decoded.encode()).expect("own encoding decodes");
            assert_eq!(again, decoded, "decode ∘ encode is the identity");
        }
        if let Ok(text) = std::str::from_utf8(m) {
            let _ = Ticket::decode(text);
            let _ = Ticket::decode_for(text, crate::pairing::Purpose::Link);
        }
        // A device link grant: decodes or is refused, and a decoded one is checked whole.
        if let Ok(grant) = crate::pairing::LinkGrant::decode(m) {
            assert_eq!(
                crate::pairing::LinkGrant::decode(&grant.encode()).as_ref(),
                Ok(&grant),
                "decode ∘ encode is the identity"
            );
            let person = crate::authority::PersonKey::from_seed(grant.person_seed).id();
            let _ = grant.check(&person, &[1; 32]);
        }
    }
    let mut decoded = peer_messages.iter().map(|m| PairMessage::decode(m).ok());
    if mode & 1 == 0 {
        // I invite; the input is the joiner.
        let mut invitation = Invitation::new(alex, SECRET, NOW + 600).expect("a valid invite");
        let Some(Some(PairMessage::JoinRequest(mut request))) = decoded.next() else {
            return;
        };
        if honest_proofs {
            request.proof = join_proof(&SECRET, &[1; 32], &sam.endpoint_id, &request.commit);
        }
        let Ok((mut inviter, _reply)) =
            invitation.accept(sam.endpoint_id, &request, NOW, [0xA0; 32])
        else {
            return;
        };
        let _ = inviter.partner_name();
        for message in decoded.flatten() {
            let _ = match message {
                PairMessage::Reveal(r) => inviter.handle_reveal(&r).map(|_| ()),
                PairMessage::Confirm(c) => inviter.handle_confirm(&c),
                _ => Ok(()),
            };
            let _ = inviter.decide(true);
        }
        let _ = inviter.finish();
    } else {
        // I join; the input is the inviter.
        let ticket = Ticket {
            endpoint_id: [1; 32],
            addrs: alex.addrs.clone(),
            relay_url: None,
            secret: SECRET,
            expires_at: NOW + 600,
        };
        let (mut joiner, _request) = Joiner::new(&ticket, &sam, [0xB0; 32]).expect("a valid join");
        let Some(Some(PairMessage::InviteReply(mut reply))) = decoded.next() else {
            return;
        };
        if honest_proofs {
            reply.proof = invite_proof(&SECRET, &[1; 32], &sam.endpoint_id, &reply.nonce);
        }
        if joiner.handle_reply(&reply).is_err() {
            return;
        }
        let _ = joiner.partner_name();
        for message in decoded.flatten() {
            if let PairMessage::Confirm(c) = message {
                let _ = joiner.handle_confirm(&c);
            }
            let _ = joiner.decide(true);
        }
        let _ = joiner.finish();
    }
}

/// A replica holding both journals, a few items each, as a device of Alex would (made once;
/// each input gets a copy).
fn replica() -> MemReplica {
    static TEMPLATE: std::sync::OnceLock<MemReplica> = std::sync::OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let mut mem = MemReplica::default();
            for n in 0..3 {
                mem.write(MINE, n, 1);
                mem.write(THEIRS, 100 + n, 2);
            }
            mem
        })
        .clone()
}

/// What Alex's device shares with Sam's, as every session decides it.
fn shares() -> Vec<Shared> {
    crate::authority::shared_with_partner(MINE, THEIRS)
}

/// A sync session on Alex's device fed the peer's batches (the input, split into messages),
/// then the saved peer state read back. My journal must come out unchanged whatever arrives.
pub fn sync_message(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut mem = replica();
    // Mode bit 1: volumes that arrive whole rest as bytes, as the store's driver holds them.
    if mode & 2 != 0 {
        mem = mem.resting();
    }
    let mine_before = mem.items(MINE);
    let parts = messages(rest);
    // Mode bit 0: the saved peer state comes from the input too (a damaged or forged file).
    let (state, batches) = match (mode & 1, parts.split_first()) {
        (1, Some((state, batches))) => (decode_peer_state(state).unwrap_or_default(), batches),
        _ => (PeerState::default(), &parts[..]),
    };
    // Alex's device talks to Sam's device `[2; 32]`; lists the input sends may revoke it.
    let mut session = SyncSession::new(shares(), state)
        .with_devices(vec![devices_of(1)])
        .with_peer(person_of(2), [2; 32]);
    let _ = session.start(&mut mem);
    for bytes in batches {
        let Ok(batch) = decode_batch(bytes) else {
            continue;
        };
        if session.handle(&mut mem, batch).is_err() {
            break;
        }
    }
    let state = session.finish(&mut mem);
    assert_eq!(
        decode_peer_state(&encode_peer_state(&state)).as_ref(),
        Ok(&state),
        "peer state round-trips"
    );
    assert_eq!(mem.items(MINE), mine_before, "the peer changed my journal");
}

/// The volume loader: bytes from a file, loaded, read, written to and saved again.
pub fn volume(data: &[u8]) {
    let Ok(mut vol) = Volume::load([3; 16], data) else {
        return;
    };
    for item in vol.items() {
        let _ = crate::item::check_stored(&item);
    }
    let _ = vol.marks();
    let _ = (vol.journal(), vol.id(), vol.created_at(), vol.len());
    let saved = vol.save();
    let again = Volume::load([3; 16], &saved).expect("a saved volume loads");
    assert_eq!(again.items().len(), vol.items().len());
}

/// Real inputs for each target: a genuine pairing from both sides, the batches of a genuine
/// session between two devices, saved volumes.
pub fn seeds() -> BTreeMap<&'static str, Vec<Vec<u8>>> {
    let mut out = BTreeMap::new();

    // Pairing: the joiner's messages as the inviter sees them, and the inviter's as the joiner
    // sees them.
    let (alex, sam) = (local(1, "Alex"), local(2, "Sam"));
    let mut invitation = Invitation::new(alex, SECRET, NOW + 600).unwrap();
    let (mut joiner, request) = Joiner::new(&invitation.ticket(), &sam, [0xB0; 32]).unwrap();
    let (mut inviter, reply) = invitation
        .accept(sam.endpoint_id, &request, NOW, [0xA0; 32])
        .unwrap();
    let (reveal, _) = joiner.handle_reply(&reply).unwrap();
    inviter.handle_reveal(&reveal).unwrap();
    let yes = Confirm { accepted: true };
    let enc = |m: PairMessage| m.encode();
    let from_joiner = [enc(request.into()), enc(reveal.into()), enc(yes.into())];
    let from_inviter = [enc(reply.into()), enc(yes.into())];
    out.insert(
        "pairing",
        vec![
            [&[0u8][..], &framed(from_joiner.iter().map(Vec::as_slice))].concat(),
            [&[1u8][..], &framed(from_inviter.iter().map(Vec::as_slice))].concat(),
            [
                &[3u8][..],
                &framed([&enc(Reveal { nonce: [9; 32] }.into())[..]]),
            ]
            .concat(),
            [
                &[3u8][..],
                &framed([&enc(InviteReply {
                    proof: [0; 32],
                    nonce: [5; 32],
                    journal_id: [6; 16],
                    name: "Alex\u{202e}".into(),
                    addrs: vec![],
                    relay_url: Some("https://relay.example".into()),
                    devices: devices_of(1),
                }
                .into())[..]]),
            ]
            .concat(),
            [
                &[2u8][..],
                &framed([&enc(JoinRequest {
                    proof: [0; 32],
                    commit: [4; 32],
                    journal_id: [101; 16],
                    name: "Sam".into(),
                    addrs: vec![],
                    relay_url: None,
                    devices: devices_of(2),
                }
                .into())[..]]),
            ]
            .concat(),
        ],
    );

    // Sync: what Sam's device sends Alex's in a first session and in a later one.
    let mut sams = MemReplica::default();
    for n in 0..3 {
        sams.write(MINE, n, 1);
    }
    for n in 100..110 {
        sams.write(THEIRS, n, 2);
    }
    let mut alexs = replica();
    let theirs_shares: Vec<Shared> = shares()
        .into_iter()
        .map(|s| Shared {
            accept_changes: !s.accept_changes,
            ..s
        })
        .collect();
    let mut sam_session =
        SyncSession::new(theirs_shares, PeerState::default()).with_devices(vec![devices_of(2)]);
    let mut alex_session = SyncSession::new(shares(), PeerState::default());
    let mut sent_by_sam = vec![encode_batch(&sam_session.start(&mut sams))];
    let mut to_sam = alex_session.start(&mut alexs);
    for _ in 0..20 {
        let reply = sam_session.handle(&mut sams, to_sam).unwrap();
        if reply.0.is_empty() {
            break;
        }
        sent_by_sam.push(encode_batch(&reply));
        to_sam = alex_session.handle(&mut alexs, reply).unwrap();
    }
    let state = encode_peer_state(&alex_session.finish(&mut alexs));
    let mut sync = vec![
        [&[0u8][..], &framed(sent_by_sam.iter().map(Vec::as_slice))].concat(),
        [&[1u8][..], &framed([&state[..], &sent_by_sam[1]])].concat(),
    ];
    sync.extend(
        sent_by_sam
            .iter()
            .map(|b| [&[0u8][..], &framed([&b[..]])].concat()),
    );
    sync.push([&[0u8][..], &framed([&encode_batch(&Batch(vec![]))[..]])].concat());
    // The same sessions with volumes that arrive whole resting as bytes (mode bit 1).
    sync.push([&[2u8][..], &framed(sent_by_sam.iter().map(Vec::as_slice))].concat());
    sync.push([&[3u8][..], &framed([&state[..], &sent_by_sam[1]])].concat());
    out.insert("sync_message", sync);

    // Volumes: a snapshot, a chunk of later changes, both together.
    let mut vol = Volume::create([1; 16], MINE, VolumeId([3; 8]), 1);
    let mem = replica();
    for item in mem.items(MINE) {
        vol.add(&item).unwrap();
    }
    let heads = vol.heads();
    let snapshot = vol.save();
    vol.set_mark(crate::id::ItemId([9; 8]), true, 5).unwrap();
    let chunk = vol.save_after(&heads);
    out.insert("volume", vec![snapshot.clone(), [snapshot, chunk].concat()]);
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn fuzz_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
    }

    #[test]
    fn seeds_run_clean() {
        for (name, body) in TARGETS {
            for seed in &seeds()[name] {
                body(seed);
            }
        }
    }

    /// Every stored corpus file and every regression runs through its target.
    #[test]
    fn corpus_replays() {
        let mut ran = 0;
        for (name, body) in TARGETS {
            for dir in ["corpus", "regressions"] {
                let Ok(entries) = std::fs::read_dir(fuzz_dir().join(dir).join(name)) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let bytes = std::fs::read(entry.path()).unwrap();
                    body(&bytes);
                    ran += 1;
                }
            }
        }
        assert!(ran > 0, "no corpus under {}", fuzz_dir().display());
    }

    /// Writes the seeds into `fuzz/corpus/<target>/`:
    /// `cargo test -p duet-core write_seed_corpus -- --ignored`.
    #[test]
    #[ignore = "writes files; run by hand to refresh the seed corpus"]
    fn write_seed_corpus() {
        for (name, seeds) in seeds() {
            let dir = fuzz_dir().join("corpus").join(name);
            std::fs::create_dir_all(&dir).unwrap();
            for (i, seed) in seeds.iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i}")), seed).unwrap();
            }
        }
    }
}
