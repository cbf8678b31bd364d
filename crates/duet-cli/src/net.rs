//! What the network commands share: the endpoint, the port this home
//! listens on, and one sync session with the partner.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use duet_core::sync::{Docs, SyncSession};
use duet_core::{JournalId, Kind};
use duet_net::sync::{Blocking, Role, Traffic, drive, end_as_listener};
use duet_net::{Endpoint, EndpointAddr, EndpointId, Gate, NetConfig, RelayMode};
use duet_store::{Home, Partner, Store, StoreReplica};

use crate::cli::Context;

/// How long one read may wait during a sync before the peer counts as gone.
pub const READ_TIMEOUT: Duration = Duration::from_secs(20);
const PORT_FILE: &str = "port";

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the network runtime")
}

pub fn relay_mode(ctx: &Context) -> anyhow::Result<RelayMode> {
    Ok(ctx
        .global
        .relay
        .as_deref()
        .unwrap_or("default")
        .parse::<RelayMode>()?)
}

fn requested_bind(ctx: &Context) -> anyhow::Result<SocketAddr> {
    match ctx.global.bind.as_deref() {
        None => Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)),
        Some(text) => text.trim().parse().map_err(|_| {
            anyhow::anyhow!("`{text}` is not an address to listen on; use IP:PORT such as 0.0.0.0:0 or 127.0.0.1:4433")
        }),
    }
}

fn stored_port(home: &Home) -> Option<u16> {
    std::fs::read_to_string(home.root().join(PORT_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Bind this device's endpoint. A home keeps one port across runs so the
/// partner can find it again at the address learned last time; if that port
/// is taken (a `duet serve` already runs here), any free port will do.
pub async fn bind(
    ctx: &Context,
    home: &Home,
    alpns: Vec<Vec<u8>>,
    gate: Gate,
) -> anyhow::Result<Endpoint> {
    let relay = relay_mode(ctx)?;
    let secret_key = home.device_key()?;
    let asked = requested_bind(ctx)?;
    let preferred = match (asked.port(), stored_port(home)) {
        (0, Some(port)) => Some(SocketAddr::new(asked.ip(), port)),
        _ => None,
    };
    if let Some(addr) = preferred {
        let cfg = NetConfig {
            secret_key,
            relay: relay.clone(),
            bind: Some(addr),
        };
        if let Ok(ep) = duet_net::bind_endpoint(&cfg, alpns.clone(), gate.clone()).await {
            return Ok(ep);
        }
    }
    let cfg = NetConfig {
        secret_key,
        relay,
        bind: Some(asked),
    };
    let ep = duet_net::bind_endpoint(&cfg, alpns, gate).await?;
    if stored_port(home).is_none()
        && let Some(port) = ep.bound_sockets().first().map(SocketAddr::port)
    {
        let _ = duet_store::fsutil::write_atomic(
            home.root(),
            PORT_FILE,
            port.to_string().as_bytes(),
            0o600,
        );
    }
    Ok(ep)
}

pub fn partner_id(partner: &Partner) -> anyhow::Result<EndpointId> {
    partner
        .endpoint_id
        .parse::<EndpointId>()
        .map_err(|_| anyhow::anyhow!("the partner record holds an invalid device id; pair again"))
}

/// The partner's device list, when pinned at pairing (partners paired before device lists
/// have none: their one pinned device stands for them).
pub fn partner_list(store: &Store, partner: &Partner) -> Option<duet_core::authority::DeviceList> {
    let person = partner.person_id()?;
    store.home().devices(&person).ok().flatten()
}

/// Every device of the partner this device admits: those their person certified and has not
/// revoked, or the one device pinned before device lists.
pub fn partner_devices(store: &Store, partner: &Partner) -> anyhow::Result<Vec<EndpointId>> {
    match partner_list(store, partner) {
        Some(list) => Ok(list
            .certs()
            .filter(|c| list.admits(&c.device))
            .filter_map(|c| EndpointId::from_bytes(&c.device).ok())
            .collect()),
        None => Ok(vec![partner_id(partner)?]),
    }
}

/// The paired partner, or an error that says what to do.
pub fn require_partner(store: &Store) -> anyhow::Result<Partner> {
    match store.partner() {
        None => bail!(
            "you are not paired yet; run `duet pair invite` here and `duet pair join TICKET` on your partner's device"
        ),
        Some(p) if p.unpaired => bail!(
            "you unpaired from {}; pair again with `duet pair invite` to sync",
            p.name
        ),
        Some(p) => Ok(p.clone()),
    }
}

/// Where to dial the partner: the addresses learned at pairing and sync, and their relay only
/// where this device's own relay setting allows it (`RelayMode::partner_relay`).
pub fn partner_addr(partner: &Partner, relay: &RelayMode) -> anyhow::Result<EndpointAddr> {
    let addrs: Vec<SocketAddr> = partner
        .addrs
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    let id = partner_id(partner)?;
    Ok(duet_net::endpoint_addr(
        id.as_bytes(),
        &addrs,
        relay.partner_relay(partner.relay_url.as_deref()),
    )?)
}

/// What one session brought and cost.
#[derive(Debug, Default)]
pub struct SessionReport {
    pub new_items: std::collections::BTreeMap<Kind, usize>,
    pub changed_items: usize,
    pub traffic: Traffic,
}

impl SessionReport {
    pub fn describe(&self, partner: &str) -> String {
        let mut parts: Vec<String> = self
            .new_items
            .iter()
            .map(|(kind, n)| {
                let noun = match (kind, *n) {
                    (Kind::Entry, 1) => "new entry".to_owned(),
                    (Kind::Entry, _) => "new entries".to_owned(),
                    (Kind::Thanks, 1) => "new note of thanks".to_owned(),
                    (Kind::Thanks, _) => "new notes of thanks".to_owned(),
                    (Kind::Checkin, 1) => "new check-in".to_owned(),
                    (Kind::Checkin, _) => "new check-ins".to_owned(),
                    (Kind::Answer, 1) => "new answer".to_owned(),
                    (Kind::Answer, _) => "new answers".to_owned(),
                    (other, _) => format!("new {other} items"),
                };
                format!("{n} {noun}")
            })
            .collect();
        if self.changed_items > 0 {
            parts.push(format!("{} updated", self.changed_items));
        }
        if parts.is_empty() {
            format!("Up to date with {partner}: nothing new from them.")
        } else {
            format!("{} from {partner}.", parts.join(", "))
        }
    }
}

/// Run one sync session with the partner over `conn`, store what came in,
/// and remember how the partner was reached.
pub async fn session(
    store: Arc<Store>,
    conn: iroh::endpoint::Connection,
    dialer: bool,
    progress: impl FnMut(u64) + Send,
) -> anyhow::Result<SessionReport> {
    // Every read already has its timeout; this bounds the whole, writes and the wait for the
    // other side to open its stream included, so a peer that stalls cannot hold a session.
    let closer = conn.clone();
    match tokio::time::timeout(
        SESSION_WALL_TIME,
        session_inner(store, conn, dialer, progress),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => {
            closer.close(duet_net::close_code::PROTOCOL.into(), b"too slow");
            anyhow::bail!(
                "the sync took longer than {} minutes and was stopped; try again",
                SESSION_WALL_TIME.as_secs() / 60
            )
        }
    }
}

/// The longest one sync session may take, first syncs of big journals included.
pub const SESSION_WALL_TIME: Duration = Duration::from_secs(10 * 60);

async fn session_inner(
    store: Arc<Store>,
    conn: iroh::endpoint::Connection,
    dialer: bool,
    mut progress: impl FnMut(u64) + Send,
) -> anyhow::Result<SessionReport> {
    let partner = require_partner(&store)?;
    let remote = conn.remote_id();
    if !partner_devices(&store, &partner)?.contains(&remote) {
        bail!("a device that is not your partner's tried to sync");
    }
    let (_, my_list) = store
        .home()
        .identity("first device", crate::cli::clock().now_ms())?;
    let their_list = partner_list(&store, &partner);
    let mine = store.config().journal;
    let theirs: JournalId = partner.journal;
    let shared = duet_core::authority::shared_with_partner(mine, theirs);
    let mut lists = vec![my_list.encode()];
    lists.extend(their_list.as_ref().map(|l| l.encode()));
    let mut sync =
        SyncSession::new(shared, store.peer_state(&partner.endpoint_id)).with_devices(lists);
    if let Some(list) = &their_list {
        sync = sync.with_peer(list.person(), *remote.as_bytes());
    }
    let mut backend = Blocking(StoreReplica::new(&store));
    let mut docs = Docs::default();
    let role = if dialer { Role::Dialer } else { Role::Listener };
    let (mut send, mut recv) = match role {
        Role::Dialer => conn.open_bi().await.context("opening the sync stream")?,
        // A peer that connects and never opens its stream is let go after one read timeout.
        Role::Listener => tokio::time::timeout(READ_TIMEOUT, conn.accept_bi())
            .await
            .map_err(|_| anyhow::anyhow!("the other device opened no sync stream"))?
            .context("accepting the sync stream")?,
    };
    let driven = drive(
        role,
        &mut recv,
        &mut send,
        &mut sync,
        &mut docs,
        &mut backend,
        READ_TIMEOUT,
        &mut progress,
    )
    .await;
    // What the other side knows of both people's devices is kept, even when it ends the
    // session (a revocation of the device speaking).
    for list in sync.heard_devices() {
        let known = list.person() == my_list.person()
            || their_list
                .as_ref()
                .is_some_and(|t| t.person() == list.person());
        if known {
            store.home().save_devices(list)?;
        }
    }
    let mut traffic = driven?;
    // Store what arrived before the listener tells the dialer it is done.
    let arrivals = tokio::task::block_in_place(|| {
        backend
            .0
            .settle(sync, &mut docs, &partner.endpoint_id, &[theirs])
    })?;
    match role {
        Role::Dialer => conn.close(duet_net::close_code::DONE.into(), b"synced"),
        Role::Listener => {
            end_as_listener(&mut send, &mut traffic).await?;
            // Let the dialer read our last answer, then let it close.
            let _ = tokio::time::timeout(Duration::from_secs(3), conn.closed()).await;
        }
    }
    // Remember where the partner was reached, for next time.
    let mut updated = partner.clone();
    for path in conn.paths().iter() {
        if let iroh::TransportAddr::Ip(addr) = path.remote_addr() {
            let text = addr.to_string();
            if !updated.addrs.contains(&text) {
                updated.addrs.insert(0, text);
            }
        }
    }
    updated.addrs.truncate(8);
    updated.last_sync = Some(crate::cli::clock().now_ms());
    // Re-read right before writing: unpair may have happened meanwhile.
    if store
        .home()
        .partner()?
        .is_some_and(|p| !p.unpaired && p.endpoint_id == updated.endpoint_id)
    {
        store.home().set_partner(&updated)?;
    }
    let mut report = SessionReport {
        traffic,
        ..Default::default()
    };
    if let Some(a) = arrivals.get(&theirs) {
        report.new_items = a.new_items.clone();
        report.changed_items = a.changed_items;
    }
    Ok(report)
}
