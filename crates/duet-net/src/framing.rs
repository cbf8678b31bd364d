//! Length-prefixed frames: a `u32` big-endian payload length, then the payload.
//!
//! The length is checked against the limit before anything is allocated, and every read waits at
//! most `timeout` for the next bytes, so a silent peer costs at most `max` bytes and `timeout` of
//! waiting. A peer that keeps sending is not cut off however slow its link (a large frame over a
//! lossy Wi-Fi takes what it takes); what bounds a whole session is the caller's wall time.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest payload duet ever sends or accepts in one frame (16 MiB).
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The announced or offered payload is over the limit.
    #[error(
        "the other device sent a {len}-byte message, over the {max}-byte limit; the connection was closed \
            (make sure both devices run the same duet version)"
    )]
    TooLarge {
        /// The announced length.
        len: u64,
        /// The limit that applied.
        max: usize,
    },
    /// The stream ended inside a frame.
    #[error("the connection ended in the middle of a message; check the network and try again")]
    Truncated,
    /// Nothing complete arrived in time.
    #[error(
        "the other device did not answer within {} seconds; check that it is still running and try again",
        .0.as_secs()
    )]
    TimedOut(Duration),
    /// The stream failed.
    #[error("the connection failed: {0}; check the network and try again")]
    Io(#[from] std::io::Error),
}

/// Writes one frame and flushes it.
pub async fn write_frame<W>(send: &mut W, payload: &[u8]) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin + ?Sized,
{
    if payload.len() > MAX_FRAME {
        return Err(FrameError::TooLarge {
            len: payload.len() as u64,
            max: MAX_FRAME,
        });
    }
    send.write_all(&(payload.len() as u32).to_be_bytes())
        .await?;
    send.write_all(payload).await?;
    send.flush().await?;
    Ok(())
}

/// Reads one frame of at most `max` bytes (never more than [`MAX_FRAME`]), waiting at most
/// `timeout` for each next piece of it.
///
/// Returns `Ok(None)` if the stream ended cleanly before the first byte of a frame.
pub async fn read_frame<R>(
    recv: &mut R,
    max: usize,
    timeout: Duration,
) -> Result<Option<Vec<u8>>, FrameError>
where
    R: AsyncRead + Unpin + ?Sized,
{
    let max = max.min(MAX_FRAME);
    let mut read = async |buf: &mut [u8]| -> Result<usize, FrameError> {
        tokio::time::timeout(timeout, recv.read(buf))
            .await
            .map_err(|_| FrameError::TimedOut(timeout))?
            .map_err(FrameError::Io)
    };
    let mut header = [0u8; 4];
    let mut filled = 0;
    while filled < header.len() {
        let n = read(&mut header[filled..]).await?;
        if n == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        filled += n;
    }
    let len = u32::from_be_bytes(header);
    if len as usize > max {
        return Err(FrameError::TooLarge {
            len: u64::from(len),
            max,
        });
    }
    let mut payload = vec![0u8; len as usize];
    let mut filled = 0;
    while filled < payload.len() {
        let n = read(&mut payload[filled..]).await?;
        if n == 0 {
            return Err(FrameError::Truncated);
        }
        filled += n;
    }
    Ok(Some(payload))
}

/// The frame fuzz target: the input is what a peer sends on a stream; every frame read from
/// it goes to the decoders a frame's payload reaches (a sync batch, a pairing message). The
/// first byte picks the reader's limit. Must return normally for any input.
#[cfg(any(test, feature = "fuzzing"))]
pub fn fuzz_frames(data: &[u8]) {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let max = [0, 16, 4096, MAX_FRAME][usize::from(mode & 3)];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(async {
        for _ in 0..64 {
            match read_frame(&mut rest, max, Duration::from_secs(1)).await {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= max, "a frame over the limit was read");
                    let _ = duet_core::sync::decode_batch(&frame);
                    let _ = duet_core::pairing::PairMessage::decode(&frame);
                }
                Ok(None) | Err(_) => break,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every stored corpus file and regression of the `frame` target runs through it.
    #[test]
    fn frame_corpus_replays() {
        let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        let mut ran = 0;
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join("frame")) else {
                continue;
            };
            for entry in entries.flatten() {
                fuzz_frames(&std::fs::read(entry.path()).unwrap());
                ran += 1;
            }
        }
        assert!(ran > 0, "no frame corpus under {}", fuzz.display());
    }

    /// Writes seeds for the `frame` target from real frames:
    /// `cargo test -p duet-net write_frame_seeds -- --ignored`.
    #[test]
    #[ignore = "writes files; run by hand to refresh the seed corpus"]
    fn write_frame_seeds() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/frame");
        std::fs::create_dir_all(&dir).unwrap();
        let mut n = 0;
        for (_, seeds) in duet_core::fuzzing::seeds() {
            for seed in seeds {
                let mut stream = vec![3u8];
                // Each seed's length-prefixed parts become frames.
                let mut rest = &seed[1..];
                while rest.len() >= 2 {
                    let len =
                        usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
                    stream.extend((len as u32).to_be_bytes());
                    stream.extend(&rest[2..2 + len]);
                    rest = &rest[2 + len..];
                }
                std::fs::write(dir.join(format!("seed-{n}")), &stream).unwrap();
                n += 1;
            }
        }
    }

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn frames_round_trip_and_end_cleanly() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            write_frame(&mut a, b"hello").await.unwrap();
            write_frame(&mut a, b"").await.unwrap();
            write_frame(&mut a, &[7u8; 1000]).await.unwrap();
        });
        assert_eq!(
            read_frame(&mut b, 2000, T).await.unwrap().unwrap(),
            b"hello"
        );
        assert_eq!(read_frame(&mut b, 2000, T).await.unwrap().unwrap(), b"");
        assert_eq!(
            read_frame(&mut b, 2000, T).await.unwrap().unwrap(),
            vec![7u8; 1000]
        );
        writer.await.unwrap();
        assert!(read_frame(&mut b, 2000, T).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_oversized_header_is_refused_before_the_body_is_awaited() {
        let (mut a, mut b) = tokio::io::duplex(64);
        // Announce 4 GiB - 1 and then send nothing more, keeping the stream open: a reader that
        // allocated and waited for the body would time out instead of refusing at once.
        a.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        let err = read_frame(&mut b, MAX_FRAME, Duration::from_secs(30))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                FrameError::TooLarge { len, max } if len == u64::from(u32::MAX) && max == MAX_FRAME
            ),
            "{err:?}"
        );
        drop(a);
    }

    #[tokio::test]
    async fn the_caller_limit_applies_and_cannot_exceed_max_frame() {
        let (mut a, mut b) = tokio::io::duplex(64);
        write_frame(&mut a, &[1u8; 11]).await.unwrap();
        let err = read_frame(&mut b, 10, T).await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len: 11, max: 10 }));

        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&((MAX_FRAME as u32) + 1).to_be_bytes())
            .await
            .unwrap();
        let err = read_frame(&mut b, usize::MAX, T).await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { max: MAX_FRAME, .. }));
    }

    #[tokio::test]
    async fn writing_an_oversized_frame_is_refused() {
        let (mut a, _b) = tokio::io::duplex(64);
        let big = vec![0u8; MAX_FRAME + 1];
        assert!(matches!(
            write_frame(&mut a, &big).await,
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn a_stream_ending_inside_a_frame_is_truncated() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0, 0]).await.unwrap();
        drop(a);
        assert!(matches!(
            read_frame(&mut b, 100, T).await,
            Err(FrameError::Truncated)
        ));

        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0, 0, 0, 10, 1, 2, 3]).await.unwrap();
        drop(a);
        assert!(matches!(
            read_frame(&mut b, 100, T).await,
            Err(FrameError::Truncated)
        ));
    }

    #[tokio::test]
    async fn a_silent_peer_times_out() {
        let (mut a, mut b) = tokio::io::duplex(64);
        // Half a header, then silence.
        a.write_all(&[0, 0]).await.unwrap();
        let limit = Duration::from_millis(200);
        let err = read_frame(&mut b, 100, limit).await.unwrap_err();
        assert!(matches!(err, FrameError::TimedOut(d) if d == limit));
    }
}
