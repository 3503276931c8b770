//! The ports of the simulated tops as plain values, generated from their Verilog.

/// The protection core alone (`npmu_core`).
pub mod protection_core {
    include!(concat!(env!("OUT_DIR"), "/ports_npmu_core.rs"));
}

/// The whole network interface (`npmu_ni`).
pub mod network_interface {
    include!(concat!(env!("OUT_DIR"), "/ports_npmu_ni.rs"));
}

/// The protection core behind its serial bridge (`npmu_board`).
pub mod serial_board {
    include!(concat!(env!("OUT_DIR"), "/ports_npmu_board.rs"));
}

/// `value` in a port of `N` bits, bits beyond the port's width dropped as the Verilator shim
/// drops them.
pub(crate) fn port_value<const N: usize>(value: u64) -> rust_hdl::prelude::Bits<N> {
    let mask = if N >= 64 { u64::MAX } else { (1u64 << N) - 1 };
    (value & mask).into()
}
