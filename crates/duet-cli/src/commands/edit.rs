//! `duet edit`, `duet delete`, `duet star`: changes to existing items.

use clap::Args;
use duet_core::volume::ItemUpdate;
use duet_core::{Author, extract_tags, item::merge_tags};
use serde_json::json;

use crate::cli::Context;
use crate::commands::write::read_text;
use crate::output::Out;

#[derive(Args, Debug)]
pub struct EditArgs {
    /// The item's id, or enough of its start to be unique
    pub id: String,
    /// The new text (otherwise $EDITOR opens on the current one; `-` reads stdin)
    #[arg(long, value_name = "TEXT")]
    pub body: Option<String>,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// The item's id, or enough of its start to be unique
    pub id: String,
}

#[derive(Args, Debug)]
pub struct StarArgs {
    /// The item's id, or enough of its start to be unique
    pub id: String,
    /// Remove the star instead
    #[arg(long)]
    pub off: bool,
}

fn refuse_partner(at: &duet_store::Located) -> anyhow::Result<()> {
    if at.journal.author == Author::Partner {
        return Err(duet_store::StoreError::NotAuthor(at.id.to_string()).into());
    }
    Ok(())
}

fn done(out: &mut Out, id: &str, action: &str, text: &str) -> anyhow::Result<()> {
    if out.json {
        return Ok(out.json_value(&json!({ "id": id, "action": action }))?);
    }
    Ok(out.line(text)?)
}

pub fn run_edit(ctx: &Context, out: &mut Out, args: EditArgs) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let (at, current) = store.find(&args.id)?;
    refuse_partner(&at)?;
    let current = current.item;
    let body = match &args.body {
        Some(text) => read_text(ctx, std::slice::from_ref(text), "")?,
        None => read_text(ctx, &[], &format!("{}\n", current.body))?,
    };
    let body = duet_core::item::validate_body(&body)?;
    let id = at.id.to_string();
    if body == current.body {
        return done(out, &id, "unchanged", "No changes.");
    }
    let mut tags = current.tags.clone();
    merge_tags(&mut tags, extract_tags(&body));
    let tags = (tags != current.tags).then_some(tags);
    // An answer changed while the partner's answer to the same question is visible here is
    // marked, so both can tell it was rewritten after the reveal.
    let edited_after_reveal = match &current.ritual.question {
        Some(asked) if current.kind == duet_core::Kind::Answer => store.partner_answered(asked)?,
        _ => false,
    };
    store.update(
        &at,
        &ItemUpdate {
            body: Some(body),
            tags,
            edited_after_reveal,
            ..Default::default()
        },
        ctx.now_ms(),
    )?;
    out.warnings(&store);
    done(out, &id, "edited", &format!("Edited {}.", &id[..7]))
}

pub fn run_delete(ctx: &Context, out: &mut Out, args: DeleteArgs) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let at = store.locate(&args.id)?;
    refuse_partner(&at)?;
    store.update(
        &at,
        &ItemUpdate {
            deleted: Some(true),
            ..Default::default()
        },
        ctx.now_ms(),
    )?;
    out.warnings(&store);
    let id = at.id.to_string();
    done(out, &id, "deleted", &format!("Deleted {}.", &id[..7]))
}

pub fn run_star(ctx: &Context, out: &mut Out, args: StarArgs) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let at = store.locate(&args.id)?;
    store.set_star(&at, !args.off, ctx.now_ms())?;
    out.warnings(&store);
    let id = at.id.to_string();
    let (action, text) = if args.off {
        ("unstarred", "Unstarred")
    } else {
        ("starred", "Starred")
    };
    done(out, &id, action, &format!("{text} {}.", &id[..7]))
}
