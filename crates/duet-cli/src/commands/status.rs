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

pub fn run(ctx: &Context, out: &mut Out) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let status = store.status()?;
    out.warnings(&store);
    let config = store.config();
    let partner = store.partner();
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
                "last_sync": p.last_sync.map(output::rfc3339),
                "unpaired": p.unpaired,
            })),
            "counts": { "mine": status.mine, "partner": status.partner, "private": status.private, "starred": status.starred },
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
            let last = p.last_sync.map_or("never".to_owned(), |ms| {
                crate::dates::local(ms, &ctx.tz)
                    .strftime("%Y-%m-%d %H:%M")
                    .to_string()
            });
            out.line(&format!("  last sync: {last}"))?;
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
