//! A paired partner with a modified client, on the wire: it holds Sam's real device key, so
//! Alex's `duet serve` admits it, and then it misbehaves. Alex's serve must end each bad
//! session on its own, keep serving the genuine client meanwhile, and change nothing of its
//! journal.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use duet_core::sync::mem::MemReplica;
use duet_core::sync::{PeerState, Shared, SyncSession};
use duet_net::{Gate, NetConfig, RelayMode, SYNC_ALPN};
use duet_store::Home;
use duet_tests::TestEnv;
use duet_tests::pairing::{interrupt, pair, serve, wait};
use tokio::io::{AsyncRead, ReadBuf};

const DUET: &str = env!("CARGO_BIN_EXE_duet");

/// Every file of a journal and its bytes.
fn journal_files(env: &TestEnv) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(env.journal_dir())
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// A reader that hands over `left` bytes and then never anything more: a peer that stops
/// reading (QUIC flow control then stops the sender).
struct StopsAfter<R> {
    inner: R,
    left: usize,
}

impl<R: AsyncRead + Unpin> AsyncRead for StopsAfter<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.left == 0 {
            return Poll::Pending;
        }
        let want = self.left.min(buf.remaining());
        let mut scratch = vec![0u8; want];
        let mut part = ReadBuf::new(&mut scratch);
        let poll = Pin::new(&mut self.inner).poll_read(cx, &mut part);
        let got = part.filled().len();
        buf.put_slice(&scratch[..got]);
        self.left -= got;
        poll
    }
}

/// A backend with nothing stored: the modified client holds no journal at all.
struct Nothing;

impl duet_core::sync::Backend for Nothing {
    fn stored_heads(
        &mut self,
        _: duet_core::JournalId,
    ) -> BTreeMap<duet_core::VolumeId, Vec<automerge::ChangeHash>> {
        BTreeMap::new()
    }
    fn load_doc(
        &mut self,
        _: duet_core::JournalId,
        _: duet_core::VolumeId,
    ) -> Option<automerge::AutoCommit> {
        None
    }
    fn saved_bytes(&mut self, _: duet_core::JournalId, _: duet_core::VolumeId) -> Option<Vec<u8>> {
        None
    }
    fn signatures(
        &mut self,
        _: duet_core::JournalId,
        _: duet_core::VolumeId,
    ) -> Vec<duet_core::authority::SignedHeads> {
        Vec::new()
    }
}

/// Waits until Alex's end closes `recv` (an error or the end of the stream), at most `limit`.
async fn closed_by_alex(recv: &mut iroh::endpoint::RecvStream, limit: Duration) -> bool {
    let mut sink = vec![0u8; 64 * 1024];
    tokio::time::timeout(limit, async {
        loop {
            match recv.read(&mut sink).await {
                Ok(None) | Ok(Some(0)) | Err(_) => return,
                Ok(Some(_)) => continue,
            }
        }
    })
    .await
    .is_ok()
}

#[test]
fn a_partner_misbehaving_on_the_wire_changes_nothing_and_blocks_nobody() {
    let alex = TestEnv::new(DUET).seeded(11);
    let _ = alex.duet(["init", "--name", "Alex"]).ok();
    let sam = TestEnv::new(DUET).seeded(12).sharing_clock_with(&alex);
    let _ = sam.duet(["init", "--name", "Sam"]).ok();
    pair(&alex, &sam);
    // Enough of Alex's journal that a peer who stops reading fills every window.
    duet_tests::generate::populate(alex.home(), 3000, 1_764_000_000_000, 7).unwrap();
    let _ = alex.duet(["list", "-n", "1"]).ok();
    let before = journal_files(&alex);
    let (server, _lines) = serve(&alex);

    let sams_home = Home::new(sam.home());
    let key = sams_home.device_key().unwrap();
    let partner = sams_home.partner().unwrap().unwrap();
    let alex_id: [u8; 32] = partner
        .endpoint_id
        .parse::<duet_net::EndpointId>()
        .unwrap()
        .as_bytes()
        .to_owned();
    let addrs: Vec<SocketAddr> = partner
        .addrs
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    let journals = (
        Home::new(alex.home()).config().unwrap().journal,
        sams_home.config().unwrap().journal,
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let cfg = NetConfig {
            secret_key: key,
            relay: RelayMode::Disabled,
            bind: Some("127.0.0.1:0".parse().unwrap()),
            lan: duet_net::lan::Lan::Off,
        };
        let ep = duet_net::bind_endpoint(&cfg, vec![], Gate::new())
            .await
            .unwrap();
        let connect = || async {
            let addr = duet_net::endpoint_addr(&alex_id, &addrs, None).unwrap();
            tokio::time::timeout(Duration::from_secs(20), ep.connect(addr, SYNC_ALPN))
                .await
                .expect("connects in time")
                .expect("Alex admits Sam's key")
        };

        // 1. Connects and never opens a stream: held open while the rest goes on.
        let idle = connect().await;

        // 2. Random bytes right after the handshake.
        let junk = connect().await;
        let (mut send, mut recv) = junk.open_bi().await.unwrap();
        let mut rng = duet_core::SeededRng::new(99);
        let mut noise = vec![0u8; 4096];
        rng.fill(&mut noise);
        send.write_all(&[0, 0, 0, 40]).await.unwrap();
        send.write_all(&noise[..40]).await.unwrap();
        send.write_all(&noise).await.unwrap();
        assert!(
            closed_by_alex(&mut recv, Duration::from_secs(30)).await,
            "random bytes"
        );

        // 3. A frame header announcing 4 GiB.
        let huge = connect().await;
        let (mut send, mut recv) = huge.open_bi().await.unwrap();
        send.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        assert!(
            closed_by_alex(&mut recv, Duration::from_secs(30)).await,
            "4 GiB header"
        );

        // 4. Half a frame, then the stream ends.
        let cut = connect().await;
        let (mut send, mut recv) = cut.open_bi().await.unwrap();
        send.write_all(&[0, 0, 1, 0, 1, 2, 3]).await.unwrap();
        send.finish().unwrap();
        assert!(
            closed_by_alex(&mut recv, Duration::from_secs(30)).await,
            "cut frame"
        );

        // 5. A genuine client that stops reading once Alex starts sending its journal.
        let stalled = connect().await;
        let (mut send, recv) = stalled.open_bi().await.unwrap();
        let stall = tokio::spawn(async move {
            let mut recv = StopsAfter {
                inner: recv,
                left: 32 * 1024,
            };
            let shared = vec![
                Shared {
                    journal: journals.0,
                    accept_changes: true,
                },
                Shared {
                    journal: journals.1,
                    accept_changes: false,
                },
            ];
            let mut session = SyncSession::new(shared, PeerState::default());
            let mut docs = MemReplica::default();
            let _ = duet_net::sync::drive(
                duet_net::sync::Role::Dialer,
                &mut recv,
                &mut send,
                &mut session,
                &mut docs,
                &mut Nothing,
                Duration::from_secs(600),
                &mut |_| {},
            )
            .await;
            // Keep the stream (and so the stall) alive until the test drops the task.
            std::future::pending::<()>().await;
        });
        tokio::time::sleep(Duration::from_secs(1)).await;

        // Meanwhile the genuine Sam syncs and gets everything.
        let genuine = sam.duet(["sync", "--timeout", "60"]).spawn(true);
        let out = tokio::task::spawn_blocking(move || wait(genuine, Duration::from_secs(90)))
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "the genuine sync was blocked: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !stall.is_finished(),
            "the client that stopped reading is still stuck"
        );
        stall.abort();
        drop((idle, junk, huge, cut, stalled));
        ep.close().await;
    });

    // Every item arrived (answers included, though Sam sees those only once he answers too).
    let mine = alex.duet(["status", "--json"]).ok().json()["counts"]["mine"].clone();
    let theirs = sam.duet(["status", "--json"]).ok().json()["counts"]["partner"].clone();
    assert_eq!(theirs, mine, "Sam got all of Alex's journal");
    let total: u64 = mine
        .as_object()
        .unwrap()
        .values()
        .filter_map(|v| v.as_u64())
        .sum();
    assert_eq!(total, 3000);
    assert!(interrupt(server), "Alex's serve survived and stops cleanly");
    assert_eq!(
        journal_files(&alex),
        before,
        "Alex's journal is byte-identical"
    );
}
