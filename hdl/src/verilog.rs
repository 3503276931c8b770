//! Verilog emission: RustHDL's generator with the top module named as asked.

use rust_hdl::prelude::*;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum VerilogError {
    #[error("the design failed RustHDL's checks: {0:?}")]
    Check(rust_hdl::core::check_error::CheckError),
}

/// The Verilog of `block` and everything in it, its top module named `top_name`, its
/// sub-modules `top_name$path$to$instance`.
pub fn generate<B: Block>(top_name: &str, block: &B) -> Result<String, VerilogError> {
    check_all(block).map_err(VerilogError::Check)?;
    let mut defines = ModuleDefines::default();
    block.accept(top_name, &mut defines);
    Ok(defines.defines())
}
