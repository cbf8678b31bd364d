//! `duet week`, `duet pulse`, `duet memories`: looking back together, without scores.
//!
//! The figures come from `duet_core::rituals` (pure); this file reads only the days shown,
//! through the store (which already hides the partner's unrevealed answers), and prints.

use clap::Args;
use duet_core::rituals::{self, ItemRef, PersonPulse, PersonWeek, Seen};
use duet_core::{Author, Filter};
use duet_store::{ListedItem, Store};
use serde_json::json;

use crate::cli::Context;
use crate::dates;
use crate::output::{self, Out, Style};

#[derive(Args, Debug)]
pub struct WeekArgs {}

#[derive(Args, Debug)]
pub struct PulseArgs {}

#[derive(Args, Debug)]
pub struct MemoriesArgs {
    /// Remember from another day: `yesterday`, `2026-12-24`
    #[arg(long, value_name = "DAY")]
    pub date: Option<String>,
}

/// Everything readable from the local day `first` on, newest first.
fn since_day(ctx: &Context, store: &Store, first: i32) -> anyhow::Result<Vec<ListedItem>> {
    let start = dates::from(&dates::from_day_number(first).to_string(), ctx.now, &ctx.tz)?;
    let filter = Filter {
        from: Some(start.as_millisecond()),
        ..Filter::default()
    };
    Ok(store.list(&filter, None)?)
}

fn seen<'a>(ctx: &Context, items: &'a [ListedItem]) -> Vec<Seen<'a>> {
    items
        .iter()
        .map(|l| Seen {
            item: &l.item,
            author: l.author,
            day: dates::local_day(l.item.created_at, &ctx.tz),
            starred: l.starred,
        })
        .collect()
}

fn names(store: &Store) -> (String, String) {
    let partner = output::partner_name(store);
    (store.config().name.clone(), partner)
}

fn day_text(n: i32) -> String {
    dates::from_day_number(n).to_string()
}

fn person_week_json(p: &PersonWeek) -> serde_json::Value {
    json!({
        "entries": p.entries,
        "thanks": p.thanks,
        "checkins": p.checkins,
        "answers": p.answers,
        "mood": p.mood,
        "energy": p.energy,
    })
}

fn item_ref_json(r: &ItemRef) -> serde_json::Value {
    json!({ "id": r.id.to_string(), "author": r.author, "kind": r.kind, "date": day_text(r.day) })
}

pub fn run_week(ctx: &Context, out: &mut Out, _args: WeekArgs) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let today = dates::day_number(dates::today(ctx.now, &ctx.tz));
    let items = since_day(ctx, &store, today - (rituals::WEEK_DAYS - 1))?;
    let week = rituals::week(&seen(ctx, &items), today);
    out.warnings(&store);
    let (me, partner) = names(&store);
    if out.json {
        return Ok(out.json_value(&json!({
            "from": day_text(week.from),
            "to": day_text(week.to),
            "me": person_week_json(&week.me),
            "partner": person_week_json(&week.partner),
            "both_answered": week.both_answered.iter().map(|a| json!({
                "id": a.id,
                "date": a.date,
                "text": duet_core::question::by_id(&a.id).map(|q| q.text),
            })).collect::<Vec<_>>(),
            "starred": week.starred.iter().map(item_ref_json).collect::<Vec<_>>(),
            "needs": week.needs.iter().map(|n| json!({
                "id": n.id.to_string(),
                "author": n.author,
                "date": day_text(n.day),
                "text": n.text,
                "answered": n.answered,
            })).collect::<Vec<_>>(),
            "suggestions": week.suggestions.iter().map(|s| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                v["text"] = s.text(&partner).into();
                v
            }).collect::<Vec<_>>(),
        }))?);
    }
    let from = dates::from_day_number(week.from).strftime("%a %-d %b");
    let to = dates::from_day_number(week.to).strftime("%a %-d %b");
    out.line(&out.paint(Style::Bold, &format!("Your week together, {from} to {to}")))?;
    out.line("")?;
    out.line(&format!(
        "Thanks: {} given, {} received",
        week.me.thanks, week.partner.thanks
    ))?;
    for (name, p) in [(&me, &week.me), (&partner, &week.partner)] {
        let mut line = format!(
            "{name}: {} entries, {} check-ins, {} answers",
            p.entries, p.checkins, p.answers
        );
        if !p.mood.is_empty() {
            line.push_str(&format!("  mood {}", trend(out, &p.mood)));
        }
        if !p.energy.is_empty() {
            line.push_str(&format!("  energy {}", trend(out, &p.energy)));
        }
        out.line(&line)?;
    }
    if !week.both_answered.is_empty() {
        out.line("")?;
        out.line("Questions you both answered:")?;
        for a in &week.both_answered {
            let text = duet_core::question::by_id(&a.id).map_or(a.id.as_str(), |q| q.text);
            out.line(&format!("  {}  {text}", out.paint(Style::Dim, &a.date)))?;
        }
    }
    if !week.needs.is_empty() {
        out.line("")?;
        out.line("Needs named:")?;
        for n in &week.needs {
            let who = if n.author == Author::Me {
                &me
            } else {
                &partner
            };
            let answered = if n.answered {
                "answered"
            } else {
                "not answered yet"
            };
            out.line(&format!(
                "  {} {who}: {}  ({answered})",
                out.paint(
                    Style::Dim,
                    &dates::from_day_number(n.day).strftime("%a").to_string()
                ),
                output::summary(&n.text, 60)
            ))?;
        }
    }
    if !week.starred.is_empty() {
        let ids: Vec<String> = week
            .starred
            .iter()
            .map(|r| r.id.to_string()[..7].to_owned())
            .collect();
        out.line("")?;
        out.line(&format!(
            "Starred moments: {}  (duet show ID)",
            ids.join(" ")
        ))?;
    }
    if !week.suggestions.is_empty() {
        out.line("")?;
        for s in &week.suggestions {
            out.line(&format!("• {}", s.text(&partner)))?;
        }
    }
    Ok(())
}

/// Scores as a sparkline on a terminal, as numbers elsewhere (a pipe, a file, NO_COLOR).
fn trend(out: &Out, values: &[u8]) -> String {
    if out.fancy() {
        rituals::sparkline(values)
    } else {
        values
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn person_pulse_json(p: &PersonPulse) -> serde_json::Value {
    json!({
        "recent": p.recent,
        "before": p.before,
        "days_since_thanks": p.days_since_thanks,
        "mood_recent": p.mood_recent,
        "mood_before": p.mood_before,
    })
}

pub fn run_pulse(ctx: &Context, out: &mut Out, _args: PulseArgs) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let today = dates::day_number(dates::today(ctx.now, &ctx.tz));
    let items = since_day(ctx, &store, today - (2 * rituals::PULSE_DAYS - 1))?;
    let pulse = rituals::pulse(&seen(ctx, &items), today);
    out.warnings(&store);
    let (me, partner) = names(&store);
    if out.json {
        return Ok(out.json_value(&json!({
            "from": day_text(pulse.from),
            "to": day_text(pulse.to),
            "me": person_pulse_json(&pulse.me),
            "partner": person_pulse_json(&pulse.partner),
            "notes": pulse.notes,
        }))?);
    }
    out.line(&out.paint(
        Style::Bold,
        "The last 30 days, next to the 30 before (only you see this)",
    ))?;
    out.line("")?;
    for (name, p) in [(&me, &pulse.me), (&partner, &pulse.partner)] {
        let (r, b) = (&p.recent, &p.before);
        out.line(&format!(
            "{name}: wrote on {} days (before: {}), {} entries ({}), {} thanks ({}), \
             {} check-ins ({}), {} answers ({})",
            r.days_written,
            b.days_written,
            r.entries,
            b.entries,
            r.thanks,
            b.thanks,
            r.checkins,
            b.checkins,
            r.answers,
            b.answers
        ))?;
        let last_thanks =
            p.days_since_thanks
                .map_or("no thanks in 60 days".to_owned(), |d| match d {
                    0 => "last thanks today".to_owned(),
                    1 => "last thanks yesterday".to_owned(),
                    d => format!("last thanks {d} days ago"),
                });
        let mood = match (p.mood_recent, p.mood_before) {
            (Some(r), Some(b)) => format!(", mood {r:.1} (before: {b:.1})"),
            (Some(r), None) => format!(", mood {r:.1}"),
            _ => String::new(),
        };
        out.line(&format!("  {last_thanks}{mood}"))?;
    }
    out.line("")?;
    for note in &pulse.notes {
        out.line(&format!("• {note}"))?;
    }
    Ok(())
}

pub fn run_memories(ctx: &Context, out: &mut Out, args: MemoriesArgs) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let day = match &args.date {
        Some(text) => dates::day(text, ctx.now, &ctx.tz)?,
        None => dates::today(ctx.now, &ctx.tz),
    };
    let civil = |d: jiff::civil::Date| (i32::from(d.year()), d.month() as u8, d.day() as u8);
    let today = civil(day);
    let before = dates::from(&day.to_string(), ctx.now, &ctx.tz)?;
    let filter = Filter {
        to: Some(before.as_millisecond()),
        ..Filter::default()
    };
    let mut items = store.list(&filter, None)?;
    items.retain(|l| {
        rituals::is_memory(
            today,
            civil(dates::local(l.item.created_at, &ctx.tz).date()),
        )
    });
    out.warnings(&store);
    let (me, partner) = names(&store);
    if out.json {
        let values: Vec<_> = items
            .iter()
            .map(|l| output::item_json(l, &me, Some(&partner)))
            .collect();
        return Ok(out.json_value(&serde_json::Value::Array(values))?);
    }
    if items.is_empty() {
        out.note(&format!(
            "Nothing from a {} of an earlier month yet. Today's page is still open: `duet write`.",
            ordinal(day.day())
        ));
        return Ok(());
    }
    for l in &items {
        out.line(&output::list_line(out, l, &me, Some(&partner), &ctx.tz))?;
    }
    Ok(())
}

fn ordinal(n: i8) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}
