use clap::{Args, ValueEnum};
use duet_core::{Author, Filter, Kind, normalize_tag};

use crate::cli::Context;
use crate::dates;
use crate::output::{self, Out};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Who {
    Me,
    Partner,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only this kind (repeatable): entry, thanks, checkin, answer
    #[arg(long, value_name = "KIND")]
    pub kind: Vec<String>,
    /// Only items by me or by my partner
    #[arg(long, value_enum)]
    pub author: Option<Who>,
    /// Only items with this tag (repeatable: all must match)
    #[arg(long, value_name = "TAG")]
    pub tag: Vec<String>,
    /// From this day or moment on (`monday`, `2026-11-01`)
    #[arg(long, value_name = "WHEN")]
    pub from: Option<String>,
    /// Up to and including this day, or before this moment
    #[arg(long, value_name = "WHEN")]
    pub to: Option<String>,
    /// Only starred items
    #[arg(long)]
    pub starred: bool,
    /// Only items whose text contains this (any case)
    #[arg(long, value_name = "TEXT")]
    pub contains: Option<String>,
    /// At most this many items
    #[arg(short = 'n', long = "limit", value_name = "N")]
    pub limit: Option<usize>,
}

impl ListArgs {
    pub fn filter(&self, ctx: &Context) -> anyhow::Result<Filter> {
        let mut filter = Filter {
            kinds: self
                .kind
                .iter()
                .map(|k| k.parse::<Kind>())
                .collect::<Result<_, _>>()?,
            author: self.author.map(|w| match w {
                Who::Me => Author::Me,
                Who::Partner => Author::Partner,
            }),
            tags: self
                .tag
                .iter()
                .map(|t| normalize_tag(t))
                .collect::<Result<_, _>>()?,
            from: self
                .from
                .as_deref()
                .map(|w| dates::from(w, ctx.now, &ctx.tz))
                .transpose()?
                .map(|t| t.as_millisecond()),
            to: self
                .to
                .as_deref()
                .map(|w| dates::to(w, ctx.now, &ctx.tz))
                .transpose()?
                .map(|t| t.as_millisecond()),
            starred: self.starred,
            ..Default::default()
        };
        if let Some(needle) = &self.contains {
            filter = filter.with_contains(needle);
        }
        Ok(filter)
    }
}

pub fn run(ctx: &Context, out: &mut Out, args: ListArgs) -> anyhow::Result<()> {
    let filter = args.filter(ctx)?;
    let store = ctx.store()?;
    let items = store.list(&filter, args.limit)?;
    out.warnings(&store);
    let me = store.config().name.clone();
    let partner = store.partner().map(|p| p.name.clone());
    if out.json {
        let values: Vec<_> = items
            .iter()
            .map(|l| output::item_json(l, &me, partner.as_deref()))
            .collect();
        return Ok(out.json_value(&serde_json::Value::Array(values))?);
    }
    if items.is_empty() {
        out.note("Nothing here yet. Write something with `duet write`.");
        return Ok(());
    }
    // A reply sits under what it answers when both are listed, oldest reply first.
    let listed: std::collections::HashSet<_> = items.iter().map(|l| l.item.id).collect();
    let mut replies: std::collections::HashMap<_, Vec<&duet_store::ListedItem>> =
        std::collections::HashMap::new();
    for l in items.iter().rev() {
        if let Some(re) = l.item.ritual.re.filter(|re| listed.contains(re)) {
            replies.entry(re).or_default().push(l);
        }
    }
    let is_reply =
        |l: &duet_store::ListedItem| l.item.ritual.re.is_some_and(|re| listed.contains(&re));
    for l in items.iter().filter(|l| !is_reply(l)) {
        out.line(&output::list_line(out, l, &me, partner.as_deref(), &ctx.tz))?;
        for reply in replies.get(&l.item.id).into_iter().flatten() {
            let line = output::list_line(out, reply, &me, partner.as_deref(), &ctx.tz);
            out.line(&format!("    ↳{line}"))?;
        }
    }
    Ok(())
}
