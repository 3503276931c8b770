//! Every region verb of seed 001 on a volume of two simulated cards, on the Verilator model
//! of the NI and on the golden model.

mod common;

use common::pattern;
use npmu::cards::{simulated_cards, Model, SimulatedCards};
use npmu::{CardRole, Mirror, ReadFrom, Volume, VolumeOptions};
use rstest::rstest;
use std::os::unix::fs::FileExt;
use std::path::Path;

const BASE_POINTER: u64 = 0x7f00_0000_0000;

fn cards(directory: &Path, model: Model) -> SimulatedCards {
    SimulatedCards {
        model,
        ..SimulatedCards::in_directory(directory)
    }
}

fn open(cards: &SimulatedCards) -> Volume<npmu::Card> {
    let (primary, mirror) = simulated_cards(cards).unwrap();
    Volume::open(primary, mirror, VolumeOptions::default()).unwrap()
}

#[rstest]
fn every_verb_on_both_models(#[values(Model::Verilator, Model::Golden)] model: Model) {
    let directory = tempfile::tempdir().unwrap();
    let cards = cards(directory.path(), model);
    let (primary, mirror) = simulated_cards(&cards).unwrap();
    let volume = Volume::format(primary, mirror, "verbs", false, VolumeOptions::default()).unwrap();
    let info = volume.info();
    assert_eq!(
        (info.name.as_str(), info.page_bytes, info.regions),
        ("verbs", 4096, 0)
    );

    volume
        .create_region("log", 3 * 4096 + 100, BASE_POINTER)
        .unwrap();
    volume.create_region("table", 10, 0).unwrap();
    assert_eq!(volume.list_regions(), vec!["log", "table"]);
    assert_eq!(volume.info().free_pages, info.free_pages - 5);

    let attributes = volume.read_attributes("log").unwrap();
    assert_eq!(attributes.get_string("name").unwrap(), "log");
    assert_eq!(attributes.get_u64("size").unwrap(), 3 * 4096 + 100);
    assert_eq!(attributes.get_u64("base_pointer").unwrap(), BASE_POINTER);
    assert_eq!(attributes.get_u64("pages").unwrap(), 4);
    assert_eq!(attributes.get_u64("last_open_time").unwrap(), 0);
    assert!(attributes.get_u64("creation_time").unwrap() > 0);
    // SAFETY: getuid has no preconditions.
    assert_eq!(attributes.get_u32("owner").unwrap(), unsafe {
        libc::getuid()
    });

    let region = volume.open_region("log").unwrap();
    assert_eq!(region.base_pointer(), BASE_POINTER);
    assert_eq!(region.size(), 3 * 4096 + 100);
    let address = region.network_address(CardRole::Mirror, BASE_POINTER + 5);
    assert_eq!(address, Some(region.network_base(CardRole::Mirror) + 5));
    let end = BASE_POINTER + region.size();
    assert_eq!(region.network_address(CardRole::Primary, end), None);
    assert_eq!(
        region.network_address(CardRole::Primary, BASE_POINTER - 1),
        None
    );
    assert!(region.key(CardRole::Primary).is_some() && region.key(CardRole::Mirror).is_some());
    assert!(
        volume
            .read_attributes("log")
            .unwrap()
            .get_u64("last_open_time")
            .unwrap()
            > 0
    );

    // A new region reads as zeros, whatever the pages held before.
    let mut fresh = vec![0xffu8; 3 * 4096 + 100];
    volume
        .read_region(&region, &mut fresh, BASE_POINTER, ReadFrom::Any)
        .unwrap();
    assert!(fresh.iter().all(|&byte| byte == 0));

    let data = pattern(5000, 3);
    volume
        .write_region(&region, &data, BASE_POINTER + 4000, Mirror::Both)
        .unwrap();
    for from in [ReadFrom::Any, ReadFrom::Primary, ReadFrom::Mirror] {
        let mut back = vec![0u8; 5000];
        volume
            .read_region(&region, &mut back, BASE_POINTER + 4000, from)
            .unwrap();
        assert_eq!(back, data, "{from:?}");
    }
    // One half alone, for recovery: the other keeps what it had.
    volume
        .write_region(&region, b"primary only", BASE_POINTER, Mirror::Primary)
        .unwrap();
    volume
        .write_region(&region, b"mirror  only", BASE_POINTER, Mirror::Mirror)
        .unwrap();
    let mut primary_half = [0u8; 12];
    let mut mirror_half = [0u8; 12];
    volume
        .read_region(&region, &mut primary_half, BASE_POINTER, ReadFrom::Primary)
        .unwrap();
    volume
        .read_region(&region, &mut mirror_half, BASE_POINTER, ReadFrom::Mirror)
        .unwrap();
    assert_eq!(
        (&primary_half, &mirror_half),
        (b"primary only", b"mirror  only")
    );
    volume.close_region(region).unwrap();

    volume.delete_region("table").unwrap();
    assert_eq!(volume.list_regions(), vec!["log"]);
    drop(volume);

    let volume = open(&cards);
    assert_eq!(volume.list_regions(), vec!["log"]);
    let region = volume.open_region("log").unwrap();
    let mut back = vec![0u8; 5000];
    volume
        .read_region(&region, &mut back, BASE_POINTER + 4000, ReadFrom::Mirror)
        .unwrap();
    assert_eq!(back, data);
}

/// A linked list whose links are region pointers, written from one process's view and
/// followed after a reopen: the base pointer makes them valid for every opener (seed 001
/// [0069], [0074]).
#[test]
fn pointers_stored_in_a_region_are_followed_after_reopening() {
    const NODE: u64 = 16;
    let directory = tempfile::tempdir().unwrap();
    let cards = cards(directory.path(), Model::Verilator);
    let (primary, mirror) = simulated_cards(&cards).unwrap();
    let volume = Volume::format(primary, mirror, "lists", false, VolumeOptions::default()).unwrap();
    volume
        .create_region("list", 64 * 1024, BASE_POINTER)
        .unwrap();
    let region = volume.open_region("list").unwrap();
    // Nodes scattered over the region, each {value, next}; the head at the base pointer.
    let slots = [0u64, 40_000, 8_192, 60_000, 100];
    for (index, slot) in slots.iter().enumerate() {
        let next = slots.get(index + 1).map_or(0, |next| BASE_POINTER + next);
        let mut node = Vec::new();
        node.extend_from_slice(&(index as u64 * 11).to_le_bytes());
        node.extend_from_slice(&next.to_le_bytes());
        volume
            .write_region(&region, &node, BASE_POINTER + slot, Mirror::Both)
            .unwrap();
    }
    drop(region);
    drop(volume);

    let volume = open(&cards);
    let region = volume.open_region("list").unwrap();
    let mut values = Vec::new();
    let mut pointer = region.base_pointer();
    while pointer != 0 {
        let mut node = [0u8; NODE as usize];
        volume
            .read_region(&region, &mut node, pointer, ReadFrom::Any)
            .unwrap();
        values.push(u64::from_le_bytes(node[..8].try_into().unwrap()));
        pointer = u64::from_le_bytes(node[8..].try_into().unwrap());
    }
    assert_eq!(values, vec![0, 11, 22, 33, 44]);
}

/// Freed holes are reused: a region spans several extents, yet reads as one range, and its
/// bytes sit on the pages the metadata names, on both cards.
#[test]
fn a_region_over_fragmented_free_space_is_contiguous_to_its_users() {
    let directory = tempfile::tempdir().unwrap();
    let cards = cards(directory.path(), Model::Verilator);
    let (primary, mirror) = simulated_cards(&cards).unwrap();
    let volume = Volume::format(primary, mirror, "holes", false, VolumeOptions::default()).unwrap();
    for name in ["a", "b", "c", "d"] {
        volume.create_region(name, 2 * 4096, 0).unwrap();
    }
    volume.delete_region("a").unwrap();
    volume.delete_region("c").unwrap();
    volume.create_region("spread", 6 * 4096, 0).unwrap();
    let attributes = volume.read_attributes("spread").unwrap();
    assert_eq!(attributes.get_u32("extents").unwrap(), 3);
    let region = volume.open_region("spread").unwrap();
    let data = pattern(6 * 4096, 77);
    volume
        .write_region(&region, &data, 0, Mirror::Both)
        .unwrap();
    let mut back = vec![0u8; data.len()];
    volume
        .read_region(&region, &mut back, 0, ReadFrom::Any)
        .unwrap();
    assert_eq!(back, data);
    drop(region);
    drop(volume);
    // The metadata and intent areas take the first 34 pages; a and c held pages 34-35 and
    // 38-39, so the region's pages are 34, 35, 38, 39, 42, 43 on each card's file.
    for role in CardRole::BOTH {
        let memory = std::fs::File::open(cards.file(role)).unwrap();
        for (index, page) in [34u64, 35, 38, 39, 42, 43].into_iter().enumerate() {
            let mut bytes = vec![0u8; 4096];
            memory.read_exact_at(&mut bytes, page * 4096).unwrap();
            assert!(
                bytes == data[index * 4096..(index + 1) * 4096],
                "{role} page {page}"
            );
        }
    }
}
