//! Drives a `duet_core::sync::SyncSession` over one bidirectional stream.
//!
//! Lock-step: the dialer sends a batch, the listener answers with one; the
//! conversation ends when an empty batch is answered by an empty batch, or at the
//! listener's first answer when it says both sides are level. A
//! batch travels as one or more frames: each frame is a `u8` flag (1: more
//! frames of this batch follow, 0: last) and an encoded part of the batch,
//! so no frame exceeds [`MAX_FRAME`] even on a first sync of a large journal.

use std::time::Duration;

use duet_core::sync::{
    Backend, Batch, Docs, Msg, SyncError, SyncSession, decode_batch, encode_batch, prepare,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::framing::{FrameError, MAX_FRAME, read_frame, write_frame};

/// Parts of a batch are cut at about this size.
const PART_TARGET: usize = MAX_FRAME / 4;
/// A session that needs more turns than this is broken, not slow.
const MAX_TURNS: usize = 10_000;
/// The most one batch may hold, summed over its frames. A batch is held whole in memory while
/// it is read; the largest honest one (a first sync sending every volume's snapshot) is the
/// journal's size on disk, about 25 MiB at 100,000 items.
pub const MAX_BATCH_BYTES: u64 = 64 * 1024 * 1024;
/// The most one session may receive in all.
pub const MAX_SESSION_BYTES: u64 = 1024 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SyncNetError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Protocol(#[from] SyncError),
    #[error("the other device ended the sync early; try again")]
    Closed,
    #[error("the sync did not settle after {MAX_TURNS} turns; this is a bug, please report it")]
    TooManyTurns,
    #[error(
        "the other device sent more than {} MiB in one batch; the sync was stopped",
        MAX_BATCH_BYTES >> 20
    )]
    BatchTooLarge,
    #[error("the other device sent more than {} MiB in one sync; it was stopped", MAX_SESSION_BYTES >> 20)]
    SessionTooLarge,
}

/// Bytes that crossed in one session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub sent: u64,
    pub received: u64,
    /// Batches this side sent: the conversation's round trips, seen from either end.
    pub batches_sent: u32,
}

async fn send_batch<W: AsyncWrite + Unpin>(
    send: &mut W,
    batch: &Batch,
    traffic: &mut Traffic,
) -> Result<(), SyncNetError> {
    let mut parts: Vec<Vec<Msg>> = vec![Vec::new()];
    let mut size = 0;
    for msg in &batch.0 {
        let len = match msg {
            Msg::Volume { message, .. } => message.len() + 32,
            Msg::Snapshot { document, .. } => document.len() + 32,
            Msg::Inventory { volumes, .. } => volumes.len() * 24 + 32,
            Msg::Hello { journals } => journals.len() * 48 + 8,
            Msg::Devices { list } => list.len() + 8,
            Msg::DevicesDigest { .. } => 33,
            Msg::Level => 1,
            Msg::Addresses { hints } => hints.len() * (32 + 1 + 16 * 19) + 8,
            Msg::Signed { statements } => statements.len() * 200 + 8,
        };
        if size + len > PART_TARGET && !parts.last().expect("one part").is_empty() {
            parts.push(Vec::new());
            size = 0;
        }
        size += len;
        parts.last_mut().expect("one part").push(msg.clone());
    }
    let last = parts.len() - 1;
    traffic.batches_sent += 1;
    for (i, part) in parts.into_iter().enumerate() {
        let mut frame = vec![u8::from(i != last)];
        frame.extend_from_slice(&encode_batch(&Batch(part)));
        traffic.sent += frame.len() as u64 + 4;
        write_frame(send, &frame).await?;
    }
    Ok(())
}

/// Read one whole batch, handing `on_part` each frame's messages as the frame arrives; `false`
/// when the stream ended cleanly before it.
async fn recv_parts<R: AsyncRead + Unpin, F: FnMut(u64), P: FnMut(Vec<Msg>)>(
    recv: &mut R,
    timeout: Duration,
    traffic: &mut Traffic,
    progress: &mut F,
    max_batch: u64,
    on_part: &mut P,
) -> Result<bool, SyncNetError> {
    let mut first = true;
    let mut batch_bytes = 0u64;
    loop {
        let Some(frame) = read_frame(recv, MAX_FRAME, timeout).await? else {
            return if first {
                Ok(false)
            } else {
                Err(SyncNetError::Closed)
            };
        };
        first = false;
        batch_bytes += frame.len() as u64 + 4;
        traffic.received += frame.len() as u64 + 4;
        if batch_bytes > max_batch {
            return Err(SyncNetError::BatchTooLarge);
        }
        if traffic.received > MAX_SESSION_BYTES {
            return Err(SyncNetError::SessionTooLarge);
        }
        progress(traffic.received);
        let (&more, body) = frame
            .split_first()
            .ok_or(SyncError::Malformed("empty frame"))?;
        on_part(decode_batch(body)?.0);
        match more {
            0 => return Ok(true),
            1 => continue,
            _ => return Err(SyncError::Malformed("frame flag").into()),
        }
    }
}

/// Which end of a sync conversation this device holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Opened the connection: speaks first, and hangs up once an empty batch it sent is
    /// answered by an empty batch.
    Dialer,
    /// Accepted it: answers each batch (its first answer begins with its own hello, or is the
    /// level ending alone), and stops once an empty batch gets an empty answer; the caller then
    /// stores what arrived and sends that last answer with [`end_as_listener`].
    Listener,
}

/// The slowest link duet still waits for: 8 KiB/s.
const SLOWEST_LINK_BYTES_PER_SEC: u64 = 8 * 1024;

/// How long `bytes` just written may take to reach the peer over the slowest link.
fn in_flight(bytes: u64) -> Duration {
    Duration::from_millis(bytes.saturating_mul(1000) / SLOWEST_LINK_BYTES_PER_SEC)
}

/// Runs one sync conversation in lock-step, either end: the one driver for both roles.
///
/// Before each step it loads what the session wants from `backend` into `docs` (a backend that
/// reads files should wrap them in [`Blocking`]); the session works on `docs` alone, and what it
/// changed stays there for the caller to store.
#[allow(clippy::too_many_arguments)]
pub async fn drive<R, W, B, F>(
    role: Role,
    recv: &mut R,
    send: &mut W,
    session: &mut SyncSession,
    docs: &mut Docs,
    backend: &mut B,
    timeout: Duration,
    progress: &mut F,
) -> Result<Traffic, SyncNetError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    B: Backend,
    F: FnMut(u64),
{
    let mut traffic = Traffic::default();
    prepare(session, None, docs, backend);
    let mut out = match role {
        Role::Dialer => Some(session.start(docs)),
        Role::Listener => None,
    };
    for _ in 0..MAX_TURNS {
        let before = traffic.sent;
        let sent_empty = match out.take() {
            Some(batch) => {
                send_batch(send, &batch, &mut traffic).await?;
                batch.0.is_empty()
            }
            None => false,
        };
        // A write returns once the bytes are buffered, not once they arrived: the answer can
        // only come after the peer has received all of them, which over a slow, lossy link
        // takes a while. Allow for that on top of the usual wait.
        let wait = timeout + in_flight(traffic.sent - before);
        // The snapshots of a batch load while its later frames are still on their way.
        let mut preloader = docs.preloader();
        let takes = |journal| session.accepts_changes(journal);
        let mut on_part = |part| preloader.push(docs, takes, part);
        let got = recv_parts(
            recv,
            wait,
            &mut traffic,
            progress,
            MAX_BATCH_BYTES,
            &mut on_part,
        );
        if !got.await? {
            return Err(SyncNetError::Closed);
        }
        // Waiting for loads still running blocks: off the async workers, and only then.
        let incoming = match preloader.is_loading() {
            true => tokio::task::spawn_blocking(move || preloader.finish())
                .await
                .map_err(|_| SyncError::Malformed("a snapshot failed to load"))?,
            false => preloader.finish(),
        };
        let got_empty = incoming.batch().0.is_empty();
        if role == Role::Dialer && sent_empty && got_empty {
            let _ = send.shutdown().await;
            return Ok(traffic);
        }
        prepare(session, Some(incoming.batch()), docs, backend);
        let reply = if role == Role::Listener && traffic.sent == 0 {
            session.answer_hello(docs, incoming.into_batch())?
        } else {
            session.handle_received(docs, incoming)?
        };
        if session.is_over() {
            // Both sides were level at hello. The dialer has heard so and hangs up; the
            // listener's answer that says so is left to `end_as_listener`, as below.
            if role == Role::Dialer {
                let _ = send.shutdown().await;
            }
            return Ok(traffic);
        }
        if role == Role::Listener && got_empty && reply.0.is_empty() {
            // Both are done. The last (empty) answer is left to `end_as_listener`, so the
            // caller can first make what arrived durable: when the dialer hears the end, it
            // is stored.
            return Ok(traffic);
        }
        out = Some(reply);
    }
    Err(SyncNetError::TooManyTurns)
}

/// A backend whose loads block (files): each runs under `block_in_place`, so the async worker
/// it runs on hands its other tasks over first. Needs the multi-threaded runtime.
pub struct Blocking<B>(pub B);

impl<B: Backend> Backend for Blocking<B> {
    fn stored_heads(
        &mut self,
        journal: duet_core::JournalId,
    ) -> std::collections::BTreeMap<duet_core::VolumeId, Vec<automerge::ChangeHash>> {
        tokio::task::block_in_place(|| self.0.stored_heads(journal))
    }

    fn load_doc(
        &mut self,
        journal: duet_core::JournalId,
        volume: duet_core::VolumeId,
    ) -> Option<automerge::AutoCommit> {
        tokio::task::block_in_place(|| self.0.load_doc(journal, volume))
    }

    fn saved_bytes(
        &mut self,
        journal: duet_core::JournalId,
        volume: duet_core::VolumeId,
    ) -> Option<Vec<u8>> {
        tokio::task::block_in_place(|| self.0.saved_bytes(journal, volume))
    }

    fn signatures(
        &mut self,
        journal: duet_core::JournalId,
        volume: duet_core::VolumeId,
    ) -> Vec<duet_core::authority::SignedHeads> {
        tokio::task::block_in_place(|| self.0.signatures(journal, volume))
    }
}

/// Send the listener's last answer that ends the conversation ([`SyncSession::closing`]: empty,
/// or the level ending).
pub async fn end_as_listener<W: AsyncWrite + Unpin>(
    send: &mut W,
    traffic: &mut Traffic,
    closing: &Batch,
) -> Result<(), SyncNetError> {
    send_batch(send, closing, traffic).await?;
    let _ = send.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_that_never_ends_is_cut_off_at_the_bound() {
        let (mut near, mut far) = tokio::io::duplex(1 << 20);
        let writer = tokio::spawn(async move {
            // Frame after frame, each saying "more follows", each a valid empty batch part.
            let mut part = vec![1u8];
            part.extend_from_slice(&encode_batch(&Batch::default()));
            for _ in 0..10_000 {
                if write_frame(&mut far, &part).await.is_err() {
                    break;
                }
            }
        });
        let mut traffic = Traffic::default();
        let result = recv_parts(
            &mut near,
            Duration::from_secs(5),
            &mut traffic,
            &mut |_| {},
            1024,
            &mut |_| {},
        )
        .await;
        assert!(
            matches!(result, Err(SyncNetError::BatchTooLarge)),
            "{result:?}"
        );
        assert!(
            traffic.received <= 1024 + 64,
            "stopped right at the bound: {traffic:?}"
        );
        drop(near);
        let _ = writer.await;
    }
}
