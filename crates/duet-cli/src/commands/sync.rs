//! `duet sync`: reach the partner once, sync both journals, report, exit.

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
use crate::sessions::{Dial, Sessions};

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
    sessions: Sessions,
) -> tokio::task::JoinHandle<()> {
    // A partner has a few devices at most: more sessions at once than this is a flood.
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_SESSIONS));
    let pending = Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_HANDSHAKES));
    tokio::spawn(async move {
        while let Some(incoming) = ep.accept().await {
            let Ok(handshaking) = pending.clone().try_acquire_owned() else {
                incoming.refuse();
                continue;
            };
            let (slots, store, results, name, sessions) = (
                slots.clone(),
                store.clone(),
                results.clone(),
                name.clone(),
                sessions.clone(),
            );
            tokio::spawn(async move {
                let connected = tokio::time::timeout(HANDSHAKE_TIMEOUT, incoming).await;
                drop(handshaking);
                let conn = match connected {
                    Ok(Ok(conn)) => conn,
                    Ok(Err(e)) => {
                        return tracing::info!(error = %e, "an incoming connection failed");
                    }
                    Err(_) => return tracing::info!("an incoming connection took too long"),
                };
                if conn.alpn() != SYNC_ALPN {
                    conn.close(duet_net::close_code::NOT_ALLOWED.into(), b"not here");
                    return;
                }
                // A device that dials again has given up on its earlier session (killed, or
                // its network went away without a word), which is closed at once instead of
                // holding a slot until its read timeout.
                let remote = conn.remote_id();
                // A connection that crossed this device's own dial to the same device is closed:
                // that dial's session stands for both.
                let device = remote.fmt_short().to_string();
                let Some(token) = sessions.admit(remote, &conn) else {
                    return tracing::info!(%device, "its dial crossed this device's and gave way");
                };
                tracing::info!(%device, "a device dialed this one");
                // A slot a superseded session is giving back comes free within moments.
                let slot = match tokio::time::timeout(SLOT_WAIT, slots.acquire_owned()).await {
                    Ok(Ok(slot)) => slot,
                    _ => {
                        tracing::info!(%device, "turned away: every session slot is taken");
                        sessions.end(remote, false, token, false);
                        conn.close(duet_net::close_code::BUSY.into(), b"busy");
                        return;
                    }
                };
                let watched = conn.clone();
                let r = net::session(store, conn, false, progress_printer(name, quiet)).await;
                drop(slot);
                log_session(&device, false, &r);
                let ok = r.is_ok();
                // Closed because it crossed a dial of this device's: no report, the twin
                // session stands for it. Otherwise reported before it counts as ended: a `sync`
                // waiting for its sessions to end then has this report too.
                if ok || !sessions.lost_crossing(remote, false, token, &watched) {
                    let _ = results.send(r).await;
                }
                sessions.end(remote, false, token, ok);
            });
        }
    })
}

/// Dial one device of the couple once and run a session if it answers. `None`: the device had
/// dialed this one, and that session (which the acceptor reports) stood for this dial. `since`
/// is how many sessions with the device had completed when the dialing began
/// ([`Sessions::completed`]): one more, from either side, is the session this dial is for.
pub async fn dial_once(
    ep: &Endpoint,
    store: Arc<Store>,
    target: &net::Target,
    quiet: bool,
    connect_timeout: Duration,
    sessions: &Sessions,
    since: u64,
) -> anyhow::Result<Option<SessionReport>> {
    let name = target.name.clone();
    let remote = target.addr.id;
    if sessions.completed(remote) > since {
        return Ok(None);
    }
    let token = match sessions.begin_dial(remote) {
        Dial::Run(token) => token,
        Dial::Yield => {
            tracing::info!(device = %name, "it dialed this device: waiting for that session");
            return yielded(sessions, remote, since, connect_timeout).await;
        }
    };
    tracing::info!(device = %name, addrs = ?target.addr.ip_addrs().collect::<Vec<_>>(), "dialing");
    let connect = ep.connect(target.addr.clone(), SYNC_ALPN);
    let conn = match tokio::time::timeout(connect_timeout, connect).await {
        Ok(Ok(conn)) => conn,
        failed => {
            sessions.end(remote, true, token, false);
            match &failed {
                Ok(Err(e)) => tracing::info!(device = %name, error = %e, "dial failed"),
                _ => tracing::info!(device = %name, after = ?connect_timeout, "no answer"),
            }
            return match failed {
                Ok(Err(e)) if duet_net::refused_by_gate(&e) => Err(Refused(name).into()),
                Ok(Err(e)) => Err(e.into()),
                _ => bail!("no answer"),
            };
        }
    };
    if sessions.completed(remote) > since {
        // While this dial waited for an answer (the device was not up yet), the device dialed
        // this one and that session completed: a second would carry nothing new.
        tracing::info!(device = %name, "a session it dialed already ran: closing this dial");
        conn.close(duet_net::close_code::CROSSED.into(), b"crossed");
        sessions.end(remote, true, token, false);
        return Ok(None);
    }
    if !sessions.dialed(remote, token, &conn) {
        // It crossed the device's own dial to this one, whose session stands for both.
        tracing::info!(device = %name, "this dial crossed theirs and gave way");
        sessions.end(remote, true, token, false);
        return yielded(sessions, remote, since, connect_timeout + CROSSED_WAIT).await;
    }
    // The gate may also close the connection just after the handshake.
    let watched = conn.clone();
    let result = net::session(store, conn, true, progress_printer(name.clone(), quiet)).await;
    if result.is_err() && sessions.lost_crossing(remote, true, token, &watched) {
        tracing::info!(device = %name, "this dial crossed theirs and gave way");
        sessions.end(remote, true, token, false);
        return yielded(sessions, remote, since, connect_timeout + CROSSED_WAIT).await;
    }
    sessions.end(remote, true, token, result.is_ok());
    log_session(&name, true, &result);
    match (&result, watched.close_reason()) {
        (Err(_), Some(reason)) if duet_net::refused_by_gate(&reason) => Err(Refused(name).into()),
        _ => result.map(Some),
    }
}

/// Says at `-v` how a session ended.
fn log_session(device: &str, outgoing: bool, result: &anyhow::Result<SessionReport>) {
    match result {
        Ok(r) => tracing::info!(
            device,
            outgoing,
            ms = r.elapsed.as_millis() as u64,
            sent = r.traffic.sent,
            received = r.traffic.received,
            "session done"
        ),
        Err(e) => tracing::info!(device, outgoing, error = %format!("{e:#}"), "session failed"),
    }
}

/// How much longer than a dial a crossed dial waits for the twin session: it is under way and
/// may be a long first sync.
const CROSSED_WAIT: Duration = Duration::from_secs(60);

/// The device's own dial to this one is under way: done once that session completes.
async fn yielded(
    sessions: &Sessions,
    remote: iroh::EndpointId,
    before: u64,
    max: Duration,
) -> anyhow::Result<Option<SessionReport>> {
    if sessions.wait_completed(remote, before, max).await {
        Ok(None)
    } else {
        bail!("no answer")
    }
}

/// Dial `target` until a session succeeds (from either side: one completed past `since`, see
/// [`dial_once`]), trying cannot help any more, or `deadline` passes.
pub async fn dial_until(
    ep: Endpoint,
    store: Arc<Store>,
    target: net::Target,
    quiet: bool,
    deadline: tokio::time::Instant,
    sessions: Sessions,
    since: u64,
) -> anyhow::Result<Option<SessionReport>> {
    let mut last_err = None;
    while tokio::time::Instant::now() < deadline {
        let left = deadline - tokio::time::Instant::now();
        let wait = left.min(Duration::from_secs(5));
        match dial_once(&ep, store.clone(), &target, quiet, wait, &sessions, since).await {
            Ok(report) => return Ok(report),
            Err(e) if is_final(&e) => return Err(e),
            Err(e) => last_err = Some(e),
        }
        let pause = Duration::from_millis(300)
            .min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        tokio::time::sleep(pause).await;
    }
    Err(last_err.unwrap_or_else(|| anyhow::anyhow!("no answer")))
}

/// The partner's device answered and turned this one away at its gate: it no longer admits
/// this device (they unpaired, or its owner revoked it). Retrying cannot help.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} refused this device: it no longer accepts it (an unpair, or this device was \
             revoked)",
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

/// Once one device answered, how long the others still get: a device on the same network
/// answers within moments, one that is away would only hold up the answer (a connection to a
/// device that is off is only known dead at its timeout).
const OTHERS_GRACE: Duration = Duration::from_millis(1500);

pub fn run(ctx: &Context, out: &mut Out, args: SyncArgs) -> anyhow::Result<()> {
    let store = Arc::new(ctx.store()?);
    let couple = net::Couple::load(&store)?;
    let relay = net::relay_mode(ctx)?;
    let targets = couple.targets(store.home(), &relay)?;
    if targets.is_empty() {
        // Neither a partner nor another device of mine: say how to get one.
        net::require_partner(&store)?;
        bail!("none of your devices or your partner's is known to this one yet");
    }
    let names: Vec<String> = targets.iter().map(|t| t.name.clone()).collect();
    // The volumes written to since the last sync with each device load while the endpoint
    // binds and dials (`Store::warm_up`); the thread only reads, and is not waited for.
    let agreed: Vec<_> = targets
        .iter()
        .map(|t| store.peer_state(&duet_store::home::hex(t.addr.id.as_bytes())))
        .collect();
    let warming = store.clone();
    std::thread::spawn(move || warming.warm_up(&agreed));
    let gate = Gate::with_allowed(couple.admitted());
    let timeout = Duration::from_secs(args.timeout.max(1));
    let quiet = out.quiet;
    let rt = net::runtime()?;
    let label = couple
        .partner
        .as_ref()
        .map(|p| p.name.clone())
        .unwrap_or_else(|| "your devices".into());
    let result: anyhow::Result<Vec<SessionReport>> = rt.block_on(async {
        let ep = net::bind(ctx, store.home(), vec![SYNC_ALPN.to_vec()], gate).await?;
        let (tx, mut rx) = mpsc::channel(8);
        let sessions = Sessions::new(ep.id());
        // Counted before the acceptor starts: a session the device dials in before this
        // process's own dial begins is the one that dial is for (none has completed yet).
        let since: Vec<u64> = targets.iter().map(|t| sessions.completed(t.addr.id)).collect();
        let acceptor =
            spawn_acceptor(ep.clone(), store.clone(), tx, label.clone(), quiet, sessions.clone());
        let deadline = tokio::time::Instant::now() + timeout;
        let mut dialers = tokio::task::JoinSet::new();
        for (target, since) in targets.into_iter().zip(since) {
            let (ep, store, sessions) = (ep.clone(), store.clone(), sessions.clone());
            dialers.spawn(dial_until(ep, store, target, quiet, deadline, sessions, since));
        }
        // Every device that answers before the timeout, from either direction.
        let mut reports: Vec<SessionReport> = Vec::new();
        let mut failures = Vec::new();
        let mut cutoff = deadline + Duration::from_secs(2);
        loop {
            tokio::select! {
                Some(joined) = dialers.join_next(), if !dialers.is_empty() => match joined {
                    Ok(Ok(Some(report))) => reports.push(report),
                    // Reached by the other side's dial: the acceptor reports it.
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => failures.push(e),
                    Err(_) => {}
                },
                Some(r) = rx.recv() => match r {
                    Ok(report) => reports.push(report),
                    Err(e) => failures.push(e),
                },
                _ = sessions.ended() => {}
                _ = tokio::time::sleep_until(cutoff) => {
                    // The timeout is for reaching a device: a session under way goes on to its
                    // end (its reads have their own timeouts, the whole its wall time), however
                    // slow the link.
                    if !sessions.any_running() {
                        break;
                    }
                    cutoff = tokio::time::Instant::now() + Duration::from_millis(100);
                }
            }
            if !reports.is_empty() {
                cutoff = cutoff.min(tokio::time::Instant::now() + OTHERS_GRACE);
            }
            // Done once every dial has ended and something answered, and no session the other
            // side started is still under way (its report would be lost).
            if dialers.is_empty() && !reports.is_empty() && !sessions.any_running() {
                break;
            }
            if dialers.is_empty() && failures.iter().any(is_final) {
                break;
            }
        }
        // A session the other side started may have sent its report in the same moment it
        // ended, and the loop may have woken for the end first: take what is waiting.
        while let Ok(r) = rx.try_recv() {
            match r {
                Ok(report) => reports.push(report),
                Err(e) => failures.push(e),
            }
        }
        dialers.abort_all();
        acceptor.abort();
        net::close(&ep).await;
        if !reports.is_empty() {
            return Ok(reports);
        }
        match failures.iter().position(is_final).map(|i| failures.swap_remove(i)).or(failures.pop()) {
            Some(e) if e.is::<Refused>() => Err(e),
            Some(e) if is_final(&e) => Err(e.context(format!("syncing with {label} failed"))),
            _ => bail!(
                "could not reach {} within {} s; is `duet serve` or `duet sync` running on another device \
                 of you two, on a network you share?",
                names.join(", "),
                timeout.as_secs()
            ),
        }
    });
    net::finish_runtime(rt);
    let mut reports = result?;
    // One line per device; a device reached both ways at once counts once (both sessions saw
    // the same news, so the larger count stands for both).
    reports.sort_by(|a, b| a.device.cmp(&b.device));
    reports.dedup_by(|later, first| {
        if later.device != first.device {
            return false;
        }
        for (k, n) in std::mem::take(&mut later.new_items) {
            let seen = first.new_items.entry(k).or_default();
            *seen = (*seen).max(n);
        }
        first.changed_items = first.changed_items.max(later.changed_items);
        first.traffic.sent += later.traffic.sent;
        first.traffic.received += later.traffic.received;
        first.traffic.batches_sent += later.traffic.batches_sent;
        true
    });
    let received: u64 = reports.iter().map(|r| r.traffic.received).sum();
    if std::io::stderr().is_terminal() && !quiet && received >= 256 * 1024 {
        eprintln!();
    }
    out.warnings(&store);
    let unreached: Vec<&String> = names
        .iter()
        .filter(|n| !reports.iter().any(|r| &r.peer == *n))
        .collect();
    if out.json {
        let mut new = std::collections::BTreeMap::<String, usize>::new();
        for r in &reports {
            for (k, n) in &r.new_items {
                *new.entry(k.to_string()).or_default() += n;
            }
        }
        return Ok(out.json_value(&json!({
            "partner": couple.partner.as_ref().map(|p| p.name.clone()),
            "new": new,
            "updated": reports.iter().map(|r| r.changed_items).sum::<usize>(),
            "bytes_sent": reports.iter().map(|r| r.traffic.sent).sum::<u64>(),
            "bytes_received": received,
            "reached": reports.iter().map(|r| json!({
                "device": r.device,
                "name": r.peer,
                "owner": if r.mine { "me" } else { "partner" },
                "ms": r.elapsed.as_secs_f64() * 1000.0,
                "bytes_sent": r.traffic.sent,
                "bytes_received": r.traffic.received,
                "round_trips": r.traffic.batches_sent,
                "unsigned_volumes_refused": r.unsigned_cut,
            })).collect::<Vec<_>>(),
            "unreached": unreached,
        }))?);
    }
    for r in &reports {
        if let Some(warning) = r.refusal() {
            out.warn(&warning);
        }
        out.line(&r.describe())?;
    }
    if !unreached.is_empty() {
        out.note(&format!(
            "Not reached this time: {}.",
            unreached
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}
