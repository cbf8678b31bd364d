use clap::Args;

use crate::cli::Context;
use crate::dates;
use crate::output::{self, Out, Style};

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The item's id, or enough of its start to be unique
    pub id: String,
}

pub fn run(ctx: &Context, out: &mut Out, args: ShowArgs) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let (_, l, replies) = store.find_with_replies(&args.id)?;
    out.warnings(&store);
    let me = store.config().name.clone();
    let partner = store.partner().map(|p| p.name.clone());
    if out.json {
        return Ok(out.json_value(&output::item_json(&l, &me, partner.as_deref()))?);
    }
    let when = dates::local(l.item.created_at, &ctx.tz)
        .strftime("%A %-d %B %Y, %H:%M")
        .to_string();
    let mut head = format!(
        "{} {} by {} · {}",
        l.item.kind,
        out.paint(Style::Accent, &l.item.id.to_string()),
        out.paint(
            Style::Bold,
            output::author_name(&l, &me, partner.as_deref())
        ),
        when
    );
    if let Some(edited) = l.item.edited_at {
        let e = dates::local(edited, &ctx.tz)
            .strftime("%Y-%m-%d %H:%M")
            .to_string();
        head.push_str(&out.paint(Style::Dim, &format!(" (edited {e})")));
    }
    if l.starred {
        head.push(' ');
        head.push_str(&out.paint(Style::Star, "★"));
    }
    if l.private {
        head.push_str(" (private)");
    }
    if l.item.deleted {
        head.push_str(" (deleted)");
    }
    out.line(&head)?;
    if !l.item.tags.is_empty() {
        let tags: Vec<String> = l.item.tags.iter().map(|t| format!("#{t}")).collect();
        out.line(&out.paint(Style::Dim, &tags.join(" ")))?;
    }
    out.line("")?;
    match l.item.kind {
        duet_core::Kind::Checkin => out.line(&output::checkin_summary(&l.item))?,
        duet_core::Kind::Answer => {
            if let Some(q) = l.item.ritual.question.as_ref() {
                let text = duet_core::question::by_id(&q.id).map_or("", |q| q.text);
                out.line(&out.paint(Style::Dim, &format!("{} · {text}", q.date)))?;
            }
            out.line(&crate::safe::block(&l.item.body))?;
        }
        _ => out.line(&crate::safe::block(&l.item.body))?,
    }
    // Replies, oldest first, under what they answer.
    for r in &replies {
        out.line("")?;
        out.line(&format!(
            "↳ {} {}: {}",
            out.paint(Style::Accent, &output::short_id(r)),
            out.paint(Style::Bold, output::author_name(r, &me, partner.as_deref())),
            output::item_summary(&r.item)
        ))?;
    }
    Ok(())
}
