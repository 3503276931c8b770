//! Named configurations: the parameters one build of the network interface is made with.

use thiserror::Error;

/// Parameters of one build. The hardware reports each of them in a capability register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub name: &'static str,
    /// Address contexts (a power of two).
    pub contexts: u32,
    /// Translation table entries (a power of two).
    pub translation_entries: u32,
    /// log2 of the page size.
    pub page_shift: u32,
    /// Data path width in bytes (a power of two, at most 8).
    pub data_bytes: u32,
    /// Longest request in bytes.
    pub max_request_bytes: u32,
    /// Physical pages of persistent memory behind the memory port.
    pub memory_pages: u64,
    /// Clock the build is meant to close timing at, for throughput figures.
    pub target_clock_mhz: u32,
    /// Host queue pairs (a power of two, at most 16).
    pub queues: u32,
    /// Longest DMA write, in bytes (PCIe max payload size: a power of two, 64 to 4096).
    pub max_payload_bytes: u32,
    /// Longest DMA read, in bytes (PCIe max read request size: a power of two, 64 to 4096).
    pub max_read_request_bytes: u32,
    /// DMA reads of data in flight at most (a power of two, at most 32).
    pub dma_read_tags: u32,
    /// Entries of the command engine's internal queues: host writes awaiting their
    /// response, requests between its stages (a power of two, 2 to 64).
    pub engine_queue_depth: u32,
}

impl Config {
    /// The default: a simulation-sized card.
    pub const SIM: Config = Config {
        name: "sim",
        contexts: 256,
        translation_entries: 4096,
        page_shift: 12,
        data_bytes: 8,
        max_request_bytes: 1 << 20,
        memory_pages: 1 << 18,
        target_clock_mhz: 250,
        queues: 16,
        max_payload_bytes: 256,
        max_read_request_bytes: 512,
        dma_read_tags: 32,
        engine_queue_depth: 64,
    };

    /// Small enough for an iCE40 UP5K: its 128 KiB of SPRAM as persistent memory.
    pub const ICE40: Config = Config {
        name: "ice40",
        contexts: 16,
        translation_entries: 256,
        page_shift: 10,
        data_bytes: 4,
        max_request_bytes: 16 << 10,
        memory_pages: 128,
        target_clock_mhz: 24,
        queues: 2,
        max_payload_bytes: 128,
        max_read_request_bytes: 256,
        dma_read_tags: 8,
        engine_queue_depth: 2,
    };

    /// The LiteFury's (Artix-7, PCIe x1 Gen2; built by `npmu synth --board litefury`, not
    /// in [`Config::ALL`], which lists the simulated builds): the default's tables, 256 KiB of block RAM
    /// as persistent memory, and DMA in 128-byte packets, the smallest maximum payload
    /// and read request sizes a host may set, so no setting of the host's makes them too
    /// long.
    pub const ARTIX7: Config = Config {
        name: "artix7",
        memory_pages: 64,
        target_clock_mhz: 125,
        max_payload_bytes: 128,
        max_read_request_bytes: 128,
        ..Config::SIM
    };

    pub const ALL: [Config; 2] = [Config::SIM, Config::ICE40];

    pub fn by_name(name: &str) -> Result<Config, ConfigError> {
        Config::ALL
            .into_iter()
            .find(|config| config.name == name)
            .ok_or_else(|| ConfigError::Unknown(name.to_owned()))
    }

    pub const fn page_bytes(&self) -> u64 {
        1 << self.page_shift
    }

    pub const fn memory_bytes(&self) -> u64 {
        self.memory_pages << self.page_shift
    }

    // The hardware's generic parameters, derived here so that no build restates them.

    pub const fn data_bits(&self) -> usize {
        self.data_bytes as usize * 8
    }

    pub const fn context_table_bits(&self) -> usize {
        self.contexts.ilog2() as usize
    }

    pub const fn entry_table_bits(&self) -> usize {
        self.translation_entries.ilog2() as usize
    }

    /// log2 of the beats of one longest DMA read: a slot of a DMA reader's buffer.
    const fn read_slot_bits(&self) -> usize {
        (self.max_read_request_bytes / self.data_bytes).ilog2() as usize
    }

    /// Address bits of the descriptor fetcher's buffer: a slot per queue.
    pub const fn fetch_buffer_bits(&self) -> usize {
        self.queues.ilog2() as usize + self.read_slot_bits()
    }

    /// Address bits of the data reader's buffer: a slot per tag.
    pub const fn read_buffer_bits(&self) -> usize {
        self.dma_read_tags.ilog2() as usize + self.read_slot_bits()
    }

    pub const fn engine_queue_bits(&self) -> usize {
        self.engine_queue_depth.ilog2() as usize
    }

    /// What capability register `register` reads on a build of this configuration; `None`
    /// for a register that is not one of [`crate::registers::CAPABILITIES`].
    pub fn capability(&self, register: crate::registers::Register) -> Option<u64> {
        use crate::registers as reg;
        Some(match register {
            reg::IDENTITY => reg::identity::VALUE,
            reg::CONTEXTS => self.contexts.into(),
            reg::TRANSLATION_ENTRIES => self.translation_entries.into(),
            reg::PAGE_SHIFT => self.page_shift.into(),
            reg::DATA_BYTES => self.data_bytes.into(),
            reg::MAX_REQUEST_BYTES => self.max_request_bytes.into(),
            reg::MEMORY_PAGES => self.memory_pages,
            reg::QUEUES => self.queues.into(),
            reg::MAX_PAYLOAD_BYTES => self.max_payload_bytes.into(),
            reg::MAX_READ_REQUEST_BYTES => self.max_read_request_bytes.into(),
            reg::DMA_READ_TAGS => self.dma_read_tags.into(),
            _ => return None,
        })
    }

    /// Checks the parameters against the limits of the hardware.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |reason: &str| Err(ConfigError::Invalid(self.name, reason.to_owned()));
        if !self.contexts.is_power_of_two() || self.contexts > 1 << crate::CONTEXT_ID_BITS {
            return invalid("contexts must be a power of two, at most 65536");
        }
        if !self.translation_entries.is_power_of_two()
            || self.translation_entries > 1 << crate::ENTRY_INDEX_BITS
        {
            return invalid("translation entries must be a power of two, at most 65536");
        }
        if !self.data_bytes.is_power_of_two() || self.data_bytes > 8 {
            return invalid("data bytes must be a power of two, at most 8");
        }
        if self.page_shift < 6 || self.page_shift > 16 {
            return invalid("pages must be 64 bytes to 64 KiB");
        }
        let max_pages = u64::from(crate::PAGE_QUEUE_DEPTH) << self.page_shift;
        if self.max_request_bytes == 0 || u64::from(self.max_request_bytes) > max_pages {
            return invalid("the longest request must be 1 byte to 256 pages");
        }
        if self.memory_pages == 0
            || self.memory_pages > 1 << crate::PAGE_NUMBER_BITS
            || self.memory_bytes() > 1 << crate::MEMORY_ADDRESS_BITS
        {
            return invalid("persistent memory must be 1 page to 2^32 pages and 2^48 bytes");
        }
        if !self.queues.is_power_of_two() || self.queues > u32::from(crate::registers::MAX_QUEUES) {
            return invalid("queues must be a power of two, at most 16");
        }
        let transfer = |bytes: u32| bytes.is_power_of_two() && (64..=4096).contains(&bytes);
        if !transfer(self.max_payload_bytes) || !transfer(self.max_read_request_bytes) {
            return invalid("DMA transfers must be a power of two from 64 to 4096 bytes");
        }
        if self.max_read_request_bytes / self.data_bytes > 128 {
            return invalid("a read of the longest size may span at most 128 data-path beats");
        }
        if !self.dma_read_tags.is_power_of_two() || self.dma_read_tags > 32 {
            return invalid("DMA read tags must be a power of two, at most 32");
        }
        if !self.engine_queue_depth.is_power_of_two()
            || !(2..=64).contains(&self.engine_queue_depth)
        {
            return invalid("engine queues must hold a power of two from 2 to 64 entries");
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("unknown configuration {0:?} (known: sim, ice40)")]
    Unknown(String),
    #[error("configuration {0}: {1}")]
    Invalid(&'static str, String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(Config::SIM)]
    #[case(Config::ICE40)]
    fn named_configurations_are_valid(#[case] config: Config) {
        config.validate().unwrap();
        assert_eq!(Config::by_name(config.name), Ok(config));
    }

    #[test]
    fn the_litefury_configuration_is_valid_and_its_dma_fits_any_host_setting() {
        Config::ARTIX7.validate().unwrap();
        // 128 bytes: the smallest maximum payload and read request size PCIe allows.
        assert_eq!(Config::ARTIX7.max_payload_bytes, 128);
        assert_eq!(Config::ARTIX7.max_read_request_bytes, 128);
    }

    #[test]
    fn the_default_is_at_least_as_large_as_promised() {
        let sim = Config::SIM;
        assert!(sim.contexts >= 256);
        assert!(sim.translation_entries >= 4096);
        assert_eq!(sim.page_bytes(), 4096);
    }

    #[rstest]
    #[case(Config { contexts: 100, ..Config::SIM })]
    #[case(Config { data_bytes: 16, ..Config::SIM })]
    #[case(Config { page_shift: 4, ..Config::SIM })]
    #[case(Config { max_request_bytes: 0, ..Config::SIM })]
    #[case(Config { max_request_bytes: (256 << 12) + 1, ..Config::SIM })]
    #[case(Config { memory_pages: 0, ..Config::SIM })]
    #[case(Config { queues: 3, ..Config::SIM })]
    #[case(Config { max_payload_bytes: 100, ..Config::SIM })]
    #[case(Config { max_read_request_bytes: 8192, ..Config::SIM })]
    #[case(Config { dma_read_tags: 64, ..Config::SIM })]
    #[case(Config { engine_queue_depth: 48, ..Config::SIM })]
    #[case(Config { data_bytes: 4, max_read_request_bytes: 1024, ..Config::SIM })]
    fn invalid_parameters_are_refused(#[case] config: Config) {
        assert!(matches!(config.validate(), Err(ConfigError::Invalid(..))));
    }

    #[test]
    fn unknown_names_are_refused() {
        assert_eq!(
            Config::by_name("artix"),
            Err(ConfigError::Unknown("artix".into()))
        );
    }
}
