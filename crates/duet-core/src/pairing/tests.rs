//! The handshake run in memory: every message goes through its byte encoding.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;

use super::*;
use crate::fuzzing::{devices_of, local};

const NOW: i64 = 1_800_000_000;
const TTL: i64 = 600;
const SECRET: [u8; 16] = [7; 16];

fn alice() -> LocalPeer {
    local(1, "Alice")
}

fn bob() -> LocalPeer {
    local(2, "Bob")
}

fn open_invite() -> Invitation {
    Invitation::new(alice(), SECRET, NOW + TTL).unwrap()
}

/// Sends a message over the "wire": encode, decode, and check its type.
fn wire(message: impl Into<PairMessage>) -> PairMessage {
    PairMessage::decode(&message.into().encode()).expect("our own encoding decodes")
}

fn as_join(m: PairMessage) -> JoinRequest {
    match m {
        PairMessage::JoinRequest(m) => m,
        other => panic!("expected a join request, got {other:?}"),
    }
}

fn as_reply(m: PairMessage) -> InviteReply {
    match m {
        PairMessage::InviteReply(m) => m,
        other => panic!("expected an invite reply, got {other:?}"),
    }
}

fn as_reveal(m: PairMessage) -> Reveal {
    match m {
        PairMessage::Reveal(m) => m,
        other => panic!("expected a reveal, got {other:?}"),
    }
}

fn as_confirm(m: PairMessage) -> Confirm {
    match m {
        PairMessage::Confirm(m) => m,
        other => panic!("expected a confirmation, got {other:?}"),
    }
}

/// Runs the handshake up to the point where both sides show a code.
/// The ticket travels as text, like a copy-paste between two terminals.
fn run_to_code(
    invitation: &mut Invitation,
    joiner: &LocalPeer,
) -> (Inviter, Joiner, PairingCode, PairingCode) {
    let ticket = Ticket::decode(&invitation.ticket().encode()).unwrap();
    let (mut j, request) = Joiner::new(&ticket, joiner, [0xB0; 32]).unwrap();
    let request = as_join(wire(request));
    let (mut i, reply) = invitation
        .accept(joiner.endpoint_id, &request, NOW, [0xA0; 32])
        .unwrap();
    let (reveal, code_b) = j.handle_reply(&as_reply(wire(reply))).unwrap();
    let code_a = i.handle_reveal(&as_reveal(wire(reveal))).unwrap();
    (i, j, code_a, code_b)
}

#[test]
fn both_confirm_and_each_pins_the_other() {
    let mut invitation = open_invite();
    let (mut inviter, mut joiner, code_a, code_b) = run_to_code(&mut invitation, &bob());
    assert_eq!(code_a, code_b);
    assert_eq!(code_a.to_string().len(), 6);
    assert_eq!(inviter.partner_name(), Some("Bob"));
    assert_eq!(joiner.partner_name(), Some("Alice"));

    let from_a = as_confirm(wire(inviter.decide(true).unwrap()));
    let from_b = as_confirm(wire(joiner.decide(true).unwrap()));
    inviter.handle_confirm(&from_b).unwrap();
    joiner.handle_confirm(&from_a).unwrap();

    let bob_as_seen_by_alice = inviter.finish().unwrap();
    let alice_as_seen_by_bob = joiner.finish().unwrap();
    assert_eq!(bob_as_seen_by_alice.name, "Bob");
    assert_eq!(bob_as_seen_by_alice.endpoint_id, bob().endpoint_id);
    assert_eq!(bob_as_seen_by_alice.journal_id, bob().journal_id);
    assert_eq!(bob_as_seen_by_alice.addrs, bob().addrs);
    assert_eq!(alice_as_seen_by_bob.name, "Alice");
    assert_eq!(alice_as_seen_by_bob.endpoint_id, alice().endpoint_id);
    assert_eq!(alice_as_seen_by_bob.journal_id, alice().journal_id);
}

#[test]
fn partner_confirmation_may_arrive_before_the_local_decision() {
    let mut invitation = open_invite();
    let (mut inviter, mut joiner, _, _) = run_to_code(&mut invitation, &bob());
    let from_b = joiner.decide(true).unwrap();
    inviter.handle_confirm(&from_b).unwrap();
    let from_a = inviter.decide(true).unwrap();
    joiner.handle_confirm(&from_a).unwrap();
    assert!(inviter.finish().is_ok());
    assert!(joiner.finish().is_ok());
}

#[test]
fn wrong_secret_is_refused_and_the_invite_stays_open() {
    let mut invitation = open_invite();
    let mut forged = invitation.ticket();
    forged.secret[0] ^= 1;
    let (_, request) = Joiner::new(&forged, &bob(), [0xB0; 32]).unwrap();
    let err = invitation
        .accept(bob().endpoint_id, &as_join(wire(request)), NOW, [0xA0; 32])
        .unwrap_err();
    assert_eq!(err, PairingError::WrongSecret);
    assert!(!invitation.is_consumed());

    // The right secret still works afterwards.
    let (_, _, code_a, code_b) = run_to_code(&mut invitation, &bob());
    assert_eq!(code_a, code_b);
}

#[test]
fn a_proof_for_another_joiner_id_is_refused() {
    // A proof is bound to the joiner's endpoint id: replaying Bob's request from Mallory fails.
    let mut invitation = open_invite();
    let (_, request) = Joiner::new(&invitation.ticket(), &bob(), [0xB0; 32]).unwrap();
    let err = invitation
        .accept([9; 32], &request, NOW, [0xA0; 32])
        .unwrap_err();
    assert_eq!(err, PairingError::WrongSecret);
}

#[test]
fn expired_ticket_is_refused() {
    let mut invitation = open_invite();
    let (_, request) = Joiner::new(&invitation.ticket(), &bob(), [0xB0; 32]).unwrap();
    let err = invitation
        .accept(bob().endpoint_id, &request, NOW + TTL, [0xA0; 32])
        .unwrap_err();
    assert_eq!(err, PairingError::Expired);
    assert!(err.to_string().contains("duet pair invite"));
    assert!(invitation.ticket().is_expired(NOW + TTL));
    assert!(!invitation.ticket().is_expired(NOW + TTL - 1));
}

#[test]
fn a_ticket_works_only_once() {
    let mut invitation = open_invite();
    let ticket = invitation.ticket();
    let _first = run_to_code(&mut invitation, &bob());
    assert!(invitation.is_consumed());
    for joiner in [bob(), local(3, "Carol")] {
        let (_, request) = Joiner::new(&ticket, &joiner, [0xB1; 32]).unwrap();
        let err = invitation
            .accept(joiner.endpoint_id, &request, NOW + 1, [0xA1; 32])
            .unwrap_err();
        assert_eq!(err, PairingError::AlreadyUsed);
    }
}

#[test]
fn a_no_on_either_side_pins_nothing() {
    for (a_says, b_says) in [(false, true), (true, false), (false, false)] {
        let mut invitation = open_invite();
        let (mut inviter, mut joiner, _, _) = run_to_code(&mut invitation, &bob());
        let from_a = as_confirm(wire(inviter.decide(a_says).unwrap()));
        let from_b = as_confirm(wire(joiner.decide(b_says).unwrap()));
        let a_heard = inviter.handle_confirm(&from_b);
        let b_heard = joiner.handle_confirm(&from_a);
        assert_eq!(a_heard.is_ok(), b_says);
        assert_eq!(b_heard.is_ok(), a_says);
        let a_result = inviter.finish().unwrap_err();
        let b_result = joiner.finish().unwrap_err();
        let expected = |me: bool| {
            if me {
                PairingError::DeclinedByPartner
            } else {
                PairingError::DeclinedLocally
            }
        };
        assert_eq!(a_result, expected(a_says));
        assert_eq!(b_result, expected(b_says));
    }
}

#[test]
fn nothing_is_pinned_before_both_answers_are_in() {
    let mut invitation = open_invite();
    let (mut inviter, _joiner, _, _) = run_to_code(&mut invitation, &bob());
    inviter.decide(true).unwrap();
    assert!(matches!(
        inviter.finish(),
        Err(PairingError::UnexpectedMessage { .. })
    ));
}

#[test]
fn an_inviter_that_does_not_know_the_secret_is_not_trusted() {
    let mut invitation = open_invite();
    let ticket = invitation.ticket();
    let (mut joiner, request) = Joiner::new(&ticket, &bob(), [0xB0; 32]).unwrap();
    let (_, mut reply) = invitation
        .accept(bob().endpoint_id, &request, NOW, [0xA0; 32])
        .unwrap();
    reply.proof[5] ^= 0x40;
    assert_eq!(
        joiner.handle_reply(&reply).unwrap_err(),
        PairingError::InviterNotProven
    );
    assert!(joiner.decide(true).is_err(), "no code, nothing to confirm");
}

#[test]
fn a_tampered_reveal_is_rejected() {
    let mut invitation = open_invite();
    let (mut joiner, request) = Joiner::new(&invitation.ticket(), &bob(), [0xB0; 32]).unwrap();
    let (mut inviter, reply) = invitation
        .accept(bob().endpoint_id, &request, NOW, [0xA0; 32])
        .unwrap();
    let (mut reveal, _) = joiner.handle_reply(&reply).unwrap();
    reveal.nonce[31] ^= 1;
    assert_eq!(
        inviter.handle_reveal(&reveal).unwrap_err(),
        PairingError::CommitmentMismatch
    );
    assert_eq!(inviter.code(), None);
    assert!(inviter.decide(true).is_err());
    assert!(inviter.finish().is_err());
}

#[test]
fn messages_out_of_order_are_errors_not_panics() {
    let mut invitation = open_invite();
    let (mut inviter, mut joiner, _, _) = run_to_code(&mut invitation, &bob());
    assert!(inviter.handle_reveal(&Reveal { nonce: [0; 32] }).is_err());
    let reply = InviteReply {
        proof: [0; 32],
        nonce: [0; 32],
        journal_id: [0; 16],
        name: String::new(),
        addrs: vec![],
        relay_url: None,
        devices: vec![],
    };
    assert!(joiner.handle_reply(&reply).is_err());
    inviter.decide(true).unwrap();
    assert!(inviter.decide(true).is_err(), "one decision only");
    inviter.handle_confirm(&Confirm { accepted: true }).unwrap();
    assert!(inviter.handle_confirm(&Confirm { accepted: true }).is_err());
}

/// Mallory sits between Alice and Bob: she gives Bob a ticket for her own endpoint (she saw
/// Alice's ticket, so she even knows Alice's secret) and joins Alice herself. Both handshakes
/// succeed, but the codes on the two screens differ, and the commitment stops her from fixing
/// that after the fact.
#[test]
fn a_relaying_man_in_the_middle_shows_different_codes() {
    let alice_ticket = open_invite().ticket();
    let mut alice_invite = open_invite();
    // Mallory's two faces: a joiner towards Alice, an inviter towards Bob.
    let mallory_joiner = local(66, "Bob");
    let mut mallory_invite = Invitation::new(local(77, "Alice"), SECRET, NOW + TTL).unwrap();
    let bob_ticket = mallory_invite.ticket();

    // Leg Bob -> Mallory.
    let (mut bob_j, bob_req) = Joiner::new(&bob_ticket, &bob(), [0xB0; 32]).unwrap();
    let (mut mallory_i, m_reply) = mallory_invite
        .accept(bob().endpoint_id, &bob_req, NOW, [0x3A; 32])
        .unwrap();
    let (bob_reveal, bob_code) = bob_j.handle_reply(&m_reply).unwrap();
    mallory_i.handle_reveal(&bob_reveal).unwrap();

    // Leg Mallory -> Alice: Mallory must commit before she sees Alice's nonce.
    let mallory_nonce = [0x3B; 32];
    let (mut mallory_j, m_req) =
        Joiner::new(&alice_ticket, &mallory_joiner, mallory_nonce).unwrap();
    let (mut alice_i, a_reply) = alice_invite
        .accept(mallory_joiner.endpoint_id, &m_req, NOW, [0xA0; 32])
        .unwrap();
    let (_, mallory_code_with_alice) = mallory_j.handle_reply(&a_reply).unwrap();

    // Now she knows both codes' other inputs, and they disagree.
    assert_ne!(mallory_code_with_alice, bob_code);

    // She grinds for a nonce that would give Alice the same code as Bob...
    let alice_nonce = a_reply.nonce;
    let ground = (0u64..20_000_000)
        .map(|i| {
            let mut nonce = [0u8; 32];
            nonce[..8].copy_from_slice(&i.to_le_bytes());
            nonce
        })
        .find(|nonce| {
            derive_code(
                &alice().endpoint_id,
                &mallory_joiner.endpoint_id,
                &alice_nonce,
                nonce,
            ) == bob_code
        })
        .expect("a million tries find a six-digit collision");
    // ...but it does not match what she committed to, so Alice refuses it.
    assert_eq!(
        alice_i
            .handle_reveal(&Reveal { nonce: ground })
            .unwrap_err(),
        PairingError::CommitmentMismatch
    );

    // Revealing honestly gives Alice a code that differs from Bob's.
    let mut alice_invite = open_invite();
    let (_, m_req) = Joiner::new(&alice_ticket, &mallory_joiner, mallory_nonce).unwrap();
    let (mut alice_i, _) = alice_invite
        .accept(mallory_joiner.endpoint_id, &m_req, NOW, [0xA0; 32])
        .unwrap();
    let alice_code = alice_i
        .handle_reveal(&Reveal {
            nonce: mallory_nonce,
        })
        .unwrap();
    assert_ne!(alice_code, bob_code, "the two people see different codes");
}

#[test]
fn the_code_depends_on_every_input() {
    let base = derive_code(&[1; 32], &[2; 32], &[3; 32], &[4; 32]);
    assert_ne!(base, derive_code(&[9; 32], &[2; 32], &[3; 32], &[4; 32]));
    assert_ne!(base, derive_code(&[1; 32], &[9; 32], &[3; 32], &[4; 32]));
    assert_ne!(base, derive_code(&[1; 32], &[2; 32], &[9; 32], &[4; 32]));
    assert_ne!(base, derive_code(&[1; 32], &[2; 32], &[3; 32], &[9; 32]));
    assert!(base.value() < 1_000_000);
}

#[test]
fn long_names_are_refused_up_front() {
    let mut long = bob();
    long.name = "x".repeat(MAX_NAME_LEN + 1);
    let err = Joiner::new(&open_invite().ticket(), &long, [0; 32]).unwrap_err();
    assert_eq!(err, PairingError::NameTooLong { max: MAX_NAME_LEN });
}

#[test]
fn a_name_that_could_forge_the_screen_is_refused_on_either_side() {
    // The joiner announces a name holding a line break and a fake code.
    let mut invitation = open_invite();
    let ticket = Ticket::decode(&invitation.ticket().encode()).unwrap();
    let forged = local(2, "Bob\nPairing code: 123 456");
    let (_j, request) = Joiner::new(&ticket, &forged, [0xB0; 32]).unwrap();
    let err = invitation
        .accept(forged.endpoint_id, &as_join(wire(request)), NOW, [0xA0; 32])
        .unwrap_err();
    assert_eq!(err, PairingError::BadName);
    assert_eq!(err.abort_reason(), Some(AbortReason::ProtocolError));

    // The inviter announces one with a terminal escape; the joiner refuses it.
    let mut invitation = Invitation::new(local(1, "Alice\x1b[2J"), SECRET, NOW + TTL).unwrap();
    let ticket = Ticket::decode(&invitation.ticket().encode()).unwrap();
    let (mut j, request) = Joiner::new(&ticket, &bob(), [0xB0; 32]).unwrap();
    let (_i, reply) = invitation
        .accept(bob().endpoint_id, &as_join(wire(request)), NOW, [0xA0; 32])
        .unwrap();
    assert_eq!(
        j.handle_reply(&as_reply(wire(reply))).unwrap_err(),
        PairingError::BadName
    );
}

fn sample_ticket() -> Ticket {
    Ticket {
        endpoint_id: [0xEE; 32],
        addrs: vec![
            SocketAddr::from((Ipv4Addr::new(192, 168, 1, 20), 51820)),
            SocketAddr::from((Ipv6Addr::LOCALHOST, 1)),
        ],
        relay_url: Some("https://relay.example.org./".to_string()),
        secret: [0x5A; 16],
        expires_at: NOW,
    }
}

#[test]
fn ticket_round_trips_through_text() {
    let ticket = sample_ticket();
    let text = ticket.encode();
    assert!(text.starts_with(TICKET_PREFIX));
    assert!(
        text.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    );
    assert_eq!(Ticket::decode(&text).unwrap(), ticket);
    assert_eq!(text.parse::<Ticket>().unwrap(), ticket);
}

#[test]
fn ticket_survives_copy_paste_whitespace_and_case() {
    let ticket = sample_ticket();
    let text = ticket.encode();
    let (head, tail) = text.split_at(30);
    let pasted = format!("  \t{}\n  {}\r\n", head, tail.to_uppercase());
    assert_eq!(Ticket::decode(&pasted).unwrap(), ticket);
}

#[test]
fn ticket_errors_say_what_is_wrong() {
    let text = sample_ticket().encode();
    assert_eq!(Ticket::decode("hello"), Err(PairingError::NotATicket));
    assert_eq!(Ticket::decode(""), Err(PairingError::NotATicket));
    assert_eq!(Ticket::decode("duetx"), Err(PairingError::NotATicket));
    assert_eq!(
        Ticket::decode(&text[..text.len() - 10]),
        Err(PairingError::DamagedTicket)
    );
    // One changed character: the checksum catches it.
    let mut chars: Vec<char> = text.chars().collect();
    chars[20] = if chars[20] == 'a' { 'b' } else { 'a' };
    let changed: String = chars.into_iter().collect();
    assert_eq!(Ticket::decode(&changed), Err(PairingError::DamagedTicket));
    assert_eq!(
        Ticket::decode(&format!("{text}!")),
        Err(PairingError::DamagedTicket)
    );
    assert_eq!(
        Ticket::decode(&sample_ticket().encode_with_version(PAIRING_VERSION + 1)),
        Err(PairingError::UnsupportedTicketVersion {
            version: PAIRING_VERSION + 1
        })
    );
    assert_eq!(
        Ticket::decode(&text.replacen("duet1", "duet2", 1)),
        Err(PairingError::UnsupportedTicketVersion { version: 2 })
    );
}

#[test]
fn ticket_debug_hides_the_secret() {
    let shown = format!("{:?}", sample_ticket());
    assert!(shown.contains("hidden"));
    assert!(!shown.contains("90, 90"), "{shown}");
}

#[test]
fn every_message_round_trips() {
    let messages: Vec<PairMessage> = vec![
        JoinRequest {
            proof: [1; 32],
            commit: [2; 32],
            journal_id: [3; 16],
            name: "Zoë".into(),
            addrs: sample_ticket().addrs,
            relay_url: Some("https://r.example/".into()),
            devices: devices_of(9),
        }
        .into(),
        InviteReply {
            proof: [4; 32],
            nonce: [5; 32],
            journal_id: [6; 16],
            name: String::new(),
            addrs: vec![],
            relay_url: None,
            devices: vec![],
        }
        .into(),
        Reveal { nonce: [7; 32] }.into(),
        Confirm { accepted: true }.into(),
        Confirm { accepted: false }.into(),
        Abort {
            reason: AbortReason::AlreadyUsed,
        }
        .into(),
        Abort {
            reason: AbortReason::Unknown(200),
        }
        .into(),
    ];
    for message in messages {
        let bytes = message.encode();
        assert_eq!(bytes[0], PAIRING_VERSION);
        assert_eq!(PairMessage::decode(&bytes).unwrap(), message);
    }
}

#[test]
fn message_encoding_is_fixed() {
    // Pin the layout so that a change to it is a conscious protocol change.
    assert_eq!(
        Confirm { accepted: true }.into_message_bytes(),
        vec![2, 4, 1]
    );
    let reveal = PairMessage::from(Reveal { nonce: [0xAB; 32] }).encode();
    assert_eq!(reveal.len(), 34);
    assert_eq!(&reveal[..2], &[2, 3]);
    let abort = PairMessage::from(Abort {
        reason: AbortReason::Expired,
    })
    .encode();
    assert_eq!(abort, vec![2, 5, 2]);
}

trait IntoMessageBytes {
    fn into_message_bytes(self) -> Vec<u8>;
}

impl<T: Into<PairMessage>> IntoMessageBytes for T {
    fn into_message_bytes(self) -> Vec<u8> {
        self.into().encode()
    }
}

#[test]
fn malformed_messages_are_reported() {
    assert!(matches!(
        PairMessage::decode(&[]),
        Err(PairingError::Malformed { .. })
    ));
    assert_eq!(
        PairMessage::decode(&[3, 4, 1]),
        Err(PairingError::UnsupportedProtocolVersion { version: 3 })
    );
    assert!(matches!(
        PairMessage::decode(&[2, 99]),
        Err(PairingError::Malformed { .. })
    ));
    assert!(matches!(
        PairMessage::decode(&[2, 4, 2]),
        Err(PairingError::Malformed { .. })
    ));
    assert!(matches!(
        PairMessage::decode(&[2, 4, 1, 0]),
        Err(PairingError::Malformed { .. })
    ));
    assert!(matches!(
        PairMessage::decode(&[2, 3, 0, 0]),
        Err(PairingError::Malformed { .. })
    ));
}

fn arb_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
    ]
}

proptest! {
    #[test]
    fn any_bytes_into_the_message_decoder_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let _ = PairMessage::decode(&bytes);
    }

    #[test]
    fn any_message_shaped_bytes_never_panic(
        tag in 0u8..7,
        rest in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut bytes = vec![PAIRING_VERSION, tag];
        bytes.extend(rest);
        if let Ok(message) = PairMessage::decode(&bytes) {
            // Whatever decodes re-encodes to the same bytes: the encoding is canonical.
            prop_assert_eq!(message.encode(), bytes);
        }
    }

    #[test]
    fn any_text_into_the_ticket_decoder_never_panics(text in ".{0,200}") {
        let _ = Ticket::decode(&text);
    }

    #[test]
    fn any_payload_behind_the_prefix_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let text = format!("{TICKET_PREFIX}{}", data_encoding::BASE32_NOPAD.encode(&bytes).to_lowercase());
        let _ = Ticket::decode(&text);
    }

    #[test]
    fn any_ticket_round_trips(
        endpoint_id in any::<[u8; 32]>(),
        secret in any::<[u8; 16]>(),
        expires_at in any::<i64>(),
        addrs in proptest::collection::vec(arb_addr(), 0..=MAX_ADDRS),
        relay_url in proptest::option::of("[a-z:/.]{1,60}"),
    ) {
        let ticket = Ticket { endpoint_id, addrs, relay_url, secret, expires_at };
        prop_assert_eq!(Ticket::decode(&ticket.encode()).unwrap(), ticket);
    }
}

#[test]
fn a_joiner_announcing_a_journal_this_home_holds_is_refused_before_any_code() {
    let mut held = alice();
    held.taken_journals = vec![[55; 16]];
    let mut invitation = Invitation::new(held, SECRET, NOW + TTL).unwrap();
    for claimed in [[55; 16], alice().journal_id] {
        let mut eve = bob();
        eve.journal_id = claimed;
        let (_, request) = Joiner::new(&invitation.ticket(), &eve, [0xB0; 32]).unwrap();
        let err = invitation
            .accept(eve.endpoint_id, &as_join(wire(request)), NOW, [0xA0; 32])
            .unwrap_err();
        assert_eq!(err, PairingError::JournalClash);
        assert_eq!(err.abort_reason(), Some(AbortReason::ProtocolError));
        assert!(!invitation.is_consumed(), "the real partner can still join");
    }
    let (_, _, a, b) = run_to_code(&mut invitation, &bob());
    assert_eq!(a, b);
}

#[test]
fn an_inviter_announcing_a_journal_this_home_holds_is_refused_before_any_code() {
    for (claimed, taken) in [(bob().journal_id, vec![]), ([56; 16], vec![[56; 16]])] {
        let mut invitation = open_invite();
        let mut me = bob();
        me.taken_journals = taken;
        let (mut joiner, request) = Joiner::new(&invitation.ticket(), &me, [0xB0; 32]).unwrap();
        let (_, mut reply) = invitation
            .accept(me.endpoint_id, &as_join(wire(request)), NOW, [0xA0; 32])
            .unwrap();
        // A modified inviter announces the journal it likes.
        reply.journal_id = claimed;
        let err = joiner.handle_reply(&as_reply(wire(reply))).unwrap_err();
        assert_eq!(err, PairingError::JournalClash);
        assert_eq!(joiner.code(), None);
    }
}

#[test]
fn a_device_list_that_does_not_hold_or_leaves_out_the_device_is_refused() {
    let person = crate::authority::PersonKey::from_seed([77; 32]);
    // A list by a real person key that certifies some other device, not the joiner.
    let mut other = crate::authority::DeviceList::new(person.id());
    other
        .add_cert(person.certify([99; 32], "phone", 1))
        .unwrap();
    let mut damaged = devices_of(2);
    *damaged.last_mut().unwrap() ^= 1;
    for devices in [other.encode(), damaged, vec![], b"garbage".to_vec()] {
        let mut invitation = open_invite();
        let mut eve = bob();
        eve.devices = devices.clone();
        let (_, request) = Joiner::new(&invitation.ticket(), &eve, [0xB0; 32]).unwrap();
        let err = invitation
            .accept(eve.endpoint_id, &as_join(wire(request)), NOW, [0xA0; 32])
            .unwrap_err();
        assert_eq!(err, PairingError::BadDeviceList);
        assert!(!invitation.is_consumed());
        // And from the inviter's side.
        let mut invitation = open_invite();
        let (mut joiner, request) = Joiner::new(&invitation.ticket(), &bob(), [0xB0; 32]).unwrap();
        let (_, mut reply) = invitation
            .accept(bob().endpoint_id, &as_join(wire(request)), NOW, [0xA0; 32])
            .unwrap();
        reply.devices = devices;
        assert_eq!(
            joiner.handle_reply(&as_reply(wire(reply))).unwrap_err(),
            PairingError::BadDeviceList
        );
    }
}

#[test]
fn each_side_pins_the_other_person_and_their_devices() {
    let mut invitation = open_invite();
    let (mut inviter, mut joiner, _, _) = run_to_code(&mut invitation, &bob());
    let from_a = as_confirm(wire(inviter.decide(true).unwrap()));
    let from_b = as_confirm(wire(joiner.decide(true).unwrap()));
    inviter.handle_confirm(&from_b).unwrap();
    joiner.handle_confirm(&from_a).unwrap();
    let bob_seen = inviter.finish().unwrap();
    let alice_seen = joiner.finish().unwrap();
    assert_eq!(bob_seen.devices.encode(), devices_of(2));
    assert!(bob_seen.devices.admits(&bob().endpoint_id));
    assert_eq!(alice_seen.devices.encode(), devices_of(1));
    assert_ne!(bob_seen.devices.person(), alice_seen.devices.person());
}

/// A new, empty device of Alice's: no journal, no device list, its label as its name.
fn new_device() -> LocalPeer {
    LocalPeer {
        journal_id: [0; 16],
        devices: Vec::new(),
        taken_journals: Vec::new(),
        ..local(3, "phone")
    }
}

#[test]
fn a_new_device_links_with_a_link_ticket_and_gets_its_owners_list() {
    let mut invitation =
        Invitation::for_purpose(alice(), SECRET, NOW + TTL, Purpose::Link).unwrap();
    let text = invitation.ticket().encode_for(Purpose::Link);
    assert!(text.starts_with(LINK_TICKET_PREFIX));
    // Each kind of ticket is refused where the other belongs, with the command to use.
    assert_eq!(
        Ticket::decode(&text).unwrap_err(),
        PairingError::LinkTicketForPairing
    );
    let pair_text = invitation.ticket().encode();
    assert_eq!(
        Ticket::decode_for(&pair_text, Purpose::Link).unwrap_err(),
        PairingError::PairTicketForLink
    );
    let ticket = Ticket::decode_for(&text, Purpose::Link).unwrap();
    let phone = new_device();
    let (mut j, request) = Joiner::for_purpose(&ticket, &phone, [0xB0; 32], Purpose::Link).unwrap();
    let (mut i, reply) = invitation
        .accept(phone.endpoint_id, &as_join(wire(request)), NOW, [0xA0; 32])
        .unwrap();
    let (reveal, code_b) = j.handle_reply(&as_reply(wire(reply))).unwrap();
    let code_a = i.handle_reveal(&as_reveal(wire(reveal))).unwrap();
    assert_eq!(code_a, code_b);
    let yes_a = i.decide(true).unwrap();
    let yes_b = j.decide(true).unwrap();
    i.handle_confirm(&yes_b).unwrap();
    j.handle_confirm(&yes_a).unwrap();
    let (new_one, linker) = (i.finish().unwrap(), j.finish().unwrap());
    assert_eq!(new_one.name, "phone");
    assert_eq!(new_one.endpoint_id, phone.endpoint_id);
    // The inviter's own list stands for the new device's owner; the joiner checked that it
    // certifies the device it spoke with.
    assert_eq!(new_one.devices.encode(), devices_of(1));
    assert!(linker.devices.admits(&alice().endpoint_id));
}

#[test]
fn a_pairing_proof_never_opens_a_link_and_a_link_joiner_brings_nothing() {
    // The same ticket secret, used by a joiner that runs the pairing handshake against a link
    // invitation: the proofs are keyed apart.
    let mut invitation =
        Invitation::for_purpose(alice(), SECRET, NOW + TTL, Purpose::Link).unwrap();
    let ticket = invitation.ticket();
    let (_, request) = Joiner::new(&ticket, &new_device(), [0xB0; 32]).unwrap();
    assert_eq!(
        invitation
            .accept(new_device().endpoint_id, &request, NOW, [0xA0; 32])
            .unwrap_err(),
        PairingError::WrongSecret
    );
    // A link joiner that announces a journal or a list of its own (a partner posing as a new
    // device of mine) is refused.
    let (_, request) = Joiner::for_purpose(&ticket, &bob(), [0xB0; 32], Purpose::Link).unwrap();
    assert_eq!(
        invitation
            .accept(bob().endpoint_id, &request, NOW, [0xA0; 32])
            .unwrap_err(),
        PairingError::BadDeviceList
    );
    // And the other way: a link proof does not open a pairing invite.
    let mut pairing = open_invite();
    let (_, request) =
        Joiner::for_purpose(&pairing.ticket(), &bob(), [0xB0; 32], Purpose::Link).unwrap();
    assert_eq!(
        pairing
            .accept(bob().endpoint_id, &request, NOW, [0xA0; 32])
            .unwrap_err(),
        PairingError::WrongSecret
    );
}

#[test]
fn an_already_paired_device_lets_only_its_partners_devices_pair_again() {
    let bobs_person = crate::authority::DeviceList::decode(&devices_of(2))
        .unwrap()
        .person();
    let paired = LocalPeer {
        only_person: Some(bobs_person),
        ..alice()
    };
    // Bob's (restored) device: through, as before.
    let mut invitation = Invitation::new(paired.clone(), SECRET, NOW + TTL).unwrap();
    let (_, _, a, b) = run_to_code(&mut invitation, &bob());
    assert_eq!(a, b);
    // Carol: refused before any code, on the inviting side...
    let mut invitation = Invitation::new(paired.clone(), SECRET, NOW + TTL).unwrap();
    let carol = local(4, "Carol");
    let ticket = invitation.ticket();
    let (_, request) = Joiner::new(&ticket, &carol, [0xB0; 32]).unwrap();
    assert_eq!(
        invitation
            .accept(carol.endpoint_id, &as_join(wire(request)), NOW, [0xA0; 32])
            .unwrap_err(),
        PairingError::NotThePartner
    );
    // ...and on the joining side, when the paired device is the one that joins.
    let mut carols = Invitation::new(carol, SECRET, NOW + TTL).unwrap();
    let ticket = carols.ticket();
    let (mut j, request) = Joiner::new(&ticket, &paired, [0xB0; 32]).unwrap();
    let (_, reply) = carols
        .accept(paired.endpoint_id, &as_join(wire(request)), NOW, [0xA0; 32])
        .unwrap();
    assert_eq!(
        j.handle_reply(&as_reply(wire(reply))).unwrap_err(),
        PairingError::NotThePartner
    );
}
