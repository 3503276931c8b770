//! Figures of the simulated NI, one JSON line each on stdout, a table on stderr.

mod core_figures;
mod dma_figures;

use clap::{Parser, ValueEnum};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Group {
    /// The protection core: simulation speed, AVT lookups.
    Core,
    /// The whole NI: DMA throughput through the queues, write latency.
    Dma,
}

#[derive(Parser)]
#[command(about = "Measure the simulated npmu network interface; prints JSON lines")]
struct Arguments {
    /// Which figures to measure.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Group::Core, Group::Dma])]
    figures: Vec<Group>,
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

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let arguments = Arguments::parse();
    let mut figures = Vec::new();
    if arguments.figures.contains(&Group::Core) {
        figures.extend(core_figures::figures(
            arguments.cycles,
            arguments.compare_cycles,
        ));
    }
    if arguments.figures.contains(&Group::Dma) {
        figures.push(dma_figures::datapath());
        for host_latency in arguments.host_latency {
            figures.extend(dma_figures::figures(arguments.dma_bytes, host_latency));
        }
    }
    for figure in &figures {
        println!("{figure}");
    }
    eprintln!("{:<28} {:>14}  parameters", "figure", "value");
    for figure in &figures {
        eprintln!(
            "{:<28} {:>14}  {}",
            figure["name"].as_str().unwrap(),
            figure["value"].to_string(),
            parameters(figure)
        );
    }
}

fn parameters(figure: &Value) -> String {
    figure
        .as_object()
        .unwrap()
        .iter()
        .filter(|(key, _)| !matches!(key.as_str(), "name" | "value"))
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(" ")
}
