//! Write intent: an unclean shutdown repaired in exactly the dirty chunks before the volume
//! serves a read, damaged intent areas detected, and a stale card resynced with only the
//! chunks it missed (the md recipe: fail a card, write degraded, bring it back, resync,
//! check).

mod common;

use common::{cards_in, format, geometry, open, pattern, peek, poke, snapshot};
use npmu::intent::CHUNK_PAGES;
use npmu::{CardRole, CardState, Difference, Error, Mirror, ReadFrom, VolumeOptions};
use npmu_abi::Config;

/// On an iCE40 card the data pages start at 10, so a first region of 100 pages of 1 KiB
/// lies on pages 10 to 109: chunk 0 (pages 0-15) holds its pages 10-15.
const REGION_PAGES: u64 = 100;
const FIRST_PAGE: u64 = 10;

#[test]
fn an_unclean_shutdown_is_repaired_in_the_dirty_chunks_alone() {
    let config = Config::ICE40;
    let page_bytes = config.page_bytes();
    let directory = tempfile::tempdir().unwrap();
    let live = cards_in(&directory.path().join("live"), config);
    let volume = format(&live);
    volume
        .create_region("r", REGION_PAGES * page_bytes, 0)
        .unwrap();
    let region = volume.open_region("r").unwrap();
    let data = pattern(1, (REGION_PAGES * page_bytes) as usize);
    volume
        .write_region(&region, &data, 0, Mirror::Both)
        .unwrap();
    drop(region);
    drop(volume);

    // A clean close leaves nothing dirty.
    let volume = open(&live, VolumeOptions::default()).unwrap();
    assert_eq!(volume.repaired(), None);
    assert_eq!(volume.info().dirty_chunks, Some(0));
    let region = volume.open_region("r").unwrap();
    volume
        .write_region(&region, b"acknowledged", 0, Mirror::Both)
        .unwrap();
    assert_eq!(volume.info().dirty_chunks, Some(1));
    // The cards as a crash now would leave them: the write acknowledged, its chunk dirty.
    let crashed = cards_in(&directory.path().join("crashed"), config);
    snapshot(&live, &crashed);
    drop(region);
    drop(volume);
    // A write in flight that reached the primary alone, in the dirty chunk; and a
    // difference where no write was in flight, which the repair must not touch.
    poke(&crashed, CardRole::Primary, FIRST_PAGE, 100, b"in flight");
    poke(&crashed, CardRole::Mirror, FIRST_PAGE + 90, 5, b"rot");

    let volume = open(&crashed, VolumeOptions::default()).unwrap();
    let repaired = volume
        .repaired()
        .expect("the open repaired the dirty chunk");
    assert_eq!(repaired.source, CardRole::Primary);
    assert_eq!(repaired.dirty_chunks, Some(1));
    assert_eq!(repaired.pages, CHUNK_PAGES - FIRST_PAGE, "{repaired:?}");
    assert_eq!(volume.info().dirty_chunks, Some(0));
    // The rule: the primary's version of the dirty chunk won, on both cards.
    let region = volume.open_region("r").unwrap();
    for from in [ReadFrom::Primary, ReadFrom::Mirror] {
        let mut back = [0u8; 9];
        volume.read_region(&region, &mut back, 100, from).unwrap();
        assert_eq!(&back, b"in flight", "{from:?}");
    }
    let report = volume.check(false, |_, _| {}).unwrap();
    assert!(report.metadata.is_empty(), "{:?}", report.metadata);
    assert_eq!(
        report.differences,
        vec![Difference {
            region: "r".into(),
            offset: 90 * page_bytes + 5,
            length: 3,
        }]
    );
    let report = volume.check(true, |_, _| {}).unwrap();
    assert!(report.repaired);
    assert!(volume.check(false, |_, _| {}).unwrap().is_clean());
    assert_eq!(
        peek(&crashed, CardRole::Mirror, FIRST_PAGE + 90, 5, 3),
        data[(90 * page_bytes + 5) as usize..][..3]
    );
}

/// A torn or flipped intent record is caught by its checksum like a metadata copy: one
/// damaged slot leaves the other, both damaged make every chunk dirty, and the open repairs
/// every region in full rather than trust nothing.
#[test]
fn damaged_intent_areas_are_detected_and_repaired_in_full() {
    let config = Config::ICE40;
    let geometry = geometry(config);
    let page_bytes = config.page_bytes();
    let directory = tempfile::tempdir().unwrap();
    let live = cards_in(&directory.path().join("live"), config);
    let volume = format(&live);
    volume
        .create_region("r", REGION_PAGES * page_bytes, 0)
        .unwrap();
    let region = volume.open_region("r").unwrap();
    volume
        .write_region(&region, b"dirty", 0, Mirror::Both)
        .unwrap();
    let crashed = cards_in(&directory.path().join("crashed"), config);
    snapshot(&live, &crashed);
    drop(region);
    drop(volume);
    let slot_page = |slot: u64| u64::from(geometry.first_intent_page()) + slot;

    // One slot flipped on the mirror: the record in the other slot is the card's.
    let one = cards_in(&directory.path().join("one"), config);
    snapshot(&crashed, &one);
    for slot in 0..2 {
        let byte = peek(&one, CardRole::Mirror, slot_page(slot), 20, 1)[0];
        poke(&one, CardRole::Mirror, slot_page(slot), 20, &[byte ^ 0x10]);
        let volume = open(&one, VolumeOptions::default()).unwrap();
        assert!(volume.repaired().is_some());
        drop(volume);
        snapshot(&crashed, &one);
    }

    // Both slots of the primary torn: every chunk counts as dirty.
    let torn = cards_in(&directory.path().join("torn"), config);
    snapshot(&crashed, &torn);
    for slot in 0..2 {
        poke(&torn, CardRole::Primary, slot_page(slot), 30, &[0; 64]);
    }
    poke(
        &torn,
        CardRole::Mirror,
        FIRST_PAGE + 50,
        0,
        b"far from the write",
    );
    let volume = open(&torn, VolumeOptions::default()).unwrap();
    let repaired = volume.repaired().expect("a repair");
    assert_eq!(repaired.dirty_chunks, None, "every chunk");
    assert_eq!(repaired.pages, REGION_PAGES);
    assert!(volume.check(false, |_, _| {}).unwrap().is_clean());
    assert_eq!(volume.info().dirty_chunks, Some(0));
}

/// The md recipe on `sim` cards, with the count of pages the resync copies worked out by
/// hand: a 256-page region on pages 34-289 and a 16-page one on 290-305.
#[test]
fn a_stale_card_gets_only_the_chunks_it_missed_across_a_restart() {
    let config = Config::SIM;
    let page_bytes = config.page_bytes();
    let directory = tempfile::tempdir().unwrap();
    let cards = cards_in(directory.path(), config);
    let volume = format(&cards);
    volume.create_region("big", 256 * page_bytes, 0).unwrap();
    volume.create_region("small", 16 * page_bytes, 0).unwrap();
    let big = volume.open_region("big").unwrap();
    let small = volume.open_region("small").unwrap();
    volume
        .write_region(
            &big,
            &pattern(1, 256 * page_bytes as usize),
            0,
            Mirror::Both,
        )
        .unwrap();
    volume
        .write_region(
            &small,
            &pattern(2, 16 * page_bytes as usize),
            0,
            Mirror::Both,
        )
        .unwrap();
    // Writes into the small region's first page (chunk 18, pages 288-303) until every
    // other chunk has gone idle and been cleared.
    for round in 0..2 * npmu::intent::IDLE_WRITES {
        volume
            .write_region(&small, &[round as u8; 64], 0, Mirror::Both)
            .unwrap();
    }
    assert_eq!(volume.info().dirty_chunks, Some(1));
    volume
        .inspect_card(CardRole::Primary, |card| card.fail())
        .unwrap();
    let mut expected = pattern(1, 256 * page_bytes as usize);
    for write in 0..16u64 {
        let data = pattern(10 + write as u8, page_bytes as usize);
        let offset = write * page_bytes;
        let outcome = volume.write_region(&big, &data, offset, Mirror::Both);
        if write == 0 {
            assert!(
                matches!(outcome, Err(Error::Degraded { .. })),
                "{outcome:?}"
            );
        } else {
            outcome.unwrap();
        }
        expected[offset as usize..][..data.len()].copy_from_slice(&data);
    }
    drop((big, small));
    drop(volume);

    // The primary comes back: both cards answer, the mirror's newer epoch wins.
    let volume = open(&cards, VolumeOptions::default()).unwrap();
    assert_eq!(volume.status()[CardRole::Primary].state, CardState::Stale);
    assert_eq!(volume.status()[CardRole::Mirror].state, CardState::InSync);
    let report = volume.resync(|_, _| {}).unwrap();
    // Chunks 2 and 3 (pages 32-63) took the degraded writes: the big region's pages 34-63
    // (30); chunk 18 was dirty when the primary failed: the big region's 288-289 and the
    // small one's 290-303 (16).
    assert!(!report.full);
    assert_eq!(report.pages, 46, "{report:?}");
    assert_eq!(volume.info().dirty_chunks, Some(0));
    let check = volume.check(false, |_, _| {}).unwrap();
    assert!(check.is_clean(), "{check:?}");
    let big = volume.open_region("big").unwrap();
    let mut back = vec![0u8; expected.len()];
    volume
        .read_region(&big, &mut back, 0, ReadFrom::Primary)
        .unwrap();
    assert!(
        back == expected,
        "the rebuilt primary holds the degraded writes"
    );
}
