//! `duet checkin`: mood, energy and what I need today, in under a minute.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::bail;
use clap::Args;
use duet_core::item::validate_score;
use duet_core::{Author, Kind, Ritual};
use duet_store::{ListedItem, WriteRequest};

use crate::cli::Context;
use crate::dates;
use crate::output::{self, Out};

#[derive(Args, Debug)]
pub struct CheckinArgs {
    /// How you feel, from 1 (low) to 5 (bright)
    #[arg(long, value_name = "1-5", allow_negative_numbers = true)]
    pub mood: Option<i64>,
    /// How much energy you have, from 1 (drained) to 5 (full)
    #[arg(long, value_name = "1-5", allow_negative_numbers = true)]
    pub energy: Option<i64>,
    /// One line on what you need today (your partner sees it first)
    #[arg(long, value_name = "TEXT")]
    pub need: Option<String>,
    /// When: `this morning` is fine, `yesterday 21:00` too
    #[arg(long, value_name = "WHEN")]
    pub at: Option<String>,
}

/// Ask one question on the terminal; an empty answer skips it.
fn ask(question: &str) -> anyhow::Result<String> {
    eprint!("{question} ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim().to_owned())
}

/// A score typed at the prompt: empty skips, anything else must be 1 to 5.
fn ask_score(what: &'static str, question: &str) -> anyhow::Result<Option<u8>> {
    loop {
        let answer = ask(question)?;
        if answer.is_empty() {
            return Ok(None);
        }
        match answer
            .parse::<i64>()
            .map_err(|_| ())
            .and_then(|n| validate_score(what, n).map_err(|_| ()))
        {
            Ok(score) => return Ok(Some(score)),
            Err(()) => eprintln!("A number from 1 to 5, please (or Enter to skip)."),
        }
    }
}

pub fn run(ctx: &Context, out: &mut Out, args: CheckinArgs) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let given = args.mood.is_some() || args.energy.is_some() || args.need.is_some();
    let (mood, energy, need) = if given {
        (
            args.mood
                .map(|m| validate_score("the mood", m))
                .transpose()?,
            args.energy
                .map(|e| validate_score("the energy", e))
                .transpose()?,
            args.need.clone().unwrap_or_default(),
        )
    } else if std::io::stdin().is_terminal() {
        let partner = output::partner_name(&store);
        (
            ask_score("the mood", "How are you feeling, 1 (low) to 5 (bright)?")?,
            ask_score(
                "the energy",
                "How much energy do you have, 1 (drained) to 5 (full)?",
            )?,
            ask(&format!(
                "What would help you today? (one line, {partner} will see it)"
            ))?,
        )
    } else {
        bail!(
            "say how you are with --mood 1-5, --energy 1-5 or --need \"...\" (or run it in a \
             terminal to be asked)"
        );
    };
    if need.contains('\n') {
        bail!("the need is one line; keep longer thoughts for `duet write`");
    }
    let created_at = match &args.at {
        Some(when) => dates::at(when, ctx.now, &ctx.tz)?.as_millisecond(),
        None => ctx.now_ms(),
    };
    let item = store.add(
        WriteRequest {
            kind: Kind::Checkin,
            body: need.trim().to_owned(),
            tags: vec![],
            starred: false,
            created_at,
            private: false,
            ritual: Ritual {
                mood,
                energy,
                ..Ritual::default()
            },
        },
        ctx.now_ms(),
    )?;
    out.warnings(&store);
    let listed = ListedItem {
        item,
        author: Author::Me,
        private: false,
        starred: false,
    };
    if out.json {
        let partner = store.partner().map(|p| p.name.clone());
        return Ok(out.json_value(&output::item_json(
            &listed,
            &store.config().name,
            partner.as_deref(),
        ))?);
    }
    out.line(&format!(
        "Checked in: {} ({})",
        output::checkin_summary(&listed.item),
        output::short_id(&listed)
    ))?;
    Ok(())
}
