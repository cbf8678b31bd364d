//! What the rituals add up to: the week both journals had (`duet week`), the slow drift
//! between two months (`duet pulse`), this day in earlier months (`duet memories`) and a
//! sparkline for check-in scores.
//!
//! Everything here is computed from items the caller already read, so it is pure and
//! deterministic. Days are local calendar days given as day numbers (days since 1970-01-01):
//! the caller turns each item's `created_at` into its local day, so no time zone and no clock
//! is involved here. Deleted items may be passed in and are ignored everywhere.
//!
//! The partner's hidden answers were removed before the items got here (see
//! [`crate::reveal`]), so nothing needs hiding; still, no answer's body is ever copied into
//! anything this module returns. The only text copied is a check-in's need.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::filter::Author;
use crate::id::ItemId;
use crate::item::{Asked, Item, Kind};

/// The days `week` covers: `today - 6 ..= today`.
pub const WEEK_DAYS: i32 = 7;
/// The days without a thanks, from either person, after which `week` suggests one.
pub const THANKS_DAYS: i32 = 5;
/// Each of the two windows `pulse` compares.
pub const PULSE_DAYS: i32 = 30;
/// The most suggestions `week` makes.
pub const MAX_SUGGESTIONS: usize = 3;
/// The most notes `pulse` writes.
pub const MAX_NOTES: usize = 4;
/// How far a mood average must fall before `pulse` mentions it.
pub const MOOD_DROP: f32 = 0.5;

/// One item as the rituals see it: who wrote it, on which local day, and whether it is
/// starred for the reader (the item's own star or the reader's mark).
#[derive(Clone, Copy, Debug)]
pub struct Seen<'a> {
    pub item: &'a Item,
    pub author: Author,
    pub day: i32,
    pub starred: bool,
}

impl Seen<'_> {
    /// Not deleted and written on a day in `from ..= to`.
    fn live_in(&self, from: i32, to: i32) -> bool {
        !self.item.deleted && (from..=to).contains(&self.day)
    }

    /// Chronological order: by day, then creation time, then id (so ties are stable).
    fn key(&self) -> (i32, i64, ItemId) {
        (self.day, self.item.created_at, self.item.id)
    }

    fn is(&self, author: Author, kind: &Kind) -> bool {
        self.author == author && self.item.kind == *kind
    }
}

fn other(author: Author) -> Author {
    match author {
        Author::Me => Author::Partner,
        Author::Partner => Author::Me,
    }
}

/// An item named without its body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ItemRef {
    pub id: ItemId,
    pub author: Author,
    pub kind: Kind,
    pub day: i32,
}

impl ItemRef {
    fn of(seen: &Seen) -> ItemRef {
        ItemRef {
            id: seen.item.id,
            author: seen.author,
            kind: seen.item.kind.clone(),
            day: seen.day,
        }
    }
}

/// A need someone named in a check-in, and whether the other person answered it
/// (`write --re`, `thanks --re`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Need {
    pub id: ItemId,
    pub author: Author,
    pub day: i32,
    pub text: String,
    pub answered: bool,
}

/// One person's week.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PersonWeek {
    pub entries: u32,
    pub thanks: u32,
    pub checkins: u32,
    pub answers: u32,
    /// Check-in moods in chronological order; check-ins without a mood are skipped.
    pub mood: Vec<u8>,
    /// Check-in energies in chronological order; check-ins without an energy are skipped.
    pub energy: Vec<u8>,
}

/// The last seven days of both journals.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Week {
    pub from: i32,
    pub to: i32,
    pub me: PersonWeek,
    /// The partner's week; `partner.thanks` are the thanks they gave (I received).
    pub partner: PersonWeek,
    /// Questions both of us answered within the week, sorted.
    pub both_answered: Vec<Asked>,
    /// Starred items of the week, either author, oldest first.
    pub starred: Vec<ItemRef>,
    /// Check-ins of the week that name a need, either author, oldest first.
    pub needs: Vec<Need>,
    pub suggestions: Vec<Suggestion>,
}

/// A gentle idea for the coming days. Serialized with its name in `kind`
/// (`{"kind": "unanswered_need", "id": ..., "day": ...}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Suggestion {
    /// Neither of us wrote a thanks in the last five days. `days` since the last one that
    /// was passed in, or the week's length when there was none.
    NoThanksLately { days: u32 },
    /// The partner named a need that I have not answered yet.
    UnansweredNeed { id: ItemId, day: i32 },
    /// Nobody checked in this week.
    NoCheckins,
}

impl Suggestion {
    /// One kind sentence for the reader, naming the partner.
    pub fn text(&self, partner_name: &str) -> String {
        let p = partner_name;
        match self {
            Suggestion::NoThanksLately { days } if *days < WEEK_DAYS.unsigned_abs() => format!(
                "The last thanks was {days} day{} ago; if something {p} did lately made your \
                 day a little lighter, a short note could be nice to write.",
                if *days == 1 { "" } else { "s" }
            ),
            Suggestion::NoThanksLately { .. } => format!(
                "It has been a little while since a thanks; one small thing {p} did that you \
                 liked is plenty."
            ),
            Suggestion::UnansweredNeed { day, .. } => format!(
                "On {}, {p} wrote down what they needed; a few words back, or some time \
                 together, can let them know you heard.",
                weekday(*day)
            ),
            Suggestion::NoCheckins => format!(
                "A quick check-in (mood, energy, what you need today) can be an easy way to \
                 start a conversation with {p}."
            ),
        }
    }
}

/// The English name of a day's weekday (day 0, 1970-01-01, was a Thursday).
fn weekday(day: i32) -> &'static str {
    const NAMES: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    NAMES[(i64::from(day) + 4).rem_euclid(7) as usize]
}

/// What one person wrote among `items`.
fn tally(items: &[&Seen], author: Author) -> Counts {
    let count = |kind: Kind| -> u32 {
        let n = items.iter().filter(|s| s.is(author, &kind)).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    };
    let days: BTreeSet<i32> = items
        .iter()
        .filter(|s| s.author == author)
        .map(|s| s.day)
        .collect();
    Counts {
        entries: count(Kind::Entry),
        thanks: count(Kind::Thanks),
        checkins: count(Kind::Checkin),
        answers: count(Kind::Answer),
        days_written: u32::try_from(days.len()).unwrap_or(u32::MAX),
    }
}

/// One person's check-in scores in the order of `items` (already chronological).
fn scores(items: &[&Seen], author: Author, score: impl Fn(&Item) -> Option<u8>) -> Vec<u8> {
    items
        .iter()
        .filter(|s| s.is(author, &Kind::Checkin))
        .filter_map(|s| score(s.item))
        .collect()
}

fn person_week(in_week: &[&Seen], author: Author) -> PersonWeek {
    let counts = tally(in_week, author);
    PersonWeek {
        entries: counts.entries,
        thanks: counts.thanks,
        checkins: counts.checkins,
        answers: counts.answers,
        mood: scores(in_week, author, |i| i.ritual.mood),
        energy: scores(in_week, author, |i| i.ritual.energy),
    }
}

/// The week `today - 6 ..= today` of both journals, seen by "me".
///
/// `items` are the week's items plus anything newer (what answers a need may come after the
/// week); older items may be passed too and only inform how long ago the last thanks was.
pub fn week(items: &[Seen], today: i32) -> Week {
    let from = today - (WEEK_DAYS - 1);
    let mut in_week: Vec<&Seen> = items.iter().filter(|s| s.live_in(from, today)).collect();
    in_week.sort_by_key(|s| s.key());

    let me = person_week(&in_week, Author::Me);
    let partner = person_week(&in_week, Author::Partner);

    let asked_by = |author: Author| -> BTreeSet<&Asked> {
        in_week
            .iter()
            .filter(|s| s.is(author, &Kind::Answer))
            .filter_map(|s| s.item.ritual.question.as_ref())
            .collect()
    };
    let mine = asked_by(Author::Me);
    let both_answered = asked_by(Author::Partner)
        .into_iter()
        .filter(|asked| mine.contains(asked))
        .cloned()
        .collect();

    let starred = in_week
        .iter()
        .filter(|s| s.starred)
        .map(|s| ItemRef::of(s))
        .collect();

    let needs: Vec<Need> = in_week
        .iter()
        .filter(|s| s.item.kind == Kind::Checkin && !s.item.body.trim().is_empty())
        .map(|s| Need {
            id: s.item.id,
            author: s.author,
            day: s.day,
            text: s.item.body.trim().to_owned(),
            answered: items.iter().any(|o| {
                !o.item.deleted
                    && o.author == other(s.author)
                    && o.item.ritual.re == Some(s.item.id)
            }),
        })
        .collect();

    let mut suggestions = Vec::new();
    let last_thanks = items
        .iter()
        .filter(|s| !s.item.deleted && s.item.kind == Kind::Thanks && s.day <= today)
        .map(|s| s.day)
        .max();
    if last_thanks.is_none_or(|day| day <= today - THANKS_DAYS) {
        let days = last_thanks.map_or(WEEK_DAYS.unsigned_abs(), |day| today.abs_diff(day));
        suggestions.push(Suggestion::NoThanksLately { days });
    }
    suggestions.extend(
        needs
            .iter()
            .filter(|n| n.author == Author::Partner && !n.answered)
            .map(|n| Suggestion::UnansweredNeed {
                id: n.id,
                day: n.day,
            }),
    );
    if me.checkins + partner.checkins == 0 {
        suggestions.push(Suggestion::NoCheckins);
    }
    suggestions.truncate(MAX_SUGGESTIONS);

    Week {
        from,
        to: today,
        me,
        partner,
        both_answered,
        starred,
        needs,
        suggestions,
    }
}

/// How much one person wrote in one window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub entries: u32,
    pub thanks: u32,
    pub checkins: u32,
    pub answers: u32,
    /// Distinct days with any item.
    pub days_written: u32,
}

/// One person over the last 30 days against the 30 before.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PersonPulse {
    pub recent: Counts,
    pub before: Counts,
    /// Days since this person's last thanks within the 60 days; `None` if there was none.
    pub days_since_thanks: Option<u32>,
    /// The mean check-in mood of the last 30 days, if any check-in gave one.
    pub mood_recent: Option<f32>,
    /// The mean check-in mood of the 30 days before.
    pub mood_before: Option<f32>,
}

/// The slow drift of both journals: never a score, a few calm observations.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pulse {
    /// The first day of the earlier window (`today - 59`).
    pub from: i32,
    pub to: i32,
    pub me: PersonPulse,
    pub partner: PersonPulse,
    /// One to four observations, each with what tends to help.
    pub notes: Vec<String>,
}

fn mean_mood(items: &[&Seen], author: Author) -> Option<f32> {
    let moods = scores(items, author, |i| i.ritual.mood);
    if moods.is_empty() {
        return None;
    }
    let sum: f32 = moods.iter().map(|&m| f32::from(m)).sum();
    Some(sum / moods.len() as f32)
}

fn person_pulse(recent: &[&Seen], before: &[&Seen], author: Author, today: i32) -> PersonPulse {
    let last_thanks = recent
        .iter()
        .chain(before)
        .filter(|s| s.is(author, &Kind::Thanks))
        .map(|s| s.day)
        .max();
    PersonPulse {
        recent: tally(recent, author),
        before: tally(before, author),
        days_since_thanks: last_thanks.map(|day| today.abs_diff(day)),
        mood_recent: mean_mood(recent, author),
        mood_before: mean_mood(before, author),
    }
}

/// Noticeably fewer: at least two less, and under three quarters of what it was.
fn fell(recent: u32, before: u32) -> bool {
    let (r, b) = (u64::from(recent), u64::from(before));
    b >= r + 2 && r * 4 < b * 3
}

/// Noticeably more: at least two more, and over five quarters of what it was.
fn rose(recent: u32, before: u32) -> bool {
    let (r, b) = (u64::from(recent), u64::from(before));
    r >= b + 2 && r * 4 > b * 5
}

fn mood_dropped(p: &PersonPulse) -> Option<(f32, f32)> {
    match (p.mood_recent, p.mood_before) {
        (Some(r), Some(b)) if r <= b - MOOD_DROP => Some((r, b)),
        _ => None,
    }
}

fn distinct_days(items: &[&Seen]) -> u32 {
    let days: BTreeSet<i32> = items.iter().map(|s| s.day).collect();
    u32::try_from(days.len()).unwrap_or(u32::MAX)
}

/// The notes, in this order, at most [`MAX_NOTES`]:
/// - nothing at all in the 60 days: one inviting note, and nothing else;
/// - nothing in the 30 days before: nothing to compare yet, said once;
/// - fewer thanks between the two of us (see [`fell`]);
/// - my check-in mood down by [`MOOD_DROP`] or more, then the partner's;
/// - fewer days on which either of us wrote;
/// - fewer check-ins between the two of us;
/// - more thanks than before (a warm note);
/// - when none of the above: things look steady.
fn pulse_notes(
    recent: &[&Seen],
    before: &[&Seen],
    me: &PersonPulse,
    partner: &PersonPulse,
) -> Vec<String> {
    if recent.is_empty() && before.is_empty() {
        return vec![
            "Nothing has been written in these sixty days yet. Whenever you like, one line \
             about your day together is a fine start."
                .to_owned(),
        ];
    }
    if before.is_empty() {
        return vec![
            "These are early days: there is no earlier month to compare with yet. Come back \
             in a few weeks; for now, every line you write is a good start."
                .to_owned(),
        ];
    }
    let mut notes = Vec::new();
    let thanks = (
        me.recent.thanks + partner.recent.thanks,
        me.before.thanks + partner.before.thanks,
    );
    if fell(thanks.0, thanks.1) {
        notes.push(format!(
            "Fewer thanks were written in the last 30 days ({}) than in the 30 before ({}). \
             Naming one small thing you appreciated, even in a single line, tends to help.",
            thanks.0, thanks.1
        ));
    }
    if let Some((r, b)) = mood_dropped(me) {
        notes.push(format!(
            "Your check-in mood has averaged {r:.1} lately, down from {b:.1}. A calm check-in \
             conversation about what each of you needs could help."
        ));
    }
    if let Some((r, b)) = mood_dropped(partner) {
        notes.push(format!(
            "Your partner's check-in mood has averaged {r:.1} lately, down from {b:.1}. \
             Asking how they are, with time to really listen, tends to help."
        ));
    }
    let days = (distinct_days(recent), distinct_days(before));
    if fell(days.0, days.1) {
        notes.push(format!(
            "The journals have been quieter: something was written on {} of the last 30 days, \
             against {} before. A line about a moment you shared is enough to pick the thread \
             back up.",
            days.0, days.1
        ));
    }
    let checkins = (
        me.recent.checkins + partner.recent.checkins,
        me.before.checkins + partner.before.checkins,
    );
    if fell(checkins.0, checkins.1) {
        notes.push(format!(
            "There were fewer check-ins lately ({}, against {} before). A short one, even just \
             mood and energy, makes it easier to talk about how things are going.",
            checkins.0, checkins.1
        ));
    }
    if rose(thanks.0, thanks.1) {
        notes.push(format!(
            "More thanks were written lately ({}, against {} before): that kind of attention \
             tends to be felt.",
            thanks.0, thanks.1
        ));
    }
    if notes.is_empty() {
        notes.push(
            "Things look steady: about as much writing, thanks and check-ins as the month \
             before. Whatever the two of you are doing, it seems to work."
                .to_owned(),
        );
    }
    notes.truncate(MAX_NOTES);
    notes
}

/// The last 30 days (`today - 29 ..= today`) against the 30 before
/// (`today - 59 ..= today - 30`), for each of us.
pub fn pulse(items: &[Seen], today: i32) -> Pulse {
    let split = today - (PULSE_DAYS - 1);
    let from = split - PULSE_DAYS;
    let mut recent: Vec<&Seen> = items.iter().filter(|s| s.live_in(split, today)).collect();
    let mut before: Vec<&Seen> = items
        .iter()
        .filter(|s| s.live_in(from, split - 1))
        .collect();
    recent.sort_by_key(|s| s.key());
    before.sort_by_key(|s| s.key());
    let me = person_pulse(&recent, &before, Author::Me, today);
    let partner = person_pulse(&recent, &before, Author::Partner, today);
    let notes = pulse_notes(&recent, &before, &me, &partner);
    Pulse {
        from,
        to: today,
        me,
        partner,
        notes,
    }
}

/// Whether a day is a memory of today: the same day of the month in an earlier month (of
/// this year or any earlier year). Dates are civil `(year, month, day)`.
///
/// The match is exact: on the 30th of November, the 31st of October is not a memory, and
/// on the 31st only months with a 31st give memories.
pub fn is_memory(today: (i32, u8, u8), day: (i32, u8, u8)) -> bool {
    day.2 == today.2 && (day.0, day.1) < (today.0, today.1)
}

/// One character per check-in score: 1 to 5 become `▁▂▄▆█`. A value outside 1..=5 (which a
/// valid item never holds) is drawn as the nearest end.
pub fn sparkline(values: &[u8]) -> String {
    const BARS: [char; 5] = ['▁', '▂', '▄', '▆', '█'];
    values
        .iter()
        .map(|&v| BARS[usize::from(v.clamp(1, 5) - 1)])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::Ritual;

    const ME: Author = Author::Me;
    const THEM: Author = Author::Partner;

    /// An item whose id is `[n; 8]` and whose `created_at` is `n`.
    fn it(n: u8, kind: Kind) -> Item {
        Item {
            id: ItemId([n; 8]),
            kind,
            created_at: i64::from(n),
            edited_at: None,
            body: format!("body {n}"),
            tags: vec![],
            starred: false,
            deleted: false,
            ritual: Ritual::default(),
        }
    }

    fn checkin(n: u8, mood: Option<u8>, energy: Option<u8>, need: &str) -> Item {
        Item {
            body: need.to_owned(),
            ritual: Ritual {
                mood,
                energy,
                ..Ritual::default()
            },
            ..it(n, Kind::Checkin)
        }
    }

    fn asked(q: &str) -> Asked {
        Asked {
            id: q.to_owned(),
            date: "2026-11-25".to_owned(),
        }
    }

    fn answer(n: u8, q: &str) -> Item {
        Item {
            ritual: Ritual {
                question: Some(asked(q)),
                ..Ritual::default()
            },
            ..it(n, Kind::Answer)
        }
    }

    fn re(mut item: Item, n: u8) -> Item {
        item.ritual.re = Some(ItemId([n; 8]));
        item
    }

    fn deleted(mut item: Item) -> Item {
        item.deleted = true;
        item
    }

    fn id(n: u8) -> ItemId {
        ItemId([n; 8])
    }

    /// A journal of both people: (item, author, day, starred).
    struct J(Vec<(Item, Author, i32, bool)>);

    impl J {
        fn seen(&self) -> Vec<Seen<'_>> {
            self.0
                .iter()
                .map(|(item, author, day, starred)| Seen {
                    item,
                    author: *author,
                    day: *day,
                    starred: *starred,
                })
                .collect()
        }
    }

    const T: i32 = 100; // today in the week tests; the week is 94..=100

    /// The journal the week tests share. Items are listed out of order on purpose.
    fn week_journal() -> J {
        J(vec![
            // me
            (it(1, Kind::Entry), ME, 94, true), // first day: in, starred
            (it(2, Kind::Entry), ME, 93, false), // day before: out
            (it(3, Kind::Thanks), ME, 96, true), // today-4: in, starred
            (checkin(4, Some(2), Some(4), ""), ME, 97, false), // created 4
            (checkin(5, Some(3), None, "a walk"), ME, 95, false), // a need of mine
            (
                Item {
                    created_at: 1, // earlier than item 4 on the same day
                    ..checkin(6, Some(4), Some(1), " ")
                },
                ME,
                97,
                false,
            ),
            (answer(7, "q1"), ME, 98, false),
            (answer(8, "q2"), ME, 99, false),
            (deleted(it(9, Kind::Entry)), ME, 99, true), // deleted: ignored, even its star
            (re(it(10, Kind::Entry), 21), ME, 100, false), // answers the partner's need 21
            (answer(11, "q3"), ME, 92, false),           // out
            (deleted(re(it(12, Kind::Entry), 22)), ME, 100, false), // a deleted answer to 22
            // partner
            (checkin(21, Some(5), None, "time to talk"), THEM, 95, false),
            (checkin(22, None, Some(2), "sleep in"), THEM, 99, false),
            (re(it(23, Kind::Entry), 22), THEM, 99, false), // their own re: not an answer
            (answer(24, "q1"), THEM, 96, true),
            (answer(25, "q2"), THEM, 91, false), // out: q2 is not answered by both
            (answer(26, "q3"), THEM, 97, false), // my q3 is out: not both
            (deleted(it(27, Kind::Thanks)), THEM, 100, false),
            (it(28, Kind::Entry), THEM, 101, true), // newer: out, its star too
            (
                deleted(checkin(29, Some(1), None, "a hug")),
                THEM,
                98,
                false,
            ),
            (re(it(30, Kind::Thanks), 5), THEM, 101, false), // newer, answers my need 5
        ])
    }

    #[test]
    fn week_counts_each_person_in_the_window_only() {
        let j = week_journal();
        let w = week(&j.seen(), T);
        assert_eq!((w.from, w.to), (94, 100));
        // me: entries 1 and 10 (2 is before the week, 9 and 12 deleted); thanks 3;
        // check-ins 4, 5, 6; answers 7 and 8 (11 is before the week).
        // Check-ins in order: 5 (day 95), 6 (day 97, created 1), 4 (day 97, created 4):
        // moods 3, 4, 2; energies -, 1, 4.
        assert_eq!(
            w.me,
            PersonWeek {
                entries: 2,
                thanks: 1,
                checkins: 3,
                answers: 2,
                mood: vec![3, 4, 2],
                energy: vec![1, 4],
            }
        );
        // partner: entry 23 (28 is newer); thanks none (27 deleted, 30 newer);
        // check-ins 21, 22 (29 deleted); answers 24 and 26 (25 is before the week).
        assert_eq!(
            w.partner,
            PersonWeek {
                entries: 1,
                thanks: 0,
                checkins: 2,
                answers: 2,
                mood: vec![5],
                energy: vec![2],
            }
        );
    }

    #[test]
    fn week_lists_shared_questions_stars_and_needs() {
        let j = week_journal();
        let w = week(&j.seen(), T);
        // Mine in the week: q1, q2. Theirs in the week: q1, q3. Both: q1.
        assert_eq!(w.both_answered, vec![asked("q1")]);
        // 1 (day 94), 3 (day 96, created 3), 24 (day 96, created 24); 9 deleted, 28 newer.
        let refs: Vec<(ItemId, Author, Kind, i32)> = w
            .starred
            .iter()
            .map(|r| (r.id, r.author, r.kind.clone(), r.day))
            .collect();
        assert_eq!(
            refs,
            vec![
                (id(1), ME, Kind::Entry, 94),
                (id(3), ME, Kind::Thanks, 96),
                (id(24), THEM, Kind::Answer, 96),
            ]
        );
        // Needs: 5 (mine, answered by their newer thanks 30), 21 (theirs, answered by my 10),
        // 22 (theirs: only their own 23 and my deleted 12 point at it). Check-ins 4 and 6
        // name no need (6 is blank), 29 is deleted.
        let need = |n: u8, author, day, text: &str, answered| Need {
            id: id(n),
            author,
            day,
            text: text.to_owned(),
            answered,
        };
        assert_eq!(
            w.needs,
            vec![
                need(5, ME, 95, "a walk", true),
                need(21, THEM, 95, "time to talk", true),
                need(22, THEM, 99, "sleep in", false),
            ]
        );
        // My thanks 3 is on today-4, so no thanks suggestion; there are check-ins.
        assert_eq!(
            w.suggestions,
            vec![Suggestion::UnansweredNeed {
                id: id(22),
                day: 99
            }]
        );
    }

    #[test]
    fn week_never_returns_an_answer_body() {
        let j = week_journal();
        let w = week(&j.seen(), T);
        let text = format!("{w:?}");
        for n in [7, 8, 11, 24, 25, 26] {
            assert!(!text.contains(&format!("body {n}\"")), "answer {n} leaked");
        }
    }

    #[test]
    fn no_thanks_lately_fires_after_five_quiet_days() {
        let quiet = |thanks: Vec<(Item, Author, i32, bool)>| {
            let mut rows = thanks;
            rows.push((checkin(50, Some(3), None, ""), ME, 99, false));
            let j = J(rows);
            week(&j.seen(), T).suggestions
        };
        // Last thanks on today-5 (95): fires, 5 days.
        assert_eq!(
            quiet(vec![(it(1, Kind::Thanks), THEM, 95, false)]),
            vec![Suggestion::NoThanksLately { days: 5 }]
        );
        // On today-4 (96): does not fire.
        assert_eq!(quiet(vec![(it(1, Kind::Thanks), THEM, 96, false)]), vec![]);
        // On today: does not fire.
        assert_eq!(quiet(vec![(it(1, Kind::Thanks), ME, 100, false)]), vec![]);
        // None at all: the week's length.
        assert_eq!(quiet(vec![]), vec![Suggestion::NoThanksLately { days: 7 }]);
        // An older thanks passed in counts from its day: 100 - 80 = 20.
        assert_eq!(
            quiet(vec![(it(1, Kind::Thanks), ME, 80, false)]),
            vec![Suggestion::NoThanksLately { days: 20 }]
        );
        // A deleted recent thanks and one dated after today do not count.
        assert_eq!(
            quiet(vec![
                (deleted(it(1, Kind::Thanks)), ME, 99, false),
                (it(2, Kind::Thanks), ME, 101, false),
                (it(3, Kind::Thanks), THEM, 90, false),
            ]),
            vec![Suggestion::NoThanksLately { days: 10 }]
        );
    }

    #[test]
    fn no_checkins_fires_only_for_an_empty_week() {
        let j = J(vec![
            (it(1, Kind::Thanks), ME, 100, false),
            (checkin(2, Some(3), None, "rest"), THEM, 93, false), // before the week
            (deleted(checkin(3, Some(3), None, "")), ME, 99, false),
        ]);
        assert_eq!(week(&j.seen(), T).suggestions, vec![Suggestion::NoCheckins]);
        let j = J(vec![
            (it(1, Kind::Thanks), ME, 100, false),
            (checkin(3, Some(3), None, ""), THEM, 94, false),
        ]);
        assert_eq!(week(&j.seen(), T).suggestions, vec![]);
    }

    #[test]
    fn suggestions_keep_their_order_and_stop_at_three() {
        // No thanks; four unanswered needs of theirs; one of mine (never suggested).
        let j = J(vec![
            (checkin(4, None, None, "d"), THEM, 99, false),
            (checkin(1, None, None, "a"), THEM, 95, false),
            (checkin(5, None, None, "mine"), ME, 94, false),
            (checkin(2, None, None, "b"), THEM, 96, false),
            (checkin(3, None, None, "c"), THEM, 97, false),
        ]);
        let w = week(&j.seen(), T);
        assert_eq!(w.needs.len(), 5);
        assert_eq!(
            w.suggestions,
            vec![
                Suggestion::NoThanksLately { days: 7 },
                Suggestion::UnansweredNeed { id: id(1), day: 95 },
                Suggestion::UnansweredNeed { id: id(2), day: 96 },
            ]
        );
        // An empty journal: no thanks and no check-ins.
        assert_eq!(
            week(&[], T).suggestions,
            vec![
                Suggestion::NoThanksLately { days: 7 },
                Suggestion::NoCheckins
            ]
        );
    }

    #[test]
    fn suggestion_texts_are_one_gentle_sentence() {
        let all = [
            Suggestion::NoThanksLately { days: 5 },
            Suggestion::NoThanksLately { days: 1 },
            Suggestion::NoThanksLately { days: 7 },
            Suggestion::UnansweredNeed { id: id(1), day: 0 },
            Suggestion::NoCheckins,
        ];
        for s in &all {
            let text = s.text("Sam");
            assert!(text.contains("Sam"), "{text}");
            assert!(text.ends_with('.'), "{text}");
            assert_eq!(text.matches(". ").count(), 0, "one sentence: {text}");
            assert!(!text.contains("  "), "{text}");
            for word in ["streak", "should", "must", "forgot", "failed"] {
                assert!(!text.to_lowercase().contains(word), "{text}");
            }
        }
        assert!(all[0].text("Sam").contains("5 days ago"));
        assert!(all[1].text("Sam").contains("1 day ago"));
        assert!(all[3].text("Sam").starts_with("On Thursday,"), "1970-01-01");
        assert_eq!(weekday(-1), "Wednesday");
        assert_eq!(weekday(3), "Sunday");
    }

    const P: i32 = 200; // today in the pulse tests: recent 171..=200, before 141..=170

    #[test]
    fn pulse_splits_the_windows_at_their_boundary_days() {
        let j = J(vec![
            // me
            (it(1, Kind::Entry), ME, 200, false), // recent (today)
            (it(2, Kind::Entry), ME, 171, false), // recent (first day)
            (it(3, Kind::Entry), ME, 170, false), // before (last day)
            (it(4, Kind::Entry), ME, 141, false), // before (first day)
            (it(5, Kind::Entry), ME, 140, false), // out
            (it(6, Kind::Entry), ME, 201, false), // out (newer)
            (it(7, Kind::Thanks), ME, 171, false), // recent, same day as 2
            (it(8, Kind::Thanks), ME, 150, false), // before
            (it(9, Kind::Thanks), ME, 160, false), // before
            (checkin(10, Some(2), None, ""), ME, 180, false),
            (checkin(11, Some(3), None, ""), ME, 190, false),
            (checkin(12, Some(4), None, ""), ME, 150, false),
            (checkin(13, Some(5), None, ""), ME, 160, false),
            (deleted(it(14, Kind::Entry)), ME, 185, false),
            (answer(15, "q1"), ME, 175, false),
            (deleted(it(16, Kind::Thanks)), ME, 199, false), // not the last thanks
            // partner
            (it(21, Kind::Thanks), THEM, 141, false), // before (first day)
            (it(22, Kind::Thanks), THEM, 140, false), // out
            (it(23, Kind::Entry), THEM, 199, false),
            (checkin(24, None, Some(3), "quiet"), THEM, 199, false),
        ]);
        let p = pulse(&j.seen(), P);
        assert_eq!((p.from, p.to), (141, 200));
        // me, recent: entries 1, 2; thanks 7; check-ins 10, 11; answer 15;
        // days 200, 171, 180, 190, 175 = 5.
        assert_eq!(
            p.me.recent,
            Counts {
                entries: 2,
                thanks: 1,
                checkins: 2,
                answers: 1,
                days_written: 5
            }
        );
        // me, before: entries 3, 4; thanks 8, 9; check-ins 12, 13; days 170, 141, 150, 160.
        assert_eq!(
            p.me.before,
            Counts {
                entries: 2,
                thanks: 2,
                checkins: 2,
                answers: 0,
                days_written: 4
            }
        );
        assert_eq!(p.me.days_since_thanks, Some(29)); // 200 - 171
        assert_eq!(p.me.mood_recent, Some(2.5)); // (2 + 3) / 2
        assert_eq!(p.me.mood_before, Some(4.5)); // (4 + 5) / 2
        // partner, recent: entry 23, check-in 24, both on 199.
        assert_eq!(
            p.partner.recent,
            Counts {
                entries: 1,
                checkins: 1,
                days_written: 1,
                ..Counts::default()
            }
        );
        // partner, before: thanks 21 (22 is one day too early).
        assert_eq!(
            p.partner.before,
            Counts {
                thanks: 1,
                days_written: 1,
                ..Counts::default()
            }
        );
        assert_eq!(p.partner.days_since_thanks, Some(59)); // 200 - 141
        assert_eq!((p.partner.mood_recent, p.partner.mood_before), (None, None));
        // Thanks 1 against 3 (fell); my mood 2.5 against 4.5 (dropped by 2). Days written
        // (either): 6 against 4; check-ins 3 against 2: no note for those.
        assert_eq!(p.notes.len(), 2, "{:?}", p.notes);
        assert!(p.notes[0].starts_with("Fewer thanks") && p.notes[0].contains("(1)"));
        assert!(p.notes[0].contains("(3)"));
        assert!(p.notes[1].starts_with("Your check-in mood") && p.notes[1].contains("2.5"));
    }

    #[test]
    fn days_since_thanks_is_none_without_a_thanks() {
        let j = J(vec![(it(1, Kind::Entry), ME, 200, false)]);
        let p = pulse(&j.seen(), P);
        assert_eq!(p.me.days_since_thanks, None);
        assert_eq!(p.partner.days_since_thanks, None);
        let j = J(vec![(it(1, Kind::Thanks), THEM, 200, false)]);
        assert_eq!(pulse(&j.seen(), P).partner.days_since_thanks, Some(0));
    }

    #[test]
    fn pulse_notes_are_calm_and_few() {
        // Nothing at all (a deleted item does not count): one inviting note.
        let j = J(vec![(deleted(it(1, Kind::Entry)), ME, 200, false)]);
        let notes = pulse(&j.seen(), P).notes;
        assert_eq!(notes.len(), 1);
        assert!(notes[0].starts_with("Nothing has been written"));

        // Only recent days written: nothing to compare yet, said once (not "steady").
        let j = J(vec![(it(1, Kind::Thanks), ME, 195, false)]);
        let notes = pulse(&j.seen(), P).notes;
        assert_eq!(notes.len(), 1);
        assert!(notes[0].starts_with("These are early days"), "{notes:?}");

        // The same in both windows: steady.
        let j = J(vec![
            (it(1, Kind::Thanks), ME, 150, false),
            (it(2, Kind::Thanks), ME, 180, false),
            (checkin(3, Some(3), None, ""), THEM, 150, false),
            (checkin(4, Some(3), None, ""), THEM, 180, false),
        ]);
        let notes = pulse(&j.seen(), P).notes;
        assert_eq!(notes.len(), 1);
        assert!(notes[0].starts_with("Things look steady"));

        // More thanks (4 against 1): a warm note, not "steady".
        let j = J(vec![
            (it(1, Kind::Thanks), ME, 150, false),
            (it(2, Kind::Thanks), ME, 180, false),
            (it(3, Kind::Thanks), THEM, 181, false),
            (it(4, Kind::Thanks), ME, 182, false),
            (it(5, Kind::Thanks), THEM, 182, false),
        ]);
        let notes = pulse(&j.seen(), P).notes;
        assert_eq!(notes.len(), 1);
        assert!(notes[0].starts_with("More thanks") && notes[0].contains("(4, against 1"));

        // Everything fell: thanks 0 against 4; their mood 2 against 4; days written 1
        // (190) against 8 (141, 142, 145, 146, 150, 151, 160, 161); check-ins 1 against 4.
        let mut rows = vec![(checkin(1, Some(2), None, ""), THEM, 190, false)];
        for (n, day) in [(10u8, 141), (11, 145), (12, 150), (13, 160)] {
            rows.push((it(n, Kind::Thanks), ME, day, false));
            rows.push((checkin(n + 10, Some(4), None, ""), THEM, day + 1, false));
        }
        let j = J(rows);
        let p = pulse(&j.seen(), P);
        assert_eq!(
            (p.partner.recent.checkins, p.partner.before.checkins),
            (1, 4)
        );
        assert_eq!(p.notes.len(), 4, "{:?}", p.notes);
        assert!(p.notes[0].starts_with("Fewer thanks") && p.notes[0].contains("(4)"));
        assert!(p.notes[1].starts_with("Your partner's check-in mood"));
        assert!(p.notes[1].contains("2.0") && p.notes[1].contains("4.0"));
        assert!(p.notes[2].starts_with("The journals have been quieter"));
        assert!(p.notes[2].contains("on 1 of the last 30 days, against 8"));
        assert!(p.notes[3].starts_with("There were fewer check-ins lately (1, against 4"));
    }

    #[test]
    fn pulse_keeps_at_most_four_notes() {
        // Before: thanks and check-ins by both on six days, everyone in a good mood.
        // Recent: one low check-in each. Thanks 0 / 12, both moods 1 / 5, days 1 / 6,
        // check-ins 2 / 12: five notes, the last (check-ins) dropped.
        let mut rows = vec![
            (checkin(1, Some(1), None, ""), ME, 190, false),
            (checkin(2, Some(1), None, ""), THEM, 190, false),
        ];
        for (k, day) in [141, 145, 150, 155, 160, 170].into_iter().enumerate() {
            let n = 10 + 4 * u8::try_from(k).unwrap();
            rows.push((it(n, Kind::Thanks), ME, day, false));
            rows.push((it(n + 1, Kind::Thanks), THEM, day, false));
            rows.push((checkin(n + 2, Some(5), None, ""), ME, day, false));
            rows.push((checkin(n + 3, Some(5), None, ""), THEM, day, false));
        }
        let j = J(rows);
        let notes = pulse(&j.seen(), P).notes;
        assert_eq!(notes.len(), MAX_NOTES, "{notes:?}");
        assert!(notes[0].starts_with("Fewer thanks") && notes[0].contains("(12)"));
        assert!(notes[1].starts_with("Your check-in mood") && notes[1].contains("1.0"));
        assert!(notes[2].starts_with("Your partner's check-in mood"));
        assert!(notes[3].starts_with("The journals have been quieter"));
        assert!(notes[3].contains("on 1 of the last 30 days, against 6"));
    }

    #[test]
    fn fell_and_rose_need_a_real_change() {
        assert!(!fell(1, 2), "one fewer is noise");
        assert!(fell(0, 2));
        assert!(fell(6, 9)); // 24 < 27
        assert!(!fell(8, 10)); // 32 is not under 30
        assert!(!rose(2, 1));
        assert!(rose(3, 1));
        assert!(!rose(12, 10)); // 48 is not over 50
    }

    #[test]
    fn memories_are_the_same_day_of_an_earlier_month() {
        let today = (2026, 11, 25);
        assert!(is_memory(today, (2025, 11, 25)));
        assert!(is_memory(today, (2026, 10, 25)));
        assert!(is_memory(today, (2020, 12, 25)));
        assert!(!is_memory(today, (2026, 11, 25)), "today is not a memory");
        assert!(!is_memory(today, (2026, 11, 24)));
        assert!(
            !is_memory(today, (2026, 12, 25)),
            "the future is not a memory"
        );
        assert!(!is_memory(today, (2027, 1, 25)));
        // Exact: the 31st of October is not a memory on the 30th of November.
        assert!(!is_memory((2026, 11, 30), (2026, 10, 31)));
        assert!(is_memory((2026, 12, 31), (2026, 10, 31)));
    }

    #[test]
    fn sparkline_draws_one_bar_per_score() {
        assert_eq!(sparkline(&[1, 2, 3, 4, 5]), "▁▂▄▆█");
        assert_eq!(sparkline(&[3, 3, 1]), "▄▄▁");
        assert_eq!(sparkline(&[]), "");
        assert_eq!(sparkline(&[0, 9]), "▁█");
        assert_eq!(sparkline(&[2, 5]).chars().count(), 2);
    }
}
