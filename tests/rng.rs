//! The one seeded generator, shared with duet itself (`DUET_SEED`).

pub use duet_core::SeededRng as Rng;
