use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use duet_core::Filter;
use serde_json::json;

use crate::cli::Context;
use crate::dates;
use crate::output::{self, Out};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Json,
    Markdown,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// json or markdown
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    /// Write to this file instead of stdout (written whole or not at all)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(ctx: &Context, out: &mut Out, args: ExportArgs) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let mut items = store.list(&Filter::default(), None)?;
    out.warnings(&store);
    // Exports read oldest first, like a diary.
    items.reverse();
    let me = store.config().name.clone();
    let partner = store.partner().map(|p| p.name.clone());
    let text = match args.format {
        Format::Json => {
            let values: Vec<_> = items
                .iter()
                .map(|l| output::item_json(l, &me, partner.as_deref()))
                .collect();
            let doc = json!({
                "format": "duet-export/1",
                "exported_at": ctx.now.to_string(),
                "me": me,
                "partner": partner,
                "items": values,
            });
            serde_json::to_string_pretty(&doc)? + "\n"
        }
        Format::Markdown => markdown(ctx, &items, &me, partner.as_deref()),
    };
    match &args.out {
        None => out.line(text.trim_end_matches('\n'))?,
        Some(path) => {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let name = path
                .file_name()
                .context("--out needs a file name")?
                .to_string_lossy()
                .into_owned();
            duet_store::fsutil::write_atomic(&dir, &name, text.as_bytes(), 0o600)
                .with_context(|| format!("writing {}", path.display()))?;
            out.note(&format!(
                "Exported {} items to {}.",
                items.len(),
                path.display()
            ));
        }
    }
    Ok(())
}

fn markdown(
    ctx: &Context,
    items: &[duet_store::ListedItem],
    me: &str,
    partner: Option<&str>,
) -> String {
    let mut md = match partner {
        Some(p) => format!("# {me} & {p}: our journal\n"),
        None => format!("# {me}'s journal\n"),
    };
    let mut day = String::new();
    for l in items {
        let when = dates::local(l.item.created_at, &ctx.tz);
        let this_day = when.strftime("%A %-d %B %Y").to_string();
        if this_day != day {
            md.push_str(&format!("\n## {this_day}\n"));
            day = this_day;
        }
        let star = if l.starred { " ★" } else { "" };
        let private = if l.private { " (private)" } else { "" };
        md.push_str(&format!(
            "\n### {} · {} · {}{star}{private}\n\n",
            when.strftime("%H:%M"),
            l.item.kind,
            output::author_name(l, me, partner)
        ));
        match l.item.kind {
            duet_core::Kind::Checkin => md.push_str(&output::checkin_summary(&l.item)),
            _ => md.push_str(&crate::safe::block(l.item.body.trim_end())),
        }
        md.push('\n');
        if !l.item.tags.is_empty() {
            let tags: Vec<String> = l.item.tags.iter().map(|t| format!("#{t}")).collect();
            md.push_str(&format!("\n{}\n", tags.join(" ")));
        }
        md.push_str(&format!("\n<!-- id {} -->\n", l.item.id));
    }
    md
}
