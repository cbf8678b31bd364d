use std::time::Duration;

use duet_net::{FrameError, MAX_FRAME, SYNC_ALPN, close_code, read_frame, write_frame};
use iroh::endpoint::{ConnectionError, VarInt};

use crate::util::*;

/// Runs `endpoint.accept()` once and reports whether the application got a connection.
async fn accept_one(endpoint: &iroh::Endpoint) -> Option<iroh::endpoint::Connection> {
    let incoming = endpoint.accept().await?;
    incoming.await.ok()
}

#[tokio::test]
async fn an_unpaired_endpoint_is_refused_on_sync_before_sending_anything() {
    bounded(async {
        let (alice, alice_gate) = node(1).await;
        let (stranger, _) = node(9).await;
        let server = {
            let alice = alice.clone();
            tokio::spawn(async move { accept_one(&alice).await })
        };

        let target = alice.addr();
        // The handshake itself may finish before the close arrives, so the refusal shows up
        // either as the connect error or as the connection's close; it must be the gate's.
        match stranger.connect(target.clone(), SYNC_ALPN).await {
            Err(err) => assert!(duet_net::refused_by_gate(&err), "not the gate: {err:?}"),
            Ok(conn) => {
                if let Ok((mut send, _recv)) = conn.open_bi().await {
                    let _ = write_frame(&mut send, b"let me in").await;
                }
                match conn.closed().await {
                    ConnectionError::ApplicationClosed(close) => {
                        assert_eq!(close.error_code, VarInt::from_u32(close_code::NOT_ALLOWED));
                        assert_eq!(&close.reason[..], b"not paired");
                    }
                    other => panic!("expected the gate's close, got {other:?}"),
                }
            }
        }
        assert!(
            server.await.unwrap().is_none(),
            "the application never saw the stranger's connection"
        );

        // Pin the stranger at runtime: the next attempt is admitted and its frame read.
        alice_gate.allow(stranger.id());
        let server = {
            let alice = alice.clone();
            tokio::spawn(async move {
                let conn = accept_one(&alice).await.expect("admitted");
                let (_send, mut recv) = conn.accept_bi().await.unwrap();
                let frame = read_frame(&mut recv, 1024, Duration::from_secs(10)).await;
                (duet_net::remote_endpoint_id(&conn), frame.unwrap().unwrap())
            })
        };
        let conn = stranger.connect(target, SYNC_ALPN).await.unwrap();
        let (mut send, _recv) = conn.open_bi().await.unwrap();
        write_frame(&mut send, b"hello partner").await.unwrap();
        let (remote, frame) = server.await.unwrap();
        assert_eq!(remote, *stranger.id().as_bytes());
        assert_eq!(frame, b"hello partner");
    })
    .await;
}

#[tokio::test]
async fn an_oversized_frame_over_a_connection_is_refused_without_waiting_for_it() {
    bounded(async {
        let (alice, alice_gate) = node(1).await;
        let (bob, _) = node(2).await;
        alice_gate.allow(bob.id());
        let server = {
            let alice = alice.clone();
            tokio::spawn(async move {
                let conn = accept_one(&alice).await.expect("bob is paired");
                let (_send, mut recv) = conn.accept_bi().await.unwrap();
                // A long timeout: if the reader waited for the announced body it would hang
                // here instead of failing at once.
                let result = read_frame(&mut recv, MAX_FRAME, Duration::from_secs(45)).await;
                conn.close(VarInt::from_u32(close_code::PROTOCOL), b"frame too large");
                result
            })
        };
        let conn = bob.connect(alice.addr(), SYNC_ALPN).await.unwrap();
        let (mut send, _recv) = conn.open_bi().await.unwrap();
        send.write_all(&((MAX_FRAME as u32) + 1).to_be_bytes())
            .await
            .unwrap();
        send.write_all(b"a little of the body").await.unwrap();

        let result = tokio::time::timeout(Duration::from_secs(20), server)
            .await
            .expect("refused promptly")
            .unwrap();
        assert!(
            matches!(
                result,
                Err(FrameError::TooLarge { len, max: MAX_FRAME }) if len == MAX_FRAME as u64 + 1
            ),
            "{result:?}"
        );
        match conn.closed().await {
            ConnectionError::ApplicationClosed(close) => {
                assert_eq!(close.error_code, VarInt::from_u32(close_code::PROTOCOL));
            }
            other => panic!("expected an application close, got {other:?}"),
        }
    })
    .await;
}
