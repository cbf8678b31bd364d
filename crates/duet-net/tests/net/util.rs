use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use duet_core::pairing::{PairingCode, Ticket};
use duet_net::{Gate, LocalIdentity, NetConfig, PAIR_ALPN, RelayMode, SYNC_ALPN, bind_endpoint};
use iroh::Endpoint;

/// The most any single test may take; far above what it needs on an idle machine.
pub const TEST_LIMIT: Duration = Duration::from_secs(60);
/// Timeout handed to pair_invite / pair_join.
pub const PAIR_TIMEOUT: Duration = Duration::from_secs(30);
pub const TTL: Duration = Duration::from_secs(120);

pub fn loopback_config(seed: u8) -> NetConfig {
    NetConfig {
        secret_key: [seed; 32],
        relay: RelayMode::Disabled,
        bind: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
        lan: duet_net::lan::Lan::Off,
    }
}

/// A loopback endpoint speaking both duet protocols behind its own gate.
pub async fn node(seed: u8) -> (Endpoint, Gate) {
    let gate = Gate::new();
    let endpoint = bind_endpoint(
        &loopback_config(seed),
        vec![SYNC_ALPN.to_vec(), PAIR_ALPN.to_vec()],
        gate.clone(),
    )
    .await
    .expect("bind on loopback");
    (endpoint, gate)
}

pub fn identity(name: &str, n: u8) -> LocalIdentity {
    LocalIdentity {
        name: name.to_string(),
        journal_id: [n; 16],
        clock: duet_net::Clock::system(),
        taken_journals: vec![],
        devices: devices_of(n),
        only_person: None,
    }
}

/// Person `n`'s device list, certifying the device of `node(n)`.
pub fn devices_of(n: u8) -> Vec<u8> {
    use duet_core::authority::{DeviceKey, DeviceList, PersonKey};
    let person = PersonKey::from_seed([n.wrapping_add(100); 32]);
    let mut list = DeviceList::new(person.id());
    list.add_cert(person.certify(DeviceKey::from_bytes([n; 32]).id(), "laptop", 0))
        .expect("a valid certificate");
    list.encode()
}

/// Fails the test instead of hanging it.
pub async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_LIMIT, fut)
        .await
        .expect("test took too long")
}

/// What a confirm callback was shown: the code and the partner's name.
pub type Shown = Arc<Mutex<Option<(String, String)>>>;

/// A confirm callback that answers `answer` and remembers what it was shown.
pub fn answering(
    answer: bool,
) -> (
    impl FnOnce(&PairingCode, &str) -> bool + Send + 'static,
    Shown,
) {
    let seen = Arc::new(Mutex::new(None));
    let record = seen.clone();
    let confirm = move |code: &PairingCode, name: &str| {
        *record.lock().unwrap() = Some((code.to_string(), name.to_string()));
        answer
    };
    (confirm, seen)
}

/// An `on_ticket` callback that hands the ticket text to the test, as the CLI prints it.
pub fn ticket_channel() -> (
    impl FnOnce(&Ticket) + Send + 'static,
    tokio::sync::oneshot::Receiver<String>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let on_ticket = move |ticket: &Ticket| {
        let _ = tx.send(ticket.encode());
    };
    (on_ticket, rx)
}
