//! The command engine: host queues, descriptor fetch, DMA to and from host memory,
//! completions and interrupts, in front of the protection and translation core.

pub mod dma_reader;
pub mod realigner;
