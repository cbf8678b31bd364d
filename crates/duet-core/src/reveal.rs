//! Answer first, then see: the rule that hides the partner's answer to a question until I
//! have answered the same question myself.
//!
//! duet has no server to hold the partner's answer back, so it arrives with everything else
//! and this rule keeps it out of every read. The store applies it once, where items are read
//! (`list`, `get`, `locate`), so no command and no later front end can forget it.

use std::collections::HashSet;

use crate::filter::Author;
use crate::item::{Asked, Item, Kind};

/// The earliest moment (Unix ms) an answer to the question of `day` can have been written:
/// an answer is written on its day or later (answers to days still to come are refused), and
/// two days of slack cover the time zones between the two partners.
pub fn earliest_answer_ms(day: i32) -> i64 {
    (i64::from(day) - 2).saturating_mul(crate::item::DAY_MS)
}

/// The questions I have answered: what decides which of the partner's answers I may see.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reveal {
    answered: HashSet<Asked>,
}

impl Reveal {
    /// From my own items (any subset that holds all my answers that matter).
    pub fn from_mine<'a>(mine: impl IntoIterator<Item = &'a Item>) -> Reveal {
        Reveal {
            answered: mine
                .into_iter()
                .filter(|i| i.kind == Kind::Answer && !i.deleted)
                .filter_map(|i| i.ritual.question.clone())
                .collect(),
        }
    }

    /// Take in more of my items (say, older volumes read later).
    pub fn add_mine<'a>(&mut self, mine: impl IntoIterator<Item = &'a Item>) {
        self.answered.extend(Reveal::from_mine(mine).answered);
    }

    /// Whether I have answered this question (on this day).
    pub fn have_answered(&self, asked: &Asked) -> bool {
        self.answered.contains(asked)
    }

    /// Whether `item`, written by `author`, may be shown to me. Only the partner's answers
    /// are ever hidden; an answer that does not say which question it answers stays hidden.
    pub fn visible(&self, item: &Item, author: Author) -> bool {
        if author == Author::Me || item.kind != Kind::Answer {
            return true;
        }
        item.ritual
            .question
            .as_ref()
            .is_some_and(|asked| self.have_answered(asked))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::id::ItemId;
    use crate::item::Ritual;

    fn answer(n: u8, question: &str, date: &str) -> Item {
        Item {
            id: ItemId([n; 8]),
            kind: Kind::Answer,
            created_at: i64::from(n),
            edited_at: None,
            body: format!("answer {n}"),
            tags: vec![],
            starred: false,
            deleted: false,
            ritual: Ritual {
                question: Some(Asked {
                    id: question.into(),
                    date: date.into(),
                }),
                ..Ritual::default()
            },
        }
    }

    #[test]
    fn the_partners_answer_shows_only_after_mine_to_the_same_question_and_day() {
        let theirs = answer(1, "us-01", "2026-11-25");
        let nothing = Reveal::default();
        assert!(!nothing.visible(&theirs, Author::Partner));
        assert!(
            nothing.visible(&theirs, Author::Me),
            "my own answers are always mine to see"
        );

        let other_question = Reveal::from_mine([&answer(2, "us-02", "2026-11-25")]);
        assert!(!other_question.visible(&theirs, Author::Partner));
        let other_day = Reveal::from_mine([&answer(3, "us-01", "2026-11-24")]);
        assert!(!other_day.visible(&theirs, Author::Partner));
        let same = Reveal::from_mine([&answer(4, "us-01", "2026-11-25")]);
        assert!(same.visible(&theirs, Author::Partner));

        let mut deleted = answer(5, "us-01", "2026-11-25");
        deleted.deleted = true;
        assert!(!Reveal::from_mine([&deleted]).visible(&theirs, Author::Partner));

        let mut unlabelled = theirs.clone();
        unlabelled.ritual.question = None;
        assert!(!same.visible(&unlabelled, Author::Partner));

        let mut entry = theirs.clone();
        entry.kind = Kind::Entry;
        assert!(nothing.visible(&entry, Author::Partner));
    }

    /// One step of a couple's history, as either side sees it after syncing.
    #[derive(Clone, Debug)]
    enum Step {
        IAnswer(u8),
        PartnerAnswers(u8),
        IDelete(u8),
        IEdit(u8),
        Sync,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u8..4).prop_map(Step::IAnswer),
            (0u8..4).prop_map(Step::PartnerAnswers),
            (0u8..4).prop_map(Step::IDelete),
            (0u8..4).prop_map(Step::IEdit),
            Just(Step::Sync),
        ]
    }

    proptest! {
        /// For any interleaving of answers, edits, deletions and syncs, the partner's answer
        /// to question q is visible to me exactly when my own (undeleted) answer to q exists.
        #[test]
        fn visible_exactly_when_my_answer_exists(steps in prop::collection::vec(step(), 0..40)) {
            let day = "2026-11-25";
            let q = |n: u8| format!("feelings-{:02}", n + 1);
            let mut mine: Vec<Item> = Vec::new();
            let mut theirs_written: Vec<Item> = Vec::new();
            let mut theirs_here: Vec<Item> = Vec::new();
            let mut n = 0u8;
            for s in steps {
                n = n.wrapping_add(1);
                match s {
                    Step::IAnswer(k) => mine.push(answer(n, &q(k), day)),
                    Step::PartnerAnswers(k) => theirs_written.push(answer(n, &q(k), day)),
                    Step::IDelete(k) => {
                        for i in mine.iter_mut().filter(|i| i.ritual.question.as_ref()
                            .is_some_and(|a| a.id == q(k))) {
                            i.deleted = true;
                        }
                    }
                    Step::IEdit(k) => {
                        for i in mine.iter_mut().filter(|i| i.ritual.question.as_ref()
                            .is_some_and(|a| a.id == q(k))) {
                            i.body.push_str(" (edited)");
                        }
                    }
                    Step::Sync => theirs_here = theirs_written.clone(),
                }
                let reveal = Reveal::from_mine(&mine);
                for item in &theirs_here {
                    let asked = item.ritual.question.as_ref().unwrap();
                    let i_answered = mine.iter().any(|m| !m.deleted
                        && m.ritual.question.as_ref() == Some(asked));
                    prop_assert_eq!(reveal.visible(item, Author::Partner), i_answered);
                }
                for item in &mine {
                    prop_assert!(reveal.visible(item, Author::Me));
                }
            }
        }
    }
}
