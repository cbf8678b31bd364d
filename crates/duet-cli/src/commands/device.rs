//! `duet device list`: both people's devices, as their person keys certified them.

use clap::{Args, Subcommand};
use duet_core::authority::{DeviceId, DeviceList};
use serde_json::json;

use crate::cli::Context;
use crate::dates;
use crate::output::Out;

#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    /// Your devices and your partner's: id, label, added, revoked, last seen
    List(ListArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {}

/// One row of the list.
struct Row {
    id: DeviceId,
    label: String,
    mine: bool,
    added: Option<i64>,
    revoked: Option<i64>,
    last_seen: Option<i64>,
    this_device: bool,
}

fn rows(
    list: &DeviceList,
    mine: bool,
    this: &DeviceId,
    seen: Option<(&DeviceId, i64)>,
) -> Vec<Row> {
    list.certs()
        .map(|c| Row {
            id: c.device,
            label: c.label.clone(),
            mine,
            added: Some(c.added_at),
            revoked: list.revocation(&c.device).map(|r| r.at),
            last_seen: seen.filter(|(d, _)| **d == c.device).map(|(_, t)| t),
            this_device: c.device == *this,
        })
        .collect()
}

pub fn run(ctx: &Context, out: &mut Out, cmd: DeviceCommand) -> anyhow::Result<()> {
    let DeviceCommand::List(ListArgs {}) = cmd;
    let store = ctx.store()?;
    let home = store.home();
    let (_, my_list) = home.identity("first device", ctx.now_ms())?;
    let this = duet_core::authority::DeviceKey::from_bytes(home.device_key()?).id();
    let mut all = rows(&my_list, true, &this, None);
    let partner = home.partner()?.filter(|p| !p.unpaired);
    if let Some(p) = &partner {
        let pinned: Option<DeviceId> = p
            .endpoint_id
            .parse::<duet_net::EndpointId>()
            .ok()
            .map(|id| *id.as_bytes());
        let seen = pinned.zip(p.last_sync);
        let theirs = p.person_id();
        match theirs
            .map(|person| home.devices(&person))
            .transpose()?
            .flatten()
        {
            Some(list) => all.extend(rows(
                &list,
                false,
                &this,
                seen.as_ref().map(|(d, t)| (d, *t)),
            )),
            // Paired before device lists: the one device pinned then.
            None => all.extend(pinned.map(|id| Row {
                id,
                label: "paired device".into(),
                mine: false,
                added: Some(p.paired_at),
                revoked: None,
                last_seen: p.last_sync,
                this_device: false,
            })),
        }
    }
    let partner_name = partner.as_ref().map(|p| p.name.as_str());
    if out.json {
        let devices: Vec<_> = all
            .iter()
            .map(|r| {
                let owner_name = if r.mine {
                    store.config().name.as_str()
                } else {
                    partner_name.unwrap_or("partner")
                };
                json!({
                    "id": duet_store::home::hex(&r.id),
                    "label": r.label,
                    "owner": if r.mine { "me" } else { "partner" },
                    "owner_name": owner_name,
                    "added": r.added,
                    "revoked": r.revoked,
                    "last_seen": r.last_seen,
                    "this_device": r.this_device,
                })
            })
            .collect();
        return Ok(out.json_value(&json!(devices))?);
    }
    let when = |ms: i64| dates::local(ms, &ctx.tz).strftime("%Y-%m-%d").to_string();
    for mine in [true, false] {
        let owned: Vec<&Row> = all.iter().filter(|r| r.mine == mine).collect();
        if owned.is_empty() {
            continue;
        }
        let whose = if mine {
            "Your devices:".to_owned()
        } else {
            format!(
                "{}'s devices:",
                crate::safe::line(partner_name.unwrap_or("Your partner"))
            )
        };
        out.line(&whose)?;
        for r in owned {
            let mut notes = Vec::new();
            if let Some(t) = r.added {
                notes.push(format!("added {}", when(t)));
            }
            if let Some(t) = r.revoked {
                notes.push(format!("revoked {}", when(t)));
            }
            if let Some(t) = r.last_seen {
                notes.push(format!("last seen {}", when(t)));
            }
            if r.this_device {
                notes.push("this device".into());
            }
            out.line(&format!(
                "  {}  {:<16}  {}",
                &duet_store::home::hex(&r.id)[..12],
                crate::safe::line(&r.label),
                notes.join(", ")
            ))?;
        }
    }
    if partner.is_none() {
        out.note("Not paired yet: `duet pair invite` starts it.");
    }
    Ok(())
}
