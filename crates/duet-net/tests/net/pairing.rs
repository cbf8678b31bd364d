use std::sync::mpsc;
use std::time::Duration;

use duet_core::pairing::{PairingError, Ticket};
use duet_net::{PairError, pair_invite, pair_join};

use crate::util::*;

#[tokio::test]
async fn both_confirm_and_both_get_the_partner() {
    bounded(async {
        let (alice, alice_gate) = node(1).await;
        let (bob, _) = node(2).await;
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
        let text = ticket_rx.await.unwrap();
        assert!(alice_gate.is_invite_open());
        let ticket = Ticket::decode(&text).unwrap();
        assert_eq!(ticket.endpoint_id, *alice.id().as_bytes());
        assert!(
            !ticket.addrs.is_empty(),
            "the ticket carries a loopback address"
        );

        let bob_result = pair_join(
            &bob,
            &ticket,
            &identity("Bob", 2),
            bob_confirm,
            PAIR_TIMEOUT,
        )
        .await
        .expect("bob pairs");
        let alice_result = invite.await.unwrap().expect("alice pairs");

        assert_eq!(alice_result.endpoint_id, *bob.id().as_bytes());
        assert_eq!(alice_result.name, "Bob");
        assert_eq!(alice_result.journal_id, [2; 16]);
        assert!(
            bob.bound_sockets()
                .iter()
                .any(|a| alice_result.addrs.contains(a)),
            "alice learned where bob is: {:?}",
            alice_result.addrs
        );
        assert_eq!(bob_result.endpoint_id, *alice.id().as_bytes());
        assert_eq!(bob_result.name, "Alice");
        assert_eq!(bob_result.journal_id, [1; 16]);
        assert!(
            alice
                .bound_sockets()
                .iter()
                .any(|a| bob_result.addrs.contains(a)),
            "bob learned where alice is: {:?}",
            bob_result.addrs
        );

        let alice_saw = alice_saw.lock().unwrap().clone().unwrap();
        let bob_saw = bob_saw.lock().unwrap().clone().unwrap();
        assert_eq!(alice_saw.0, bob_saw.0, "both screens show the same code");
        assert_eq!(alice_saw.0.len(), 6);
        assert_eq!(alice_saw.1, "Bob");
        assert_eq!(bob_saw.1, "Alice");
        assert!(
            !alice_gate.is_invite_open(),
            "the invite closes when pairing ends"
        );
    })
    .await;
}

#[tokio::test]
async fn a_no_on_either_side_pins_nobody() {
    bounded(async {
        for (alice_says, bob_says) in [(false, true), (true, false)] {
            let (alice, alice_gate) = node(1).await;
            let (bob, _) = node(2).await;
            let (on_ticket, ticket_rx) = ticket_channel();
            let (alice_confirm, _) = answering(alice_says);
            let (bob_confirm, _) = answering(bob_says);
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
            let bob_result = pair_join(
                &bob,
                &ticket,
                &identity("Bob", 2),
                bob_confirm,
                PAIR_TIMEOUT,
            )
            .await;
            let alice_result = invite.await.unwrap();

            let expected = |me: bool| {
                if me {
                    PairingError::DeclinedByPartner
                } else {
                    PairingError::DeclinedLocally
                }
            };
            match (alice_result, bob_result) {
                (Err(PairError::Pairing(a)), Err(PairError::Pairing(b))) => {
                    assert_eq!(a, expected(alice_says));
                    assert_eq!(b, expected(bob_says));
                }
                other => panic!("both sides must refuse, got {other:?}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_wrong_secret_is_refused_and_the_invite_keeps_waiting() {
    bounded(async {
        let (alice, alice_gate) = node(1).await;
        let (bob, _) = node(2).await;
        let (mallory, _) = node(3).await;
        let (on_ticket, ticket_rx) = ticket_channel();
        let (alice_confirm, _) = answering(true);
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

        let mut guessed = ticket.clone();
        guessed.secret[3] ^= 0x10;
        let (never_asked, asked) = answering(true);
        let err = pair_join(
            &mallory,
            &guessed,
            &identity("Mallory", 3),
            never_asked,
            PAIR_TIMEOUT,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, PairError::Pairing(PairingError::WrongSecret)),
            "{err:?}"
        );
        assert!(
            asked.lock().unwrap().is_none(),
            "no code without the secret"
        );
        assert!(
            alice_gate.is_invite_open(),
            "a wrong secret does not end the invite"
        );

        let (bob_confirm, _) = answering(true);
        let bob_result = pair_join(
            &bob,
            &ticket,
            &identity("Bob", 2),
            bob_confirm,
            PAIR_TIMEOUT,
        )
        .await
        .expect("the real partner still gets in");
        assert_eq!(bob_result.endpoint_id, *alice.id().as_bytes());
        let alice_result = invite.await.unwrap().unwrap();
        assert_eq!(alice_result.endpoint_id, *bob.id().as_bytes());
    })
    .await;
}

#[tokio::test]
async fn a_used_ticket_is_refused() {
    bounded(async {
        let (alice, alice_gate) = node(1).await;
        let (bob, _) = node(2).await;
        let (carol, _) = node(3).await;
        let (on_ticket, ticket_rx) = ticket_channel();

        // Alice's confirmation waits until the test lets it go, so that Carol arrives while
        // Bob's session is still running.
        let (shown_tx, shown_rx) = tokio::sync::oneshot::channel();
        let (release_tx, release_rx) = mpsc::channel::<bool>();
        let alice_confirm = move |_: &_, _: &str| {
            let _ = shown_tx.send(());
            release_rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or(false)
        };
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
        let bob_join = {
            let (bob, ticket) = (bob.clone(), ticket.clone());
            let (bob_confirm, _) = answering(true);
            tokio::spawn(async move {
                pair_join(
                    &bob,
                    &ticket,
                    &identity("Bob", 2),
                    bob_confirm,
                    PAIR_TIMEOUT,
                )
                .await
            })
        };
        shown_rx.await.expect("alice is shown the code");

        let (carol_confirm, _) = answering(true);
        let err = pair_join(
            &carol,
            &ticket,
            &identity("Carol", 3),
            carol_confirm,
            PAIR_TIMEOUT,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, PairError::Pairing(PairingError::AlreadyUsed)),
            "{err:?}"
        );

        release_tx.send(true).unwrap();
        bob_join.await.unwrap().expect("bob pairs");
        invite.await.unwrap().expect("alice pairs with bob");

        // Once the invite is over, the pairing protocol is closed altogether. (Something must
        // still accept on Alice's endpoint for the gate to answer, as `duet serve` would.)
        let server = {
            let alice = alice.clone();
            tokio::spawn(async move {
                let incoming = alice.accept().await?;
                incoming.await.ok()
            })
        };
        let (carol_confirm, _) = answering(true);
        let err = pair_join(
            &carol,
            &ticket,
            &identity("Carol", 3),
            carol_confirm,
            PAIR_TIMEOUT,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, PairError::NoInviteOpen), "{err:?}");
        assert!(
            server.await.unwrap().is_none(),
            "the gate never let Carol through"
        );
    })
    .await;
}

#[tokio::test]
async fn an_invite_nobody_answers_ends_with_a_clear_error() {
    bounded(async {
        let (alice, gate) = node(1).await;
        let (never, _) = answering(true);
        let err = pair_invite(
            &alice,
            &gate,
            &identity("Alice", 1),
            Duration::from_secs(1),
            |_| {},
            never,
            PAIR_TIMEOUT,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, PairError::TicketExpired), "{err:?}");
        assert!(err.to_string().contains("duet pair invite"));

        let (never, _) = answering(true);
        let err = pair_invite(
            &alice,
            &gate,
            &identity("Alice", 1),
            TTL,
            |_| {},
            never,
            Duration::from_millis(500),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, PairError::TimedOut(_)), "{err:?}");
        assert!(!gate.is_invite_open());
    })
    .await;
}

#[tokio::test]
async fn two_joiners_at_the_same_moment_exactly_one_gets_through() {
    bounded(async {
        let (alice, alice_gate) = node(1).await;
        let (bob, _) = node(2).await;
        let (carol, _) = node(3).await;
        let (on_ticket, ticket_rx) = ticket_channel();
        let (alice_confirm, alice_saw) = answering(true);
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
        // Both dial with the same ticket at once.
        let join = |ep: iroh::Endpoint, name: &'static str, n: u8| {
            let ticket = ticket.clone();
            let (confirm, _) = answering(true);
            tokio::spawn(async move {
                pair_join(&ep, &ticket, &identity(name, n), confirm, PAIR_TIMEOUT).await
            })
        };
        let (b, c) = (join(bob.clone(), "Bob", 2), join(carol.clone(), "Carol", 3));
        let (b, c) = (b.await.unwrap(), c.await.unwrap());
        let paired = invite.await.unwrap().expect("alice pairs with one of them");
        let (winner, loser) = match (&b, &c) {
            (Ok(_), Err(e)) => (&bob, e),
            (Err(e), Ok(_)) => (&carol, e),
            other => panic!("exactly one joiner must get through: {other:?}"),
        };
        assert_eq!(paired.endpoint_id, *winner.id().as_bytes());
        assert!(
            matches!(loser, PairError::Pairing(PairingError::AlreadyUsed)),
            "{loser:?}"
        );
        let saw = alice_saw.lock().unwrap().clone().unwrap();
        assert_eq!(
            saw.1, paired.name,
            "Alice was asked about the one she paired with"
        );
    })
    .await;
}
