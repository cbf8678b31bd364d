//! `duet unpair`: stop syncing with the partner.

use clap::Args;
use serde_json::json;

use crate::cli::Context;
use crate::output::Out;

#[derive(Args, Debug)]
pub struct UnpairArgs {
    /// Also delete your copy of your partner's journal from this device
    #[arg(long)]
    pub forget: bool,
}

pub fn run(ctx: &Context, out: &mut Out, args: UnpairArgs) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let Some(mut partner) = store.partner().cloned() else {
        anyhow::bail!("you are not paired with anyone");
    };
    if args.forget {
        store.home().forget_partner()?;
    } else {
        partner.unpaired = true;
        store.home().set_partner(&partner)?;
    }
    if out.json {
        return Ok(out.json_value(&json!({ "unpaired": partner.name, "forgot": args.forget }))?);
    }
    out.line(&format!(
        "{} can no longer sync with this device.",
        partner.name
    ))?;
    if args.forget {
        out.note("Your copy of their journal is deleted from this device.");
    } else {
        out.note("Their journal stays readable here; `duet unpair --forget` deletes it.");
    }
    out.note("What you already shared stays on their devices: it cannot be called back.");
    Ok(())
}
