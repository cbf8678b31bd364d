//! `duet device list | link | join | revoke`: both people's devices, as their person keys
//! certified them, and the ways one person adds and removes devices of their own.

use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};
use duet_core::authority::{DeviceId, DeviceKey, DeviceList};
use duet_core::pairing::{LinkGrant, PairingError, PartnerGrant, Purpose, Ticket};
use duet_net::{Gate, LINK_ALPN, LocalIdentity, PairError};
use duet_store::home::hex;
use serde_json::json;

use crate::cli::Context;
use crate::commands::pair::{asker, check_can_confirm, show_ticket_text};
use crate::dates;
use crate::net;
use crate::output::Out;

#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    /// Your devices and your partner's: id, label, added, revoked, last seen
    List(ListArgs),
    /// Show a one-time ticket that makes a new device of yours join you
    Link(LinkArgs),
    /// On a new device (no `duet init`): join yourself with the ticket `duet device link` shows
    Join(JoinArgs),
    /// Revoke one of your devices: every device of you both refuses it once it hears
    Revoke(RevokeArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {}

#[derive(Args, Debug)]
pub struct LinkArgs {
    /// Confirm the 6-digit code without asking (for scripts)
    #[arg(long)]
    pub yes: bool,
    /// Give up after this many seconds; the ticket expires then too
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub timeout: u64,
}

#[derive(Args, Debug)]
pub struct JoinArgs {
    /// The ticket, as printed by `duet device link` on a device you already have
    pub ticket: String,
    /// What you call this device, in your list of devices ("phone", "home server")
    #[arg(long, default_value = "new device")]
    pub label: String,
    /// Confirm the 6-digit code without asking (for scripts)
    #[arg(long)]
    pub yes: bool,
    /// Give up after this many seconds
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub timeout: u64,
}

#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The device's id, or any unique start of it (see `duet device list`)
    pub id: String,
}

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
    book: &duet_store::home::AddressBook,
) -> Vec<Row> {
    list.certs()
        .map(|c| Row {
            id: c.device,
            label: c.label.clone(),
            mine,
            added: Some(c.added_at),
            revoked: list.revocation(&c.device).map(|r| r.at),
            // When a session with it last completed, as this device saw it.
            last_seen: book.devices.get(&hex(&c.device)).and_then(|s| s.last_seen),
            this_device: c.device == *this,
        })
        .collect()
}

pub fn run(ctx: &Context, out: &mut Out, cmd: DeviceCommand) -> anyhow::Result<()> {
    match cmd {
        DeviceCommand::List(ListArgs {}) => list(ctx, out),
        DeviceCommand::Link(args) => link(ctx, out, args),
        DeviceCommand::Join(args) => join(ctx, out, args),
        DeviceCommand::Revoke(args) => revoke(ctx, out, args),
    }
}

/// Pairing's errors speak of partners and `duet pair`; the same failures while linking are
/// said in the words of linking.
fn linking_error(err: PairError) -> anyhow::Error {
    let text = match &err {
        PairError::Pairing(PairingError::Expired) | PairError::TicketExpired => {
            "the link ticket expired; run `duet device link` again on a device you already have"
        }
        PairError::Pairing(PairingError::AlreadyUsed) => {
            "this link ticket was already used; run `duet device link` again for a fresh one"
        }
        PairError::Pairing(PairingError::WrongSecret) => {
            "the link ticket's secret was not accepted; copy the newest ticket from `duet device link`"
        }
        PairError::Pairing(PairingError::DeclinedLocally) => {
            "you did not confirm the code, so nothing was linked"
        }
        PairError::Pairing(PairingError::DeclinedByPartner) => {
            "the other device did not confirm the code, so nothing was linked"
        }
        PairError::NoInviteOpen => {
            "that device is not linking right now; run `duet device link` there and use the new ticket"
        }
        PairError::TimedOut(_) => {
            "no device joined in time; run `duet device link` again and `duet device join` right away"
        }
        PairError::Unreachable(_) => {
            "could not reach the device that showed the ticket; check that `duet device link` still \
             runs there and that both devices share a network or a relay"
        }
        _ => return err.into(),
    };
    anyhow::anyhow!("{text}")
}

fn link(ctx: &Context, out: &mut Out, args: LinkArgs) -> anyhow::Result<()> {
    check_can_confirm(args.yes)?;
    let store = ctx.store()?;
    let home = store.home().clone();
    let (person, list) = home.identity("first device", ctx.now_ms())?;
    let config = store.config().clone();
    let partner = home.partner()?.filter(|p| !p.unpaired);
    let partner_grant = match &partner {
        None => None,
        Some(p) => Some(PartnerGrant {
            name: p.name.clone(),
            endpoint_id: *net::partner_id(p)?.as_bytes(),
            journal: *p.journal.as_bytes(),
            addrs: p.addrs.iter().filter_map(|a| a.parse().ok()).collect(),
            relay_url: p.relay_url.clone(),
            paired_at: p.paired_at,
            paired_epoch: p.paired_epoch,
            devices: net::partner_list(&store, p)
                .map(|l| l.encode())
                .unwrap_or_default(),
        }),
    };
    let local = LocalIdentity {
        name: config.name.clone(),
        journal_id: *config.journal.as_bytes(),
        clock: ctx.clock,
        taken_journals: home
            .taken_journals()?
            .iter()
            .map(|j| *j.as_bytes())
            .collect(),
        devices: list.encode(),
        only_person: None,
    };
    // Where the couple's other devices were last reached: the new device can dial them at once.
    let hints = home.address_book().hints();
    let now = ctx.now_ms();
    let grant_home = home.clone();
    let make_grant: duet_net::MakeGrant = Box::new(move |peer| {
        // Certify the new device under the label it announced (checked like a name).
        let mut list = list;
        list.add_cert(person.certify(peer.endpoint_id, &peer.name, now))
            .map_err(|e| e.to_string())?;
        grant_home.save_devices(&list).map_err(|e| e.to_string())?;
        let list = grant_home
            .devices(&list.person())
            .map_err(|e| e.to_string())?
            .unwrap_or(list);
        Ok(LinkGrant {
            person_seed: person.seed(),
            name: config.name.clone(),
            journal: *config.journal.as_bytes(),
            private_journal: *config.private_journal.as_bytes(),
            created_at: config.created_at,
            devices: list.encode(),
            partner: partner_grant,
            hints,
        }
        .encode())
    });
    let timeout = Duration::from_secs(args.timeout.max(1));
    let rt = net::runtime()?;
    let result = rt.block_on(async {
        let gate = Gate::new();
        let alpns = vec![LINK_ALPN.to_vec()];
        let ep = net::bind_for_ticket(ctx, &home, alpns, gate.clone(), out).await?;
        let result = duet_net::link_invite(
            &ep,
            &gate,
            &local,
            timeout,
            |ticket| {
                show_ticket_text(
                    out,
                    &ticket.encode_for(Purpose::Link),
                    "On your new device (with no journal yet) run:\n  duet device join <ticket> --label \
                     phone\nIt works once. Waiting for it to join...",
                )
            },
            asker(args.yes, " wants to join you as a new device. Code"),
            make_grant,
            timeout,
        )
        .await;
        net::close(&ep).await;
        result.map_err(linking_error)
    });
    rt.shutdown_background();
    let joined = result?;
    let id = hex(&joined.endpoint_id);
    home.remember(
        &id,
        &joined
            .addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        joined.relay_url.as_deref(),
    )?;
    if out.json {
        return Ok(out.json_value(&json!({ "linked": id, "label": joined.name }))?);
    }
    out.line(&format!(
        "Linked {} ({}) as a device of yours.",
        crate::safe::line(&joined.name),
        &id[..12]
    ))?;
    out.note("Your journals reach it at its first `duet sync`.");
    Ok(())
}

fn join(ctx: &Context, out: &mut Out, args: JoinArgs) -> anyhow::Result<()> {
    check_can_confirm(args.yes)?;
    let label = args.label.trim();
    if !duet_core::text::valid_name(label) {
        bail!(
            "a device label is 1 to 64 printable characters; `{}` is not",
            crate::safe::line(label)
        );
    }
    let home = ctx.home.clone();
    if home.is_initialized() {
        bail!(
            "{} already holds a journal; `duet device join` needs a new, empty home (pass --home DIR)",
            home.root().display()
        );
    }
    let ticket = Ticket::decode_for(&args.ticket, Purpose::Link).map_err(|e| match e {
        PairingError::DamagedTicket => anyhow::anyhow!(
            "this link ticket is damaged or incomplete; copy the whole line that `duet device link` printed"
        ),
        PairingError::NotATicket => anyhow::anyhow!(
            "this is not a device link ticket; copy the whole line (starting `duetlink1`) that `duet \
             device link` printed on a device you already have"
        ),
        other => other.into(),
    })?;
    let key = home.new_device_key()?;
    let me = DeviceKey::from_bytes(key).id();
    let local = LocalIdentity {
        name: label.to_owned(),
        journal_id: [0; 16],
        clock: ctx.clock,
        taken_journals: Vec::new(),
        devices: Vec::new(),
        only_person: None,
    };
    let timeout = Duration::from_secs(args.timeout.max(1));
    let rt = net::runtime()?;
    let result = rt.block_on(async {
        let ep = net::bind(ctx, &home, vec![], Gate::new()).await?;
        let result = duet_net::link_join(
            &ep,
            &ticket,
            &local,
            asker(args.yes, "'s device is letting this one join. Code"),
            timeout,
        )
        .await;
        net::close(&ep).await;
        result.map_err(linking_error)
    });
    rt.shutdown_background();
    let (linker, grant) = result?;
    let checked = grant.check(&linker.devices.person(), &me)?;
    let config = home.join_person(&grant, &checked)?;
    home.remember(
        &hex(&linker.endpoint_id),
        &linker
            .addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        linker.relay_url.as_deref(),
    )?;
    // Hints only about devices of the couple, never about this one.
    let known = |d: &DeviceId| {
        *d != me
            && (checked.devices.admits(d)
                || checked
                    .partner_devices
                    .as_ref()
                    .is_some_and(|l| l.admits(d))
                || grant.partner.as_ref().is_some_and(|p| p.endpoint_id == *d))
    };
    let mut hints = grant.hints.clone();
    hints.retain(|(d, _)| known(d));
    home.hint(&hints)?;
    if out.json {
        return Ok(out.json_value(&json!({
            "name": config.name,
            "device": hex(&me),
            "label": label,
            "partner": grant.partner.as_ref().map(|p| p.name.clone()),
        }))?);
    }
    out.line(&format!(
        "This device is now one of {}'s devices ({label}).",
        crate::safe::line(&config.name)
    ))?;
    out.note("Run `duet sync` to bring your journals here.");
    Ok(())
}

fn revoke(ctx: &Context, out: &mut Out, args: RevokeArgs) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let home = store.home();
    let (person, mut list) = home.identity("first device", ctx.now_ms())?;
    let this = DeviceKey::from_bytes(home.device_key()?).id();
    let wanted = args.id.trim().to_ascii_lowercase();
    if wanted.len() < 4 || !wanted.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("give at least the first 4 hex digits of a device id (see `duet device list`)");
    }
    let matches: Vec<_> = list
        .certs()
        .filter(|c| hex(&c.device).starts_with(&wanted))
        .cloned()
        .collect();
    let cert = match matches.as_slice() {
        [one] => one.clone(),
        [] => bail!(
            "none of your devices has an id starting with {wanted}; `duet device list` shows them \
             (you can revoke only your own)"
        ),
        _ => bail!("more than one of your devices starts with {wanted}; give more of the id"),
    };
    if cert.device == this {
        bail!("that is the device you are on; revoke it from another device of yours");
    }
    if list.revocation(&cert.device).is_some() {
        out.line(&format!(
            "{} was already revoked.",
            crate::safe::line(&cert.label)
        ))?;
        return Ok(());
    }
    list.add_revocation(person.revoke(cert.device, ctx.now_ms()))?;
    home.save_devices(&list)?;
    if out.json {
        return Ok(out.json_value(&json!({ "revoked": hex(&cert.device), "label": cert.label }))?);
    }
    out.line(&format!(
        "Revoked {} ({}).",
        crate::safe::line(&cert.label),
        &hex(&cert.device)[..12]
    ))?;
    out.note(
        "Your other devices and your partner's refuse it once they hear, at their next sync with \
     any device of yours.",
    );
    Ok(())
}

fn list(ctx: &Context, out: &mut Out) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let home = store.home();
    let (_, my_list) = home.identity("first device", ctx.now_ms())?;
    let this = duet_core::authority::DeviceKey::from_bytes(home.device_key()?).id();
    let book = home.address_book();
    let mut all = rows(&my_list, true, &this, &book);
    let partner = home.partner()?.filter(|p| !p.unpaired);
    if let Some(p) = &partner {
        let pinned: Option<DeviceId> = p
            .endpoint_id
            .parse::<duet_net::EndpointId>()
            .ok()
            .map(|id| *id.as_bytes());
        let theirs = p.person_id();
        match theirs
            .map(|person| home.devices(&person))
            .transpose()?
            .flatten()
        {
            Some(list) => all.extend(rows(&list, false, &this, &book)),
            // Paired before device lists: the one device pinned then.
            None => all.extend(pinned.map(|id| Row {
                id,
                label: "paired device".into(),
                mine: false,
                added: Some(p.paired_at),
                revoked: None,
                last_seen:
                    p.last_synced(book.devices.get(&p.endpoint_id).and_then(|s| s.last_seen)),
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
