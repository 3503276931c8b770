//! Properties of translation that hold for every request and every mapping.

use npmu_abi::program::{self, ContextSettings};
use npmu_abi::{Config, Fault, Operation, Request};
use npmu_model::{Memory, NetworkInterface, SparseMemory};
use proptest::prelude::*;

const KEY: u64 = 1;
const PAGE: u64 = 4096;

/// Context 0 over `pages` (None: a hole) at `base`.
fn mapped(base_page: u64, pages: &[Option<u32>]) -> (NetworkInterface, u32, u64) {
    let mut ni = NetworkInterface::new(Config::SIM, KEY, SparseMemory::new()).unwrap();
    program::unlock(&mut ni, KEY).unwrap();
    program::write_entries(&mut ni, 50, pages).unwrap();
    let base = base_page * PAGE;
    let settings = ContextSettings {
        tag: 3,
        read: true,
        write: true,
        initiator: None,
        base,
        pages: pages.len() as u32,
        first_entry: 50,
    };
    let key = program::register_context(&mut ni, 0, &settings).unwrap();
    (ni, key, base)
}

fn page_list() -> impl Strategy<Value = Vec<Option<u32>>> {
    prop::collection::vec(prop::option::weighted(0.9, 0u32..1000), 1..12)
}

proptest! {
    #[test]
    fn a_translation_covers_the_range_exactly_within_mapped_pages(
        pages in page_list(),
        base_page in prop_oneof![0u64..1 << 40, Just((1u64 << 52) - 12)],
        offset in 0u64..12 * PAGE,
        length in 0u32..5 * PAGE as u32,
    ) {
        let (ni, key, base) = mapped(base_page, &pages);
        let request = Request { operation: Operation::Read, context: 0, key, initiator: 0,
            address: base.wrapping_add(offset), length };
        let inside = offset + u64::from(length) <= pages.len() as u64 * PAGE;
        match ni.translate(&request) {
            Ok(segments) => {
                prop_assert!(inside);
                let total: u64 = segments.iter().map(|s| u64::from(s.length)).sum();
                prop_assert_eq!(total, u64::from(length));
                let mut virtual_address = offset;
                for segment in segments {
                    let page = pages[(virtual_address / PAGE) as usize].unwrap();
                    prop_assert_eq!(segment.address, u64::from(page) * PAGE + virtual_address % PAGE);
                    prop_assert!(segment.address % PAGE + u64::from(segment.length) <= PAGE);
                    virtual_address += u64::from(segment.length);
                }
            }
            Err(Fault::OutOfBounds) => prop_assert!(!inside),
            Err(Fault::PageNotMapped) => {
                let first = offset / PAGE;
                let last = (offset + u64::from(length) - 1) / PAGE;
                prop_assert!((first..=last).any(|page| pages[page as usize].is_none()));
            }
            Err(other) => prop_assert!(false, "unexpected {other}"),
        }
    }

    #[test]
    fn what_a_write_stores_a_read_returns_and_nothing_else_changes(
        pages in prop::collection::vec(0u32..1000, 1..6).prop_map(|mut p| { p.sort(); p.dedup(); p }),
        offset in 0u64..6 * PAGE,
        data in prop::collection::vec(any::<u8>(), 0..3 * PAGE as usize),
    ) {
        let mapping: Vec<Option<u32>> = pages.iter().copied().map(Some).collect();
        let (mut ni, key, base) = mapped(9, &mapping);
        let write = Request { operation: Operation::Write, context: 0, key, initiator: 0,
            address: base + offset, length: data.len() as u32 };
        if ni.execute(&write, &data).is_ok() {
            let read = Request { operation: Operation::Read, ..write };
            prop_assert_eq!(ni.execute(&read, &[]).unwrap(), data.clone());
            let written: u64 = (0..1000u64 * PAGE).step_by(PAGE as usize)
                .filter(|page| { let mut bytes = vec![0; PAGE as usize]; ni.memory().read(*page, &mut bytes); bytes.iter().any(|b| *b != 0) })
                .count() as u64;
            prop_assert!(written <= pages.len() as u64, "only mapped pages were touched");
        } else {
            prop_assert!(offset + data.len() as u64 > pages.len() as u64 * PAGE);
            prop_assert!(ni.memory().first_difference(&SparseMemory::new()).is_none());
        }
    }
}
