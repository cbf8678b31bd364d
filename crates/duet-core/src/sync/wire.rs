//! Byte encodings of sync batches and of the per-peer state.
//!
//! Batch (one frame): `u8 version`, `u32 count`, then per message a `u8`
//! tag and its fields; integers big-endian, lengths checked against what is
//! left before anything is allocated. See docs/protocol.md.

use std::collections::BTreeMap;

use super::{Batch, HeadsDigest, JournalPeerState, Msg, PeerState, SYNC_VERSION, SyncError};
use crate::id::{JournalId, VolumeId};

const TAG_HELLO: u8 = 1;
const TAG_INVENTORY: u8 = 2;
const TAG_VOLUME: u8 = 3;
const TAG_SNAPSHOT: u8 = 4;
const STATE_VERSION: u8 = 1;

pub fn encode_batch(batch: &Batch) -> Vec<u8> {
    let mut out = vec![SYNC_VERSION];
    out.extend_from_slice(&(batch.0.len() as u32).to_be_bytes());
    for msg in &batch.0 {
        match msg {
            Msg::Hello { journals } => {
                out.push(TAG_HELLO);
                out.extend_from_slice(&(journals.len() as u32).to_be_bytes());
                for (j, d) in journals {
                    out.extend_from_slice(j.as_bytes());
                    out.extend_from_slice(d);
                }
            }
            Msg::Inventory {
                journal,
                full,
                volumes,
            } => {
                out.push(TAG_INVENTORY);
                out.extend_from_slice(journal.as_bytes());
                out.push(u8::from(*full));
                out.extend_from_slice(&(volumes.len() as u32).to_be_bytes());
                for (v, d) in volumes {
                    out.extend_from_slice(v.as_bytes());
                    out.extend_from_slice(d);
                }
            }
            Msg::Snapshot {
                journal,
                volume,
                document,
            } => {
                out.push(TAG_SNAPSHOT);
                out.extend_from_slice(journal.as_bytes());
                out.extend_from_slice(volume.as_bytes());
                out.extend_from_slice(&(document.len() as u32).to_be_bytes());
                out.extend_from_slice(document);
            }
            Msg::Volume {
                journal,
                volume,
                message,
            } => {
                out.push(TAG_VOLUME);
                out.extend_from_slice(journal.as_bytes());
                out.extend_from_slice(volume.as_bytes());
                out.extend_from_slice(&(message.len() as u32).to_be_bytes());
                out.extend_from_slice(message);
            }
        }
    }
    out
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SyncError> {
        if self.0.len() < n {
            return Err(SyncError::Malformed("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], SyncError> {
        Ok(self.take(N)?.try_into().expect("length checked"))
    }
    fn u8(&mut self) -> Result<u8, SyncError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, SyncError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    /// A count of records of `size` bytes each, checked against what is left.
    fn count(&mut self, size: usize) -> Result<usize, SyncError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(size) > self.0.len() {
            return Err(SyncError::Malformed("count larger than the message"));
        }
        Ok(n)
    }
}

pub fn decode_batch(bytes: &[u8]) -> Result<Batch, SyncError> {
    let mut r = Reader(bytes);
    let version = r.u8()?;
    if version != SYNC_VERSION {
        return Err(SyncError::Version(version));
    }
    let count = r.count(1)?;
    let mut msgs = Vec::with_capacity(count);
    for _ in 0..count {
        let msg = match r.u8()? {
            TAG_HELLO => {
                let n = r.count(48)?;
                let journals = (0..n)
                    .map(|_| Ok((JournalId(r.array()?), r.array()?)))
                    .collect::<Result<_, SyncError>>()?;
                Msg::Hello { journals }
            }
            TAG_INVENTORY => {
                let journal = JournalId(r.array()?);
                let full = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(SyncError::Malformed("inventory flag")),
                };
                let n = r.count(24)?;
                let volumes = (0..n)
                    .map(|_| Ok((VolumeId(r.array()?), r.array::<16>()?)))
                    .collect::<Result<Vec<(VolumeId, HeadsDigest)>, SyncError>>()?;
                Msg::Inventory {
                    journal,
                    full,
                    volumes,
                }
            }
            TAG_VOLUME => {
                let journal = JournalId(r.array()?);
                let volume = VolumeId(r.array()?);
                let len = r.count(1)?;
                Msg::Volume {
                    journal,
                    volume,
                    message: r.take(len)?.to_vec(),
                }
            }
            TAG_SNAPSHOT => {
                let journal = JournalId(r.array()?);
                let volume = VolumeId(r.array()?);
                let len = r.count(1)?;
                Msg::Snapshot {
                    journal,
                    volume,
                    document: r.take(len)?.to_vec(),
                }
            }
            _ => return Err(SyncError::Malformed("unknown message tag")),
        };
        msgs.push(msg);
    }
    if !r.0.is_empty() {
        return Err(SyncError::Malformed("trailing bytes"));
    }
    Ok(Batch(msgs))
}

/// Per-peer state on disk: `u8 version`, `u32 journals`, per journal its id,
/// `u32` agreed entries (volume id, digest), `u32` automerge states
/// (volume id, `u32` length, bytes).
pub fn encode_peer_state(state: &PeerState) -> Vec<u8> {
    let mut out = vec![STATE_VERSION];
    out.extend_from_slice(&(state.journals.len() as u32).to_be_bytes());
    for (j, s) in &state.journals {
        out.extend_from_slice(j.as_bytes());
        out.extend_from_slice(&(s.agreed.len() as u32).to_be_bytes());
        for (v, d) in &s.agreed {
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(d);
        }
        out.extend_from_slice(&(s.automerge.len() as u32).to_be_bytes());
        for (v, bytes) in &s.automerge {
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(bytes);
        }
    }
    out
}

/// Decode per-peer state; damaged state is worth nothing but costs nothing
/// either (the next sync compares everything), so callers may default it.
pub fn decode_peer_state(bytes: &[u8]) -> Result<PeerState, SyncError> {
    let mut r = Reader(bytes);
    if r.u8()? != STATE_VERSION {
        return Err(SyncError::Malformed("peer state version"));
    }
    let mut journals = BTreeMap::new();
    for _ in 0..r.count(16 + 8)? {
        let j = JournalId(r.array()?);
        let mut s = JournalPeerState::default();
        for _ in 0..r.count(24)? {
            s.agreed.insert(VolumeId(r.array()?), r.array()?);
        }
        for _ in 0..r.count(12)? {
            let v = VolumeId(r.array()?);
            let len = r.count(1)?;
            s.automerge.insert(v, r.take(len)?.to_vec());
        }
        journals.insert(j, s);
    }
    if !r.0.is_empty() {
        return Err(SyncError::Malformed("trailing bytes"));
    }
    Ok(PeerState { journals })
}
