//! Pair, then sync two real stores over iroh: on loopback, and through a
//! loopback relay with no direct path at all.

use std::sync::Arc;

use duet_core::sync::{Docs, SyncSession};
use duet_core::{Author, Filter, JournalId, Kind};
use duet_net::sync::{Role, Traffic, drive, end_as_listener};
use duet_net::{EndpointAddr, PairedPartner, RelayMode, SYNC_ALPN, pair_invite, pair_join};
use duet_store::{Home, Partner, Store, StoreReplica, WriteRequest};
use iroh::Endpoint;

use crate::relay::relay_only_node;
use crate::util::*;

struct Person {
    home: Home,
    store: Arc<Store>,
    _dir: tempfile::TempDir,
}

fn person(name: &str) -> Person {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path().join("home"));
    home.init(name, "laptop", 0).unwrap();
    let store = Arc::new(Store::open(home.clone()).unwrap());
    Person {
        home,
        store,
        _dir: dir,
    }
}

impl Person {
    /// Who this person is when speaking from `ep` (a test endpoint with a key of its own,
    /// which this person's key certifies).
    fn identity(&self, ep: &Endpoint) -> duet_net::LocalIdentity {
        let (person, mut devices) = self.home.identity("laptop", 0).unwrap();
        devices
            .add_cert(person.certify(*ep.id().as_bytes(), "test endpoint", 0))
            .unwrap();
        duet_net::LocalIdentity {
            name: self.store.config().name.clone(),
            journal_id: *self.store.config().journal.as_bytes(),
            clock: duet_net::Clock::system(),
            taken_journals: vec![],
            devices: devices.encode(),
            only_person: None,
        }
    }

    /// Pin what pairing returned, as `duet pair` does.
    fn pin(&mut self, p: &PairedPartner) {
        self.home
            .set_partner(&Partner {
                name: p.name.clone(),
                endpoint_id: iroh::EndpointId::from_bytes(&p.endpoint_id)
                    .unwrap()
                    .to_string(),
                journal: JournalId(p.journal_id),
                addrs: p.addrs.iter().map(ToString::to_string).collect(),
                relay_url: p.relay_url.clone(),
                paired_at: 0,
                paired_epoch: Some(p.ticket_expires_at),
                last_sync: None,
                unpaired: false,
                person: None,
            })
            .unwrap();
        self.store = Arc::new(Store::open(self.home.clone()).unwrap());
    }

    fn write(&self, body: &str) {
        let req = WriteRequest {
            kind: Kind::Entry,
            body: body.into(),
            tags: vec![],
            starred: false,
            created_at: 1,
            private: false,
            ritual: Default::default(),
        };
        self.store.add(req, 1).unwrap();
    }

    fn bodies(&self, author: Author) -> Vec<String> {
        let filter = Filter {
            author: Some(author),
            ..Default::default()
        };
        let mut v: Vec<String> = self
            .store
            .list(&filter, None)
            .unwrap()
            .into_iter()
            .map(|l| l.item.body)
            .collect();
        v.sort();
        v
    }

    fn session(&self) -> (SyncSession, JournalId, String) {
        let partner = self.store.partner().unwrap().clone();
        let shared =
            duet_core::authority::shared_with_partner(self.store.config().journal, partner.journal);
        let state = self.store.peer_state(&partner.endpoint_id);
        (
            SyncSession::new(shared, state),
            partner.journal,
            partner.endpoint_id,
        )
    }
}

/// One session: `dialer` connects to `listener` at `addr`.
async fn sync_once(
    dialer: (&Endpoint, &Person),
    listener: (&Endpoint, &Person),
    addr: EndpointAddr,
) -> Traffic {
    let listen = {
        let ep = listener.0.clone();
        let store = listener.1.store.clone();
        let (mut session, theirs, peer) = listener.1.session();
        tokio::spawn(async move {
            let conn = ep.accept().await.unwrap().await.unwrap();
            let (mut send, mut recv) = conn.accept_bi().await.unwrap();
            let mut replica = StoreReplica::new(&store);
            let mut docs = Docs::default().resting();
            let mut traffic = drive(
                Role::Listener,
                &mut recv,
                &mut send,
                &mut session,
                &mut docs,
                &mut replica,
                PAIR_TIMEOUT,
                &mut |_| {},
            )
            .await
            .unwrap();
            let closing = session.closing();
            replica
                .settle(session, &mut docs, &peer, &[theirs])
                .unwrap();
            end_as_listener(&mut send, &mut traffic, &closing)
                .await
                .unwrap();
            let _ = tokio::time::timeout(PAIR_TIMEOUT, conn.closed()).await;
        })
    };
    let conn = dialer.0.connect(addr, SYNC_ALPN).await.unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let (mut session, theirs, peer) = dialer.1.session();
    let mut replica = StoreReplica::new(&dialer.1.store);
    let mut docs = Docs::default().resting();
    let traffic = drive(
        Role::Dialer,
        &mut recv,
        &mut send,
        &mut session,
        &mut docs,
        &mut replica,
        PAIR_TIMEOUT,
        &mut |_| {},
    )
    .await
    .unwrap();
    replica
        .settle(session, &mut docs, &peer, &[theirs])
        .unwrap();
    conn.close(0u32.into(), b"synced");
    listen.await.unwrap();
    traffic
}

/// Pair `a` (inviting on `ea`) with `b` (joining from `eb`) and pin both.
async fn pair(a: &mut Person, ea: &Endpoint, ga: &duet_net::Gate, b: &mut Person, eb: &Endpoint) {
    let (on_ticket, ticket_rx) = ticket_channel();
    let (yes_a, _) = answering(true);
    let (yes_b, _) = answering(true);
    let invite = {
        let (ea, ga, id) = (ea.clone(), ga.clone(), a.identity(ea));
        tokio::spawn(async move {
            pair_invite(&ea, &ga, &id, TTL, on_ticket, yes_a, PAIR_TIMEOUT).await
        })
    };
    let ticket = duet_core::pairing::Ticket::decode(&ticket_rx.await.unwrap()).unwrap();
    let for_b = pair_join(eb, &ticket, &b.identity(eb), yes_b, PAIR_TIMEOUT)
        .await
        .unwrap();
    let for_a = invite.await.unwrap().unwrap();
    a.pin(&for_a);
    b.pin(&for_b);
}

fn check_exchange(alex: &Person, sam: &Person) {
    assert_eq!(
        sam.bodies(Author::Partner),
        vec!["from Alex 1", "from Alex 2"]
    );
    assert_eq!(alex.bodies(Author::Partner), vec!["from Sam"]);
    assert_eq!(alex.bodies(Author::Me), sam.bodies(Author::Partner));
}

/// Alex and Sam, each on a loopback endpoint of the given seed, paired and admitting each other.
async fn paired_on_loopback(seed_a: u8, seed_b: u8) -> (Endpoint, Endpoint, Person, Person) {
    let (ea, ga) = node(seed_a).await;
    let (eb, gb) = node(seed_b).await;
    let (mut alex, mut sam) = (person("Alex"), person("Sam"));
    pair(&mut alex, &ea, &ga, &mut sam, &eb).await;
    ga.allow(eb.id());
    gb.allow(ea.id());
    (ea, eb, alex, sam)
}

/// A session between the two finds nothing new: a few hundred bytes of digests.
async fn assert_nothing_to_exchange(ea: &Endpoint, alex: &Person, eb: &Endpoint, sam: &Person) {
    let idle = sync_once((ea, alex), (eb, sam), eb.addr()).await;
    assert!(idle.sent + idle.received < 600, "{idle:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_then_sync_on_loopback() {
    bounded(async {
        let (ea, eb, alex, sam) = paired_on_loopback(11, 12).await;

        alex.write("from Alex 1");
        alex.write("from Alex 2");
        sam.write("from Sam");
        let first = sync_once((&eb, &sam), (&ea, &alex), ea.addr()).await;
        check_exchange(&alex, &sam);
        assert!(first.sent > 0 && first.received > 0);

        assert_nothing_to_exchange(&ea, &alex, &eb, &sam).await;
    })
    .await;
}

/// The stores live on from session to session, as in a `duet serve`: each keeps the open
/// volumes it loaded or stored, and what it stores from them is what loading the files gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_one_after_another_store_what_loading_each_time_would() {
    bounded(async {
        let (ea, eb, mut alex, mut sam) = paired_on_loopback(13, 14).await;
        let mut from_alex = Vec::new();
        let mut from_sam = Vec::new();
        for round in 0..6 {
            // Alex writes every round and Sam every other; either side dials.
            from_alex.push(format!("from Alex {round}"));
            alex.write(from_alex.last().unwrap());
            if round % 2 == 1 {
                from_sam.push(format!("from Sam {round}"));
                sam.write(from_sam.last().unwrap());
            }
            if round % 3 == 2 {
                sync_once((&eb, &sam), (&ea, &alex), ea.addr()).await;
            } else {
                sync_once((&ea, &alex), (&eb, &sam), eb.addr()).await;
            }
            assert_eq!(sam.bodies(Author::Partner), from_alex, "round {round}");
            assert_eq!(alex.bodies(Author::Partner), from_sam, "round {round}");
        }
        // Read afresh from the files, by processes that kept nothing loaded.
        for p in [&mut alex, &mut sam] {
            p.store = Arc::new(Store::open(p.home.clone()).unwrap());
        }
        assert_eq!(sam.bodies(Author::Partner), from_alex);
        assert_eq!(alex.bodies(Author::Partner), from_sam);
        // And a sync between them finds nothing to exchange.
        assert_nothing_to_exchange(&ea, &alex, &eb, &sam).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_then_sync_through_a_loopback_relay_alone() {
    bounded(async {
        let (_map, relay_url, _server) = iroh::test_utils::run_relay_server()
            .await
            .expect("relay on loopback");
        let relay = RelayMode::Custom(relay_url.clone());
        let (ea, ga) = relay_only_node(21, &relay).await;
        let (eb, gb) = relay_only_node(22, &relay).await;
        let (mut alex, mut sam) = (person("Alex"), person("Sam"));
        pair(&mut alex, &ea, &ga, &mut sam, &eb).await;
        ga.allow(eb.id());
        gb.allow(ea.id());
        alex.write("from Alex 1");
        alex.write("from Alex 2");
        sam.write("from Sam");
        // Sam knows only Alex's id and relay: no direct address exists.
        let partner = sam.store.partner().unwrap().clone();
        assert!(partner.addrs.is_empty());
        let addr =
            duet_net::endpoint_addr(ea.id().as_bytes(), &[], partner.relay_url.as_deref()).unwrap();
        sync_once((&eb, &sam), (&ea, &alex), addr).await;
        check_exchange(&alex, &sam);
    })
    .await;
}
