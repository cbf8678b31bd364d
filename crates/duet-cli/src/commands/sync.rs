//! `duet sync`: reach the partner once, sync both journals, report, exit.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use duet_net::{Endpoint, Gate, SYNC_ALPN};
use duet_store::Store;
use serde_json::json;
use tokio::sync::mpsc;

use crate::cli::Context;
use crate::net::{self, SessionReport};
use crate::output::Out;

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// Give up if the partner cannot be reached within this many seconds
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub timeout: u64,
}

/// A progress line on stderr for long syncs, only on a terminal.
pub fn progress_printer(name: String, quiet: bool) -> impl FnMut(u64) + Send {
    let on = std::io::stderr().is_terminal() && !quiet;
    let mut shown = 0u64;
    move |bytes| {
        if on && bytes >= 256 * 1024 && bytes - shown >= 64 * 1024 {
            shown = bytes;
            eprint!(
                "\rreceiving from {name}... {:.1} MiB",
                bytes as f64 / (1024.0 * 1024.0)
            );
        }
    }
}

/// Sessions this device runs at once, from all of the partner's connections together.
pub const MAX_CONCURRENT_SESSIONS: usize = 4;
/// Incoming connections still in their handshake at once; each has 10 seconds. Past this a
/// newcomer is refused unread, so a flood of half-open connections costs a bounded amount.
pub const MAX_PENDING_HANDSHAKES: usize = 16;
/// How long a new session waits for a free slot before it is turned away as busy.
const SLOT_WAIT: Duration = Duration::from_secs(2);
/// How long an incoming connection may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accept sync connections from the partner and run a session on each. Each handshake runs on
/// its own task: a slow or silent stranger does not hold up the next connection.
pub fn spawn_acceptor(
    ep: Endpoint,
    store: Arc<Store>,
    results: mpsc::Sender<anyhow::Result<SessionReport>>,
    name: String,
    quiet: bool,
) -> tokio::task::JoinHandle<()> {
    // A partner has a few devices at most: more sessions at once than this is a flood.
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_SESSIONS));
    let pending = Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_HANDSHAKES));
    // The session each device of the partner is running. A device that dials again has given
    // up on its earlier session (it was killed, or its network went away without a word):
    // that one is closed at once instead of holding a slot until its read timeout.
    let running: Arc<std::sync::Mutex<HashMap<iroh::EndpointId, iroh::endpoint::Connection>>> =
        Arc::default();
    tokio::spawn(async move {
        while let Some(incoming) = ep.accept().await {
            let Ok(handshaking) = pending.clone().try_acquire_owned() else {
                incoming.refuse();
                continue;
            };
            let (slots, store, results, name, running) = (
                slots.clone(),
                store.clone(),
                results.clone(),
                name.clone(),
                running.clone(),
            );
            tokio::spawn(async move {
                let connected = tokio::time::timeout(HANDSHAKE_TIMEOUT, incoming).await;
                drop(handshaking);
                let Ok(Ok(conn)) = connected else {
                    return;
                };
                if conn.alpn() != SYNC_ALPN {
                    conn.close(duet_net::close_code::NOT_ALLOWED.into(), b"not here");
                    return;
                }
                let remote = conn.remote_id();
                let earlier = running
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(remote, conn.clone());
                if let Some(earlier) = earlier {
                    earlier.close(duet_net::close_code::BUSY.into(), b"superseded");
                }
                // A slot a superseded session is giving back comes free within moments.
                let slot = match tokio::time::timeout(SLOT_WAIT, slots.acquire_owned()).await {
                    Ok(Ok(slot)) => slot,
                    _ => {
                        conn.close(duet_net::close_code::BUSY.into(), b"busy");
                        return;
                    }
                };
                let watched = conn.clone();
                let r = net::session(store, conn, false, progress_printer(name, quiet)).await;
                drop(slot);
                {
                    let mut running = running.lock().unwrap_or_else(|p| p.into_inner());
                    if running
                        .get(&remote)
                        .is_some_and(|c| c.stable_id() == watched.stable_id())
                    {
                        running.remove(&remote);
                    }
                }
                let _ = results.send(r).await;
            });
        }
    })
}

/// Dial the partner until a session succeeds or the deadline passes.
pub async fn dial_once(
    ep: &Endpoint,
    store: Arc<Store>,
    name: String,
    quiet: bool,
    connect_timeout: Duration,
    relay: &duet_net::RelayMode,
) -> anyhow::Result<SessionReport> {
    let partner = net::require_partner(&store)?;
    let addr = net::partner_addr(&partner, relay)?;
    let conn = match tokio::time::timeout(connect_timeout, ep.connect(addr, SYNC_ALPN)).await {
        Err(_) => bail!("no answer"),
        Ok(Err(e)) if duet_net::refused_by_gate(&e) => return Err(Refused(name).into()),
        Ok(Err(e)) => return Err(e.into()),
        Ok(Ok(conn)) => conn,
    };
    // The gate may also close the connection just after the handshake.
    let watched = conn.clone();
    let result = net::session(store, conn, true, progress_printer(name.clone(), quiet)).await;
    match (&result, watched.close_reason()) {
        (Err(_), Some(reason)) if duet_net::refused_by_gate(&reason) => Err(Refused(name).into()),
        _ => result,
    }
}

/// The partner's device answered and turned this one away at its gate: it no longer admits
/// this device (they unpaired, or its owner revoked it). Retrying cannot help.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}'s device refused this one: it no longer accepts it (they ran `duet unpair`, or this \
             device was revoked)",
            self.0
        )
    }
}

impl std::error::Error for Refused {}

/// Whether trying again cannot help: the partner's device refused this one, this device could
/// not store what arrived (a full disk, a damaged file), or a device was revoked. Anything
/// else (no answer, a broken connection) is worth another try until the timeout.
fn is_final(e: &anyhow::Error) -> bool {
    e.is::<Refused>()
        || e.chain().any(|cause| {
            cause.downcast_ref::<duet_store::StoreError>().is_some()
                || matches!(
                    cause.downcast_ref::<duet_net::sync::SyncNetError>(),
                    Some(duet_net::sync::SyncNetError::Protocol(
                        duet_core::sync::SyncError::PeerRevoked
                    ))
                )
        })
}

pub fn run(ctx: &Context, out: &mut Out, args: SyncArgs) -> anyhow::Result<()> {
    let store = Arc::new(ctx.store()?);
    let partner = net::require_partner(&store)?;
    let gate = Gate::with_allowed(net::partner_devices(&store, &partner)?);
    let timeout = Duration::from_secs(args.timeout.max(1));
    let quiet = out.quiet;
    let rt = net::runtime()?;
    let result: anyhow::Result<SessionReport> = rt.block_on(async {
        let ep = net::bind(ctx, store.home(), vec![SYNC_ALPN.to_vec()], gate).await?;
        let (tx, mut rx) = mpsc::channel(4);
        let acceptor = spawn_acceptor(ep.clone(), store.clone(), tx.clone(), partner.name.clone(), quiet);
        let dialer = {
            let (ep, store, name) = (ep.clone(), store.clone(), partner.name.clone());
            let relay = net::relay_mode(ctx)?;
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + timeout;
                let mut last_err = None;
                while tokio::time::Instant::now() < deadline {
                    let left = deadline - tokio::time::Instant::now();
                    let wait = left.min(Duration::from_secs(5));
                    match dial_once(&ep, store.clone(), name.clone(), quiet, wait, &relay).await {
                        Ok(report) => {
                            let _ = tx.send(Ok(report)).await;
                            return;
                        }
                        Err(e) if is_final(&e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                        Err(e) => last_err = Some(e),
                    }
                    tokio::time::sleep(Duration::from_millis(300).min(deadline.saturating_duration_since(tokio::time::Instant::now()))).await;
                }
                if let Some(e) = last_err {
                    tracing::debug!("last dial error: {e:#}");
                }
            })
        };
        // The first session that completes, from either direction, is the answer.
        let mut failures = Vec::new();
        let outcome = tokio::time::timeout(timeout + Duration::from_secs(2), async {
            while let Some(r) = rx.recv().await {
                match r {
                    Ok(report) => return Some(report),
                    Err(e) if is_final(&e) => {
                        failures.push(e);
                        return None;
                    }
                    Err(e) => failures.push(e),
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        dialer.abort();
        acceptor.abort();
        ep.close().await;
        match outcome {
            Some(report) => Ok(report),
            None => match failures.pop() {
                Some(e) if e.is::<Refused>() => Err(e),
                Some(e) => Err(e.context(format!("syncing with {} failed", partner.name))),
                None => bail!(
                    "could not reach {} within {} s; is `duet serve` or `duet sync` running on their device, on a network you share?",
                    partner.name,
                    timeout.as_secs()
                ),
            },
        }
    });
    let report = result?;
    if std::io::stderr().is_terminal() && !quiet && report.traffic.received >= 256 * 1024 {
        eprintln!();
    }
    out.warnings(&store);
    if out.json {
        return Ok(out.json_value(&json!({
            "partner": partner.name,
            "new": report.new_items.iter().map(|(k, n)| (k.to_string(), *n)).collect::<std::collections::BTreeMap<_, _>>(),
            "updated": report.changed_items,
            "bytes_sent": report.traffic.sent,
            "bytes_received": report.traffic.received,
        }))?);
    }
    out.line(&report.describe(&partner.name))?;
    Ok(())
}
