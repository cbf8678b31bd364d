//! What the network commands share: the endpoint, the port this home
//! listens on, and one sync session with the partner.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use duet_core::authority::{Authority, DeviceId, DeviceKey, DeviceList, Journals, PeerKind};
use duet_core::sync::{Docs, Signing, SyncSession};
use duet_core::{JournalId, Kind};
use duet_net::lan::Lan;
use duet_net::sync::{Blocking, Role, Traffic, drive, end_as_listener};
use duet_net::{Endpoint, EndpointAddr, EndpointId, Gate, NetConfig, RelayMode};
use duet_store::home::hex;
use duet_store::{Home, Partner, Store, StoreReplica};

use crate::cli::Context;
use crate::output::Out;

/// How long one read may wait during a sync before the peer counts as gone.
pub const READ_TIMEOUT: Duration = Duration::from_secs(20);
const PORT_FILE: &str = "port";

/// Closes the endpoint, telling the peers, but waits for that at most a moment: a connection
/// left by a killed peer, or a dial to a device that is away, must not hold up the end of a
/// command (the sessions that completed have closed their connections already).
pub async fn close(ep: &Endpoint) {
    let _ = tokio::time::timeout(Duration::from_millis(700), ep.close()).await;
}

/// Ends a command's runtime without waiting on tasks still parked on a dead connection.
pub fn finish_runtime(rt: tokio::runtime::Runtime) {
    rt.shutdown_timeout(Duration::from_secs(2));
}

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

/// Whether LAN discovery is on (`--lan`, `DUET_LAN`; on unless turned off).
pub fn lan_discovery(ctx: &Context) -> anyhow::Result<bool> {
    match ctx
        .global
        .lan
        .as_deref()
        .map(|s| s.trim().to_ascii_lowercase())
    {
        None => Ok(true),
        Some(s) if ["on", "yes", "true", "1"].contains(&s.as_str()) => Ok(true),
        Some(s) if ["off", "no", "false", "0"].contains(&s.as_str()) => Ok(false),
        Some(s) => bail!("`{s}` is not a LAN discovery setting; use `on` or `off`"),
    }
}

fn requested_bind(ctx: &Context) -> anyhow::Result<SocketAddr> {
    match ctx.global.bind.as_deref() {
        None => Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)),
        Some(text) => text.trim().parse().map_err(|_| {
            anyhow::anyhow!(
                "`{text}` is not an address to listen on; use IP:PORT such as 0.0.0.0:0 or \
                127.0.0.1:4433"
            )
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
    bind_as(ctx, home, alpns, gate, Lan::Quick).await
}

/// [`bind`], looking on the local network as `lan` says when LAN discovery is on.
pub async fn bind_as(
    ctx: &Context,
    home: &Home,
    alpns: Vec<Vec<u8>>,
    gate: Gate,
    lan: Lan,
) -> anyhow::Result<Endpoint> {
    let relay = relay_mode(ctx)?;
    let secret_key = home.device_key()?;
    let asked = requested_bind(ctx)?;
    let lan = if lan_discovery(ctx)? { lan } else { Lan::Off };
    let preferred = match (asked.port(), stored_port(home)) {
        (0, Some(port)) => Some(SocketAddr::new(asked.ip(), port)),
        _ => None,
    };
    if let Some(addr) = preferred {
        let cfg = NetConfig {
            secret_key,
            relay: relay.clone(),
            bind: Some(addr),
            lan,
        };
        if let Ok(ep) = duet_net::bind_endpoint(&cfg, alpns.clone(), gate.clone()).await {
            return Ok(ep);
        }
    }
    let cfg = NetConfig {
        secret_key,
        relay,
        bind: Some(asked),
        lan,
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

/// How long a command that prints a ticket waits for its relay.
pub const RELAY_WAIT: Duration = Duration::from_secs(10);

/// [`bind`] for a command that hands out a ticket (`pair invite`, `device link`): with a relay
/// configured, first wait (at most [`RELAY_WAIT`], saying so) until the endpoint has reached it,
/// so that the ticket carries the relay and a partner on another network can use it. When the
/// relay cannot be reached, say so: the ticket then works only where a direct address does.
pub async fn bind_for_ticket(
    ctx: &Context,
    home: &Home,
    alpns: Vec<Vec<u8>>,
    gate: Gate,
    out: &Out,
) -> anyhow::Result<Endpoint> {
    let ep = bind(ctx, home, alpns, gate).await?;
    let relay = relay_mode(ctx)?;
    if relay == RelayMode::Disabled {
        return Ok(ep);
    }
    let which = match &relay {
        RelayMode::Custom(url) => format!("the relay {url}"),
        _ => "a relay".to_owned(),
    };
    out.note(&format!(
        "Reaching {which} (at most {} s)...",
        RELAY_WAIT.as_secs()
    ));
    let started = std::time::Instant::now();
    if duet_net::wait_online(&ep, &relay, RELAY_WAIT).await {
        tracing::info!(elapsed = ?started.elapsed(), "relay reached");
    } else {
        out.warn(&format!(
            "could not reach {which} within {} s; the ticket holds only this device's own \
             addresses, so it works only from a network that reaches them",
            RELAY_WAIT.as_secs()
        ));
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
pub fn partner_list(store: &Store, partner: &Partner) -> Option<DeviceList> {
    let person = partner.person_id()?;
    store.home().devices(&person).ok().flatten()
}

/// The paired partner, or an error that says what to do.
pub fn require_partner(store: &Store) -> anyhow::Result<Partner> {
    match store.partner() {
        None => bail!(
            "you are not paired yet; run `duet pair invite` here and `duet pair join TICKET` on your \
                partner's device"
        ),
        Some(p) if p.unpaired => bail!(
            "you unpaired from {}; pair again with `duet pair invite` to sync",
            p.name
        ),
        Some(p) => Ok(p.clone()),
    }
}

/// The couple as this device knows it right now: both device lists, the partner (unless
/// unpaired) and the journals. Read afresh for every session, so a revocation or an unpair
/// applies from the next one.
pub struct Couple {
    pub this: DeviceId,
    pub authority: Authority,
    pub partner: Option<Partner>,
    pub journals: Journals,
}

/// A device to dial.
pub struct Target {
    pub name: String,
    pub addr: EndpointAddr,
}

impl Couple {
    pub fn load(store: &Store) -> anyhow::Result<Couple> {
        let (_, me) = store
            .home()
            .identity("first device", crate::cli::clock().now_ms())?;
        let this = DeviceKey::from_bytes(store.home().device_key()?).id();
        // Read from disk, not the store's copy: `duet unpair` may have run since it opened.
        let partner = store.home().partner()?.filter(|p| !p.unpaired);
        let partner_devices = partner.as_ref().and_then(|p| partner_list(store, p));
        let config = store.config();
        Ok(Couple {
            this,
            journals: Journals {
                mine: config.journal,
                private: config.private_journal,
                partners: partner.as_ref().map(|p| p.journal),
                recovering: store.home().is_recovering(),
            },
            authority: Authority {
                me,
                partner: partner_devices,
            },
            partner,
        })
    }

    /// The partner's one pinned device, for a partner paired before device lists.
    fn pinned_without_list(&self) -> Option<DeviceId> {
        if self.authority.partner.is_some() {
            return None;
        }
        let p = self.partner.as_ref()?;
        partner_id(p).ok().map(|id| *id.as_bytes())
    }

    /// Whose device `device` is; this device itself is refused.
    pub fn kind(&self, device: &DeviceId) -> PeerKind {
        if *device == self.this {
            return PeerKind::Refused;
        }
        match self.authority.peer(device) {
            PeerKind::Refused if self.pinned_without_list() == Some(*device) => PeerKind::Partners,
            kind => kind,
        }
    }

    /// Every device this one may sync with, with whose it is.
    pub fn peers(&self) -> Vec<(DeviceId, PeerKind)> {
        let mut peers = self.authority.peers(&self.this);
        if let Some(pinned) = self.pinned_without_list() {
            peers.push((pinned, PeerKind::Partners));
        }
        peers
    }

    /// The ids the gate lets in.
    pub fn admitted(&self) -> Vec<EndpointId> {
        self.peers()
            .iter()
            .filter_map(|(d, _)| EndpointId::from_bytes(d).ok())
            .collect()
    }

    /// How a device is named to the person at the keyboard: "your phone", "Sam", or "Sam's
    /// phone" once Sam has more than one device.
    pub fn name_of(&self, device: &DeviceId) -> String {
        let label = |list: &DeviceList| {
            list.cert(device)
                .map(|c| crate::safe::line(&c.label).into_owned())
        };
        match self.kind(device) {
            PeerKind::Mine => format!(
                "your {}",
                label(&self.authority.me).unwrap_or_else(|| "device".into())
            ),
            _ => {
                let name = self
                    .partner
                    .as_ref()
                    .map(|p| crate::safe::line(&p.name).into_owned())
                    .unwrap_or_else(|| "your partner".into());
                match &self.authority.partner {
                    Some(list) if list.certs().filter(|c| list.admits(&c.device)).count() > 1 => {
                        format!(
                            "{name}'s {}",
                            label(list).unwrap_or_else(|| "device".into())
                        )
                    }
                    _ => name,
                }
            }
        }
    }

    /// Every device to dial, at the addresses it was last reached at (and, for the partner's
    /// pinned device, those learned at pairing), with its relay where this device's own relay
    /// setting allows it.
    pub fn targets(&self, home: &Home, relay: &RelayMode) -> anyhow::Result<Vec<Target>> {
        let book = home.address_book();
        let mut out = Vec::new();
        for (device, _) in self.peers() {
            let known = book.devices.get(&hex(&device));
            let seen = known.cloned().unwrap_or_default();
            let mut addrs: Vec<String> = seen.addrs.clone();
            let mut relay_url = seen.relay_url.clone();
            // What pairing learned, until a session has taught better (after which the address
            // book alone holds where the device was reached, and ages out what stopped working).
            if let Some(p) = self
                .partner
                .as_ref()
                .filter(|p| p.endpoint_id == hex(&device))
            {
                if known.is_none_or(|s| s.last_seen.is_none()) {
                    addrs.extend(p.addrs.iter().cloned());
                }
                relay_url = relay_url.or(p.relay_url.clone());
            }
            let addrs: Vec<SocketAddr> = addrs.iter().filter_map(|a| a.parse().ok()).collect();
            let addr = duet_net::endpoint_addr(
                &device,
                &addrs,
                relay.partner_relay(relay_url.as_deref()),
            )?;
            out.push(Target {
                name: self.name_of(&device),
                addr,
            });
        }
        Ok(out)
    }
}

/// What one session brought and cost.
#[derive(Debug, Default)]
pub struct SessionReport {
    pub new_items: std::collections::BTreeMap<Kind, usize>,
    pub changed_items: usize,
    pub traffic: Traffic,
    /// The device the session was held with (hex id).
    pub device: String,
    /// How it is named: "Sam", "your phone".
    pub peer: String,
    /// Whether it is one of this person's own devices.
    pub mine: bool,
    /// How long the session took, from the connection to the end.
    pub elapsed: Duration,
    /// Volumes that held changes no device of their journal's owner signed: not kept.
    pub unsigned_cut: usize,
}

impl SessionReport {
    /// A warning when the device delivered changes no device of their author signed.
    pub fn refusal(&self) -> Option<String> {
        (self.unsigned_cut > 0).then(|| {
            format!(
                "{} delivered changes that no device of their author signed, in {} volume(s); \
                 they were not kept (a modified or damaged device?)",
                self.peer, self.unsigned_cut
            )
        })
    }

    pub fn describe(&self) -> String {
        let partner = &self.peer;
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
        if parts.is_empty() && self.mine {
            format!("Up to date with {partner}: nothing new there.")
        } else if parts.is_empty() {
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
    let started = std::time::Instant::now();
    match tokio::time::timeout(
        SESSION_WALL_TIME,
        session_inner(store, conn, dialer, progress),
    )
    .await
    {
        Ok(result) => result.map(|mut report| {
            report.elapsed = started.elapsed();
            report
        }),
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
    let couple = Couple::load(&store)?;
    let remote = conn.remote_id();
    let device: DeviceId = *remote.as_bytes();
    let kind = couple.kind(&device);
    if kind == PeerKind::Refused {
        bail!("a device that is neither yours nor your partner's tried to sync");
    }
    let shared = duet_core::authority::shared_with(kind, &couple.journals);
    let writable: Vec<JournalId> = shared
        .iter()
        .filter(|s| s.accept_changes)
        .map(|s| s.journal)
        .collect();
    let my_list = &couple.authority.me;
    let their_list = couple.authority.partner.as_ref();
    let mut lists = vec![my_list.encode()];
    lists.extend(their_list.map(|l| l.encode()));
    let peer_key = hex(&device);
    let mut sync = SyncSession::new(shared, store.peer_state(&peer_key)).with_devices(lists);
    let owner = match kind {
        PeerKind::Mine => Some(my_list.person()),
        _ => their_list.map(|l| l.person()),
    };
    if let Some(person) = owner {
        sync = sync.with_peer(person, device);
    }
    // Where the other devices of the couple were reached: how a device learns to dial one it
    // has never met (a home device linked after pairing).
    let known: Vec<DeviceId> = couple.peers().into_iter().map(|(d, _)| d).collect();
    let about_others = |d: &DeviceId| known.contains(d) && *d != device;
    let mut hints = store.home().address_book().hints();
    hints.retain(|(d, _)| about_others(d));
    sync = sync.with_hints(hints);
    // Authorship: this device vouches for its person's journals; of the journals it may take
    // changes to, it keeps only what their owner's devices signed.
    sync = sync.with_signing(Signing::for_couple(
        DeviceKey::from_bytes(store.home().device_key()?),
        crate::cli::clock().now_ms(),
        &couple.authority,
        &couple.journals,
    ));
    let mut backend = Blocking(StoreReplica::new(&store));
    let mut docs = Docs::default().resting();
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
            || their_list.is_some_and(|t| t.person() == list.person());
        if known {
            store.home().save_devices(list)?;
        }
    }
    // Hints only for devices this one knows by id, never about itself or the peer: known as
    // of now, with the device lists this session brought (the session that first tells of a
    // device, a home device just linked, also says where it is; filtered by the devices known
    // when the session began, that hint was dropped, and a laptop could not find the home
    // device until its next session with the partner). Read again only when the session
    // brought device lists: reading them checks every signature in them.
    let mut heard = sync.heard_hints().to_vec();
    if !heard.is_empty() {
        let known_now: Vec<DeviceId> = if sync.heard_devices().is_empty() {
            known
        } else {
            Couple::load(&store)
                .map(|c| c.peers().into_iter().map(|(d, _)| d).collect())
                .unwrap_or(known)
        };
        heard.retain(|(d, _)| known_now.contains(d) && *d != device);
        let _ = store.home().hint(&heard);
    }
    let mut traffic = driven?;
    // Only what the owners' devices signed is kept; say so when something was not.
    let unsigned_cut = sync.keep_covered(&mut docs);
    let closing = sync.closing();
    // Store what arrived before the listener tells the dialer it is done.
    let arrivals =
        tokio::task::block_in_place(|| backend.0.settle(sync, &mut docs, &peer_key, &writable))?;
    match role {
        Role::Dialer => conn.close(duet_net::close_code::DONE.into(), b"synced"),
        Role::Listener => {
            end_as_listener(&mut send, &mut traffic, &closing).await?;
            // Let the dialer read our last answer, then let it close.
            let _ = tokio::time::timeout(Duration::from_secs(3), conn.closed()).await;
        }
    }
    // A restored device is an ordinary one again once its journal is back: it holds some of
    // it, and a whole session with the partner's device brought nothing more of it (an
    // interrupted first session, or one that brought part, leaves it waiting for the rest).
    let nothing_more = arrivals
        .get(&couple.journals.mine)
        .is_none_or(|a| a.new_items.is_empty() && a.changed_items == 0);
    let holds_some = store
        .files(couple.journals.mine)
        .list()
        .is_ok_and(|l| !l.volumes.is_empty());
    if couple.journals.recovering && kind == PeerKind::Partners && nothing_more && holds_some {
        store.home().recovered()?;
    }
    // Remember where the device was reached, for next time.
    let now = crate::cli::clock().now_ms();
    let reach = duet_net::reach(&conn);
    store.home().reached(&peer_key, &reach, now)?;
    // `status` tells the last sync from the address book (`reached` above): the partner
    // record is not written again after every session.
    let mut report = SessionReport {
        traffic,
        device: peer_key,
        peer: couple.name_of(&device),
        mine: kind == PeerKind::Mine,
        unsigned_cut,
        ..Default::default()
    };
    for a in arrivals.values() {
        for (k, n) in &a.new_items {
            *report.new_items.entry(k.clone()).or_default() += n;
        }
        report.changed_items += a.changed_items;
    }
    Ok(report)
}
