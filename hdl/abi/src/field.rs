//! Bit fields inside 64-bit registers.

/// A run of `width` bits starting at bit `shift` of a 64-bit register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub shift: usize,
    pub width: usize,
}

impl Field {
    pub const fn new(shift: usize, width: usize) -> Self {
        assert!(
            width > 0 && shift + width <= 64,
            "field must lie inside 64 bits"
        );
        Self { shift, width }
    }

    /// A one-bit field.
    pub const fn bit(shift: usize) -> Self {
        Self::new(shift, 1)
    }

    /// The field's bits, in place.
    pub const fn mask(self) -> u64 {
        let low = if self.width == 64 {
            u64::MAX
        } else {
            (1u64 << self.width) - 1
        };
        low << self.shift
    }

    /// The largest value the field holds.
    pub const fn max(self) -> u64 {
        self.mask() >> self.shift
    }

    pub const fn get(self, register: u64) -> u64 {
        (register & self.mask()) >> self.shift
    }

    pub const fn is_set(self, register: u64) -> bool {
        self.get(register) != 0
    }

    /// `register` with the field replaced by `value`; bits of `value` beyond the field's
    /// width are dropped, as the hardware drops them.
    pub const fn set(self, register: u64, value: u64) -> u64 {
        (register & !self.mask()) | ((value << self.shift) & self.mask())
    }

    /// `value` placed in the field of an otherwise zero register.
    pub const fn place(self, value: u64) -> u64 {
        self.set(0, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn full_width_field_covers_every_bit() {
        let all = Field::new(0, 64);
        assert_eq!(all.mask(), u64::MAX);
        assert_eq!(all.get(0xdead_beef), 0xdead_beef);
    }

    #[test]
    fn set_drops_bits_beyond_the_width() {
        let nibble = Field::new(4, 4);
        assert_eq!(nibble.set(0, 0x1f), 0xf0);
    }

    proptest! {
        #[test]
        fn set_then_get_round_trips(shift in 0usize..64, width in 1usize..=64, register: u64, value: u64) {
            prop_assume!(shift + width <= 64);
            let field = Field::new(shift, width);
            let written = field.set(register, value);
            prop_assert_eq!(field.get(written), value & field.max());
            prop_assert_eq!(written & !field.mask(), register & !field.mask());
        }
    }
}
