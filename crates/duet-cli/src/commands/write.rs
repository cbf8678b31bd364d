//! `duet write` and `duet thanks`: new items.

use std::io::Read;

use anyhow::Context as _;
use clap::Args;
use duet_core::{Kind, extract_tags, item::merge_tags, normalize_tag};
use duet_store::WriteRequest;

use crate::cli::Context;
use crate::output::{self, Out};
use crate::{dates, editor};

/// What every new item takes.
#[derive(Args, Debug)]
pub struct ItemArgs {
    /// The text; `-` reads it from stdin; nothing opens $EDITOR
    pub text: Vec<String>,
    /// Add a tag (repeatable); `@word` in the text is a tag too
    #[arg(long = "tag", short = 't', value_name = "TAG")]
    pub tags: Vec<String>,
    /// Star it
    #[arg(long)]
    pub star: bool,
    /// When it happened: `yesterday`, `today 08:30`, `2026-11-20 21:00`...
    #[arg(long, value_name = "WHEN")]
    pub at: Option<String>,
    /// In answer to this item (a check-in, or anything of your partner's): shown under it
    #[arg(long, value_name = "ID")]
    pub re: Option<String>,
}

#[derive(Args, Debug)]
pub struct WriteArgs {
    #[command(flatten)]
    pub item: ItemArgs,
    /// Keep it on this device only: never synced
    #[arg(long)]
    pub private: bool,
}

#[derive(Args, Debug)]
pub struct ThanksArgs {
    #[command(flatten)]
    pub item: ItemArgs,
}

pub fn run_write(ctx: &Context, out: &mut Out, args: WriteArgs) -> anyhow::Result<()> {
    save(ctx, out, Kind::Entry, args.item, args.private)
}

pub fn run_thanks(ctx: &Context, out: &mut Out, args: ThanksArgs) -> anyhow::Result<()> {
    save(ctx, out, Kind::Thanks, args.item, false)
}

/// What the editor opens on for a note of thanks: a nudge from "thanks" toward what the
/// partner actually did and what it changed. Every `#` line is left out when saved.
const THANKS_TEMPLATE: &str = "\n\n\
# A note of thanks. Lines starting with # are left out; leave it as it is to cancel.
#
# What did they do, plainly, as if you were telling a friend?
# How did it feel, or what did it make easier for you?
# Small things count: a cup of tea made without asking is worth a line.
";

/// The item a `--re` names: it must exist here and be visible; a shared reply may not point
/// at a private entry (it travels to the partner, who could not see what it answers).
fn reply_target(
    store: &duet_store::Store,
    re: &str,
    private: bool,
) -> anyhow::Result<duet_core::ItemId> {
    let at = store.locate(re)?;
    if at.journal.private && !private {
        anyhow::bail!(
            "{} is a private entry; a reply to it would point your partner at something they cannot see",
            &at.id.to_string()[..7]
        );
    }
    Ok(at.id)
}

/// The text of a new item from the arguments, stdin or the editor.
pub fn read_text(ctx: &Context, text: &[String], initial: &str) -> anyhow::Result<String> {
    if text.len() == 1 && text[0] == "-" {
        let mut body = String::new();
        std::io::stdin()
            .take(duet_core::BODY_LIMIT as u64 + 1)
            .read_to_string(&mut body)
            .context("reading the text from stdin (is it UTF-8?)")?;
        return Ok(body);
    }
    if text.is_empty() {
        return editor::edit(&ctx.home, initial);
    }
    Ok(text.join(" "))
}

fn save(
    ctx: &Context,
    out: &mut Out,
    kind: Kind,
    args: ItemArgs,
    private: bool,
) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let created_at = match &args.at {
        Some(when) => dates::at(when, ctx.now, &ctx.tz)?.as_millisecond(),
        None => ctx.now_ms(),
    };
    let mut tags = args
        .tags
        .iter()
        .map(|t| normalize_tag(t))
        .collect::<Result<Vec<_>, _>>()?;
    let re = args
        .re
        .as_deref()
        .map(|re| reply_target(&store, re, private))
        .transpose()?;
    let body = if kind == Kind::Thanks && args.text.is_empty() {
        editor::strip_comments(&read_text(ctx, &args.text, THANKS_TEMPLATE)?)
    } else {
        read_text(ctx, &args.text, "")?
    };
    merge_tags(&mut tags, extract_tags(&body));
    let item = store.add(
        WriteRequest {
            kind: kind.clone(),
            body,
            tags,
            starred: args.star,
            created_at,
            private,
            ritual: duet_core::Ritual {
                re,
                ..Default::default()
            },
        },
        ctx.now_ms(),
    )?;
    out.warnings(&store);
    let partner = store.partner().map(|p| p.name.clone());
    let listed = duet_store::ListedItem {
        item,
        author: duet_core::Author::Me,
        private,
        starred: args.star,
    };
    if out.json {
        return Ok(out.json_value(&output::item_json(
            &listed,
            &store.config().name,
            partner.as_deref(),
        ))?);
    }
    let what = match (&kind, private) {
        (Kind::Thanks, _) => format!(
            "a thank-you for {}",
            partner.as_deref().unwrap_or("your partner")
        ),
        (_, true) => "a private entry (it stays on this device)".to_owned(),
        _ => "an entry".to_owned(),
    };
    out.line(&format!("Saved {what}: {}", output::short_id(&listed)))?;
    Ok(())
}
