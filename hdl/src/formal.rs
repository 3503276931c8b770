//! What the property wrappers of `hdl/formal/` need from the Rust sources: a Verilog header
//! with the configuration's sizes and the bit layout of the table entries, so that the
//! wrappers state no fact of the design a second time.

use crate::avt::{ContextEntry, TranslationEntry};
use npmu_abi::Config;
use rust_hdl::prelude::Synth;

/// Name of the header the wrappers include.
pub const HEADER: &str = "npmu_formal.vh";
/// Name of the Yosys script that makes every table word an output of the flattened core.
pub const TAPS_SCRIPT: &str = "npmu_formal_taps.ys";
/// Name of the port connections of those outputs, included in the wrapper's instance.
pub const TAPS_PORTS: &str = "npmu_formal_taps.vh";

/// The two tables, each word a flip-flop (Yosys `memory_map`) named after its index in
/// the flattened core, as the wrapper's vectors `context_words` and `entry_words` see them,
/// and the prefix of each table's write port.
const TABLES: [(&str, &str, &str); 2] = [
    ("avt.context_table.contents", "context_words", "context"),
    ("avt.entry_table.contents", "entry_words", "entry"),
];

/// The Yosys script that renames each table word of the flattened core `formal_<vector>_<i>`
/// and makes it an input (cut from its flip-flop: the wrapper says what the core's logic
/// reads there), renames each table's write port `formal_<table>_write_*` and makes it an
/// output; and the wrapper's connections of the words.
pub fn taps(config: &Config) -> (String, String) {
    let mut script = String::new();
    let mut ports = String::new();
    let counts = [config.contexts, config.translation_entries];
    let widths = [ContextEntry::BITS, TranslationEntry::BITS];
    for (((word, vector, table), count), width) in TABLES.iter().zip(counts).zip(widths) {
        for index in 0..count {
            script.push_str(&format!("rename {word}[{index}] formal_{vector}_{index}\n"));
            ports.push_str(&format!(
                ",\n        .formal_{vector}_{index}({vector}[{index} * {width} +: {width}])"
            ));
        }
        for signal in ["enable", "address", "data"] {
            script.push_str(&format!(
                "rename avt.{table}_table$write_{signal} formal_{table}_write_{signal}\n"
            ));
        }
    }
    script.push_str("expose -input w:formal_context_words_* w:formal_entry_words_*\n");
    script.push_str("expose w:formal_context_write_* w:formal_entry_write_* w:formal_verdict_*\n");
    (script, ports)
}

/// The header for the core built for `config`.
pub fn header(config: &Config) -> String {
    let context = ContextEntry::default();
    let entry = TranslationEntry::default();
    let defines = [
        ("DATA_BITS", config.data_bits()),
        ("DATA_BYTES", config.data_bytes as usize),
        ("LANE_BITS", config.data_bytes.trailing_zeros() as usize),
        ("PAGE_SHIFT", config.page_shift as usize),
        ("CONTEXTS", config.contexts as usize),
        ("ENTRIES", config.translation_entries as usize),
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
        ("CONTEXT_ENTRY_BIAS", context.get_my_offset_entry_bias()),
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

    #[test]
    fn every_table_word_is_renamed_cut_and_connected_and_every_write_port_exposed() {
        let (script, ports) = taps(&Config::ICE40);
        assert_eq!(script.matches("rename ").count(), 16 + 256 + 6);
        assert!(script.contains("rename avt.entry_table.contents[255] formal_entry_words_255\n"));
        assert!(script.contains("rename avt.context_table$write_data formal_context_write_data\n"));
        assert!(script.contains("expose -input w:formal_context_words_* w:formal_entry_words_*\n"));
        assert!(script.ends_with("w:formal_entry_write_* w:formal_verdict_*\n"));
        assert!(ports.contains(".formal_context_words_15(context_words[15 * 230 +: 230])"));
        assert_eq!(ports.matches(",\n").count(), 16 + 256);
    }
}
