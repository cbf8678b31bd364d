//! `duet pair invite` and `duet pair join`.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};
use duet_core::JournalId;
use duet_core::pairing::{PairingCode, Ticket};
use duet_net::{Gate, LocalIdentity, PAIR_ALPN, PairedPartner};
use duet_store::{Partner, Store};
use serde_json::json;

use crate::cli::Context;
use crate::net;
use crate::output::Out;

#[derive(Subcommand, Debug)]
pub enum PairCommand {
    /// Show a one-time ticket and wait for your partner to join with it
    Invite(InviteArgs),
    /// Join your partner with the ticket their `duet pair invite` shows
    Join(JoinArgs),
}

#[derive(Args, Debug)]
pub struct InviteArgs {
    /// Confirm the 6-digit code without asking (for scripts)
    #[arg(long)]
    pub yes: bool,
    /// Give up after this many seconds; the ticket expires then too
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub timeout: u64,
}

#[derive(Args, Debug)]
pub struct JoinArgs {
    /// The ticket, as printed by `duet pair invite`
    pub ticket: String,
    /// Confirm the 6-digit code without asking (for scripts)
    #[arg(long)]
    pub yes: bool,
    /// Give up after this many seconds
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub timeout: u64,
}

fn check_unpaired(store: &Store) -> anyhow::Result<()> {
    if let Some(p) = store.partner().filter(|p| !p.unpaired) {
        bail!(
            "you are already paired with {}; run `duet unpair` first to pair with someone else",
            p.name
        );
    }
    Ok(())
}

pub(crate) fn check_can_confirm(yes: bool) -> anyhow::Result<()> {
    if !yes && !std::io::stdin().is_terminal() {
        bail!(
            "cannot ask you to confirm the code without a terminal; compare the codes by other means and \
                pass --yes"
        );
    }
    Ok(())
}

/// The confirmation asked on both screens.
fn confirmer(yes: bool) -> impl FnOnce(&PairingCode, &str) -> bool + Send + 'static {
    asker(yes, " is connecting. Pairing code")
}

/// Shows `name`, `what` and the code on a line of its own, and asks (unless `yes`).
pub(crate) fn asker(
    yes: bool,
    what: &'static str,
) -> impl FnOnce(&PairingCode, &str) -> bool + Send + 'static {
    move |code, name| {
        let shown = code.to_string();
        let shown = format!("{} {}", &shown[..3], &shown[3..]);
        // The name was checked when it arrived; shown safely all the same, and the code
        // stands on a line of its own, where nothing the other side sent can reach.
        let name = crate::safe::line(name);
        if yes {
            eprintln!("{name}{what}, confirmed with --yes:");
            eprintln!("    {shown}");
            return true;
        }
        eprintln!("{name}{what}:");
        eprintln!("    {shown}");
        eprint!("Does their screen show the same code? [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer).is_err() {
            return false;
        }
        matches!(answer.trim().to_lowercase().as_str(), "y" | "yes")
    }
}

fn local_identity(
    ctx: &Context,
    store: &Store,
    current: Option<&Partner>,
) -> anyhow::Result<LocalIdentity> {
    Ok(LocalIdentity {
        name: store.config().name.clone(),
        journal_id: *store.config().journal.as_bytes(),
        clock: ctx.clock,
        taken_journals: store
            .home()
            .taken_journals()?
            .iter()
            .map(|j| *j.as_bytes())
            .collect(),
        devices: store
            .home()
            .identity("first device", ctx.now_ms())?
            .1
            .encode(),
        only_person: current.and_then(Partner::person_id),
    })
}

fn pin(ctx: &Context, store: &Store, paired: &PairedPartner) -> anyhow::Result<Partner> {
    let id = duet_net::EndpointId::from_bytes(&paired.endpoint_id)
        .map_err(|_| anyhow::anyhow!("your partner's device sent an invalid id"))?;
    let partner = Partner {
        name: paired.name.clone(),
        endpoint_id: id.to_string(),
        journal: JournalId(paired.journal_id),
        addrs: paired.addrs.iter().map(ToString::to_string).collect(),
        relay_url: paired.relay_url.clone(),
        paired_at: ctx.clock.now_ms(),
        paired_epoch: Some(paired.ticket_expires_at),
        last_sync: None,
        unpaired: false,
        person: Some(duet_store::home::hex(&paired.devices.person())),
    };
    store.home().pin_partner(&partner)?;
    store.home().save_devices(&paired.devices)?;
    Ok(partner)
}

fn report(out: &mut Out, partner: &Partner) -> anyhow::Result<()> {
    if out.json {
        return Ok(
            out.json_value(&json!({ "partner": partner.name, "device": partner.endpoint_id }))?
        );
    }
    out.line(&format!("Paired with {}.", partner.name))?;
    out.note("Run `duet sync` (or keep `duet serve` running) to share your journals.");
    Ok(())
}

fn show_ticket(out: &mut Out, ticket: &Ticket) {
    show_ticket_text(
        out,
        &ticket.encode(),
        "Give this ticket to your partner; on their device they run:\n  duet pair join \
         <ticket>\nIt works once. Waiting for them to join...",
    );
}

/// The ticket alone on stdout's first line, a QR code on a terminal, then `note`.
pub(crate) fn show_ticket_text(out: &mut Out, text: &str, note: &str) {
    // The ticket alone on the first line of stdout, for scripts.
    let _ = out.line(text);
    if std::io::stderr().is_terminal()
        && !out.quiet
        && let Ok(qr) = qrcode::QrCode::new(text.as_bytes())
    {
        let art = qr
            .render::<qrcode::render::unicode::Dense1x2>()
            .quiet_zone(true)
            .build();
        eprintln!("{art}");
    }
    out.note(note);
}

pub fn run(ctx: &Context, out: &mut Out, cmd: PairCommand) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let current = store.home().partner()?.filter(|p| !p.unpaired);
    if let Some(p) = &current {
        if p.person.is_none() {
            check_unpaired(&store)?;
        }
        out.note(&format!(
            "You are paired with {}: only a device of theirs (a new one, or one restored from \
             their recovery phrase) can join now. To pair with someone else, run `duet unpair` first.",
            crate::safe::line(&p.name)
        ));
    }
    let rt = net::runtime()?;
    let result = pair(ctx, out, &store, &rt, cmd, current);
    // A confirmation prompt still waiting on stdin must not keep us alive.
    rt.shutdown_background();
    result
}

fn pair(
    ctx: &Context,
    out: &mut Out,
    store: &Store,
    rt: &tokio::runtime::Runtime,
    cmd: PairCommand,
    current: Option<Partner>,
) -> anyhow::Result<()> {
    let paired = match cmd {
        PairCommand::Invite(args) => {
            check_can_confirm(args.yes)?;
            let timeout = Duration::from_secs(args.timeout.max(1));
            let local = local_identity(ctx, store, current.as_ref())?;
            rt.block_on(async {
                let gate = Gate::new();
                let alpns = vec![PAIR_ALPN.to_vec()];
                let ep = net::bind_for_ticket(ctx, store.home(), alpns, gate.clone(), out).await?;
                let result = duet_net::pair_invite(
                    &ep,
                    &gate,
                    &local,
                    timeout,
                    |ticket| show_ticket(out, ticket),
                    confirmer(args.yes),
                    timeout,
                )
                .await;
                net::close(&ep).await;
                anyhow::Ok(result?)
            })?
        }
        PairCommand::Join(args) => {
            check_can_confirm(args.yes)?;
            let ticket = Ticket::decode(&args.ticket)?;
            let timeout = Duration::from_secs(args.timeout.max(1));
            let local = local_identity(ctx, store, current.as_ref())?;
            rt.block_on(async {
                let ep = net::bind(ctx, store.home(), vec![], Gate::new()).await?;
                let result =
                    duet_net::pair_join(&ep, &ticket, &local, confirmer(args.yes), timeout).await;
                net::close(&ep).await;
                anyhow::Ok(result?)
            })?
        }
    };
    if let Some(p) = current {
        return welcome_back(store, out, &p, &paired);
    }
    let partner = pin(ctx, store, &paired)?;
    report(out, &partner)
}

/// Already paired: the device that joined must be the same person's (its person key is the one
/// pinned, its journal the same); it is then one more device of theirs, not a new partner.
fn welcome_back(
    store: &Store,
    out: &mut Out,
    partner: &Partner,
    paired: &PairedPartner,
) -> anyhow::Result<()> {
    let same_person = partner.person_id() == Some(paired.devices.person());
    if !same_person || JournalId(paired.journal_id) != partner.journal {
        bail!(
            "the device that joined belongs to someone other than {}; nothing changed. To pair \
             with someone else, run `duet unpair` first",
            crate::safe::line(&partner.name)
        );
    }
    store.home().save_devices(&paired.devices)?;
    store.home().remember(
        &duet_store::home::hex(&paired.endpoint_id),
        &paired
            .addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        paired.relay_url.as_deref(),
    )?;
    if out.json {
        return Ok(out.json_value(&json!({
            "partner": partner.name,
            "device": duet_store::home::hex(&paired.endpoint_id),
            "new_device_of_partner": true,
        }))?);
    }
    out.line(&format!(
        "A device of {} joined: the same person, one more of their devices.",
        crate::safe::line(&partner.name)
    ))?;
    out.note("Their journal reaches it, and theirs comes back to it, at the next `duet sync`.");
    Ok(())
}
