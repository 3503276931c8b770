//! No silent split brain: a card that missed writes is never taken for the current copy
//! without the caller's consent, the higher epoch wins when both cards are there, and two
//! cards whose histories forked are refused until the caller chooses one.

mod common;

use common::{cards_in, degraded, format, open, snapshot, TestVolume};
use npmu::cards::{simulated_cards, SimulatedCards};
use npmu::{CardRole, CardState, Error, Mirror, ReadFrom, Volume, VolumeOptions};
use npmu_abi::Config;
use std::path::Path;

const SIZE: u64 = 4096;

fn fail(volume: &TestVolume, role: CardRole) {
    assert_eq!(volume.inspect_card(role, |card| card.fail()), Some(true));
}

fn state(volume: &TestVolume, role: CardRole) -> CardState {
    volume.status()[role].state
}

fn write(volume: &TestVolume, data: &[u8]) -> npmu::Result<()> {
    let region = volume.open_region("data").unwrap();
    volume.write_region(&region, data, 0, Mirror::Both)
}

fn read(volume: &TestVolume, from: ReadFrom) -> [u8; 4] {
    let region = volume.open_region("data").unwrap();
    let mut back = [0u8; 4];
    volume.read_region(&region, &mut back, 0, from).unwrap();
    back
}

/// The scenario: "AAAA" on both cards, the primary fails, "BBBB" goes to the mirror
/// alone (the write is acknowledged, degraded), the volume is closed: the mirror holds the
/// only current copy.
fn primary_misses_bbbb(directory: &Path) -> SimulatedCards {
    let cards = cards_in(directory, Config::ICE40);
    let volume = format(&cards);
    volume.create_region("data", SIZE, 0).unwrap();
    let region = volume.open_region("data").unwrap();
    volume
        .write_region(&region, b"AAAA", 0, Mirror::Both)
        .unwrap();
    fail(&volume, CardRole::Primary);
    assert!(matches!(
        volume.write_region(&region, b"BBBB", 0, Mirror::Both),
        Err(Error::Degraded {
            failed: CardRole::Primary,
            ..
        })
    ));
    assert_eq!(
        volume.info().epoch,
        2,
        "marking the primary failed advanced the epoch"
    );
    cards
}

#[test]
fn a_card_that_missed_writes_alone_is_refused_without_consent_and_opens_with_it() {
    let directory = tempfile::tempdir().unwrap();
    let cards = primary_misses_bbbb(directory.path());
    // The mirror is lost for good: a blank card takes its place.
    std::fs::remove_file(cards.file(CardRole::Mirror)).unwrap();
    let refused = open(&cards, VolumeOptions::default()).map(drop);
    match &refused {
        Err(
            error @ Error::MemberMissing {
                missing: CardRole::Mirror,
                present: CardRole::Primary,
                ..
            },
        ) => {
            let message = error.to_string();
            assert!(message.contains("mirror card is missing"), "{message}");
            assert!(message.contains("is lost"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let volume = open(&cards, degraded()).unwrap();
    // With consent: the primary's copy, which never saw "BBBB".
    assert_eq!(&read(&volume, ReadFrom::Any), b"AAAA");
    assert_eq!(state(&volume, CardRole::Primary), CardState::InSync);
    assert_eq!(state(&volume, CardRole::Mirror), CardState::Stale);
    assert_eq!(volume.info().epoch, 2);
}

#[test]
fn with_both_cards_present_the_higher_epoch_wins() {
    let directory = tempfile::tempdir().unwrap();
    let cards = primary_misses_bbbb(directory.path());
    let volume = open(&cards, VolumeOptions::default()).unwrap();
    assert_eq!(state(&volume, CardRole::Primary), CardState::Stale);
    assert_eq!(&read(&volume, ReadFrom::Any), b"BBBB");
    assert!(matches!(
        volume
            .open_region("data")
            .and_then(|region| { volume.read_region(&region, &mut [0; 4], 0, ReadFrom::Primary) }),
        Err(Error::CardStale {
            role: CardRole::Primary
        })
    ));
    volume.resync(|_, _| {}).unwrap();
    assert_eq!(volume.info().epoch, 3, "the resync ended at a new epoch");
    assert_eq!(&read(&volume, ReadFrom::Primary), b"BBBB");
    assert!(volume.check(false, |_, _| {}).unwrap().is_clean());
}

/// A card whose own metadata says it is stale (it learnt so when both were last open) has
/// no current copy to offer: refused even with consent while the current card is missing.
#[test]
fn a_card_that_knows_it_is_stale_is_refused_alone_even_degraded() {
    let directory = tempfile::tempdir().unwrap();
    let cards = primary_misses_bbbb(directory.path());
    drop(open(&cards, VolumeOptions::default()).unwrap());
    std::fs::remove_file(cards.file(CardRole::Mirror)).unwrap();
    for options in [VolumeOptions::default(), degraded()] {
        let refused = open(&cards, options).map(drop);
        assert!(
            matches!(
                refused,
                Err(Error::OnlyStaleCard {
                    present: CardRole::Primary,
                    missing: CardRole::Mirror,
                    ..
                })
            ),
            "{refused:?}"
        );
    }
}

/// Each card written in a degraded open while the other was away.
fn forked(directory: &Path) -> SimulatedCards {
    let cards = primary_misses_bbbb(directory);
    let away = directory.join("mirror-away.pm");
    std::fs::rename(cards.file(CardRole::Mirror), &away).unwrap();
    {
        let volume = open(&cards, degraded()).unwrap();
        assert_eq!(&read(&volume, ReadFrom::Any), b"AAAA");
        write(&volume, b"CCCC").unwrap();
    }
    std::fs::rename(&away, cards.file(CardRole::Mirror)).unwrap();
    cards
}

#[test]
fn forked_histories_are_refused_until_a_copy_is_chosen() {
    let directory = tempfile::tempdir().unwrap();
    let cards = forked(directory.path());
    for options in [VolumeOptions::default(), degraded()] {
        let refused = open(&cards, options).map(drop);
        assert!(
            matches!(
                refused,
                Err(Error::Forked {
                    primary_epoch: 2,
                    mirror_epoch: 2
                })
            ),
            "{refused:?}"
        );
    }
    for (keep, expected) in [(CardRole::Mirror, b"BBBB"), (CardRole::Primary, b"CCCC")] {
        let copy = SimulatedCards {
            directory: directory.path().join(format!("keep-{keep}")),
            ..cards.clone()
        };
        snapshot(&cards, &copy);
        let (primary, mirror) = simulated_cards(&copy).unwrap();
        let volume = Volume::choose(primary, mirror, keep, VolumeOptions::default()).unwrap();
        assert_eq!(state(&volume, keep), CardState::InSync);
        assert_eq!(state(&volume, keep.other()), CardState::Stale);
        assert_eq!(volume.info().epoch, 3);
        assert_eq!(&read(&volume, ReadFrom::Any), expected, "kept the {keep}");
        let report = volume.resync(|_, _| {}).unwrap();
        assert!(!report.full, "{report:?}");
        assert!(volume.check(false, |_, _| {}).unwrap().is_clean());
        let rebuilt = match keep.other() {
            CardRole::Primary => ReadFrom::Primary,
            CardRole::Mirror => ReadFrom::Mirror,
        };
        assert_eq!(&read(&volume, rebuilt), expected);
        drop(volume);
        // Chosen for good: the next open needs nothing.
        let volume = open(&copy, VolumeOptions::default()).unwrap();
        assert_eq!(&read(&volume, ReadFrom::Any), expected);
    }
}

#[test]
fn choosing_without_a_fork_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let cards = primary_misses_bbbb(directory.path());
    let (primary, mirror) = simulated_cards(&cards).unwrap();
    let refused = Volume::choose(primary, mirror, CardRole::Primary, VolumeOptions::default());
    assert!(matches!(refused.map(drop), Err(Error::NotForked)));
    // Nothing changed: the mirror still wins.
    let volume = open(&cards, VolumeOptions::default()).unwrap();
    assert_eq!(&read(&volume, ReadFrom::Any), b"BBBB");
}

/// A format killed after the first card's copy landed leaves the other card blank. An
/// empty volume misses nothing there, so the next open takes that card in sync, and must
/// then write the volume onto it: otherwise the cards say "in sync" while only one of them
/// holds the volume, and losing that one loses the volume.
#[test]
fn opening_an_empty_volume_writes_it_onto_a_blank_card() {
    let directory = tempfile::tempdir().unwrap();
    let cards = cards_in(directory.path(), Config::ICE40);
    drop(format(&cards));
    std::fs::remove_file(cards.file(CardRole::Mirror)).unwrap();
    let volume = open(&cards, VolumeOptions::default()).unwrap();
    assert_eq!(state(&volume, CardRole::Mirror), CardState::InSync);
    drop(volume);
    std::fs::remove_file(cards.file(CardRole::Primary)).unwrap();
    let volume = open(&cards, VolumeOptions::default()).unwrap();
    assert!(volume.list_regions().is_empty());
    assert_eq!(state(&volume, CardRole::Primary), CardState::InSync);
}
