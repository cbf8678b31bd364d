//! Pairing through a relay server that the test starts on loopback, with both endpoints unable
//! to use direct paths at all (no IP transports), so every packet goes through the relay.

use std::time::Duration;

use duet_core::pairing::Ticket;
use duet_net::{
    Gate, NetConfig, PAIR_ALPN, RelayMode, SYNC_ALPN, endpoint_builder, pair_invite, pair_join,
};
use iroh::Endpoint;
use iroh::tls::CaTlsConfig;

use crate::util::*;

pub async fn relay_only_node(seed: u8, relay: &RelayMode) -> (Endpoint, Gate) {
    let gate = Gate::new();
    let cfg = NetConfig {
        secret_key: [seed; 32],
        relay: relay.clone(),
        bind: None,
        lan: duet_net::lan::Lan::Off,
    };
    let endpoint = endpoint_builder(&cfg)
        .unwrap()
        // The test relay has a self-signed certificate.
        .ca_tls_config(CaTlsConfig::insecure_skip_verify())
        // No UDP sockets: no direct path can exist, so the relay carries everything.
        .clear_ip_transports()
        .alpns(vec![PAIR_ALPN.to_vec(), SYNC_ALPN.to_vec()])
        .hooks(gate.clone())
        .bind()
        .await
        .expect("bind a relay-only endpoint");
    tokio::time::timeout(Duration::from_secs(20), endpoint.online())
        .await
        .expect("the endpoint reaches the loopback relay");
    (endpoint, gate)
}

#[tokio::test]
async fn pairing_works_through_a_loopback_relay_alone() {
    bounded(async {
        let (_relay_map, relay_url, _server) = iroh::test_utils::run_relay_server()
            .await
            .expect("start a relay on loopback");
        let relay = RelayMode::Custom(relay_url.clone());
        let (alice, alice_gate) = relay_only_node(1, &relay).await;
        let (bob, _) = relay_only_node(2, &relay).await;
        assert!(alice.bound_sockets().is_empty());

        let (on_ticket, ticket_rx) = ticket_channel();
        let (alice_confirm, alice_saw) = answering(true);
        let (bob_confirm, bob_saw) = answering(true);
        let invite = {
            let (alice, gate) = (alice.clone(), alice_gate.clone());
            tokio::spawn(async move {
                pair_invite(
                    &alice,
                    &gate,
                    &identity("Alice", 1),
                    TTL,
                    on_ticket,
                    alice_confirm,
                    PAIR_TIMEOUT,
                )
                .await
            })
        };
        let ticket = Ticket::decode(&ticket_rx.await.unwrap()).unwrap();
        assert!(ticket.addrs.is_empty(), "no direct address to dial");
        assert_eq!(
            ticket.relay_url.as_deref(),
            Some(relay_url.to_string().as_str())
        );

        let bob_result = pair_join(
            &bob,
            &ticket,
            &identity("Bob", 2),
            bob_confirm,
            PAIR_TIMEOUT,
        )
        .await
        .expect("bob pairs through the relay");
        let alice_result = invite
            .await
            .unwrap()
            .expect("alice pairs through the relay");

        assert_eq!(bob_result.endpoint_id, *alice.id().as_bytes());
        assert_eq!(alice_result.endpoint_id, *bob.id().as_bytes());
        assert!(alice_result.addrs.is_empty() && bob_result.addrs.is_empty());
        assert_eq!(alice_result.relay_url, Some(relay_url.to_string()));
        assert_eq!(bob_result.relay_url, Some(relay_url.to_string()));
        assert_eq!(
            alice_saw.lock().unwrap().as_ref().unwrap().0,
            bob_saw.lock().unwrap().as_ref().unwrap().0
        );
    })
    .await;
}
