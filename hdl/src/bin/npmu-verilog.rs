//! Writes the NI of a named configuration as one Verilog file, top module `npmu_ni`.

use clap::Parser;
use npmu_abi::Config;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(about = "Emit the npmu network interface as Verilog (top module npmu_ni)")]
struct Arguments {
    /// Configuration to build: sim or ice40.
    #[arg(long, default_value = "sim")]
    config: String,
    /// File to write; standard output if absent.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Emit only the protection core (top module npmu_core), as its tests drive it.
    #[arg(long, conflicts_with = "board")]
    core: bool,
    /// Emit the protection core behind its serial bridge (top module npmu_board), as the
    /// boards without PCIe use it.
    #[arg(long)]
    board: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let arguments = Arguments::parse();
    let config = match Config::by_name(&arguments.config) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("npmu-verilog: {error}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(
        config = config.name,
        core = arguments.core,
        board = arguments.board,
        "emitting"
    );
    let emitted = if arguments.core {
        npmu_hdl::verilog::protection_core(&config)
    } else if arguments.board {
        npmu_hdl::verilog::serial_board(&config)
    } else {
        npmu_hdl::verilog::network_interface(&config)
    };
    let verilog = match emitted {
        Ok(verilog) => verilog,
        Err(error) => {
            eprintln!("npmu-verilog: {error}");
            return ExitCode::FAILURE;
        }
    };
    match arguments.output {
        None => print!("{verilog}"),
        Some(path) => {
            if let Err(error) = std::fs::write(&path, &verilog) {
                eprintln!("npmu-verilog: cannot write {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
            tracing::info!(path = %path.display(), bytes = verilog.len(), "written");
        }
    }
    ExitCode::SUCCESS
}
