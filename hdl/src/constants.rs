//! RustHDL constants built from the interface's definitions, at the width of whatever they
//! are compared or combined with.

use npmu_abi::registers::Register;
use npmu_abi::Field;
use rust_hdl::prelude::*;

pub fn constant<const N: usize>(value: u64) -> Constant<Bits<N>> {
    Constant::new(value.into())
}

/// The bit position of `field`.
pub fn shift<const N: usize>(field: Field) -> Constant<Bits<N>> {
    constant(field.shift as u64)
}

/// The offset of `register` (within its block, for a queue register).
pub fn offset<const N: usize>(register: Register) -> Constant<Bits<N>> {
    constant(register.offset.into())
}
