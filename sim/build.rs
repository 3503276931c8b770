//! Builds the NI's Verilator models, one per configuration.
//!
//! For each configuration: the Verilog comes from npmu-hdl, `verilator --cc` turns it into
//! C++, and the `cc` crate compiles that, Verilator's runtime and a C++ shim into one static
//! library. The shim and the Rust port structs are both written from the port list of the
//! top module as the generated Verilog declares it, so they cannot drift from the design.

use npmu_abi::Config;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Clone, Debug, PartialEq)]
struct Port {
    name: String,
    input: bool,
    width: u32,
}

/// One top module the simulator builds: its Verilog, and the RustHDL type its ports match.
struct Top {
    /// Module name, and the stem of generated files and shim functions.
    module: &'static str,
    generate: fn(&Config) -> Result<String, npmu_hdl::verilog::VerilogError>,
    /// RustHDL type and its generic parameters, for the RustHDL backend's port mapping.
    rust_type: &'static str,
    generics: &'static str,
}

const TOPS: [Top; 3] = [
    Top {
        module: "npmu_core",
        generate: npmu_hdl::verilog::protection_core,
        rust_type: "npmu_hdl::protection_core::ProtectionCore",
        generics: "const D: usize, const S: usize, const C: usize, const E: usize",
    },
    Top {
        module: "npmu_ni",
        generate: npmu_hdl::verilog::network_interface,
        rust_type: "npmu_hdl::network_interface::NetworkInterface",
        generics: "const D: usize, const S: usize, const C: usize, const E: usize, \
                   const Q: usize, const T: usize, const F: usize, const R: usize, const P: usize",
    },
    Top {
        module: "npmu_board",
        generate: npmu_hdl::verilog::serial_board,
        rust_type: "npmu_hdl::serial_board::SerialBoard",
        generics: "const D: usize, const S: usize, const C: usize, const E: usize, const L: u64",
    },
];

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let waivers = manifest.join("../hdl/lint.vlt");
    println!("cargo:rerun-if-changed={}", waivers.display());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=VERILATOR_ROOT");
    let root = verilator_root();

    let mut build = cc::Build::new();
    build
        .cpp(true)
        .opt_level(2)
        .debug(false)
        .flag_if_supported("-std=gnu++17")
        .flag_if_supported("-faligned-new")
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-unused-variable")
        .flag_if_supported("-Wno-unused-but-set-variable")
        .flag_if_supported("-Wno-sign-compare")
        .flag_if_supported("-Wno-bool-operation")
        .flag_if_supported("-Wno-uninitialized")
        .flag_if_supported("-Wno-shadow")
        .define("VM_COVERAGE", "0")
        .define("VM_SC", "0")
        .define("VM_TRACE", "1")
        .define("VM_TRACE_VCD", "1")
        .define("VM_TRACE_FST", "0")
        .include(root.join("include"))
        .include(root.join("include/vltstd"))
        .warnings(false);
    for runtime in [
        "verilated.cpp",
        "verilated_threads.cpp",
        "verilated_vcd_c.cpp",
    ] {
        build.file(root.join("include").join(runtime));
    }

    let mut shim = String::from(SHIM_PREAMBLE);
    for top in &TOPS {
        let mut port_lists = Vec::new();
        let mut models = String::new();
        for config in Config::ALL {
            let verilog = (top.generate)(&config).unwrap_or_else(|error| {
                panic!("generating {} for {}: {error}", top.module, config.name)
            });
            let source = out.join(format!("{}_{}.v", top.module, config.name));
            std::fs::write(&source, &verilog).unwrap();
            let model_dir = out.join(format!("verilated_{}_{}", top.module, config.name));
            verilate(
                &source,
                &waivers,
                &model_dir,
                top.module,
                &prefix(top, &config),
            );
            for entry in std::fs::read_dir(&model_dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|extension| extension == "cpp") {
                    build.file(path);
                }
            }
            build.include(&model_dir);
            let ports = top_ports(&verilog, top.module);
            models.push_str(&model_shim(top, &config, &ports));
            port_lists.push(ports);
        }
        let ports = merge(&port_lists);
        shim.push_str(&c_structs(top.module, &ports));
        shim.push_str(&models);
        std::fs::write(
            out.join(format!("ports_{}.rs", top.module)),
            rust_ports(top, &ports),
        )
        .unwrap();
    }
    let shim_path = out.join("shim.cpp");
    std::fs::write(&shim_path, shim).unwrap();
    build.file(&shim_path);
    build.compile("npmu_verilated");
    println!("cargo:rustc-link-lib=pthread");
}

fn prefix(top: &Top, config: &Config) -> String {
    format!("V{}_{}", top.module, config.name)
}

fn verilator_root() -> PathBuf {
    if let Ok(root) = std::env::var("VERILATOR_ROOT") {
        return PathBuf::from(root);
    }
    let output = Command::new("verilator")
        .arg("--getenv")
        .arg("VERILATOR_ROOT")
        .output()
        .unwrap_or_else(|error| {
            panic!("Verilator is needed to build npmu-sim ({error}); `./run setup` installs it")
        });
    assert!(
        output.status.success(),
        "verilator --getenv VERILATOR_ROOT failed"
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

fn verilate(source: &Path, waivers: &Path, model_dir: &Path, module: &str, prefix: &str) {
    let _ = std::fs::remove_dir_all(model_dir);
    let status = Command::new("verilator")
        .args([
            "--cc",
            "-O3",
            "--trace",
            "--top-module",
            module,
            "--prefix",
            prefix,
        ])
        .arg("--Mdir")
        .arg(model_dir)
        .arg(waivers)
        .arg(source)
        .status()
        .expect("running verilator");
    assert!(status.success(), "verilator failed on {}", source.display());
}

/// The ports of the top module, from its declarations in the generated Verilog.
fn top_ports(verilog: &str, name: &str) -> Vec<Port> {
    let module = verilog
        .split("\nmodule ")
        .find(|module| module.starts_with(&format!("{name}(")))
        .unwrap_or_else(|| panic!("module {name} in the generated Verilog"));
    let body = &module[..module.find("endmodule").unwrap()];
    body.lines()
        .filter_map(|line| {
            let line = line.trim().trim_end_matches(';');
            let (input, rest) = if let Some(rest) = line.strip_prefix("input wire") {
                (true, rest)
            } else if let Some(rest) = line
                .strip_prefix("output reg")
                .or_else(|| line.strip_prefix("output wire"))
            {
                (false, rest)
            } else {
                return None;
            };
            let rest = rest.trim();
            let (width, name) = match rest.strip_prefix('[') {
                Some(range) => {
                    let (msb, name) = range.split_once(":0]").expect("a [msb:0] range");
                    (msb.trim().parse::<u32>().unwrap() + 1, name.trim())
                }
                None => (1, rest),
            };
            assert!(width <= 64, "port {name} is wider than 64 bits");
            Some(Port {
                name: name.to_owned(),
                input,
                width,
            })
        })
        .filter(|port| port.name != "clock")
        .collect()
}

/// One port list for every configuration: same names, the widest width of each.
fn merge(lists: &[Vec<Port>]) -> Vec<Port> {
    let names = |ports: &Vec<Port>| ports.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    for list in lists {
        assert_eq!(
            names(list),
            names(&lists[0]),
            "configurations differ in their ports"
        );
    }
    let mut widest: BTreeMap<&str, u32> = BTreeMap::new();
    for port in lists.iter().flatten() {
        let width = widest.entry(&port.name).or_default();
        *width = (*width).max(port.width);
    }
    lists[0]
        .iter()
        .map(|port| Port {
            width: widest[port.name.as_str()],
            ..port.clone()
        })
        .collect()
}

fn c_type(width: u32) -> &'static str {
    match width {
        1 => "bool",
        2..=8 => "uint8_t",
        9..=16 => "uint16_t",
        17..=32 => "uint32_t",
        _ => "uint64_t",
    }
}

fn rust_type(width: u32) -> &'static str {
    match width {
        1 => "bool",
        2..=8 => "u8",
        9..=16 => "u16",
        17..=32 => "u32",
        _ => "u64",
    }
}

const SHIM_PREAMBLE: &str = "\
// Generated by npmu-sim's build.rs from the port lists of the top modules; do not edit.
#include <cstdint>
#include <memory>
#include \"verilated.h\"
#include \"verilated_vcd_c.h\"
";

fn c_structs(module: &str, ports: &[Port]) -> String {
    let mut text = String::new();
    for (suffix, input) in [("inputs", true), ("outputs", false)] {
        let name = format!("{module}_{suffix}");
        writeln!(text, "struct {name} {{").unwrap();
        for port in ports.iter().filter(|port| port.input == input) {
            writeln!(text, "    {} {};", c_type(port.width), port.name).unwrap();
        }
        writeln!(text, "}};").unwrap();
    }
    text
}

fn model_shim(top: &Top, config: &Config, ports: &[Port]) -> String {
    let prefix = prefix(top, config);
    let module = top.module;
    let name = format!("{module}_{}", config.name);
    let mut assign_inputs = String::new();
    let mut read_outputs = String::new();
    for port in ports {
        let mask = if port.width == 64 {
            u64::MAX
        } else {
            (1u64 << port.width) - 1
        };
        if port.input {
            writeln!(
                assign_inputs,
                "    model->{0} = static_cast<uint64_t>(inputs->{0}) & 0x{1:x}ULL;",
                port.name, mask
            )
            .unwrap();
        } else {
            writeln!(read_outputs, "    outputs->{0} = model->{0};", port.name).unwrap();
        }
    }
    format!(
        r#"
#include "{prefix}.h"

namespace {{
struct {prefix}_instance {{
    std::unique_ptr<VerilatedContext> context;
    std::unique_ptr<{prefix}> model;
    std::unique_ptr<VerilatedVcdC> trace;
}};
}}

extern "C" void* {name}_new() {{
    auto* instance = new {prefix}_instance;
    instance->context.reset(new VerilatedContext);
    instance->context->traceEverOn(true);
    instance->model.reset(new {prefix}{{instance->context.get()}});
    instance->model->clock = 0;
    instance->model->eval();
    return instance;
}}

extern "C" void {name}_delete(void* handle) {{
    auto* instance = static_cast<{prefix}_instance*>(handle);
    if (instance->trace) instance->trace->close();
    instance->model->final();
    delete instance;
}}

extern "C" void {name}_settle(void* handle, const {module}_inputs* inputs, {module}_outputs* outputs) {{
    auto* instance = static_cast<{prefix}_instance*>(handle);
    auto* model = instance->model.get();
    model->clock = 0;
{assign_inputs}    model->eval();
    if (instance->trace) instance->trace->dump(instance->context->time());
    instance->context->timeInc(1);
{read_outputs}}}

extern "C" void {name}_rising_edge(void* handle) {{
    auto* instance = static_cast<{prefix}_instance*>(handle);
    instance->model->clock = 1;
    instance->model->eval();
    if (instance->trace) instance->trace->dump(instance->context->time());
    instance->context->timeInc(1);
}}

extern "C" bool {name}_trace_open(void* handle, const char* path) {{
    auto* instance = static_cast<{prefix}_instance*>(handle);
    if (instance->trace) instance->trace->close();
    instance->trace.reset(new VerilatedVcdC);
    instance->model->trace(instance->trace.get(), 99);
    instance->trace->open(path);
    return instance->trace->isOpen();
}}

extern "C" void {name}_trace_close(void* handle) {{
    auto* instance = static_cast<{prefix}_instance*>(handle);
    if (instance->trace) instance->trace->close();
    instance->trace.reset();
}}
"#
    )
}

fn rust_ports(top: &Top, ports: &[Port]) -> String {
    let mut text = format!(
        "// Generated by npmu-sim's build.rs from the port list of {}; do not edit.\n",
        top.module
    );
    for (name, input, doc) in [
        (
            "Inputs",
            true,
            "Values driven into the NI's input ports for one clock.",
        ),
        (
            "Outputs",
            false,
            "Values of the NI's output ports, settled for one clock.",
        ),
    ] {
        writeln!(text, "/// {doc}").unwrap();
        writeln!(text, "#[repr(C)]").unwrap();
        writeln!(
            text,
            "#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]"
        )
        .unwrap();
        writeln!(text, "pub struct {name} {{").unwrap();
        for port in ports.iter().filter(|port| port.input == input) {
            writeln!(text, "    pub {}: {},", port.name, rust_type(port.width)).unwrap();
        }
        writeln!(text, "}}").unwrap();
    }
    // The same ports on RustHDL's model of the NI, for its own simulator.
    writeln!(
        text,
        "
/// Drives `inputs` into RustHDL's model.
pub fn drive_rust_hdl<{generics}>(
    ni: &mut {rust_type}<{parameters}>,
    inputs: &Inputs,
) {{",
        generics = top.generics,
        rust_type = top.rust_type,
        parameters = parameters(top.generics),
    )
    .unwrap();
    for port in ports.iter().filter(|port| port.input) {
        match rust_type(port.width) {
            "bool" => writeln!(text, "    ni.{0}.next = inputs.{0};", port.name),
            "u64" => writeln!(
                text,
                "    ni.{0}.next = crate::ports::port_value(inputs.{0});",
                port.name
            ),
            _ => writeln!(
                text,
                "    ni.{0}.next = crate::ports::port_value(u64::from(inputs.{0}));",
                port.name
            ),
        }
        .unwrap();
    }
    writeln!(
        text,
        "}}

/// Reads the output ports of RustHDL's model.
pub fn sample_rust_hdl<{generics}>(
    ni: &{rust_type}<{parameters}>,
) -> Outputs {{
    Outputs {{",
        generics = top.generics,
        rust_type = top.rust_type,
        parameters = parameters(top.generics),
    )
    .unwrap();
    for port in ports.iter().filter(|port| !port.input) {
        match rust_type(port.width) {
            "bool" => writeln!(text, "        {0}: ni.{0}.val(),", port.name),
            "u64" => writeln!(text, "        {0}: ni.{0}.val().to_u64(),", port.name),
            other => writeln!(
                text,
                "        {0}: ni.{0}.val().to_u64() as {other},",
                port.name
            ),
        }
        .unwrap();
    }
    writeln!(text, "    }}\n}}").unwrap();
    text
}

/// `D, S` from `const D: usize, const S: usize`.
fn parameters(generics: &str) -> String {
    generics
        .split(',')
        .map(|generic| {
            generic
                .trim()
                .trim_start_matches("const ")
                .split(':')
                .next()
                .unwrap()
        })
        .collect::<Vec<_>>()
        .join(", ")
}
