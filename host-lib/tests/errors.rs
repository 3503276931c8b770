//! Every verb with wrong arguments, and every refusal of the volume: a typed error, and
//! nothing changed on the cards.

mod common;

use common::{format, pattern, TestVolume};
use npmu::cards::{simulated_cards, SimulatedCards};
use npmu::{CardRole, Error, Mirror, ReadFrom, Volume, VolumeOptions};
use rstest::rstest;
use std::path::Path;

const BASE: u64 = 0x4000;

/// What a refusal must leave as it was.
fn snapshot(volume: &TestVolume) -> (Vec<String>, u64, u64) {
    let info = volume.info();
    (volume.list_regions(), info.free_pages, info.sequence)
}

fn ice40(directory: &Path) -> SimulatedCards {
    let mut cards = SimulatedCards::in_directory(directory);
    cards.card.config = npmu_abi::Config::ICE40;
    cards
}

fn format_ice40(directory: &Path) -> TestVolume {
    let (primary, mirror) = simulated_cards(&ice40(directory)).unwrap();
    Volume::format(primary, mirror, "small", false, VolumeOptions::default()).unwrap()
}

#[rstest]
#[case::empty("")]
#[case::too_long(&"n".repeat(64))]
#[case::nul("a\0b")]
fn a_bad_name_is_refused_by_every_verb(#[case] name: &str) {
    let directory = tempfile::tempdir().unwrap();
    let volume = format(directory.path());
    let before = snapshot(&volume);
    let bad = |result: Result<(), Error>| matches!(result, Err(Error::BadName { .. }));
    assert!(bad(volume.create_region(name, 4096, 0)));
    assert!(bad(volume.delete_region(name)));
    assert!(bad(volume.open_region(name).map(drop)));
    assert!(bad(volume.read_attributes(name).map(drop)));
    assert_eq!(snapshot(&volume), before);
}

#[test]
fn the_longest_name_is_accepted() {
    let directory = tempfile::tempdir().unwrap();
    let volume = format(directory.path());
    let name = "n".repeat(63);
    volume.create_region(&name, 1, 0).unwrap();
    assert_eq!(volume.list_regions(), vec![name]);
}

#[test]
fn bad_sizes_base_pointers_and_duplicates_change_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let volume = format(directory.path());
    volume.create_region("taken", 4096, 0).unwrap();
    let before = snapshot(&volume);
    let max = volume.info().max_region_bytes;
    assert!(matches!(
        volume.create_region("zero", 0, 0),
        Err(Error::BadSize { size: 0, .. })
    ));
    assert!(matches!(
        volume.create_region("huge", max + 1, 0),
        Err(Error::BadSize { .. })
    ));
    assert!(matches!(
        volume.create_region("wraps", 4096, u64::MAX - 4094),
        Err(Error::BaseWraps { .. })
    ));
    assert!(matches!(
        volume.create_region("taken", 4096, 0),
        Err(Error::RegionExists(name)) if name == "taken"
    ));
    assert_eq!(snapshot(&volume), before);
    // The last byte of the address space is a valid end.
    volume.create_region("top", 4096, u64::MAX - 4095).unwrap();
}

#[test]
fn unknown_regions_are_named_in_the_error() {
    let directory = tempfile::tempdir().unwrap();
    let volume = format(directory.path());
    let before = snapshot(&volume);
    for outcome in [
        volume.delete_region("ghost"),
        volume.open_region("ghost").map(drop),
        volume.read_attributes("ghost").map(drop),
    ] {
        assert!(matches!(outcome, Err(Error::NoSuchRegion(name)) if name == "ghost"));
    }
    assert_eq!(snapshot(&volume), before);
}

#[test]
fn an_open_region_cannot_be_deleted_until_every_handle_is_closed() {
    let directory = tempfile::tempdir().unwrap();
    let volume = format(directory.path());
    volume.create_region("busy", 4096, 0).unwrap();
    let first = volume.open_region("busy").unwrap();
    let second = volume.open_region("busy").unwrap();
    assert_eq!(
        volume
            .read_attributes("busy")
            .unwrap()
            .get_u32("open_handles")
            .unwrap(),
        2
    );
    assert!(matches!(
        volume.delete_region("busy"),
        Err(Error::RegionOpen { handles: 2, .. })
    ));
    volume.close_region(first).unwrap();
    drop(second);
    volume.delete_region("busy").unwrap();
    assert!(volume.list_regions().is_empty());
}

#[rstest]
#[case::below_base(BASE - 1, 1)]
#[case::past_the_end(BASE + 4096, 1)]
#[case::straddles_the_end(BASE + 4000, 200)]
#[case::longer_than_the_region(BASE, 4097)]
#[case::wraps(u64::MAX - 2, 8)]
fn pointers_outside_the_region_are_refused_before_any_dma(
    #[case] pointer: u64,
    #[case] length: usize,
) {
    let directory = tempfile::tempdir().unwrap();
    let volume = format(directory.path());
    volume.create_region("bounded", 4096, BASE).unwrap();
    let region = volume.open_region("bounded").unwrap();
    let clocks_before = volume
        .inspect_card(CardRole::Primary, |card| card.simulated().unwrap().clocks())
        .unwrap();
    let data = vec![0xee; length];
    assert!(matches!(
        volume.write_region(&region, &data, pointer, Mirror::Both),
        Err(Error::OutsideRegion { .. })
    ));
    let mut buffer = vec![0; length];
    assert!(matches!(
        volume.read_region(&region, &mut buffer, pointer, ReadFrom::Any),
        Err(Error::OutsideRegion { .. })
    ));
    let clocks_after = volume
        .inspect_card(CardRole::Primary, |card| card.simulated().unwrap().clocks())
        .unwrap();
    assert_eq!(
        clocks_before, clocks_after,
        "the card was not asked anything"
    );
    // The edges themselves are inside.
    volume
        .write_region(&region, &[1], BASE + 4095, Mirror::Both)
        .unwrap();
    volume
        .write_region(&region, &pattern(4096, 0), BASE, Mirror::Both)
        .unwrap();
}

#[test]
fn the_hardware_refuses_a_closed_regions_key_again() {
    let directory = tempfile::tempdir().unwrap();
    let volume = format(directory.path());
    volume.create_region("revoked", 4096, 0).unwrap();
    let region = volume.open_region("revoked").unwrap();
    let (context, key) = (region.context(), region.key(CardRole::Primary).unwrap());
    volume.close_region(region).unwrap();
    // The library has forgotten the region; ask the card directly with the old key.
    let outcome = volume.inspect_card(CardRole::Primary, |card| {
        use npmu_abi::registers::{
            context_access, AVT_COMMAND, AVT_CONTEXT_ACCESS, AVT_CONTEXT_ID,
        };
        use npmu_driver::Mmio;
        card.write_register(AVT_CONTEXT_ID.offset, context.into());
        card.write_register(
            AVT_COMMAND.offset,
            npmu_abi::Command::ReadContext.code().into(),
        );
        let _ = card.read_register(AVT_COMMAND.offset);
        context_access::VALID.is_set(card.read_register(AVT_CONTEXT_ACCESS.offset))
    });
    assert_eq!(
        outcome,
        Some(false),
        "context {context} (key {key:#x}) is revoked"
    );
}

#[test]
fn a_handle_of_another_volume_is_refused() {
    let one = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let first = format(one.path());
    let second = format(other.path());
    first.create_region("r", 4096, 0).unwrap();
    second.create_region("r", 4096, 0).unwrap();
    let foreign = second.open_region("r").unwrap();
    assert!(matches!(
        first.write_region(&foreign, &[1; 8], 0, Mirror::Both),
        Err(Error::ForeignHandle)
    ));
    assert!(matches!(
        first.read_region(&foreign, &mut [0; 8], 0, ReadFrom::Any),
        Err(Error::ForeignHandle)
    ));
    assert!(matches!(
        first.close_region(foreign),
        Err(Error::ForeignHandle)
    ));
}

#[test]
fn space_contexts_entries_and_metadata_run_out_with_their_own_errors() {
    let directory = tempfile::tempdir().unwrap();
    let volume = format_ice40(directory.path());
    let info = volume.info();
    assert_eq!((info.page_bytes, info.data_pages), (1024, 118));
    // 118 pages: a region of all but 8, then one too big for the rest.
    volume.create_region("large", 110 * 1024, 0).unwrap();
    let before = snapshot(&volume);
    assert!(matches!(
        volume.create_region("more", 9 * 1024, 0),
        Err(Error::NoSpace { needed: 9, free: 8 })
    ));
    assert_eq!(snapshot(&volume), before);
    // 230 entries for regions: the large one fits twice only, as 220.
    let first = volume.open_region("large").unwrap();
    let second = volume.open_region("large").unwrap();
    assert!(matches!(
        volume.open_region("large").map(drop),
        Err(Error::NoFreeEntries { needed: 110 })
    ));
    drop((first, second));
    // 16 contexts: two are the manager's, so 14 handles at once.
    volume.create_region("tiny", 1, 0).unwrap();
    let handles: Vec<_> = (0..14)
        .map(|_| volume.open_region("tiny").unwrap())
        .collect();
    assert!(matches!(
        volume.open_region("tiny").map(drop),
        Err(Error::NoFreeContext)
    ));
    drop(handles);
    volume.delete_region("large").unwrap();
    // A 4 KiB copy holds the metadata of a few dozen regions; the next is refused whole.
    let mut created = 0;
    let outcome = loop {
        match volume.create_region(&format!("region-{created:03}"), 1, 0) {
            Ok(()) => created += 1,
            Err(error) => break error,
        }
    };
    assert!(matches!(outcome, Error::MetadataFull { .. }), "{outcome:?}");
    assert!(created > 40, "{created} regions fit");
    let before = snapshot(&volume);
    assert!(volume.create_region("one-more", 1, 0).is_err());
    assert_eq!(snapshot(&volume), before);
}

#[test]
fn formatting_and_opening_refuse_what_is_not_a_volume_of_these_cards() {
    let directory = tempfile::tempdir().unwrap();
    let cards = SimulatedCards::in_directory(directory.path());
    let (primary, mirror) = simulated_cards(&cards).unwrap();
    assert!(matches!(
        Volume::open(primary, mirror, VolumeOptions::default()).map(drop),
        Err(Error::NotFormatted)
    ));
    let (primary, mirror) = simulated_cards(&cards).unwrap();
    assert!(matches!(
        Volume::format(primary, mirror, "", false, VolumeOptions::default()).map(drop),
        Err(Error::BadVolumeName { .. })
    ));
    let (primary, mirror) = simulated_cards(&cards).unwrap();
    drop(Volume::format(primary, mirror, "first", false, VolumeOptions::default()).unwrap());
    let (primary, mirror) = simulated_cards(&cards).unwrap();
    assert!(matches!(
        Volume::format(primary, mirror, "second", false, VolumeOptions::default()).map(drop),
        Err(Error::AlreadyFormatted { name, .. }) if name == "first"
    ));
    // Swapped cards: the primary's file given as the mirror.
    let (primary, mirror) = simulated_cards(&cards).unwrap();
    assert!(matches!(
        Volume::open(mirror, primary, VolumeOptions::default()).map(drop),
        Err(Error::WrongRole { .. })
    ));
    // Halves of two different volumes.
    let elsewhere = tempfile::tempdir().unwrap();
    let other_cards = SimulatedCards {
        iommu: cards.iommu.clone(),
        ..SimulatedCards::in_directory(elsewhere.path())
    };
    let (primary, mirror) = simulated_cards(&other_cards).unwrap();
    drop(Volume::format(primary, mirror, "other", false, VolumeOptions::default()).unwrap());
    let primary = cards.open_card(CardRole::Primary).unwrap();
    let mirror = other_cards.open_card(CardRole::Mirror).unwrap();
    assert!(matches!(
        Volume::open(primary, mirror, VolumeOptions::default()).map(drop),
        Err(Error::DifferentVolumes { .. })
    ));
    // A wrong management key leaves neither card usable.
    let (primary, mirror) = simulated_cards(&cards).unwrap();
    let options = VolumeOptions {
        management_key: 1,
        ..VolumeOptions::default()
    };
    assert!(matches!(
        Volume::open(primary, mirror, options).map(drop),
        Err(Error::BothCardsFailed { .. })
    ));
    // Overwriting is explicit, and then the old regions are gone.
    let (primary, mirror) = simulated_cards(&cards).unwrap();
    let volume = Volume::format(primary, mirror, "again", true, VolumeOptions::default()).unwrap();
    assert_eq!(volume.info().name, "again");
    assert!(volume.list_regions().is_empty());
}

#[test]
fn cards_of_different_shapes_cannot_make_a_volume() {
    let directory = tempfile::tempdir().unwrap();
    let big = SimulatedCards::in_directory(directory.path());
    let small = SimulatedCards {
        iommu: big.iommu.clone(),
        ..ice40(directory.path())
    };
    let primary = big.open_card(CardRole::Primary).unwrap();
    let mirror = small.open_card(CardRole::Mirror).unwrap();
    assert!(matches!(
        Volume::format(primary, mirror, "mixed", false, VolumeOptions::default()).map(drop),
        Err(Error::CardsDiffer { .. })
    ));
}
