//! The one overflow-safe range check (like rxe's `mr_check_range`): whether `length` units
//! from `offset` lie inside `[0, size)`. Every bounds check of the host side and the golden
//! model asks it, rather than writing the comparison out again.

/// Whether `[offset, offset + length)` lies inside `[0, size)`, without computing
/// `offset + length` (which can wrap): one condition a line.
pub fn range_fits(offset: u64, length: u64, size: u64) -> bool {
    if length > size {
        return false;
    }
    if offset > size - length {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::range_fits;

    #[test]
    fn ranges_inside_fit_and_those_past_the_end_or_wrapping_do_not() {
        assert!(range_fits(0, 10, 10));
        assert!(range_fits(9, 1, 10));
        assert!(range_fits(10, 0, 10));
        assert!(!range_fits(10, 1, 10));
        assert!(!range_fits(0, 11, 10));
        assert!(!range_fits(u64::MAX, 2, u64::MAX));
        assert!(!range_fits(2, u64::MAX, u64::MAX));
        assert!(range_fits(1, u64::MAX - 1, u64::MAX));
    }
}
