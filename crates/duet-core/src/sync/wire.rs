//! Byte encodings of sync batches and of the per-peer state.
//!
//! Batch (one frame): `u8 version`, `u32 count`, then per message a `u8`
//! tag and its fields; integers big-endian, lengths checked against what is
//! left before anything is allocated (`crate::codec`). See docs/protocol.md.

use std::collections::BTreeMap;

use super::{Batch, HeadsDigest, JournalPeerState, Msg, PeerState, SYNC_VERSION, SyncError};
use crate::codec::{DecodeError, Reader, Writer};
use crate::id::{JournalId, VolumeId};

const TAG_HELLO: u8 = 1;
const TAG_INVENTORY: u8 = 2;
const TAG_VOLUME: u8 = 3;
const TAG_SNAPSHOT: u8 = 4;
const TAG_DEVICES: u8 = 5;
const TAG_ADDRESSES: u8 = 6;
const TAG_SIGNED: u8 = 7;
const TAG_DEVICES_DIGEST: u8 = 8;
const TAG_LEVEL: u8 = 9;
const STATE_VERSION: u8 = 1;

pub fn encode_batch(batch: &Batch) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(SYNC_VERSION);
    w.u32(batch.0.len() as u32);
    for msg in &batch.0 {
        match msg {
            Msg::Hello { journals } => {
                w.u8(TAG_HELLO);
                w.u32(journals.len() as u32);
                for (j, d) in journals {
                    w.bytes(j.as_bytes());
                    w.bytes(d);
                }
            }
            Msg::Inventory {
                journal,
                full,
                volumes,
            } => {
                w.u8(TAG_INVENTORY);
                w.bytes(journal.as_bytes());
                w.u8(u8::from(*full));
                w.u32(volumes.len() as u32);
                for (v, d) in volumes {
                    w.bytes(v.as_bytes());
                    w.bytes(d);
                }
            }
            Msg::Devices { list } => {
                w.u8(TAG_DEVICES);
                w.long_bytes(list);
            }
            Msg::DevicesDigest { digest } => {
                w.u8(TAG_DEVICES_DIGEST);
                w.bytes(digest);
            }
            Msg::Level => w.u8(TAG_LEVEL),
            Msg::Signed { statements } => {
                w.u8(TAG_SIGNED);
                w.u32(statements.len() as u32);
                for s in statements {
                    s.encode(&mut w);
                }
            }
            Msg::Addresses { hints } => {
                w.u8(TAG_ADDRESSES);
                w.u32(hints.len() as u32);
                for (device, addrs) in hints {
                    w.bytes(device);
                    w.addrs(addrs);
                }
            }
            Msg::Snapshot {
                journal,
                volume,
                document,
            } => {
                w.u8(TAG_SNAPSHOT);
                w.bytes(journal.as_bytes());
                w.bytes(volume.as_bytes());
                w.long_bytes(document);
            }
            Msg::Volume {
                journal,
                volume,
                message,
            } => {
                w.u8(TAG_VOLUME);
                w.bytes(journal.as_bytes());
                w.bytes(volume.as_bytes());
                w.long_bytes(message);
            }
        }
    }
    w.0
}

fn malformed(e: DecodeError) -> SyncError {
    SyncError::Malformed(e.describe())
}

pub fn decode_batch(bytes: &[u8]) -> Result<Batch, SyncError> {
    let mut r = Reader::new(bytes);
    let version = r.u8().map_err(malformed)?;
    if version != SYNC_VERSION {
        return Err(SyncError::Version(version));
    }
    let count = r.count(1).map_err(malformed)?;
    let mut msgs = Vec::with_capacity(count);
    for _ in 0..count {
        msgs.push(decode_msg(&mut r)?);
    }
    r.finish().map_err(malformed)?;
    Ok(Batch(msgs))
}

fn decode_msg(r: &mut Reader) -> Result<Msg, SyncError> {
    Ok(match r.u8().map_err(malformed)? {
        TAG_HELLO => {
            let n = r.count(48).map_err(malformed)?;
            let journals = (0..n)
                .map(|_| Ok((JournalId(r.array()?), r.array()?)))
                .collect::<Result<_, DecodeError>>()
                .map_err(malformed)?;
            Msg::Hello { journals }
        }
        TAG_INVENTORY => {
            let journal = JournalId(r.array().map_err(malformed)?);
            let full = r
                .bool()
                .map_err(|_| SyncError::Malformed("inventory flag"))?;
            let n = r.count(24).map_err(malformed)?;
            let volumes = (0..n)
                .map(|_| Ok((VolumeId(r.array()?), r.array::<16>()?)))
                .collect::<Result<Vec<(VolumeId, HeadsDigest)>, DecodeError>>()
                .map_err(malformed)?;
            Msg::Inventory {
                journal,
                full,
                volumes,
            }
        }
        tag @ (TAG_VOLUME | TAG_SNAPSHOT) => {
            let journal = JournalId(r.array().map_err(malformed)?);
            let volume = VolumeId(r.array().map_err(malformed)?);
            let bytes = r.long_bytes().map_err(malformed)?.to_vec();
            if tag == TAG_VOLUME {
                Msg::Volume {
                    journal,
                    volume,
                    message: bytes,
                }
            } else {
                Msg::Snapshot {
                    journal,
                    volume,
                    document: bytes,
                }
            }
        }
        TAG_DEVICES => Msg::Devices {
            list: r.long_bytes().map_err(malformed)?.to_vec(),
        },
        TAG_DEVICES_DIGEST => Msg::DevicesDigest {
            digest: r.array().map_err(malformed)?,
        },
        TAG_LEVEL => Msg::Level,
        TAG_SIGNED => {
            let n = r.count(16 + 8 + 32 + 8 + 4 + 64).map_err(malformed)?;
            if n > super::MAX_SIGNED_PER_MESSAGE {
                return Err(SyncError::Malformed(
                    "more statements than a message may carry",
                ));
            }
            let statements = (0..n)
                .map(|_| crate::authority::SignedHeads::decode(r))
                .collect::<Result<Vec<_>, _>>()
                .map_err(malformed)?;
            Msg::Signed { statements }
        }
        TAG_ADDRESSES => {
            // Each entry is at least an id and an address count.
            let n = r.count(32 + 1).map_err(malformed)?;
            if n > super::MAX_HINTED_DEVICES {
                return Err(SyncError::Malformed("address hints beyond the bound"));
            }
            let mut hints = Vec::with_capacity(n);
            for _ in 0..n {
                hints.push((r.array().map_err(malformed)?, r.addrs().map_err(malformed)?));
            }
            Msg::Addresses { hints }
        }
        _ => return Err(SyncError::Malformed("unknown message tag")),
    })
}

/// Per-peer state on disk: `u8 version`, `u32 journals`, per journal its id,
/// `u32` agreed entries (volume id, digest), `u32` automerge states
/// (volume id, `u32` length, bytes).
pub fn encode_peer_state(state: &PeerState) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(STATE_VERSION);
    w.u32(state.journals.len() as u32);
    for (j, s) in &state.journals {
        w.bytes(j.as_bytes());
        w.u32(s.agreed.len() as u32);
        for (v, d) in &s.agreed {
            w.bytes(v.as_bytes());
            w.bytes(d);
        }
        w.u32(s.automerge.len() as u32);
        for (v, bytes) in &s.automerge {
            w.bytes(v.as_bytes());
            w.long_bytes(bytes);
        }
    }
    w.0
}

/// Decode per-peer state; damaged state is worth nothing but costs nothing
/// either (the next sync compares everything), so callers may default it.
pub fn decode_peer_state(bytes: &[u8]) -> Result<PeerState, SyncError> {
    let mut r = Reader::new(bytes);
    if r.u8().map_err(malformed)? != STATE_VERSION {
        return Err(SyncError::Malformed("peer state version"));
    }
    let read = |r: &mut Reader| -> Result<BTreeMap<JournalId, JournalPeerState>, DecodeError> {
        let mut journals = BTreeMap::new();
        for _ in 0..r.count(16 + 8)? {
            let j = JournalId(r.array()?);
            let mut s = JournalPeerState::default();
            for _ in 0..r.count(24)? {
                s.agreed.insert(VolumeId(r.array()?), r.array()?);
            }
            for _ in 0..r.count(12)? {
                let v = VolumeId(r.array()?);
                s.automerge.insert(v, r.long_bytes()?.to_vec());
            }
            journals.insert(j, s);
        }
        Ok(journals)
    };
    let journals = read(&mut r).map_err(malformed)?;
    r.finish().map_err(malformed)?;
    Ok(PeerState { journals })
}
