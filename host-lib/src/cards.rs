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
    #[cfg(feature = "simulated")]
    Simulated(npmu_sim::SimulatedCard),
    Vfio(VfioCard),
}

impl Card {
    /// The simulated card underneath, for what only a simulation can do (fail on request,
    /// count clocks).
    #[cfg(feature = "simulated")]
    pub fn simulated(&self) -> Option<&npmu_sim::SimulatedCard> {
        match self {
            Card::Simulated(card) => Some(card),
            Card::Vfio(_) => None,
        }
    }
}

macro_rules! each_card {
    ($card:expr, $inner:ident => $body:expr) => {
        match $card {
            #[cfg(feature = "simulated")]
            Card::Simulated($inner) => $body,
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
pub use simulated::{simulated_cards, SimulatedCards};

#[cfg(feature = "simulated")]
mod simulated {
    use super::{Card, CardsError};
    use npmu_sim::{CardOptions, SimulatedCard, SimulatedIommu};
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    /// Where two simulated cards keep their persistent memory, and how they are built.
    #[derive(Clone, Debug)]
    pub struct SimulatedCards {
        pub directory: PathBuf,
        pub card: CardOptions,
    }

    impl SimulatedCards {
        pub fn in_directory(directory: &Path) -> Self {
            Self {
                directory: directory.to_owned(),
                card: CardOptions::default(),
            }
        }

        pub fn file(&self, role: crate::CardRole) -> PathBuf {
            self.directory.join(format!("{role}.pm"))
        }
    }

    /// Starts the primary and the mirror card (files `primary.pm` and `mirror.pm` of the
    /// directory, created if missing) behind one simulated IOMMU, as two cards behind one
    /// host IOMMU.
    pub fn simulated_cards(cards: &SimulatedCards) -> Result<(Card, Card), CardsError> {
        std::fs::create_dir_all(&cards.directory).map_err(|source| CardsError::Directory {
            path: cards.directory.clone(),
            source,
        })?;
        let iommu = SimulatedIommu::new();
        let open = |role: crate::CardRole| {
            let path = cards.file(role);
            SimulatedCard::open(
                &format!("{role}"),
                &path,
                Arc::clone(&iommu),
                cards.card.clone(),
            )
            .map(Card::Simulated)
            .map_err(|source| CardsError::Simulated { path, source })
        };
        Ok((
            open(crate::CardRole::Primary)?,
            open(crate::CardRole::Mirror)?,
        ))
    }
}
