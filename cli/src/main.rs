//! `npmu`: one command for the whole project. It runs the demo, manages a volume of two
//! cards (simulated by default, VFIO with `--device`), emits the NI's Verilog,
//! synthesizes it for a board and measures every figure.

mod bench;
mod cards;
mod demo;
mod error;
mod prove;
mod synth;
mod table;
mod verilog;
mod volume;

use clap::{ArgAction, Parser, Subcommand};
use error::CliError;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "npmu",
    version,
    about = "Network persistent memory: the demo, volumes of two npmu cards, Verilog, \
             synthesis and figures",
    after_help = "Start with `npmu demo`. Every command takes --help."
)]
struct Arguments {
    /// Log what the library does on stderr: -v info, -vv debug, -vvv trace (RUST_LOG
    /// overrides).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Walk through a mirrored volume of two simulated cards, step by step, with figures.
    Demo(demo::Arguments),
    /// Format, inspect and use a volume: its regions, their bytes, and resync.
    Volume(volume::Arguments),
    /// Emit the network interface as Verilog.
    Verilog(verilog::Arguments),
    /// Synthesize, place and route the NI for an FPGA board with the open tools.
    Synth(synth::Arguments),
    /// Prove the protection core's properties with SymbiYosys, and that broken designs fail.
    Prove(prove::Arguments),
    /// Measure the simulated NI, the driver and the host library: a table, or JSON lines.
    Bench(bench::Arguments),
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    // The demo narrates failures itself; elsewhere warnings are worth seeing.
    let quiet = if matches!(arguments.command, Command::Demo(_)) {
        "off"
    } else {
        "warn"
    };
    let default_level = match arguments.verbose {
        0 => quiet,
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let outcome = match arguments.command {
        Command::Demo(arguments) => demo::run(&arguments),
        Command::Volume(arguments) => volume::run(&arguments),
        Command::Verilog(arguments) => verilog::run(&arguments),
        Command::Synth(arguments) => synth::run(&arguments),
        Command::Prove(arguments) => prove::run(&arguments),
        Command::Bench(arguments) => bench::run(&arguments),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => report(&error),
    }
}

fn report(error: &CliError) -> ExitCode {
    eprintln!("npmu: error: {error}");
    if let Some(hint) = error.hint() {
        eprintln!("npmu: hint: {hint}");
    }
    ExitCode::from(error.exit_code())
}
