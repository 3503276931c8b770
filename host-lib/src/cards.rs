//! The cards a volume can be made of, behind one type: simulated cards whose persistent
//! memory is a file (the default, no FPGA needed) or real cards through VFIO.

use npmu_driver::vfio::{VfioCard, VfioDomain, VfioError};
use npmu_driver::{Device, DeviceError, DmaMapping, Interrupts, Mmio};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CardsError {
    #[cfg(feature = "simulated")]
    #[error("starting simulated card {path}: {source}")]
    Simulated {
        path: std::path::PathBuf,
        source: npmu_sim::CardError,
    },
    #[cfg(feature = "simulated")]
    #[error("starting model card {path}: {source}")]
    Model {
        path: std::path::PathBuf,
        source: npmu_sim::ModelCardError,
    },
    #[error("opening VFIO card {address}: {source}")]
    Vfio { address: String, source: VfioError },
    #[error("cannot create the data directory {path}: {source}")]
    Directory {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// One card of a volume.
pub enum Card {
    /// The Verilator model of the NI, cycle by cycle.
    #[cfg(feature = "simulated")]
    Simulated(npmu_sim::SimulatedCard),
    /// The golden model of the NI: answers at once.
    #[cfg(feature = "simulated")]
    Model(Box<npmu_sim::ModelCard>),
    Vfio(VfioCard),
}

impl Card {
    /// The simulated card underneath, for what only a simulation can do (fail on request,
    /// count clocks).
    #[cfg(feature = "simulated")]
    pub fn simulated(&self) -> Option<&npmu_sim::SimulatedCard> {
        match self {
            Card::Simulated(card) => Some(card),
            _ => None,
        }
    }

    /// Makes a simulated or model card drop off the bus; `false` for a real card.
    #[cfg(feature = "simulated")]
    pub fn fail(&self) -> bool {
        match self {
            Card::Simulated(card) => card.fail(),
            Card::Model(card) => card.fail(),
            Card::Vfio(_) => return false,
        }
        true
    }
}

macro_rules! each_card {
    ($card:expr, $inner:ident => $body:expr) => {
        match $card {
            #[cfg(feature = "simulated")]
            Card::Simulated($inner) => $body,
            #[cfg(feature = "simulated")]
            Card::Model($inner) => $body,
            Card::Vfio($inner) => $body,
        }
    };
}

impl Mmio for Card {
    fn read_register(&self, offset: u16) -> u64 {
        each_card!(self, card => card.read_register(offset))
    }

    fn write_register(&self, offset: u16, value: u64) {
        each_card!(self, card => card.write_register(offset, value))
    }
}

impl Interrupts for Card {
    fn interrupt_vectors(&self) -> u16 {
        each_card!(self, card => card.interrupt_vectors())
    }

    fn wait_interrupt(&self, vector: u16, timeout: Duration) -> Result<bool, DeviceError> {
        each_card!(self, card => card.wait_interrupt(vector, timeout))
    }
}

impl Device for Card {
    fn name(&self) -> &str {
        each_card!(self, card => card.name())
    }

    fn dma(&self) -> Arc<dyn DmaMapping> {
        each_card!(self, card => card.dma())
    }

    fn reset(&self) -> Result<(), DeviceError> {
        each_card!(self, card => card.reset())
    }
}

/// Opens the two VFIO cards at PCI addresses `primary` and `mirror` in one IOMMU domain.
pub fn vfio_cards(primary: &str, mirror: &str) -> Result<(Card, Card), CardsError> {
    let domain = VfioDomain::new().map_err(|source| CardsError::Vfio {
        address: primary.to_owned(),
        source,
    })?;
    let open = |address: &str| {
        VfioCard::open(address, &domain)
            .map(Card::Vfio)
            .map_err(|source| CardsError::Vfio {
                address: address.to_owned(),
                source,
            })
    };
    Ok((open(primary)?, open(mirror)?))
}

#[cfg(feature = "simulated")]
pub use simulated::{simulated_cards, Model, SimulatedCards};

#[cfg(feature = "simulated")]
mod simulated {
    use super::{Card, CardsError};
    use crate::CardRole;
    use npmu_sim::{CardOptions, ModelCard, ModelCardOptions, SimulatedCard, SimulatedIommu};
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    /// Which model of the NI a simulated card runs.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Model {
        /// The RTL under Verilator, cycle by cycle, on its own thread.
        Verilator,
        /// The golden model, answering at once in the caller's thread.
        Golden,
    }

    /// Where two simulated cards keep their persistent memory, how they are built, and the
    /// simulated IOMMU they share (as two cards behind one host IOMMU).
    #[derive(Clone, Debug)]
    pub struct SimulatedCards {
        pub directory: PathBuf,
        pub model: Model,
        pub card: CardOptions,
        pub iommu: Arc<SimulatedIommu>,
    }

    impl SimulatedCards {
        pub fn in_directory(directory: &Path) -> Self {
            Self {
                directory: directory.to_owned(),
                model: Model::Verilator,
                card: CardOptions::default(),
                iommu: SimulatedIommu::new(),
            }
        }

        /// The file holding the persistent memory of the `role` card.
        pub fn file(&self, role: CardRole) -> PathBuf {
            self.directory.join(format!("{role}.pm"))
        }

        /// Starts the `role` card on its file (created if missing); also how a replacement
        /// card is made after a card's file was lost.
        pub fn open_card(&self, role: CardRole) -> Result<Card, CardsError> {
            std::fs::create_dir_all(&self.directory).map_err(|source| CardsError::Directory {
                path: self.directory.clone(),
                source,
            })?;
            let path = self.file(role);
            let name = role.to_string();
            let iommu = Arc::clone(&self.iommu);
            match self.model {
                Model::Verilator => SimulatedCard::open(&name, &path, iommu, self.card.clone())
                    .map(Card::Simulated)
                    .map_err(|source| CardsError::Simulated { path, source }),
                Model::Golden => {
                    let options = ModelCardOptions {
                        config: self.card.config,
                        management_key: self.card.management_key,
                    };
                    ModelCard::open(&name, &path, iommu, options)
                        .map(|card| Card::Model(Box::new(card)))
                        .map_err(|source| CardsError::Model { path, source })
                }
            }
        }
    }

    /// Starts the primary and the mirror card: files `primary.pm` and `mirror.pm`.
    pub fn simulated_cards(cards: &SimulatedCards) -> Result<(Card, Card), CardsError> {
        Ok((
            cards.open_card(CardRole::Primary)?,
            cards.open_card(CardRole::Mirror)?,
        ))
    }
}
