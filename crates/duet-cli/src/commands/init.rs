use clap::Args;
use serde_json::json;

use crate::cli::Context;
use crate::output::Out;

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Your name, as your partner will see it
    #[arg(long)]
    pub name: String,
    /// What you call this device, in your list of devices ("laptop", "phone")
    #[arg(long, default_value = "first device")]
    pub label: String,
}

pub fn run(ctx: &Context, out: &mut Out, args: InitArgs) -> anyhow::Result<()> {
    let config = ctx.home.init(&args.name, args.label.trim(), ctx.now_ms())?;
    if out.json {
        return Ok(out.json_value(&json!({
            "name": config.name,
            "home": ctx.home.root(),
            "journal": config.journal.to_string(),
        }))?);
    }
    out.line(&format!(
        "Welcome, {}. Your journal lives in {}.",
        config.name,
        ctx.home.root().display()
    ))?;
    out.note("Write a first line with `duet write \"...\"`, then pair with your partner: `duet pair invite`.");
    Ok(())
}
