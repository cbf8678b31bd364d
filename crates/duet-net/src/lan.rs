//! Finding the couple's devices on the local network: mDNS under duet's own service name
//! (`_duet1._udp.local`), with a blinded label in place of the device id
//! ([`duet_core::lan`]).
//!
//! The announcing and listening is `swarm-discovery`'s (the mDNS engine iroh's own mDNS lookup is
//! built on); this module decides what is said and what is believed. iroh asks an address lookup
//! only about a device it is dialing, and duet dials only devices this home pinned: so what a
//! stranger announces is held (a bounded number of labels, for a short while) but never acted on.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use duet_core::lan::{NONCE_LEN, SERVICE, is_label_of, label};
use iroh::EndpointId;
use iroh::address_lookup::{
    AddressLookup, EndpointData, EndpointInfo, Error as LookupError, Item as LookupItem,
};
use n0_future::boxed::BoxStream;
use swarm_discovery::{Discoverer, DropGuard, IpClass, Peer};
use tokio::sync::{broadcast, mpsc};

/// The provenance iroh records for addresses found here.
pub const PROVENANCE: &str = "duet-lan";
/// How long a lookup keeps listening for the device it was asked about.
const RESOLVE_FOR: Duration = Duration::from_secs(10);
/// How many announcements of other devices are held at once (a busy network cannot grow it).
const MAX_HEARD: usize = 256;
/// An announcement not heard again for this long is forgotten.
const HEARD_FOR: Duration = Duration::from_secs(120);

/// Whether and how eagerly an endpoint looks for devices on the local network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lan {
    /// Silence: nothing announced, nothing asked.
    Off,
    /// A command someone waits on (`sync`, pairing): asks about every 200 ms, so a device on the
    /// network is found within a fraction of a second.
    Quick,
    /// A long-running `serve`: asks every 3 s (the network need not hear it more often); it still
    /// answers every other device's question at once.
    Steady,
}

impl Lan {
    fn cadence(self) -> Duration {
        match self {
            Lan::Off | Lan::Quick => Duration::from_millis(200),
            Lan::Steady => Duration::from_secs(3),
        }
    }
}

struct Heard {
    addrs: BTreeSet<SocketAddr>,
    at: Instant,
}

struct Announcing {
    /// The running discoverer; dropped, it stops.
    guard: Option<DropGuard>,
    /// What it announces (none: it only listens).
    addrs: BTreeSet<SocketAddr>,
}

struct Inner {
    own: [u8; 32],
    cadence: Duration,
    /// Local IPv4 addresses to send multicast from (the bound address when one was given).
    interfaces: Vec<Ipv4Addr>,
    heard: Mutex<BTreeMap<String, Heard>>,
    news: broadcast::Sender<()>,
    announcing: Mutex<Announcing>,
    runtime: tokio::runtime::Handle,
}

/// duet's LAN address lookup for one endpoint: announces it and finds pinned devices.
#[derive(Clone)]
pub struct LanLookup {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LanLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LanLookup").finish_non_exhaustive()
    }
}

impl LanLookup {
    /// Starts listening on the local network for `own` (this endpoint's id). With `bound` a
    /// specific IPv4 address, multicast goes out of that interface; otherwise out of the
    /// interface the system routes multicast to. Must run inside a tokio runtime. A network with
    /// no multicast (no route for it) gives a lookup that finds nothing, not an error: the other
    /// ways of reaching devices go on working.
    pub fn start(own: [u8; 32], bound: Option<IpAddr>, lan: Lan) -> LanLookup {
        let interfaces = match bound {
            Some(IpAddr::V4(ip)) if !ip.is_unspecified() => vec![ip],
            _ => Vec::new(),
        };
        let lookup = LanLookup {
            inner: Arc::new(Inner {
                own,
                cadence: lan.cadence(),
                interfaces,
                heard: Mutex::new(BTreeMap::new()),
                news: broadcast::channel(16).0,
                announcing: Mutex::new(Announcing {
                    guard: None,
                    addrs: BTreeSet::new(),
                }),
                runtime: tokio::runtime::Handle::current(),
            }),
        };
        lookup.announce(BTreeSet::new());
        lookup
    }

    /// (Re)starts the discoverer announcing `addrs` under a fresh label. A new set of addresses
    /// (another network) gets a new nonce, so the label there cannot be linked to this one.
    fn announce(&self, addrs: BTreeSet<SocketAddr>) {
        let mut announcing = self
            .inner
            .announcing
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if announcing.guard.is_some() && announcing.addrs == addrs {
            return;
        }
        // The old discoverer stops (and its sockets close) before the new one binds.
        announcing.guard = None;
        let mut nonce = [0u8; NONCE_LEN];
        if getrandom::fill(&mut nonce).is_err() {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let mut discoverer =
            Discoverer::new_interactive(SERVICE.to_owned(), label(&self.inner.own, nonce))
                .with_cadence(self.inner.cadence)
                .with_ip_class(IpClass::Auto)
                .with_multicast_interfaces_v4(self.inner.interfaces.clone())
                .with_callback(move |label: &str, peer: &Peer| {
                    if let Some(inner) = weak.upgrade() {
                        inner.heard(label, peer);
                    }
                });
        let mut by_port: BTreeMap<u16, Vec<IpAddr>> = BTreeMap::new();
        for addr in &addrs {
            by_port.entry(addr.port()).or_default().push(addr.ip());
        }
        for (port, ips) in by_port {
            discoverer = discoverer.with_addrs(port, ips);
        }
        match discoverer.spawn(&self.inner.runtime) {
            Ok(guard) => {
                tracing::debug!(announced = addrs.len(), "LAN discovery running");
                announcing.guard = Some(guard);
                announcing.addrs = addrs;
            }
            Err(err) => tracing::debug!("no LAN discovery on this network: {err}"),
        }
    }

    /// The addresses a device announced most recently, if it is on this network.
    fn find(&self, device: &[u8; 32]) -> Option<BTreeSet<SocketAddr>> {
        let heard = self.inner.heard.lock().unwrap_or_else(|e| e.into_inner());
        heard
            .iter()
            .filter(|(label, h)| h.at.elapsed() < HEARD_FOR && is_label_of(label, device))
            .max_by_key(|(_, h)| h.at)
            .map(|(_, h)| h.addrs.clone())
    }
}

impl Inner {
    /// Something was announced (or withdrawn) on the network: anyone's words, held briefly.
    fn heard(&self, label: &str, peer: &Peer) {
        let mut heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        if peer.is_expiry() || peer.addrs().is_empty() {
            heard.remove(label);
            return;
        }
        let addrs: BTreeSet<SocketAddr> = peer
            .addrs()
            .iter()
            .filter(|(ip, port)| *port != 0 && worth_announcing(ip))
            .take(duet_core::pairing::MAX_ADDRS)
            .map(|(ip, port)| SocketAddr::new(*ip, *port))
            .collect();
        if label.len() != duet_core::lan::LABEL_LEN || addrs.is_empty() {
            return;
        }
        heard.retain(|_, h| h.at.elapsed() < HEARD_FOR);
        if heard.len() >= MAX_HEARD && !heard.contains_key(label) {
            let oldest = heard
                .iter()
                .min_by_key(|(_, h)| h.at)
                .map(|(l, _)| l.clone());
            if let Some(oldest) = oldest {
                heard.remove(&oldest);
            }
        }
        heard.insert(
            label.to_owned(),
            Heard {
                addrs,
                at: Instant::now(),
            },
        );
        drop(heard);
        let _ = self.news.send(());
    }
}

/// Addresses worth telling the local network, and worth believing from it: not loopback, not
/// unspecified, not multicast, and no IPv6 link-local (useless without its interface).
fn worth_announcing(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_loopback() || v4.is_unspecified() || v4.is_multicast()),
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unicast_link_local())
        }
    }
}

impl AddressLookup for LanLookup {
    fn publish(&self, data: &EndpointData) {
        // Direct addresses only: no relay, no user data. The label says nothing more.
        let addrs: BTreeSet<SocketAddr> = data
            .ip_addrs()
            .filter(|a| worth_announcing(&a.ip()))
            .take(duet_core::pairing::MAX_ADDRS)
            .copied()
            .collect();
        self.announce(addrs);
    }

    fn resolve(
        &self,
        endpoint_id: EndpointId,
    ) -> Option<BoxStream<Result<LookupItem, LookupError>>> {
        let device = *endpoint_id.as_bytes();
        let lookup = self.clone();
        let mut news = self.inner.news.subscribe();
        let (tx, mut rx) = mpsc::channel(4);
        self.inner.runtime.spawn(async move {
            let deadline = tokio::time::Instant::now() + RESOLVE_FOR;
            let mut told: Option<BTreeSet<SocketAddr>> = None;
            loop {
                if let Some(addrs) = lookup.find(&device).filter(|a| Some(a) != told.as_ref()) {
                    let data = EndpointData::from(addrs.clone());
                    let item = LookupItem::new(
                        EndpointInfo::from_parts(endpoint_id, data),
                        PROVENANCE,
                        None,
                    );
                    if tx.send(Ok(item)).await.is_err() {
                        return;
                    }
                    told = Some(addrs);
                }
                tokio::select! {
                    _ = tx.closed() => return,
                    heard = tokio::time::timeout_at(deadline, news.recv()) => match heard {
                        Err(_) | Ok(Err(broadcast::error::RecvError::Closed)) => return,
                        Ok(_) => {}
                    }
                }
            }
        });
        Some(Box::pin(n0_future::stream::poll_fn(move |cx| {
            rx.poll_recv(cx)
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_a_device_elsewhere_can_use_are_announced() {
        for (ip, keep) in [
            ("192.168.1.7", true),
            ("10.0.0.2", true),
            ("2001:db8::7", true),
            ("fd00::7", true),
            ("127.0.0.1", false),
            ("::1", false),
            ("0.0.0.0", false),
            ("fe80::1", false),
            ("224.0.0.251", false),
        ] {
            assert_eq!(worth_announcing(&ip.parse().unwrap()), keep, "{ip}");
        }
    }
}
