use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use duet_core::Filter;
use std::io::Write;

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
    let me = store.config().name.clone();
    let partner = store.partner().map(|p| p.name.clone());
    let export =
        |w: &mut dyn Write| write_export(ctx, &store, args.format, &me, partner.as_deref(), w);
    // Written as the items are read, oldest first, never held whole: an export of any size
    // takes a few MiB.
    match &args.out {
        None => {
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            export(&mut stdout)?;
            stdout.flush()?;
            drop(stdout);
            out.warnings(&store);
        }
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
            let mut count = 0;
            duet_store::fsutil::write_atomic_with(&dir, &name, 0o600, |w| {
                count = export(w)?;
                anyhow::Ok(())
            })
            .with_context(|| format!("writing {}", path.display()))?;
            out.warnings(&store);
            out.note(&format!("Exported {count} items to {}.", path.display()));
        }
    }
    Ok(())
}

/// Writes the export to `w` as the store hands the items over, oldest first (like a diary);
/// how many items it holds.
fn write_export(
    ctx: &Context,
    store: &duet_store::Store,
    format: Format,
    me: &str,
    partner: Option<&str>,
    w: &mut dyn Write,
) -> anyhow::Result<usize> {
    match format {
        Format::Json => {
            // The layout `serde_json::to_string_pretty` gives the whole document (keys in
            // order), written a piece at a time.
            let s = |v: &str| serde_json::to_string(v).expect("strings serialize");
            write!(
                w,
                "{{\n  \"exported_at\": {},\n  \"format\": \"duet-export/1\",\n  \"items\": ",
                s(&ctx.now.to_string())
            )?;
            // The array sits one level in: each item two levels, four spaces.
            let mut items = output::JsonArray::open(w, "  ")?;
            let count = store.for_each_oldest_first(&Filter::default(), |l| {
                items.push(w, &output::item_json(&l, me, partner))?;
                anyhow::Ok(())
            })?;
            items.close(w)?;
            let partner = partner.map_or("null".to_owned(), s);
            writeln!(w, ",\n  \"me\": {},\n  \"partner\": {partner}\n}}", s(me))?;
            Ok(count)
        }
        Format::Markdown => markdown(ctx, store, me, partner, w),
    }
}

fn markdown(
    ctx: &Context,
    store: &duet_store::Store,
    me: &str,
    partner: Option<&str>,
    w: &mut dyn Write,
) -> anyhow::Result<usize> {
    match partner {
        Some(p) => writeln!(w, "# {me} & {p}: our journal")?,
        None => writeln!(w, "# {me}'s journal")?,
    }
    let mut day = String::new();
    let count = store.for_each_oldest_first(&Filter::default(), |l| {
        let when = dates::local(l.item.created_at, &ctx.tz);
        let this_day = when.strftime("%A %-d %B %Y").to_string();
        if this_day != day {
            write!(w, "\n## {this_day}\n")?;
            day = this_day;
        }
        let star = if l.starred { " ★" } else { "" };
        let private = if l.private { " (private)" } else { "" };
        write!(
            w,
            "\n### {} · {} · {}{star}{private}\n\n",
            when.strftime("%H:%M"),
            l.item.kind,
            output::author_name(&l, me, partner)
        )?;
        match l.item.kind {
            duet_core::Kind::Checkin => w.write_all(output::checkin_summary(&l.item).as_bytes())?,
            _ => w.write_all(crate::safe::block(l.item.body.trim_end()).as_bytes())?,
        }
        w.write_all(b"\n")?;
        if !l.item.tags.is_empty() {
            let tags: Vec<String> = l.item.tags.iter().map(|t| format!("#{t}")).collect();
            write!(w, "\n{}\n", tags.join(" "))?;
        }
        write!(w, "\n<!-- id {} -->\n", l.item.id)?;
        anyhow::Ok(())
    })?;
    Ok(count)
}
