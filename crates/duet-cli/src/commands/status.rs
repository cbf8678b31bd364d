use duet_store::home::Seen;
use serde_json::json;

use crate::cli::Context;
use crate::output::{self, Out};

fn counts(map: &std::collections::BTreeMap<String, usize>) -> String {
    if map.is_empty() {
        return "nothing yet".into();
    }
    map.iter()
        .map(|(kind, n)| {
            let noun = match (kind.as_str(), *n) {
                ("entry", 1) => "entry",
                ("entry", _) => "entries",
                ("thanks", _) => "thanks",
                ("checkin", 1) => "check-in",
                ("checkin", _) => "check-ins",
                ("answer", 1) => "answer",
                ("answer", _) => "answers",
                (other, _) => other,
            };
            format!("{n} {noun}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n < 1024 => format!("{n} B"),
        n if n < 1024 * 1024 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0)),
    }
}

/// How the partner was last reached: the most recent completed session with any of their
/// devices, from the address book.
fn last_reached(store: &duet_store::Store, partner: &duet_store::Partner) -> Option<Seen> {
    let mut devices: Vec<String> = vec![partner.endpoint_id.clone()];
    if let Some(list) = crate::net::partner_list(store, partner) {
        devices.extend(list.certs().map(|c| duet_store::home::hex(&c.device)));
    }
    let book = store.home().address_book();
    devices
        .iter()
        .filter_map(|d| book.devices.get(d))
        .filter(|s| s.last_seen.is_some())
        .max_by_key(|s| s.last_seen)
        .cloned()
}

/// A path kind from the address book in words.
fn path_words(path: Option<&str>) -> &'static str {
    match path {
        Some("lan") => "directly on the local network",
        Some("internet") => "directly across the internet",
        Some("relay") => "through a relay",
        _ => "by a way not recorded",
    }
}

pub fn run(ctx: &Context, out: &mut Out) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let status = store.status()?;
    out.warnings(&store);
    let config = store.config();
    let partner = store.partner();
    let reached = partner.as_ref().and_then(|p| last_reached(&store, p));
    let last_sync = partner
        .as_ref()
        .and_then(|p| p.last_synced(reached.as_ref().and_then(|r| r.last_seen)));
    if out.json {
        return Ok(out.json_value(&json!({
            "name": config.name,
            "home": ctx.home.root(),
            "journal": config.journal.to_string(),
            "partner": partner.map(|p| json!({
                "name": p.name,
                "device": p.endpoint_id,
                "journal": p.journal.to_string(),
                "paired_at": output::rfc3339(p.paired_at),
                "last_sync": last_sync.map(output::rfc3339),
                "last_reached": reached.as_ref().map(|r| json!({
                    "at": r.last_seen.map(output::rfc3339),
                    "path": r.path,
                    "address": r.addrs.first(),
                    "relay": r.relay_url,
                })),
                "unpaired": p.unpaired,
            })),
            "counts": {
                "mine": status.mine,
                "partner": status.partner,
                "private": status.private,
                "starred": status.starred,
            },
            "volumes": status.volumes,
            "store_bytes": status.store_bytes,
        }))?);
    }
    out.line(&format!(
        "{} · home {}",
        config.name,
        ctx.home.root().display()
    ))?;
    out.line(&format!("  your journal: {}", counts(&status.mine)))?;
    if status.private > 0 {
        out.line(&format!(
            "  of which private (this device only): {}",
            status.private
        ))?;
    }
    match partner {
        Some(p) => {
            let state = if p.unpaired { " (unpaired)" } else { "" };
            out.line(&format!(
                "  partner: {}{state}, device {}",
                p.name, p.endpoint_id
            ))?;
            out.line(&format!(
                "  {}'s journal: {}",
                p.name,
                counts(&status.partner)
            ))?;
            let last = last_sync.map_or("never".to_owned(), |ms| {
                crate::dates::local(ms, &ctx.tz)
                    .strftime("%Y-%m-%d %H:%M")
                    .to_string()
            });
            out.line(&format!("  last sync: {last}"))?;
            if let Some(r) = &reached {
                let when = r.last_seen.map_or(String::new(), |ms| {
                    crate::dates::local(ms, &ctx.tz)
                        .strftime(" on %Y-%m-%d at %H:%M")
                        .to_string()
                });
                let at = match (r.path.as_deref(), r.addrs.first(), &r.relay_url) {
                    (Some("relay"), _, Some(url)) => format!(" ({})", crate::safe::line(url)),
                    (_, Some(addr), _) => format!(" ({})", crate::safe::line(addr)),
                    _ => String::new(),
                };
                out.line(&format!(
                    "  last reached{when}: {}{at}",
                    path_words(r.path.as_deref())
                ))?;
            }
        }
        None => out.line("  partner: not paired yet (run `duet pair invite`)")?,
    }
    out.line(&format!("  starred: {}", status.starred))?;
    out.line(&format!(
        "  store: {} in {} volumes",
        human_bytes(status.store_bytes),
        status.volumes
    ))?;
    Ok(())
}
