//! `duet doctor`: check every file, name what is damaged, move it aside with `--fix`.

use clap::Args;
use serde_json::json;

use crate::cli::Context;
use crate::output::Out;

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Move damaged files into `damaged/` in the home (nothing is deleted) and rebuild the cache
    #[arg(long)]
    pub fix: bool,
}

pub fn run(ctx: &Context, out: &mut Out, args: DoctorArgs) -> anyhow::Result<()> {
    let report = duet_store::doctor::checkup(&ctx.home, args.fix)?;
    if out.json {
        out.json_value(&json!(report))?;
    } else {
        out.line(&format!(
            "Checked {} files in {} volumes of {} journals.",
            report.files, report.volumes, report.journals
        ))?;
        for d in &report.damaged {
            let path = crate::safe::line(&d.path.display().to_string()).into_owned();
            match &d.moved_to {
                Some(to) => out.line(&format!(
                    "moved aside: {path} ({}) -> {}",
                    d.why,
                    to.display()
                ))?,
                None => out.line(&format!("damaged: {path} ({})", d.why))?,
            }
        }
        if report.damaged.is_empty() {
            out.line("Everything reads.")?;
        } else if report.cache_cleared {
            out.note(
                "The cache will be rebuilt from what remains; your partner's next sync can \
                 bring their copy of anything lost.",
            );
        }
    }
    if !args.fix && !report.damaged.is_empty() {
        anyhow::bail!(
            "{} damaged file(s); `duet doctor --fix` moves them aside (nothing is deleted)",
            report.damaged.len()
        );
    }
    Ok(())
}
