//! Which two cards a command uses: simulated ones in a data directory (the default), or
//! real ones through VFIO.

use crate::error::CliError;
use clap::{Args, ValueEnum};
use npmu::cards::{Model, SimulatedCards};
use npmu::{Card, CardRole};
use std::path::PathBuf;

#[derive(Args, Clone, Debug)]
pub struct CardArguments {
    /// The cards: `sim` (two simulated cards, memory in files in --data-dir) or
    /// `vfio:PRIMARY,MIRROR` (PCI addresses of two cards bound to vfio-pci).
    #[arg(long, default_value = "sim", value_parser = parse_device, global = true,
        value_name = "sim|vfio:PRIMARY,MIRROR")]
    pub device: Device,
    /// Directory of the simulated cards' persistent memory (primary.pm and mirror.pm).
    #[arg(long, default_value = "npmu-data", global = true, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// What simulates the cards: the NI's RTL under Verilator, cycle by cycle, or the
    /// golden model, which answers at once.
    #[arg(long, value_enum, default_value_t = Simulator::Verilator, global = true)]
    pub simulator: Simulator,
    /// Write each simulated card's signals as a waveform for GTKWave: the primary's to
    /// FILE.vcd, the mirror's beside it to FILE.mirror.vcd.
    #[arg(long, value_name = "FILE.vcd", global = true)]
    pub trace: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Device {
    Simulated,
    Vfio { primary: String, mirror: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Simulator {
    Verilator,
    Golden,
}

fn parse_device(text: &str) -> Result<Device, String> {
    if text == "sim" {
        return Ok(Device::Simulated);
    }
    let Some(addresses) = text.strip_prefix("vfio:") else {
        return Err("expected `sim` or `vfio:PRIMARY,MIRROR`, e.g. \
                    vfio:0000:01:00.0,0000:02:00.0"
            .into());
    };
    let Some((primary, mirror)) = addresses.split_once(',') else {
        return Err("a volume needs two cards: vfio:PRIMARY,MIRROR".into());
    };
    let canonical = |address: &str| {
        npmu_driver::vfio::canonical_pci_address(address)
            .map_err(|error| format!("{error} (lspci -D lists them)"))
    };
    let (primary, mirror) = (canonical(primary)?, canonical(mirror)?);
    if primary == mirror {
        return Err("the primary and the mirror must be two different cards".into());
    }
    Ok(Device::Vfio { primary, mirror })
}

impl CardArguments {
    /// Starts the two cards.
    pub fn open(&self) -> Result<(Card, Card), CliError> {
        match &self.device {
            Device::Simulated => {
                let cards = self.simulated()?;
                Ok((
                    self.open_simulated(&cards, CardRole::Primary)?,
                    self.open_simulated(&cards, CardRole::Mirror)?,
                ))
            }
            Device::Vfio { primary, mirror } => {
                if self.trace.is_some() {
                    return Err(CliError::refused(
                        "--trace",
                        "waveforms come from simulated cards; a VFIO card has none",
                    ));
                }
                Ok(npmu::cards::vfio_cards(primary, mirror)?)
            }
        }
    }

    fn simulated(&self) -> Result<SimulatedCards, CliError> {
        if self.trace.is_some() && self.simulator == Simulator::Golden {
            return Err(CliError::refused(
                "--trace",
                "the golden model has no signals; use --simulator verilator",
            ));
        }
        let model = match self.simulator {
            Simulator::Verilator => Model::Verilator,
            Simulator::Golden => Model::Golden,
        };
        Ok(SimulatedCards {
            model,
            ..SimulatedCards::in_directory(&self.data_dir)
        })
    }

    fn open_simulated(&self, cards: &SimulatedCards, role: CardRole) -> Result<Card, CliError> {
        let mut cards = cards.clone();
        cards.card.waveform = self.waveform(role);
        if let Some(path) = &cards.card.waveform {
            eprintln!(
                "npmu: writing the {role} card's waveform to {}",
                path.display()
            );
        }
        Ok(cards.open_card(role)?)
    }

    /// The waveform file of the `role` card, if asked for.
    pub fn waveform(&self, role: CardRole) -> Option<PathBuf> {
        let path = self.trace.as_ref()?;
        Some(match role {
            CardRole::Primary => path.clone(),
            CardRole::Mirror => path.with_extension("mirror.vcd"),
        })
    }
}

/// Clocks from the doorbell of a card's last operation on queue 0 to the interrupt that
/// completed it, if the card counts clocks (Verilator cards do).
pub fn last_operation_cycles(card: &Card) -> Option<u64> {
    let card = card.simulated()?;
    let doorbell = card.last_doorbell_clock(0)?;
    let interrupt = card.last_interrupt_clock(0)?;
    interrupt.checked_sub(doorbell)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("sim", Ok(Device::Simulated))]
    #[case("vfio:0000:01:00.0,0000:02:00.0", Ok(Device::Vfio {
        primary: "0000:01:00.0".into(), mirror: "0000:02:00.0".into() }))]
    #[case("vfio:0000:01:00.0", Err("two cards"))]
    #[case("vfio:0000:01:00.0,0000:01:00.0", Err("two different cards"))]
    #[case("vfio:01:00.0,0000:02:00.0", Err("\"01:00.0\" is not a PCI address"))]
    #[case("vfio:0000:01:00.g,0000:02:00.0", Err("not a PCI address"))]
    #[case("pcie:0000:01:00.0", Err("expected `sim` or `vfio:PRIMARY,MIRROR`"))]
    fn device_arguments(#[case] text: &str, #[case] expected: Result<Device, &str>) {
        match (parse_device(text), expected) {
            (Ok(device), Ok(expected)) => assert_eq!(device, expected),
            (Err(message), Err(expected)) => assert!(message.contains(expected), "{message}"),
            (outcome, expected) => panic!("{text}: {outcome:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn the_mirror_waveform_sits_beside_the_primary_one() {
        let arguments = CardArguments {
            device: Device::Simulated,
            data_dir: "data".into(),
            simulator: Simulator::Verilator,
            trace: Some("out/run.vcd".into()),
        };
        assert_eq!(
            arguments.waveform(CardRole::Primary),
            Some("out/run.vcd".into())
        );
        assert_eq!(
            arguments.waveform(CardRole::Mirror),
            Some("out/run.mirror.vcd".into())
        );
    }
}
