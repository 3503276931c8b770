//! Everything the driver can refuse or meet, each with its own variant.

use crate::dma::DmaError;
use crate::flags::QueueStatus;
use npmu_abi::program::{ProgramError, QueueError};
use npmu_abi::queue::DescriptorError;
use npmu_device::DeviceError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DriverError {
    #[error("{card}: register {offset:#x} reads all ones: the card does not answer")]
    NoAnswer { card: String, offset: u16 },
    #[error("{card}: not an npmu card (identity register reads {found:#x})")]
    NotAnNpmu { card: String, found: u64 },
    #[error("{card}: reports an impossible capability: {what}")]
    BadCapability { card: String, what: String },
    #[error("{card}: the DMA domain given is not the one the card's DMA goes through")]
    ForeignDomain { card: String },
    #[error("{card} failed earlier ({why}); reset it or open it again")]
    Failed { card: String, why: String },
    #[error("{card}: {what} did not finish within {milliseconds} ms; the card is marked failed")]
    Timeout {
        card: String,
        what: String,
        milliseconds: u128,
    },
    #[error("{card}: programming the translation tables: {source}")]
    Program { card: String, source: ProgramError },
    #[error("{card}: queue {queue} refused its settings ({source})")]
    QueueRefused {
        card: String,
        queue: u16,
        source: QueueError,
    },
    #[error("{card}: queue {queue} does not exist (the card has {queues})")]
    NoSuchQueue {
        card: String,
        queue: u16,
        queues: u16,
    },
    #[error("{card}: queue {queue} is not set up")]
    QueueNotSetUp { card: String, queue: u16 },
    #[error("{card}: queue {queue} still has {outstanding} descriptors outstanding")]
    QueueBusy {
        card: String,
        queue: u16,
        outstanding: u32,
    },
    #[error("{card}: queue {queue} entries must be a power of two from 2 to 4096, not {entries}")]
    BadQueueEntries {
        card: String,
        queue: u16,
        entries: u32,
    },
    #[error("{card}: queue {queue}'s submission ring is full")]
    QueueFull { card: String, queue: u16 },
    #[error("{card}: queue {queue} halted ({status:?})")]
    QueueHalted {
        card: String,
        queue: u16,
        status: QueueStatus,
    },
    #[error("{card}: tag {tag} is not outstanding on queue {queue}")]
    UnknownTag { card: String, queue: u16, tag: u32 },
    #[error("{card}: a transfer of {length} bytes is outside 1 to {max} bytes")]
    BadLength { card: String, length: u64, max: u32 },
    #[error("{card}: the buffer belongs to another DMA domain")]
    BufferOfAnotherDomain { card: String },
    #[error(
        "{card}: a {operation} needs a buffer the card may {needs}, not one mapped {direction:?}"
    )]
    WrongDirection {
        card: String,
        operation: &'static str,
        needs: &'static str,
        direction: npmu_device::DmaDirection,
    },
    #[error("{card}: descriptor {tag} on queue {queue} failed after {bytes_done} bytes: {error}")]
    Descriptor {
        card: String,
        queue: u16,
        tag: u32,
        bytes_done: u32,
        error: DescriptorError,
    },
    #[error("{card}: a completion on queue {queue} carries status {status}, which no outcome has")]
    UnknownStatus {
        card: String,
        queue: u16,
        status: u8,
    },
    #[error(transparent)]
    Dma(#[from] DmaError),
    #[error("{card}: {source}")]
    Device { card: String, source: DeviceError },
}

impl DriverError {
    /// The fault the NI reported for a descriptor, if that is what this is.
    pub fn descriptor_error(&self) -> Option<DescriptorError> {
        match self {
            DriverError::Descriptor { error, .. } => Some(*error),
            _ => None,
        }
    }
}
