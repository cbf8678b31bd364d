//! Everything duet prints: data on stdout (text or JSON), guidance and
//! errors on stderr, colour only on a terminal and never with NO_COLOR.

use std::io::{self, IsTerminal, Write};

use duet_core::Author;
use duet_store::ListedItem;
use jiff::tz::TimeZone;
use serde_json::json;

use crate::dates;

pub struct Out {
    pub json: bool,
    pub quiet: bool,
    color: bool,
    err_color: bool,
}

fn color_allowed(is_tty: bool) -> bool {
    is_tty
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// Whether stderr may carry colour.
pub fn stderr_color() -> bool {
    color_allowed(io::stderr().is_terminal())
}

pub enum Style {
    Dim,
    Bold,
    Star,
    Error,
    Accent,
}

impl Out {
    pub fn new(json: bool, quiet: bool) -> Out {
        Out {
            json,
            quiet,
            color: color_allowed(io::stdout().is_terminal()),
            err_color: stderr_color(),
        }
    }

    fn paint_if(on: bool, style: Style, text: &str) -> String {
        if !on || text.is_empty() {
            return text.to_owned();
        }
        let code = match style {
            Style::Dim => "2",
            Style::Bold => "1",
            Style::Star => "33",
            Style::Error => "31;1",
            Style::Accent => "36",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    /// Whether stdout is a terminal that may show colour and block characters.
    pub fn fancy(&self) -> bool {
        self.color
    }

    /// Style text bound for stdout.
    pub fn paint(&self, style: Style, text: &str) -> String {
        Self::paint_if(self.color, style, text)
    }

    /// Write a line of data to stdout.
    pub fn line(&mut self, text: &str) -> io::Result<()> {
        let mut stdout = io::stdout().lock();
        writeln!(stdout, "{text}")?;
        stdout.flush()
    }

    /// Data on stdout through a buffer, for output written a piece at a time.
    pub fn stdout(&self) -> io::BufWriter<io::StdoutLock<'static>> {
        io::BufWriter::with_capacity(64 * 1024, io::stdout().lock())
    }

    pub fn json_value(&mut self, value: &serde_json::Value) -> io::Result<()> {
        let text = serde_json::to_string_pretty(value).expect("json serializes");
        self.line(&text)
    }

    /// Guidance for a person: stderr, silenced by -q.
    pub fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    pub fn warn(&self, text: &str) {
        eprintln!(
            "{} {text}",
            Self::paint_if(self.err_color, Style::Star, "duet: warning:")
        );
    }

    pub fn error(&self, e: &anyhow::Error) {
        // One line: the outermost message, then its causes.
        let mut msg = e.to_string();
        for cause in e.chain().skip(1) {
            let cause = cause.to_string();
            if !msg.contains(&cause) {
                msg.push_str(": ");
                msg.push_str(&cause);
            }
        }
        let msg = msg.replace('\n', " ");
        eprintln!(
            "{} {msg}",
            Self::paint_if(self.err_color, Style::Error, "duet: error:")
        );
    }

    pub fn warnings(&self, store: &duet_store::Store) {
        for w in store.take_warnings() {
            self.warn(&w.0);
        }
    }
}

pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The JSON form of an item, the same in `list`, `show` and `export`.
pub fn item_json(l: &ListedItem, my_name: &str, partner_name: Option<&str>) -> serde_json::Value {
    let author_name = match l.author {
        Author::Me => my_name,
        Author::Partner => partner_name.unwrap_or("partner"),
    };
    json!({
        "id": l.item.id.to_string(),
        "kind": l.item.kind.as_str(),
        "author": l.author,
        "author_name": author_name,
        "created_at": rfc3339(l.item.created_at),
        "edited_at": l.item.edited_at.map(rfc3339),
        "body": l.item.body,
        "tags": l.item.tags,
        "starred": l.starred,
        "private": l.private,
        "re": l.item.ritual.re.map(|id| id.to_string()),
        "mood": l.item.ritual.mood,
        "energy": l.item.ritual.energy,
        "question": l.item.ritual.question.as_ref().map(|asked| json!({
            "id": asked.id,
            "date": asked.date,
            "text": duet_core::question::by_id(&asked.id).map(|q| q.text),
        })),
        "edited_after_reveal": l.item.ritual.edited_after_reveal,
    })
}

/// A check-in in one line: `mood 4/5 · energy 2/5 · needs: a slow evening`.
pub fn checkin_summary(item: &duet_core::Item) -> String {
    let mut parts = Vec::new();
    if let Some(mood) = item.ritual.mood {
        parts.push(format!("mood {mood}/5"));
    }
    if let Some(energy) = item.ritual.energy {
        parts.push(format!("energy {energy}/5"));
    }
    if !item.body.trim().is_empty() {
        parts.push(format!("needs: {}", summary(&item.body, 60)));
    }
    parts.join(" · ")
}

/// The text a list shows for an item: a check-in's scores and need, an answer with its
/// question, anything else its first line.
pub fn item_summary(item: &duet_core::Item) -> String {
    match item.kind {
        duet_core::Kind::Checkin => checkin_summary(item),
        duet_core::Kind::Answer => {
            let question = item
                .ritual
                .question
                .as_ref()
                .and_then(|a| duet_core::question::by_id(&a.id))
                .map_or("a question".to_owned(), |q| summary(q.text, 40));
            format!("{question} → {}", summary(&item.body, 40))
        }
        _ => summary(&item.body, 72),
    }
}

/// Short id shown in lists; any unique prefix is accepted back.
pub fn short_id(l: &ListedItem) -> String {
    l.item.id.to_string()[..7].to_owned()
}

/// First line of the body, cut to `max` characters, with control and bidi characters shown
/// rather than obeyed (the body may be the partner's).
pub fn summary(body: &str, max: usize) -> String {
    let first = body
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let more = body.trim().lines().count() > 1;
    let first = crate::safe::line(first);
    let mut out: String = first.chars().take(max).collect();
    if first.chars().count() > max || more {
        out.push('…');
    }
    out
}

/// The partner's name for sentences, or "your partner" before pairing.
pub fn partner_name(store: &duet_store::Store) -> String {
    store
        .partner()
        .map_or("your partner".to_owned(), |p| p.name.clone())
}

pub fn author_name<'a>(l: &ListedItem, me: &'a str, partner: Option<&'a str>) -> &'a str {
    match l.author {
        Author::Me => me,
        Author::Partner => partner.unwrap_or("partner"),
    }
}

/// One line of `duet list`.
pub fn list_line(
    out: &Out,
    l: &ListedItem,
    me: &str,
    partner: Option<&str>,
    tz: &TimeZone,
) -> String {
    let when = dates::local(l.item.created_at, tz)
        .strftime("%a %Y-%m-%d %H:%M")
        .to_string();
    let star = if l.starred {
        out.paint(Style::Star, "★")
    } else {
        " ".into()
    };
    let private = if l.private { " (private)" } else { "" };
    let tags: String = l.item.tags.iter().map(|t| format!(" #{t}")).collect();
    let text = item_summary(&l.item);
    // A need the partner named is a bid for attention: it stands out.
    let text = if l.author == Author::Partner
        && l.item.kind == duet_core::Kind::Checkin
        && !l.item.body.trim().is_empty()
    {
        out.paint(Style::Bold, &text)
    } else {
        text
    };
    format!(
        "{} {}  {}  {:<7} {:<9}{} {}{}",
        star,
        out.paint(Style::Accent, &short_id(l)),
        out.paint(Style::Dim, &when),
        l.item.kind.as_str(),
        author_name(l, me, partner),
        private,
        text,
        out.paint(Style::Dim, &tags),
    )
}

/// A JSON array written one element at a time, laid out exactly as `serde_json`'s pretty
/// printer lays out the whole document: each element on its own lines, two spaces deeper than
/// the array, which itself sits at `indent`.
pub struct JsonArray {
    indent: &'static str,
    first: bool,
}

impl JsonArray {
    pub fn open(w: &mut dyn Write, indent: &'static str) -> io::Result<JsonArray> {
        w.write_all(b"[")?;
        Ok(JsonArray {
            indent,
            first: true,
        })
    }

    pub fn push(&mut self, w: &mut dyn Write, value: &serde_json::Value) -> io::Result<()> {
        let text = serde_json::to_string_pretty(value).expect("json serializes");
        w.write_all(if self.first { b"\n" } else { b",\n" })?;
        self.first = false;
        for (i, line) in text.lines().enumerate() {
            if i > 0 {
                w.write_all(b"\n")?;
            }
            write!(w, "{}  {line}", self.indent)?;
        }
        Ok(())
    }

    pub fn close(self, w: &mut dyn Write) -> io::Result<()> {
        if self.first {
            w.write_all(b"]")
        } else {
            write!(w, "\n{}]", self.indent)
        }
    }
}
