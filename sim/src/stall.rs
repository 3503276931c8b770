//! Back-pressure: when a channel the harness drives holds back.

use rand::rngs::StdRng;
use rand::Rng;

/// When a channel holds back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stall {
    Never,
    /// One clock in every four.
    OneInFour,
    /// Each clock with this probability.
    Random(f64),
}

impl Stall {
    /// Whether to hold back at clock `now`; `phase` staggers channels stalling one in four.
    pub fn holds(self, random: &mut StdRng, now: u64, phase: u64) -> bool {
        match self {
            Stall::Never => false,
            Stall::OneInFour => (now + phase) % 4 == 0,
            Stall::Random(probability) => random.gen_bool(probability),
        }
    }

    /// # Panics
    /// If a random stall's probability is outside 0..=1.
    pub fn check(self) {
        if let Stall::Random(probability) = self {
            assert!(
                (0.0..=1.0).contains(&probability),
                "a stall probability must be within 0 and 1, not {probability}"
            );
        }
    }
}
