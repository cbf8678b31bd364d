use std::io::Write;

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
    let me = store.config().name.clone();
    let partner = store.partner().map(|p| p.name.clone());
    if out.json {
        // Streamed: a listing of any length holds only the volumes being read.
        let mut w = out.stdout();
        let mut items = output::JsonArray::open(&mut w, "")?;
        store.for_each_newest_first(&filter, args.limit, |l| {
            items.push(&mut w, &output::item_json(&l, &me, partner.as_deref()))?;
            anyhow::Ok(())
        })?;
        items.close(&mut w)?;
        writeln!(w)?;
        w.flush()?;
        out.warnings(&store);
        return Ok(());
    }
    // Each item becomes its line as it comes (the item itself is let go); the lines are
    // printed once every item is in, so a reply can sit under what it answers when both are
    // listed, oldest reply first.
    let mut lines: Vec<Line> = Vec::new();
    store.for_each_newest_first(&filter, args.limit, |l| {
        lines.push(Line {
            id: l.item.id,
            re: l.item.ritual.re,
            text: output::list_line(out, &l, &me, partner.as_deref(), &ctx.tz),
        });
        anyhow::Ok(())
    })?;
    out.warnings(&store);
    if lines.is_empty() {
        out.note("Nothing here yet. Write something with `duet write`.");
        return Ok(());
    }
    let listed: std::collections::HashSet<_> = lines.iter().map(|l| l.id).collect();
    let answers = |l: &Line| l.re.filter(|re| listed.contains(re));
    let mut replies: std::collections::HashMap<_, Vec<&Line>> = std::collections::HashMap::new();
    for l in lines.iter().rev() {
        if let Some(re) = answers(l) {
            replies.entry(re).or_default().push(l);
        }
    }
    let mut w = out.stdout();
    for l in lines.iter().filter(|l| answers(l).is_none()) {
        writeln!(w, "{}", l.text)?;
        for reply in replies.get(&l.id).into_iter().flatten() {
            writeln!(w, "    ↳{}", reply.text)?;
        }
    }
    w.flush()?;
    Ok(())
}

/// One listed item as printed, and what it needs to be placed.
struct Line {
    id: duet_core::ItemId,
    re: Option<duet_core::ItemId>,
    text: String,
}
