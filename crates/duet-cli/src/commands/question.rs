//! `duet question` and `duet answer`: the question of the day, answered first, then seen.
//!
//! The question is the same on both devices with no coordination: a pure function of the two
//! journal ids, the calendar day and the pairing day (`duet_core::question`). Whether the
//! partner's answer may be shown is decided by the store's reveal rule, never here.

use clap::Args;
use duet_core::item::utc_day;
use duet_core::question::{self, Question};
use duet_core::reveal::earliest_answer_ms;
use duet_core::{Asked, Author, Filter, Kind, Ritual};
use duet_store::{ListedItem, Store, WriteRequest};
use serde_json::json;

use crate::cli::Context;
use crate::commands::write::read_text;
use crate::dates;
use crate::output::{self, Out, Style};

#[derive(Args, Debug)]
pub struct QuestionArgs {
    /// Another day's question: `yesterday`, `last friday`, `2026-11-20`
    #[arg(long, value_name = "DAY")]
    pub date: Option<String>,
    /// Past questions with both answers (the partner's only where you answered too)
    #[arg(long, conflicts_with = "date")]
    pub history: bool,
}

#[derive(Args, Debug)]
pub struct AnswerArgs {
    /// Your answer; `-` reads it from stdin; nothing opens $EDITOR with the question shown
    pub text: Vec<String>,
    /// Answer another day's question (not one still to come)
    #[arg(long, value_name = "DAY")]
    pub date: Option<String>,
}

/// The question of `day` for this couple.
pub fn of_the_day(store: &Store, day: jiff::civil::Date) -> &'static Question {
    let mine = *store.config().journal.as_bytes();
    let (theirs, paired_day) = match store.partner() {
        Some(p) => {
            let epoch_ms = p
                .paired_epoch
                .map_or(p.paired_at, |s| s.saturating_mul(1000));
            (*p.journal.as_bytes(), utc_day(epoch_ms))
        }
        // Alone for now: a question still comes, counted from the day duet was set up.
        None => (mine, utc_day(store.config().created_at)),
    };
    question::question_of_the_day(&[mine, theirs], dates::day_number(day), paired_day)
}

fn asked(q: &Question, day: jiff::civil::Date) -> Asked {
    Asked {
        id: q.id.to_owned(),
        date: day.to_string(),
    }
}

/// Both answers to one question, as this reader may see them. The partner's is absent while
/// hidden; `partner_answered` says whether they answered at all (that much is not hidden).
struct Answers {
    mine: Option<ListedItem>,
    partner: Option<ListedItem>,
    partner_answered: bool,
}

fn answers(store: &Store, asked: &Asked) -> anyhow::Result<Answers> {
    let day = asked.day_number().unwrap_or(0);
    let filter = Filter {
        kinds: vec![Kind::Answer],
        from: Some(earliest_answer_ms(day)),
        ..Filter::default()
    };
    let visible = store.list(&filter, None)?;
    let pick = |author: Author| {
        visible
            .iter()
            .find(|l| l.author == author && l.item.ritual.question.as_ref() == Some(asked))
            .cloned()
    };
    let (mine, partner) = (pick(Author::Me), pick(Author::Partner));
    let partner_answered = partner.is_some() || store.partner_answered(asked)?;
    Ok(Answers {
        mine,
        partner,
        partner_answered,
    })
}

fn answer_json(l: &Option<ListedItem>) -> serde_json::Value {
    match l {
        Some(l) => json!({
            "id": l.item.id.to_string(),
            "text": l.item.body,
            "created_at": output::rfc3339(l.item.created_at),
            "edited_at": l.item.edited_at.map(output::rfc3339),
            "edited_after_reveal": l.item.ritual.edited_after_reveal,
        }),
        None => serde_json::Value::Null,
    }
}

fn question_json(q: &Question, day: jiff::civil::Date, a: &Answers) -> serde_json::Value {
    json!({
        "date": day.to_string(),
        "id": q.id,
        "text": q.text,
        "category": q.category,
        "mine": answer_json(&a.mine),
        "partner": answer_json(&a.partner),
        "partner_answered": a.partner_answered,
    })
}

pub fn run_question(ctx: &Context, out: &mut Out, args: QuestionArgs) -> anyhow::Result<()> {
    let store = ctx.store()?;
    if args.history {
        return history(out, &store);
    }
    let day = match &args.date {
        Some(text) => dates::day(text, ctx.now, &ctx.tz)?,
        None => dates::today(ctx.now, &ctx.tz),
    };
    let q = of_the_day(&store, day);
    let a = answers(&store, &asked(q, day))?;
    out.warnings(&store);
    if out.json {
        return Ok(out.json_value(&question_json(q, day, &a))?);
    }
    let partner = output::partner_name(&store);
    let heading = format!("{} · {}", day.strftime("%A %-d %B"), q.category.title());
    out.line(&out.paint(Style::Dim, &heading))?;
    out.line(&out.paint(Style::Bold, q.text))?;
    out.line("")?;
    show_pair(out, &a, &store.config().name, &partner)?;
    if a.mine.is_none() {
        let when = args
            .date
            .as_deref()
            .map_or(String::new(), |d| format!(" --date {d:?}"));
        out.note(&format!(
            "Answer with `duet answer{when}`; it opens your editor, or add the text."
        ));
    }
    Ok(())
}

/// One answer as shown, marked when it was rewritten after the reveal.
fn answer_text(out: &Out, l: &ListedItem) -> String {
    let mut text = crate::safe::block(&l.item.body).into_owned();
    if l.item.ritual.edited_after_reveal {
        text.push_str(&out.paint(Style::Dim, " (edited after reveal)"));
    }
    text
}

/// The two answers side by side, or what can be said while one is missing.
fn show_pair(out: &mut Out, a: &Answers, me: &str, partner: &str) -> anyhow::Result<()> {
    let mine = match &a.mine {
        Some(mine) => format!(
            "{}: {}",
            out.paint(Style::Accent, me),
            answer_text(out, mine)
        ),
        None => out.paint(Style::Dim, &format!("{me}: not answered yet")),
    };
    let theirs = match (&a.partner, a.partner_answered, &a.mine) {
        (Some(theirs), _, _) => {
            format!(
                "{}: {}",
                out.paint(Style::Accent, partner),
                answer_text(out, theirs)
            )
        }
        (None, true, None) => out.paint(
            Style::Dim,
            &format!("{partner} has answered; their answer opens once you have answered too."),
        ),
        (None, _, _) => out.paint(Style::Dim, &format!("{partner}: not answered yet")),
    };
    out.line(&mine)?;
    out.line(&theirs)?;
    Ok(())
}

fn history(out: &mut Out, store: &Store) -> anyhow::Result<()> {
    let filter = Filter {
        kinds: vec![Kind::Answer],
        ..Filter::default()
    };
    let visible = store.list(&filter, None)?;
    let mut days: Vec<Asked> = visible
        .iter()
        .filter_map(|l| l.item.ritual.question.clone())
        .collect();
    days.extend(store.partner_questions()?);
    days.sort_by(|a, b| b.date.cmp(&a.date).then_with(|| a.id.cmp(&b.id)));
    days.dedup();
    let partner = output::partner_name(store);
    let mut all = Vec::new();
    for asked in &days {
        let a = answers(store, asked)?;
        let day = jiff::civil::Date::strptime("%Y-%m-%d", &asked.date).ok();
        let q = question::by_id(&asked.id);
        all.push((asked, day, q, a));
    }
    out.warnings(store);
    if out.json {
        let values: Vec<_> = all
            .iter()
            .map(|(asked, _, q, a)| {
                json!({
                    "date": asked.date,
                    "id": asked.id,
                    "text": q.map(|q| q.text),
                    "category": q.map(|q| q.category),
                    "mine": answer_json(&a.mine),
                    "partner": answer_json(&a.partner),
                    "partner_answered": a.partner_answered,
                })
            })
            .collect();
        return Ok(out.json_value(&serde_json::Value::Array(values))?);
    }
    if all.is_empty() {
        out.note("No answers yet. `duet question` shows today's question.");
        return Ok(());
    }
    for (n, (asked, day, q, a)) in all.iter().enumerate() {
        if n > 0 {
            out.line("")?;
        }
        let when = day.map_or(asked.date.clone(), |d| {
            d.strftime("%a %Y-%m-%d").to_string()
        });
        let text = q.map_or("(a question this duet does not know)", |q| q.text);
        out.line(&format!(
            "{}  {}",
            out.paint(Style::Dim, &when),
            out.paint(Style::Bold, text)
        ))?;
        show_pair(out, a, &store.config().name, &partner)?;
    }
    Ok(())
}

pub fn run_answer(ctx: &Context, out: &mut Out, args: AnswerArgs) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let today = dates::today(ctx.now, &ctx.tz);
    let day = match &args.date {
        Some(text) => dates::day(text, ctx.now, &ctx.tz)?,
        None => today,
    };
    if day > today {
        anyhow::bail!(
            "{day} has not come yet; answer today's question or an earlier day's with --date"
        );
    }
    let q = of_the_day(&store, day);
    let asked = asked(q, day);
    let before = answers(&store, &asked)?;
    if let Some(mine) = &before.mine {
        anyhow::bail!(
            "you already answered the question of {day}; change it with `duet edit {}`",
            &mine.item.id.to_string()[..7]
        );
    }
    let template = format!(
        "\n\n# {}\n#\n# Write your answer above. Lines starting with # are left out.\n\
         # Your partner's answer opens for you once yours is saved, and yours for them.\n",
        q.text
    );
    let body = read_text(ctx, &args.text, &template)?;
    let body = if args.text.is_empty() {
        crate::editor::strip_comments(&body)
    } else {
        body
    };
    let item = store.add(
        WriteRequest {
            kind: Kind::Answer,
            body,
            tags: vec![],
            starred: false,
            created_at: ctx.now_ms(),
            private: false,
            ritual: Ritual {
                question: Some(asked.clone()),
                ..Ritual::default()
            },
        },
        ctx.now_ms(),
    )?;
    let after = answers(&store, &asked)?;
    out.warnings(&store);
    if out.json {
        return Ok(out.json_value(&question_json(q, day, &after))?);
    }
    let partner = output::partner_name(&store);
    out.line(&format!("Saved your answer: {}", &item.id.to_string()[..7]))?;
    if after.partner.is_some() {
        out.line("")?;
        out.line(&out.paint(Style::Bold, q.text))?;
        show_pair(out, &after, &store.config().name, &partner)?;
    } else {
        out.note(&format!(
            "{partner} sees it once they have answered too; you will see theirs the same way."
        ));
    }
    Ok(())
}
