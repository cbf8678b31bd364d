//! Fill a home with many items fast, shaped like real use: one Automerge
//! change per item, each by a fresh actor (every `duet write` is a new
//! process with a new actor), full volumes of [`VOLUME_CAPACITY`] items
//! written as compacted snapshots, ~600 bytes of prose per item with a
//! Zipf-like word distribution, a few items a day over past years.

use std::path::Path;

use duet_core::Ritual;
use duet_core::{Item, ItemId, Kind, VOLUME_CAPACITY, Volume, VolumeId};
use duet_store::Home;
use duet_store::volumes::{FileKind, JournalFiles};

use crate::rng::Rng;

/// The word planted in exactly [`RARE_COUNT`] items, whatever their number.
pub const RARE_WORD: &str = "zanzibar";
pub const RARE_COUNT: usize = 10;

const DAY_MS: i64 = 86_400_000;

/// Words of everyday journal prose, most frequent first.
#[rustfmt::skip]
const WORDS: &[&str] = &[
    "the", "and", "we", "to", "a", "of", "i", "it", "was", "in", "you", "that", "for", "with", "on",
    "so", "but", "me", "at", "is", "my", "our", "us", "had", "just", "all", "about", "after",
    "then", "today", "she", "he", "when", "out", "up", "really", "were", "day", "little", "home",
    "time", "felt", "like", "back", "morning", "evening", "together", "dinner", "walk", "long",
    "talk", "again", "night", "still", "coffee", "kitchen", "laughed", "tired", "quiet", "week",
    "good", "made", "went", "around", "house", "kids", "work", "late", "early", "rain", "sun",
    "garden", "window", "bread", "soup", "music", "song", "car", "train", "station", "park",
    "friends", "sister", "brother", "mother", "father", "weekend", "bed", "book", "movie", "bike",
    "river", "lake", "beach", "market", "store", "city", "street", "small", "big", "warm", "cold",
    "slow", "fast", "happy", "grateful", "worried", "calm", "busy", "lazy", "sweet", "funny",
    "honest", "gentle", "patient", "proud", "sorry", "kind", "careful", "brave", "cooked",
    "cleaned", "planned", "forgot", "remembered", "argued", "listened", "promised", "decided",
    "noticed", "missed", "waited", "danced", "sang", "read", "wrote", "called", "texted", "visited",
    "carried", "fixed", "painted", "planted", "baked", "washed", "folded", "watched", "played",
    "hugged", "held", "smiled", "cried", "slept", "woke", "ran", "swam", "climbed", "drove",
    "biked", "walked", "talked", "shared", "tried", "learned", "asked", "answered", "thanked",
    "surprised", "apples", "pears", "tea", "wine", "cheese", "pasta", "rice", "cake", "pancakes",
    "eggs", "tomatoes", "basil", "lemons", "chocolate", "candles", "blanket", "sofa", "balcony",
    "stairs", "door", "roof", "hallway", "attic", "cellar", "mountains", "forest", "meadow",
    "harbor", "bridge", "island", "village", "museum", "library", "bakery", "cinema", "concert",
    "festival", "birthday", "anniversary", "holiday", "vacation", "trip", "journey", "letter",
    "postcard", "photo", "album", "map", "ticket", "suitcase", "umbrella", "jacket", "scarf",
    "boots", "gloves", "hat", "keys", "phone", "laptop", "radio", "piano", "guitar", "violin",
    "drums", "paint", "brush", "canvas", "notebook", "pencil", "envelope", "stamp", "flowers",
    "roses", "tulips", "daisies", "moss", "fern", "oak", "maple", "birch", "pine", "willow",
    "sparrow", "heron", "fox", "deer", "owl", "cat", "dog", "puppy", "kitten", "neighbor",
    "colleague", "teacher", "doctor", "baker", "gardener", "stranger", "autumn", "winter", "spring",
    "summer", "thunder", "snow", "fog", "wind", "frost", "dawn", "dusk", "midnight", "noon",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "honestly",
    "probably", "finally", "slowly", "suddenly", "quietly", "gently", "softly", "brightly",
    "nearly", "almost", "perhaps", "maybe", "somehow", "anyway", "besides", "meanwhile",
    "afterwards", "tomorrow", "yesterday", "tonight", "lately", "patience", "tenderness", "silence",
    "laughter", "courage", "comfort", "routine", "distance", "closeness", "forgiveness",
    "gratitude", "curiosity", "stubbornness", "jealousy", "tiredness", "hope", "trust", "worry",
    "joy", "grief", "relief", "wonder", "nostalgia", "lighthouse", "orchard", "vineyard",
    "greenhouse", "porch", "fireplace", "crossword", "puzzle", "recipe", "picnic", "sandcastle",
    "kite", "lantern", "compass", "telescope", "hammock", "wheelbarrow", "accordion", "marmalade",
    "cinnamon", "saffron", "paprika", "rosemary", "thyme", "lavender", "juniper", "cardamom",
];

#[rustfmt::skip]
const TAGS: &[&str] = &[
    "walk", "dinner", "kids", "trip", "garden", "music", "sam", "home", "work", "weekend",
];

/// Zipf-like sampler over [`WORDS`]: weight of rank r is 1/(r+1).
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize) -> Zipf {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|r| {
                total += 1.0 / (r as f64 + 1.0);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let x = rng.unit() * self.cumulative.last().copied().unwrap_or(0.0);
        self.cumulative
            .partition_point(|&c| c < x)
            .min(self.cumulative.len() - 1)
    }
}

/// About `target` bytes of journal prose.
pub fn prose(rng: &mut Rng, target: usize) -> String {
    thread_local! {
        static ZIPF: Zipf = Zipf::new(WORDS.len());
    }
    let mut body = String::with_capacity(target + 64);
    while body.len() < target {
        let words = 5 + rng.below(12) as usize;
        for w in 0..words {
            let word = WORDS[ZIPF.with(|z| z.sample(rng))];
            if w == 0 {
                if !body.is_empty() {
                    body.push(' ');
                }
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    body.extend(first.to_uppercase());
                    body.push_str(chars.as_str());
                }
            } else {
                body.push(' ');
                body.push_str(word);
            }
        }
        body.push(if rng.below(8) == 0 { '!' } else { '.' });
    }
    body
}

/// What [`populate`] wrote.
#[derive(Debug, Default)]
pub struct Generated {
    pub items: usize,
    pub volumes: usize,
    /// The items that hold [`RARE_WORD`].
    pub rare: Vec<ItemId>,
    pub oldest_ms: i64,
    pub newest_ms: i64,
}

/// Write `n` items into the shared journal of the initialized home at
/// `home`, dated up to `now_ms`, reproducibly for a given `seed`.
pub fn populate(home: &Path, n: usize, now_ms: i64, seed: u64) -> Result<Generated, String> {
    let config = Home::new(home).config().map_err(|e| e.to_string())?;
    populate_journal(home, config.journal, n, now_ms, seed)
}

/// Like [`populate`], into any journal of the home at `home` (the benchmark fills a partner's
/// journal this way, as if a sync had brought it).
pub fn populate_journal(
    home: &Path,
    journal: duet_core::JournalId,
    n: usize,
    now_ms: i64,
    seed: u64,
) -> Result<Generated, String> {
    let home = Home::new(home);
    let files = JournalFiles::new(home.journal_dir(journal), journal);
    let mut rng = Rng::new(seed);

    // A few items a day: the journal spans n/3 days, at most 20 years.
    let span_days = (n as i64 / 3).clamp(1, 20 * 365);
    let start = now_ms - span_days * DAY_MS;
    let step = (span_days * DAY_MS) / n.max(1) as i64;

    let mut rare: Vec<usize> = Vec::new();
    while rare.len() < RARE_COUNT.min(n) {
        let i = rng.below(n as u64) as usize;
        if !rare.contains(&i) {
            rare.push(i);
        }
    }

    let mut out = Generated {
        oldest_ms: i64::MAX,
        newest_ms: i64::MIN,
        ..Generated::default()
    };
    let mut i = 0;
    while i < n {
        let count = VOLUME_CAPACITY.min(n - i);
        let first_at = start + i as i64 * step;
        let mut vol = Volume::create(rng.bytes(), journal, VolumeId(rng.bytes()), first_at);
        for j in i..i + count {
            // Daytime jitter within the item's slot, never in the future.
            let created_at =
                (start + j as i64 * step + rng.below(step.max(1) as u64) as i64).min(now_ms - 1);
            let target = 540 + rng.below(120) as usize;
            let mut body = prose(&mut rng, target);
            if rare.contains(&j) {
                let words: Vec<&str> = body.split(' ').collect();
                let at = rng.below(words.len() as u64 + 1) as usize;
                let mut planted: Vec<&str> = words[..at].to_vec();
                planted.push(RARE_WORD);
                planted.extend_from_slice(&words[at..]);
                body = planted.join(" ");
            }
            let mut tags = Vec::new();
            for _ in 0..rng.below(3) {
                let tag = TAGS[rng.below(TAGS.len() as u64) as usize].to_owned();
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
            // The mix of kinds of a couple who use the rituals: mostly entries, a note of
            // thanks now and then, check-ins (a short need or none) and answers.
            let roll = rng.below(20);
            // An item holding the rare word stays an entry, so the word stays in its body.
            let (kind, body, ritual) = match if rare.contains(&j) { 19 } else { roll } {
                0 | 1 => (Kind::Thanks, body, Ritual::default()),
                2 | 3 => {
                    let need = if rng.below(2) == 0 {
                        prose(&mut rng, 30)
                    } else {
                        String::new()
                    };
                    let ritual = Ritual {
                        mood: Some(1 + rng.below(5) as u8),
                        energy: Some(1 + rng.below(5) as u8),
                        ..Ritual::default()
                    };
                    (Kind::Checkin, need, ritual)
                }
                4 => {
                    let deck = duet_core::question::deck();
                    let q = &deck[rng.below(deck.len() as u64) as usize];
                    let date = jiff::Timestamp::from_millisecond(created_at)
                        .map(|t| {
                            t.to_zoned_datetime(jiff::tz::TimeZone::UTC)
                                .date()
                                .to_string()
                        })
                        .unwrap_or_default();
                    let ritual = Ritual {
                        question: Some(duet_core::Asked {
                            id: q.id.to_owned(),
                            date,
                        }),
                        ..Ritual::default()
                    };
                    (Kind::Answer, body, ritual)
                }
                _ => (Kind::Entry, body, Ritual::default()),
            };
            let item = Item {
                id: ItemId(rng.bytes()),
                kind,
                created_at,
                edited_at: None,
                body,
                tags,
                starred: rng.below(20) == 0,
                deleted: false,
                ritual,
            };
            if rare.contains(&j) {
                out.rare.push(item.id);
            }
            out.oldest_ms = out.oldest_ms.min(created_at);
            out.newest_ms = out.newest_ms.max(created_at);
            // One process, one actor, one change.
            vol = Volume::from_doc(rng.bytes(), vol.into_doc()).map_err(|e| e.to_string())?;
            vol.add(&item).map_err(|e| e.to_string())?;
        }
        files
            .write(vol.id(), FileKind::Snapshot, &vol.save())
            .map_err(|e| e.to_string())?;
        out.volumes += 1;
        i += count;
    }
    out.items = n;
    Ok(out)
}
