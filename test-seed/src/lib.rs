//! The seed of every random test of npmu (differential, device traffic, random stalls,
//! crash trials) comes from one place: `NPMU_SEED`, when set, else the test's own default.
//! Each test prints the seed it used, so a failure says how to repeat it:
//! `NPMU_SEED=12345 cargo test -p npmu-sim --test device_differential`.
//!
//! Property tests (`proptest`) keep proptest's own knobs (`PROPTEST_RNG_SEED`) and its
//! persisted failure cases.

/// The environment variable.
pub const VARIABLE: &str = "NPMU_SEED";

/// The seed `test` runs with: `NPMU_SEED` if it is set, else `default`. Printed to stderr
/// (shown by the test harness when the test fails).
///
/// # Panics
///
/// If `NPMU_SEED` is set but is not a decimal `u64`: a typo must not silently run another
/// seed than the one asked for.
pub fn seed(test: &str, default: u64) -> u64 {
    let seed = match std::env::var(VARIABLE) {
        Ok(value) => parse(&value).unwrap_or_else(|| {
            panic!("{VARIABLE}={value:?} is not a seed: give a decimal number below 2^64")
        }),
        Err(_) => default,
    };
    eprintln!("{test}: seed {seed} (repeat with {VARIABLE}={seed})");
    seed
}

fn parse(value: &str) -> Option<u64> {
    value.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_seeds_parse_and_anything_else_is_refused() {
        assert_eq!(parse("0"), Some(0));
        assert_eq!(parse(" 18446744073709551615\n"), Some(u64::MAX));
        assert_eq!(parse("18446744073709551616"), None);
        assert_eq!(parse("0x10"), None);
        assert_eq!(parse("-1"), None);
        assert_eq!(parse(""), None);
    }
}
