//! The NI's ports as plain values, generated from the top module of the Verilog.

include!(concat!(env!("OUT_DIR"), "/ports.rs"));
