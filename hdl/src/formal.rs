//! What the property wrappers of `hdl/formal/` need from the Rust sources: a Verilog header
//! with the configuration's sizes and the bit layout of the table entries, so that the
//! wrappers state no fact of the design a second time.

use crate::avt::{ContextEntry, TranslationEntry};
use npmu_abi::Config;
use rust_hdl::prelude::Synth;

/// Name of the header the wrappers include.
pub const HEADER: &str = "npmu_formal.vh";

/// The header for the core built for `config`.
pub fn header(config: &Config) -> String {
    let context = ContextEntry::default();
    let entry = TranslationEntry::default();
    let defines = [
        ("DATA_BITS", config.data_bits()),
        ("DATA_BYTES", config.data_bytes as usize),
        ("LANE_BITS", config.data_bytes.trailing_zeros() as usize),
        ("PAGE_SHIFT", config.page_shift as usize),
        ("CONTEXT_TABLE_BITS", config.context_table_bits()),
        ("ENTRY_TABLE_BITS", config.entry_table_bits()),
        ("CONTEXT_ENTRY_BITS", ContextEntry::BITS),
        ("TRANSLATION_ENTRY_BITS", TranslationEntry::BITS),
        ("CONTEXT_VALID", context.get_my_offset_valid()),
        ("CONTEXT_KEY", context.get_my_offset_key()),
        ("CONTEXT_READ", context.get_my_offset_read()),
        ("CONTEXT_WRITE", context.get_my_offset_write()),
        (
            "CONTEXT_ANY_INITIATOR",
            context.get_my_offset_any_initiator(),
        ),
        ("CONTEXT_INITIATOR", context.get_my_offset_initiator()),
        ("CONTEXT_BASE", context.get_my_offset_base()),
        ("CONTEXT_PAGES", context.get_my_offset_pages()),
        ("CONTEXT_FIRST_ENTRY", context.get_my_offset_first_entry()),
        ("CONTEXT_END", context.get_my_offset_end()),
        ("ENTRY_VALID", entry.get_my_offset_valid()),
        ("ENTRY_PAGE", entry.get_my_offset_page()),
    ];
    let mut text = format!(
        "// Written by `npmu prove` for configuration {:?} from the RustHDL sources; do not edit.\n",
        config.name
    );
    for (name, value) in defines {
        text.push_str(&format!("`define FORMAL_{name} {value}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_places_each_field_after_the_one_before() {
        let header = header(&Config::ICE40);
        assert!(header.contains("`define FORMAL_CONTEXT_VALID 0\n"));
        assert!(header.contains("`define FORMAL_CONTEXT_KEY 1\n"));
        assert!(header.contains("`define FORMAL_CONTEXT_READ 33\n"));
        assert!(header.contains("`define FORMAL_ENTRY_PAGE 1\n"));
        assert!(header.contains("`define FORMAL_ENTRY_TABLE_BITS 8\n"));
    }
}
