//! `npmu bench`: every figure of the project, one JSON line each or a table for people.
//! Without a group, the simulated NI, the driver and the host library are measured in
//! turn with their defaults.

mod core_figures;
mod dma_figures;
mod driver_figures;
mod intent_figures;
mod volume_figures;

use crate::error::CliError;
use crate::table::Table;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value;
use std::process::ExitCode;

#[derive(Args)]
pub struct Arguments {
    /// Print one JSON line a figure on standard output instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    group: Option<Group>,
}

#[derive(Subcommand)]
enum Group {
    /// The simulated NI: simulation speed, translation lookups, DMA throughput and latency.
    Ni(NetworkInterfaceArguments),
    /// The driver against one simulated card: operation latency in wall time and cycles.
    Driver(driver_figures::Arguments),
    /// The host library on a volume of two cards: latency, rate, mirroring cost, overhead,
    /// the cost of write intent, resync and repair.
    Volume(volume_figures::Arguments),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum NetworkInterfaceFigures {
    /// The protection core: simulation speed, AVT lookups.
    Core,
    /// The whole NI: DMA throughput through the queues, write latency.
    Dma,
}

#[derive(Parser)]
struct NetworkInterfaceArguments {
    /// Which figures to measure.
    #[arg(long, value_enum, value_delimiter = ',',
        default_values_t = [NetworkInterfaceFigures::Core, NetworkInterfaceFigures::Dma])]
    figures: Vec<NetworkInterfaceFigures>,
    /// Clocks of random traffic for the simulation speed figures.
    #[arg(long, default_value_t = 2_000_000)]
    cycles: u64,
    /// Clocks for the RustHDL-versus-Verilator comparison (RustHDL is slow).
    #[arg(long, default_value_t = 20_000)]
    compare_cycles: u64,
    /// Bytes each DMA throughput figure moves (at least ten of the largest transfers, so the
    /// measured window has some).
    #[arg(long, default_value_t = 2 << 20, value_parser = clap::value_parser!(u64).range(65536..))]
    dma_bytes: u64,
    /// Clocks from a DMA request to its answer, as the host side of the link adds them; the
    /// DMA figures are measured at each (100 and 250 clocks: 400 ns and 1 µs at 250 MHz).
    #[arg(long, value_delimiter = ',', default_values_t = [100, 250],
        value_parser = clap::value_parser!(u64).range(1..=100_000))]
    host_latency: Vec<u64>,
}

pub fn run(arguments: &Arguments) -> Result<ExitCode, CliError> {
    let failed = |error: Box<dyn std::error::Error>| CliError::Bench(error.to_string());
    let figures = match &arguments.group {
        Some(Group::Ni(group)) => network_interface_figures(group),
        Some(Group::Driver(group)) => driver_figures::figures(group).map_err(failed)?,
        Some(Group::Volume(group)) => volume_group(group).map_err(failed)?,
        None => {
            let mut figures =
                network_interface_figures(&NetworkInterfaceArguments::parse_from(["ni"]));
            let driver = driver_figures::Arguments::parse_from(["driver"]);
            figures.extend(driver_figures::figures(&driver).map_err(failed)?);
            let volume = volume_figures::Arguments::parse_from(["volume"]);
            figures.extend(volume_group(&volume).map_err(failed)?);
            figures
        }
    };
    if arguments.json {
        for figure in &figures {
            println!("{figure}");
        }
    } else {
        print_table(&figures);
    }
    Ok(ExitCode::SUCCESS)
}

/// The host library's figures, then write intent's.
fn volume_group(
    arguments: &volume_figures::Arguments,
) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let mut figures = volume_figures::figures(arguments)?;
    figures.extend(intent_figures::figures(&arguments.intent)?);
    Ok(figures)
}

fn network_interface_figures(arguments: &NetworkInterfaceArguments) -> Vec<Value> {
    let mut figures = Vec::new();
    if arguments.figures.contains(&NetworkInterfaceFigures::Core) {
        figures.extend(core_figures::figures(
            arguments.cycles,
            arguments.compare_cycles,
        ));
    }
    if arguments.figures.contains(&NetworkInterfaceFigures::Dma) {
        figures.push(dma_figures::datapath());
        for host_latency in &arguments.host_latency {
            figures.extend(dma_figures::figures(arguments.dma_bytes, *host_latency));
        }
    }
    figures
}

/// One row a figure: its name, value and unit, then every other field as key=value.
fn print_table(figures: &[Value]) {
    let mut table = Table::new(["figure", "value", "parameters"]);
    for figure in figures {
        let Some(fields) = figure.as_object() else {
            continue;
        };
        let number = match fields["value"].as_f64() {
            // Whole numbers without the ".0" JSON gives floats.
            Some(value) if value.fract() == 0.0 && value.abs() < 1e15 => format!("{value:.0}"),
            _ => fields["value"].to_string(),
        };
        let value = match fields.get("unit").and_then(Value::as_str) {
            Some(unit) => format!("{number} {unit}"),
            None => number,
        };
        let parameters: Vec<String> = fields
            .iter()
            .filter(|(key, _)| !matches!(key.as_str(), "name" | "value" | "unit" | "note"))
            .map(|(key, value)| match value.as_str() {
                Some(text) => format!("{key}={text}"),
                None => format!("{key}={value}"),
            })
            .collect();
        table.row([
            fields["name"].as_str().unwrap_or("?").to_owned(),
            value,
            parameters.join(" "),
        ]);
    }
    table.print();
}

/// The `percent`th percentile (nearest rank); sorts `samples`.
fn percentile(samples: &mut [u64], percent: usize) -> u64 {
    if samples.is_empty() {
        return 0;
    }
    samples.sort_unstable();
    let rank = (samples.len() * percent).div_ceil(100).max(1);
    samples[rank - 1]
}
