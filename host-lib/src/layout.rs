//! Where the persistent memory manager keeps its own things on a card: the metadata area at
//! the bottom of persistent memory, the write-intent area after it, its translation entries
//! and contexts, and the window it moves pages through. Everything follows from the card's
//! capabilities, so a volume's layout can be found again from the card alone.
//!
//! ```text
//! page 0                 2 x copy_pages          + 2 x INTENT_SLOT_PAGES
//! | metadata copy 0 | copy 1 | intent slot 0 | slot 1 | data pages ...
//! ```

use crate::error::{CardRole, Error};
use crate::metadata::{first_data_page, INTENT_SLOT_PAGES};
use npmu_driver::Capabilities;

/// Context through which the manager reads and writes the metadata area.
pub const METADATA_CONTEXT: u16 = 0;
/// Context whose entries the manager points at any pages it must move (zeroing, resync).
pub const SCRATCH_CONTEXT: u16 = 1;
/// The first context handed to opened regions.
pub const FIRST_REGION_CONTEXT: u16 = 2;
/// The queue pair this process uses on every card; contexts admit only its requests.
pub const QUEUE: u16 = 0;
pub const QUEUE_ENTRIES: u32 = 64;

/// Largest metadata copy; two copies make the metadata area.
const MAX_COPY_BYTES: u64 = 64 << 10;
/// Largest window of pages moved at once.
const MAX_SCRATCH_BYTES: u64 = 256 << 10;

/// The shape of a card as a volume uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub page_shift: u32,
    pub memory_pages: u64,
    /// Pages of one metadata copy.
    pub copy_pages: u32,
    /// Pages of the scratch window.
    pub scratch_pages: u32,
    pub translation_entries: u32,
    pub contexts: u32,
    pub max_request_bytes: u32,
}

impl Geometry {
    /// The layout of a card with `capabilities`, or why a volume cannot live on it.
    pub fn of(role: CardRole, capabilities: &Capabilities) -> Result<Self, Error> {
        let page_bytes = capabilities.page_bytes();
        let memory_bytes = capabilities.memory_bytes();
        let request = u64::from(capabilities.max_request_bytes);
        // One copy is a 32nd of memory, at least a page, and moved in one request.
        let copy_bytes = (memory_bytes / 32)
            .min(MAX_COPY_BYTES)
            .min(request)
            .max(page_bytes);
        let scratch_bytes = MAX_SCRATCH_BYTES.min(request).max(page_bytes);
        let geometry = Self {
            page_shift: capabilities.page_shift,
            memory_pages: capabilities.memory_pages,
            copy_pages: (copy_bytes / page_bytes) as u32,
            scratch_pages: (scratch_bytes / page_bytes) as u32,
            translation_entries: capabilities.translation_entries,
            contexts: capabilities.contexts,
            max_request_bytes: capabilities.max_request_bytes,
        };
        let unsuitable = |why: String| Error::UnsuitableCard { role, why };
        if u32::from(capabilities.queues) <= u32::from(QUEUE) {
            return Err(unsuitable("it has no queue".into()));
        }
        if geometry.memory_pages > 1 << npmu_abi::PAGE_NUMBER_BITS {
            return Err(unsuitable(format!(
                "it reports {} pages; a translation entry names at most 2^{}",
                geometry.memory_pages,
                npmu_abi::PAGE_NUMBER_BITS
            )));
        }
        if request < page_bytes {
            return Err(unsuitable(format!(
                "its longest request ({request} bytes) is shorter than a page ({page_bytes})"
            )));
        }
        if geometry.contexts <= u32::from(FIRST_REGION_CONTEXT) {
            return Err(unsuitable(format!(
                "it has {} contexts; a volume needs more than {FIRST_REGION_CONTEXT}",
                geometry.contexts
            )));
        }
        if geometry.first_region_entry() >= geometry.translation_entries {
            return Err(unsuitable(format!(
                "its {} translation entries leave none for regions",
                geometry.translation_entries
            )));
        }
        if geometry.first_data_page() >= geometry.memory_pages {
            return Err(unsuitable(format!(
                "its {} pages leave none for data after the metadata",
                geometry.memory_pages
            )));
        }
        Ok(geometry)
    }

    /// The first thing two cards' layouts differ in, with each card's value; `None` if
    /// they can hold the same volume.
    pub fn first_difference(&self, other: &Geometry) -> Option<(&'static str, u64, u64)> {
        [
            (
                "page shift",
                self.page_shift.into(),
                other.page_shift.into(),
            ),
            ("memory pages", self.memory_pages, other.memory_pages),
            (
                "metadata copy pages",
                self.copy_pages.into(),
                other.copy_pages.into(),
            ),
            (
                "scratch pages",
                self.scratch_pages.into(),
                other.scratch_pages.into(),
            ),
            (
                "translation entries",
                self.translation_entries.into(),
                other.translation_entries.into(),
            ),
            ("contexts", self.contexts.into(), other.contexts.into()),
            (
                "longest request",
                self.max_request_bytes.into(),
                other.max_request_bytes.into(),
            ),
        ]
        .into_iter()
        .find(|(_, mine, theirs)| mine != theirs)
    }

    pub fn page_bytes(&self) -> u64 {
        1 << self.page_shift
    }

    pub fn copy_bytes(&self) -> u64 {
        u64::from(self.copy_pages) << self.page_shift
    }

    pub fn scratch_bytes(&self) -> u64 {
        u64::from(self.scratch_pages) << self.page_shift
    }

    /// Pages of the metadata area (two copies) and the intent area (two slots), which the
    /// metadata context maps.
    pub fn manager_pages(&self) -> u32 {
        first_data_page(self.copy_pages) as u32
    }

    /// The first page of the intent area.
    pub fn first_intent_page(&self) -> u32 {
        2 * self.copy_pages
    }

    pub fn intent_slot_bytes(&self) -> u64 {
        u64::from(INTENT_SLOT_PAGES) << self.page_shift
    }

    pub fn first_data_page(&self) -> u64 {
        first_data_page(self.copy_pages)
    }

    pub fn data_pages(&self) -> u64 {
        self.memory_pages - self.first_data_page()
    }

    /// Translation entries of the metadata context start at 0, the scratch window's follow.
    pub fn scratch_first_entry(&self) -> u32 {
        self.manager_pages()
    }

    pub fn first_region_entry(&self) -> u32 {
        self.manager_pages() + self.scratch_pages
    }

    /// The most pages one open region can map.
    pub fn max_region_pages(&self) -> u64 {
        u64::from(self.translation_entries - self.first_region_entry()).min(self.data_pages())
    }

    pub fn max_region_bytes(&self) -> u64 {
        self.max_region_pages() << self.page_shift
    }

    pub fn pages_for(&self, bytes: u64) -> u64 {
        bytes.div_ceil(self.page_bytes())
    }
}

/// Network virtual base of a context: each context has its own 1 TiB of address space, so
/// an address names its context at a glance in a trace.
pub fn network_base(context: u16) -> u64 {
    u64::from(context) << 40
}

#[cfg(test)]
mod tests {
    use super::*;
    use npmu_abi::Config;

    #[test]
    fn both_configurations_leave_room_for_regions() {
        let sim = Geometry::of(CardRole::Primary, &Capabilities::of_config(&Config::SIM)).unwrap();
        assert_eq!((sim.copy_pages, sim.scratch_pages), (16, 64));
        assert_eq!(sim.first_data_page(), 34);
        assert_eq!(sim.max_region_pages(), 4096 - 34 - 64);
        let ice40 =
            Geometry::of(CardRole::Primary, &Capabilities::of_config(&Config::ICE40)).unwrap();
        assert_eq!((ice40.copy_pages, ice40.scratch_pages), (4, 16));
        assert_eq!(ice40.first_data_page(), 10);
        assert_eq!(ice40.max_region_pages(), 118);
    }

    #[test]
    fn a_card_without_room_is_refused() {
        let mut small = Capabilities::of_config(&Config::ICE40);
        small.translation_entries = 24;
        assert!(matches!(
            Geometry::of(CardRole::Mirror, &small),
            Err(Error::UnsuitableCard {
                role: CardRole::Mirror,
                ..
            })
        ));
        let mut few_contexts = Capabilities::of_config(&Config::ICE40);
        few_contexts.contexts = 2;
        assert!(Geometry::of(CardRole::Primary, &few_contexts).is_err());
    }
}
