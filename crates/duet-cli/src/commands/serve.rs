//! `duet serve`: stay online, accept the partner, push local changes.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use duet_net::lan::Lan;
use duet_net::{Gate, SYNC_ALPN};
use duet_store::Store;
use tokio::sync::mpsc;

use crate::cli::Context;
use crate::commands::sync::{dial_once, spawn_acceptor};
use crate::net;
use crate::output::Out;
use crate::sessions::Sessions;

/// How long `serve` lets incoming sessions come before its first push.
const FIRST_PUSH_AFTER: Duration = Duration::from_millis(1500);
/// How long `serve` lets a write finish (its files, one after another) once it saw it begin.
const SETTLE: Duration = Duration::from_millis(10);

/// Watches the journals' directory (and those in it) for writes, and says so on the returned
/// channel. The watcher must be kept alive; if the system refuses one (a limit on watches),
/// the channel stays silent and the caller's periodic look is all there is.
fn watch_journals(store: &Store) -> (mpsc::Receiver<()>, Option<::notify::RecommendedWatcher>) {
    use ::notify::Watcher;
    let (tx, rx) = mpsc::channel(1);
    let dir = store.home().root().join("journals");
    let watcher = duet_store::fsutil::create_private_dir(&dir)
        .map_err(::notify::Error::io)
        .and_then(|()| {
            ::notify::recommended_watcher(move |event: ::notify::Result<::notify::Event>| {
                // Reading a journal (a `list`) is no news; anything else may be.
                if event.is_ok_and(|e| !e.kind.is_access()) {
                    let _ = tx.try_send(());
                }
            })
        })
        .and_then(|mut w| {
            w.watch(&dir, ::notify::RecursiveMode::Recursive)?;
            Ok(w)
        });
    match watcher {
        Ok(w) => (rx, Some(w)),
        Err(err) => {
            tracing::debug!(%err, "no watch on the journals; looking for writes every 200 ms");
            (rx, None)
        }
    }
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Show a desktop notification when your partner's thanks, check-in or answer arrives
    #[arg(long)]
    pub notify: bool,
}

/// Cheap fingerprint of the journals this device carries: it changes whenever any process
/// writes to one of them (a write here, a sync with another device).
fn journals_key(store: &Store, journals: &duet_core::authority::Journals) -> Option<[u8; 32]> {
    let mut h = blake3::Hasher::new();
    for journal in [
        Some(journals.mine),
        Some(journals.private),
        journals.partners,
    ]
    .into_iter()
    .flatten()
    {
        let listing = store.files(journal).list().ok()?;
        for (vol, files) in &listing.volumes {
            h.update(vol.as_bytes());
            h.update(&duet_store::volumes::Listing::volume_key(files));
        }
    }
    Some(*h.finalize().as_bytes())
}

pub fn run(ctx: &Context, out: &mut Out, args: ServeArgs) -> anyhow::Result<()> {
    let store = Arc::new(ctx.store()?);
    let mut couple = net::Couple::load(&store)?;
    if couple.peers().is_empty() {
        net::require_partner(&store)?;
        anyhow::bail!("none of your devices or your partner's is known to this one yet");
    }
    let gate = Gate::with_allowed(couple.admitted());
    let quiet = out.quiet;
    let who = couple
        .partner
        .as_ref()
        .map(|p| p.name.clone())
        .unwrap_or_else(|| "your devices".into());
    let rt = net::runtime()?;
    let result = rt.block_on(async {
        // Listen for Ctrl-C and for a service manager's stop before saying we serve: a signal
        // that comes right after the first line must still end us cleanly.
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupted = signal(SignalKind::interrupt())?;
        let mut terminated = signal(SignalKind::terminate())?;
        let alpns = vec![SYNC_ALPN.to_vec()];
        let ep = net::bind_as(ctx, store.home(), alpns, gate.clone(), Lan::Steady).await?;
        let (tx, mut rx) = mpsc::channel(16);
        let sessions = Sessions::new(ep.id());
        let acceptor = spawn_acceptor(
            ep.clone(),
            store.clone(),
            tx.clone(),
            who.clone(),
            quiet,
            sessions.clone(),
        );
        match &couple.partner {
            Some(p) => out.note(&format!(
                "Serving your journals to {} and to your other devices. Press Ctrl-C to stop.",
                crate::safe::line(&p.name)
            )),
            None => out.note("Serving your journals to your other devices. Press Ctrl-C to stop."),
        }
        let mut pushed: Option<[u8; 32]> = None;
        let mut paired = couple.partner.clone();
        let relay = net::relay_mode(ctx)?;
        let mut backoff = Duration::from_millis(250);
        // The first push waits a moment: a partner's `sync` that reached this `serve` as it
        // started is served first, and the push then counts that session instead of crossing it
        // with a second one (both would carry the whole journal on a first sync).
        let mut next_try = tokio::time::Instant::now() + FIRST_PUSH_AFTER;
        let mut pushing: Option<tokio::task::JoinHandle<(Option<[u8; 32]>, bool)>> = None;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        // A write to a journal (here, by another process, or by a session) wakes the loop at
        // once, instead of at the next tick: a new entry leaves within milliseconds.
        let (mut woken, _watcher) = watch_journals(&store);
        loop {
            tokio::select! {
                _ = interrupted.recv() => break,
                _ = terminated.recv() => break,
                Some(()) = woken.recv() => {
                    // A write is a few files in a row: let them land, then look once.
                    tokio::time::sleep(SETTLE).await;
                    while woken.try_recv().is_ok() {}
                }
                Some(result) = rx.recv() => {
                    match result {
                        Ok(report) => {
                            if let Some(warning) = report.refusal() {
                                out.warn(&warning);
                            }
                            if !report.new_items.is_empty() || report.changed_items > 0 {
                                let _ = out.line(&report.describe());
                            }
                            if args.notify
                                && !report.mine
                                && let Some(text) = crate::notify::message(&report.peer, &report.new_items)
                            {
                                tokio::spawn(async move { crate::notify::show(&text).await });
                            }
                        }
                        Err(e) => out.warn(&format!("a sync failed: {e:#}")),
                    }
                    out.warnings(&store);
                    continue;
                }
                _ = tick.tick() => {}
            }
            // Device lists, revocations and the partner record may have changed (a
            // session brought news, `duet unpair` or `duet device revoke` ran): the
            // gate follows at once.
            if let Ok(now) = net::Couple::load(&store) {
                couple = now;
                gate.set_allowed(couple.admitted());
            }
            if let Some(p) = &paired
                && couple.partner.as_ref().is_none_or(|now| now.endpoint_id != p.endpoint_id)
            {
                if let Some(task) = pushing.take() {
                    task.abort();
                }
                out.note(&format!(
                    "You unpaired from {}: their devices are refused from now on. \
                     Press Ctrl-C to stop.",
                    crate::safe::line(&p.name)
                ));
                paired = None;
            }
            if let Some(task) = &pushing {
                if !task.is_finished() {
                    continue;
                }
                let (key, ok) = pushing.take().expect("task present").await.unwrap_or((None, false));
                if ok {
                    pushed = key;
                    backoff = Duration::from_millis(250);
                } else {
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    next_try = tokio::time::Instant::now() + backoff;
                }
            }
            let key = journals_key(&store, &couple.journals);
            if key != pushed && tokio::time::Instant::now() >= next_try {
                let Ok(targets) = couple.targets(store.home(), &relay) else { continue };
                if targets.is_empty() {
                    continue;
                }
                let (ep, store, tx) = (ep.clone(), store.clone(), tx.clone());
                let sessions = sessions.clone();
                // Push to every device at once; one that answers is enough for now.
                pushing = Some(tokio::spawn(async move {
                    let mut dials = tokio::task::JoinSet::new();
                    for target in targets {
                        let (ep, store, sessions) = (ep.clone(), store.clone(), sessions.clone());
                        dials.spawn(async move {
                            let wait = Duration::from_secs(3);
                            let since = sessions.completed(target.addr.id);
                            dial_once(&ep, store, &target, quiet, wait, &sessions, since).await
                        });
                    }
                    let mut any = false;
                    while let Some(joined) = dials.join_next().await {
                        match joined {
                            Ok(Ok(Some(report))) => {
                                any = true;
                                let _ = tx.send(Ok(report)).await;
                            }
                            // The device had dialed us: that session carried it (the
                            // acceptor reports it).
                            Ok(Ok(None)) => any = true,
                            _ => {}
                        }
                    }
                    // What this round brought from the others counts as pushed too.
                    (if any { key } else { None }, any)
                }));
            }
        }
        if let Some(task) = pushing {
            task.abort();
        }
        acceptor.abort();
        net::close(&ep).await;
        out.note("Stopped.");
        anyhow::Ok(())
    });
    net::finish_runtime(rt);
    result
}
