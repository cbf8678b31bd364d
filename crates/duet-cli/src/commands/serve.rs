//! `duet serve`: stay online, accept the partner, push local changes.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use duet_net::{Gate, SYNC_ALPN};
use duet_store::Store;
use tokio::sync::mpsc;

use crate::cli::Context;
use crate::commands::sync::{dial_once, spawn_acceptor};
use crate::net;
use crate::output::Out;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Show a desktop notification when your partner's thanks, check-in or answer arrives
    #[arg(long)]
    pub notify: bool,
}

/// Cheap fingerprint of my journal's files: it changes whenever any process
/// writes to it.
fn journal_key(store: &Store) -> Option<[u8; 32]> {
    let listing = store.files(store.config().journal).list().ok()?;
    let mut h = blake3::Hasher::new();
    for (vol, files) in &listing.volumes {
        h.update(vol.as_bytes());
        h.update(&duet_store::volumes::Listing::volume_key(files));
    }
    Some(*h.finalize().as_bytes())
}

/// Whether this home still holds `partner` as its (not unpaired) partner.
fn still_paired(store: &Store, partner: &duet_store::Partner) -> bool {
    match store.home().partner() {
        Ok(Some(p)) => !p.unpaired && p.endpoint_id == partner.endpoint_id,
        Ok(None) => false,
        // A record being rewritten right now: judge again at the next tick.
        Err(_) => true,
    }
}

pub fn run(ctx: &Context, out: &mut Out, args: ServeArgs) -> anyhow::Result<()> {
    let store = Arc::new(ctx.store()?);
    let partner = net::require_partner(&store)?;
    let gate = Gate::with_allowed(net::partner_devices(&store, &partner)?);
    let quiet = out.quiet;
    let rt = net::runtime()?;
    rt.block_on(async {
        let ep = net::bind(ctx, store.home(), vec![SYNC_ALPN.to_vec()], gate.clone()).await?;
        let (tx, mut rx) = mpsc::channel(16);
        let acceptor = spawn_acceptor(ep.clone(), store.clone(), tx.clone(), partner.name.clone(), quiet);
        out.note(&format!("Serving your journal to {}. Press Ctrl-C to stop.", partner.name));
        let mut pushed: Option<[u8; 32]> = None;
        let mut paired = true;
        let relay = net::relay_mode(ctx)?;
        let mut backoff = Duration::from_millis(250);
        let mut next_try = tokio::time::Instant::now();
        let mut pushing: Option<tokio::task::JoinHandle<(Option<[u8; 32]>, bool)>> = None;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            tokio::select! {
                _ = &mut ctrl_c => break,
                Some(result) = rx.recv() => {
                    match result {
                        Ok(report) => {
                            if !report.new_items.is_empty() || report.changed_items > 0 {
                                let _ = out.line(&report.describe(&partner.name));
                            }
                            if args.notify
                                && let Some(text) = crate::notify::message(&partner.name, &report.new_items)
                            {
                                tokio::spawn(async move { crate::notify::show(&text).await });
                            }
                        }
                        Err(e) => out.warn(&format!("a sync with {} failed: {e:#}", partner.name)),
                    }
                    // A session may have brought news of revoked devices.
                    if paired && let Ok(devices) = net::partner_devices(&store, &partner) {
                        gate.set_allowed(devices);
                    }
                    out.warnings(&store);
                }
                _ = tick.tick() => {
                    if paired && !still_paired(&store, &partner) {
                        // `duet unpair` ran in another terminal: refuse them from this moment.
                        paired = false;
                        gate.set_allowed([]);
                        if let Some(task) = pushing.take() {
                            task.abort();
                        }
                        out.note(&format!(
                            "You unpaired from {}: their device is refused from now on. \
                             Press Ctrl-C to stop.",
                            partner.name
                        ));
                    }
                    if !paired {
                        continue;
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
                    let key = journal_key(&store);
                    if key != pushed && tokio::time::Instant::now() >= next_try {
                        let (ep, store, name, tx) = (ep.clone(), store.clone(), partner.name.clone(), tx.clone());
                        let relay = relay.clone();
                        pushing = Some(tokio::spawn(async move {
                            match dial_once(&ep, store, name, quiet, Duration::from_secs(3), &relay).await {
                                Ok(report) => {
                                    let _ = tx.send(Ok(report)).await;
                                    (key, true)
                                }
                                Err(_) => (None, false),
                            }
                        }));
                    }
                }
            }
        }
        if let Some(task) = pushing {
            task.abort();
        }
        acceptor.abort();
        ep.close().await;
        out.note("Stopped.");
        anyhow::Ok(())
    })
}
