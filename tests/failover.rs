//! Failover and resync: a card that stops answering or loses its memory during writes and
//! reads, the volume going on with the other, and a resync restoring full redundancy.

use npmu::cards::{simulated_cards, SimulatedCards};
use npmu::{CardRole, CardState, Error, Mirror, ReadFrom, RegionHandle, Volume, VolumeOptions};
use std::path::Path;

type TestVolume = Volume<npmu::Card>;

const BASE: u64 = 0x1000_0000;
const SIZE: u64 = 40_000;

/// A volume formatted on two simulated cards in a directory of its own.
fn fixture() -> (tempfile::TempDir, SimulatedCards, TestVolume) {
    let directory = tempfile::tempdir().unwrap();
    let cards = SimulatedCards::in_directory(directory.path());
    let volume = format(&cards);
    (directory, cards, volume)
}

/// Cards behind the same IOMMU, in their own files: replacements.
fn spare(directory: &tempfile::TempDir, cards: &SimulatedCards) -> SimulatedCards {
    SimulatedCards {
        directory: directory.path().join("spare"),
        ..cards.clone()
    }
}

fn create_and_open(
    volume: &TestVolume,
    name: &str,
    size: u64,
    base_pointer: u64,
) -> RegionHandle<npmu::Card> {
    volume.create_region(name, size, base_pointer).unwrap();
    volume.open_region(name).unwrap()
}

fn format(cards: &SimulatedCards) -> TestVolume {
    let (primary, mirror) = simulated_cards(cards).unwrap();
    Volume::format(primary, mirror, "failover", false, VolumeOptions::default()).unwrap()
}

fn reopen(directory: &Path) -> (TestVolume, SimulatedCards) {
    let cards = SimulatedCards::in_directory(directory);
    let (primary, mirror) = simulated_cards(&cards).unwrap();
    (
        Volume::open(primary, mirror, VolumeOptions::default()).unwrap(),
        cards,
    )
}

fn fail(volume: &TestVolume, role: CardRole) {
    volume
        .inspect_card(role, |card| card.simulated().expect("simulated").fail())
        .expect("the card opened");
}

fn state(volume: &TestVolume, role: CardRole) -> CardState {
    volume.status()[role].state
}

/// The whole region as `from` holds it.
fn contents(volume: &TestVolume, region: &RegionHandle<npmu::Card>, from: ReadFrom) -> Vec<u8> {
    let mut bytes = vec![0u8; region.size() as usize];
    volume.read_region(region, &mut bytes, BASE, from).unwrap();
    bytes
}

fn assert_identical_halves(volume: &TestVolume, region: &RegionHandle<npmu::Card>) {
    let primary = contents(volume, region, ReadFrom::Primary);
    let mirror = contents(volume, region, ReadFrom::Mirror);
    assert!(primary == mirror, "the halves of {} differ", region.name());
}

#[test]
fn a_mirror_that_stops_answering_is_reported_then_avoided_then_resynced() {
    let (directory, _cards, volume) = fixture();
    let region = create_and_open(&volume, "data", SIZE, BASE);
    let before = pattern(8192, 1);
    volume
        .write_region(&region, &before, BASE, Mirror::Both)
        .unwrap();

    fail(&volume, CardRole::Mirror);
    let during = pattern(8192, 2);
    let outcome = volume.write_region(&region, &during, BASE + 8192, Mirror::Both);
    assert!(
        matches!(
            outcome,
            Err(Error::Degraded {
                failed: CardRole::Mirror,
                survivor: CardRole::Primary,
                ..
            })
        ),
        "{outcome:?}"
    );
    assert_eq!(state(&volume, CardRole::Mirror), CardState::Stale);
    assert!(volume.status()[CardRole::Mirror].failure.is_some());
    // Degraded from now on: writes go to the primary alone and succeed.
    let after = pattern(4096, 3);
    volume
        .write_region(&region, &after, BASE + 16384, Mirror::Both)
        .unwrap();
    let mut back = vec![0u8; 4096];
    volume
        .read_region(&region, &mut back, BASE + 16384, ReadFrom::Any)
        .unwrap();
    assert_eq!(back, after);
    assert!(matches!(
        volume.read_region(&region, &mut back, BASE, ReadFrom::Mirror),
        Err(Error::CardUnavailable {
            role: CardRole::Mirror,
            ..
        })
    ));
    assert!(matches!(
        volume.write_region(&region, &after, BASE, Mirror::Mirror),
        Err(Error::CardUnavailable {
            role: CardRole::Mirror,
            ..
        })
    ));
    // A region created while degraded exists only in the primary's newer metadata.
    volume.create_region("later", 5000, 0).unwrap();
    drop(region);
    drop(volume);

    // The mirror's file survived: it answers again, but the newer metadata on the primary
    // says it missed writes, so it stays stale until resynced.
    let (volume, _) = reopen(directory.path());
    assert_eq!(state(&volume, CardRole::Primary), CardState::InSync);
    assert_eq!(state(&volume, CardRole::Mirror), CardState::Stale);
    assert_eq!(volume.list_regions(), vec!["data", "later"]);
    let region = volume.open_region("data").unwrap();
    assert!(matches!(
        volume.read_region(&region, &mut back, BASE, ReadFrom::Mirror),
        Err(Error::CardStale {
            role: CardRole::Mirror
        })
    ));
    assert_eq!(
        region.key(CardRole::Mirror),
        None,
        "not mapped on a stale card"
    );
    let mut reported = Vec::new();
    let report = volume
        .resync(|done, total| reported.push((done, total)))
        .unwrap();
    assert_eq!(report.card, CardRole::Mirror);
    assert_eq!(report.pages, 10 + 2);
    assert_eq!(reported.last(), Some(&(report.bytes, report.bytes)));
    assert_eq!(state(&volume, CardRole::Mirror), CardState::InSync);
    assert!(
        region.key(CardRole::Mirror).is_some(),
        "mapped by the resync"
    );
    assert_identical_halves(&volume, &region);
    let mut mirrored = vec![0u8; 8192];
    volume
        .read_region(&region, &mut mirrored, BASE + 8192, ReadFrom::Mirror)
        .unwrap();
    assert_eq!(mirrored, during);
    assert!(matches!(
        volume.resync(|_, _| {}),
        Err(Error::NothingToResync)
    ));
}

#[test]
fn a_second_resync_waits_for_the_first() {
    let (directory, cards, volume) = fixture();
    let region = create_and_open(&volume, "data", SIZE, BASE);
    fail(&volume, CardRole::Mirror);
    let outcome = volume.write_region(&region, &[3u8; 64], BASE, Mirror::Both);
    assert!(matches!(outcome, Err(Error::Degraded { .. })));
    let spare = spare(&directory, &cards);
    volume
        .replace_card(CardRole::Mirror, spare.open_card(CardRole::Mirror).unwrap())
        .unwrap();
    let mut second = None;
    volume
        .resync(|_, _| {
            second.get_or_insert_with(|| volume.resync(|_, _| {}).map(drop));
        })
        .unwrap();
    assert!(matches!(
        second,
        Some(Err(Error::ResyncRunning {
            role: CardRole::Mirror
        }))
    ));
    assert_identical_halves(&volume, &region);
}

#[test]
fn reads_fall_back_to_the_mirror_when_the_primary_fails_mid_run() {
    let (_directory, _cards, volume) = fixture();
    let region = create_and_open(&volume, "data", SIZE, BASE);
    let data = pattern(SIZE as usize, 9);
    volume
        .write_region(&region, &data, BASE, Mirror::Both)
        .unwrap();

    fail(&volume, CardRole::Primary);
    // Transparent: the read that meets the dead primary is served by the mirror.
    assert_eq!(contents(&volume, &region, ReadFrom::Any), data);
    assert_eq!(state(&volume, CardRole::Primary), CardState::Stale);
    assert!(matches!(
        volume.read_region(&region, &mut [0u8; 16], BASE, ReadFrom::Primary),
        Err(Error::CardUnavailable {
            role: CardRole::Primary,
            ..
        })
    ));
    assert_eq!(contents(&volume, &region, ReadFrom::Mirror), data);
    // The failure was recorded by the read; writes now go to the mirror alone.
    volume
        .write_region(&region, &[7u8; 100], BASE + 50, Mirror::Both)
        .unwrap();
    let mut back = [0u8; 100];
    volume
        .read_region(&region, &mut back, BASE + 50, ReadFrom::Any)
        .unwrap();
    assert_eq!(back, [7u8; 100]);
}

#[test]
fn a_card_whose_file_is_lost_is_replaced_and_resynced_while_writes_go_on() {
    let (directory, cards, volume) = fixture();
    volume.create_region("a", SIZE, BASE).unwrap();
    volume.create_region("b", 3 * 4096, BASE).unwrap();
    let a = volume.open_region("a").unwrap();
    let b = volume.open_region("b").unwrap();
    volume
        .write_region(&a, &pattern(SIZE as usize, 4), BASE, Mirror::Both)
        .unwrap();
    volume
        .write_region(&b, &pattern(3 * 4096, 5), BASE, Mirror::Both)
        .unwrap();

    fail(&volume, CardRole::Mirror);
    std::fs::remove_file(cards.file(CardRole::Mirror)).unwrap();
    assert!(matches!(
        volume.write_region(&a, &[1u8; 64], BASE, Mirror::Both),
        Err(Error::Degraded { .. })
    ));
    let spare = spare(&directory, &cards);
    assert!(matches!(
        volume.replace_card(
            CardRole::Primary,
            spare.open_card(CardRole::Primary).unwrap()
        ),
        Err(Error::CardInUse {
            role: CardRole::Primary
        })
    ));
    volume
        .replace_card(CardRole::Mirror, cards.open_card(CardRole::Mirror).unwrap())
        .unwrap();
    assert_eq!(state(&volume, CardRole::Mirror), CardState::Stale);

    // Online: writes on one thread while the resync runs on another.
    std::thread::scope(|scope| {
        let resync = scope.spawn(|| volume.resync(|_, _| {}).unwrap());
        for step in 0..40u64 {
            let pointer = BASE + (step * 997) % (SIZE - 64);
            volume
                .write_region(&a, &[step as u8; 64], pointer, Mirror::Both)
                .unwrap();
        }
        resync.join().unwrap();
    });
    assert_eq!(state(&volume, CardRole::Mirror), CardState::InSync);
    assert_identical_halves(&volume, &a);
    assert_identical_halves(&volume, &b);
    let expected_a = contents(&volume, &a, ReadFrom::Primary);
    drop((a, b));
    drop(volume);

    let (volume, _) = reopen(directory.path());
    assert_eq!(state(&volume, CardRole::Mirror), CardState::InSync);
    let a = volume.open_region("a").unwrap();
    assert_eq!(contents(&volume, &a, ReadFrom::Mirror), expected_a);
}

/// A blank card in place of one the volume has in sync is missing, not a member: the open
/// is refused until the caller consents to a degraded open; then the blank card is a
/// replacement, rebuilt in full.
#[test]
fn a_blank_card_beside_a_volume_opens_only_degraded_then_is_rebuilt_in_full() {
    let (directory, cards, volume) = fixture();
    volume.create_region("kept", 4096, 0).unwrap();
    let region = volume.open_region("kept").unwrap();
    volume
        .write_region(&region, b"survives", 0, Mirror::Both)
        .unwrap();
    drop(region);
    drop(volume);
    std::fs::remove_file(cards.file(CardRole::Primary)).unwrap();

    let (primary, mirror) = simulated_cards(&cards).unwrap();
    let refused = Volume::open(primary, mirror, VolumeOptions::default()).map(drop);
    assert!(
        matches!(
            &refused,
            Err(Error::MemberMissing { missing: CardRole::Primary, present: CardRole::Mirror, why })
                if why.contains("blank")
        ),
        "{refused:?}"
    );
    let (primary, mirror) = simulated_cards(&cards).unwrap();
    let degraded = VolumeOptions {
        degraded: true,
        ..VolumeOptions::default()
    };
    let volume = Volume::open(primary, mirror, degraded).unwrap();
    assert_eq!(state(&volume, CardRole::Primary), CardState::Stale);
    let region = volume.open_region("kept").unwrap();
    let mut back = [0u8; 8];
    volume
        .read_region(&region, &mut back, 0, ReadFrom::Any)
        .unwrap();
    assert_eq!(&back, b"survives");
    let report = volume.resync(|_, _| {}).unwrap();
    assert!(report.full, "{report:?}");
    volume
        .read_region(&region, &mut back, 0, ReadFrom::Primary)
        .unwrap();
    assert_eq!(&back, b"survives");
    drop(region);
    drop(volume);
    // Rebuilt: both cards are members again, and the open needs no consent.
    reopen(directory.path());
}

#[test]
fn with_both_cards_gone_every_verb_says_so() {
    let (_directory, _cards, volume) = fixture();
    let region = create_and_open(&volume, "data", 4096, 0);
    fail(&volume, CardRole::Primary);
    fail(&volume, CardRole::Mirror);
    let outcome = volume.write_region(&region, &[1; 8], 0, Mirror::Both);
    assert!(
        matches!(
            outcome,
            Err(Error::CardUnavailable { .. } | Error::BothCardsFailed { .. })
        ),
        "{outcome:?}"
    );
    let outcome = volume.read_region(&region, &mut [0; 8], 0, ReadFrom::Any);
    assert!(
        matches!(
            outcome,
            Err(Error::BothCardsFailed { .. } | Error::CardUnavailable { .. })
        ),
        "{outcome:?}"
    );
    assert!(matches!(
        volume.create_region("more", 4096, 0),
        Err(Error::BothCardsFailed { .. } | Error::CardUnavailable { .. })
    ));
}

fn pattern(length: usize, seed: u8) -> Vec<u8> {
    (0..length)
        .map(|index| (index as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The primary dies while a new region's pages are zeroed: the metadata written to record
/// it must not end up in the mirror's copy of those pages.
#[test]
fn a_region_created_as_the_primary_dies_reads_as_zeros() {
    const LARGE: u64 = 256 << 10;
    let (_directory, _cards, volume) = fixture();
    volume.create_region("old", LARGE, BASE).unwrap();
    let old = volume.open_region("old").unwrap();
    volume
        .write_region(&old, &vec![0xa5; LARGE as usize], BASE, Mirror::Both)
        .unwrap();
    volume.close_region(old).unwrap();
    volume.delete_region("old").unwrap();

    fail(&volume, CardRole::Primary);
    volume.create_region("new", LARGE, BASE).unwrap();
    let status = volume.status();
    assert_eq!(
        status[CardRole::Primary].state,
        CardState::Stale,
        "{status:?}"
    );
    let new = volume.open_region("new").unwrap();
    let bytes = contents(&volume, &new, ReadFrom::Any);
    let dirty = bytes.iter().position(|&byte| byte != 0);
    assert_eq!(dirty, None, "the new region holds old bytes");
}

/// With the mirror stale, the primary is the only current copy: when it fails too, it is
/// not marked stale, and the volume opens from it again once it answers.
#[test]
fn the_last_current_card_is_never_marked_stale() {
    let (directory, cards, volume) = fixture();
    let region = create_and_open(&volume, "data", 4096, BASE);
    volume
        .write_region(&region, b"only on the primary", BASE, Mirror::Both)
        .unwrap();
    fail(&volume, CardRole::Mirror);
    assert!(volume
        .write_region(&region, b"x", BASE + 100, Mirror::Both)
        .is_err());
    let spare = spare(&directory, &cards);
    volume
        .replace_card(CardRole::Mirror, spare.open_card(CardRole::Mirror).unwrap())
        .unwrap();
    // Replacing the only current card would lose the data.
    assert!(matches!(
        volume.replace_card(
            CardRole::Primary,
            spare.open_card(CardRole::Primary).unwrap()
        ),
        Err(Error::CardInUse { .. })
    ));
    fail(&volume, CardRole::Primary);
    let outcome = volume.read_region(&region, &mut [0u8; 19], BASE, ReadFrom::Any);
    assert!(outcome.is_err());
    assert_eq!(state(&volume, CardRole::Primary), CardState::InSync);
    assert_eq!(state(&volume, CardRole::Mirror), CardState::Stale);
    drop(region);
    drop(volume);

    // The primary's file is intact; the spare mirror holds the newest metadata.
    let primary = cards.open_card(CardRole::Primary).unwrap();
    let mirror = spare.open_card(CardRole::Mirror).unwrap();
    let volume = Volume::open(primary, mirror, VolumeOptions::default()).unwrap();
    assert_eq!(state(&volume, CardRole::Primary), CardState::InSync);
    let region = volume.open_region("data").unwrap();
    let mut back = [0u8; 19];
    volume
        .read_region(&region, &mut back, BASE, ReadFrom::Any)
        .unwrap();
    assert_eq!(&back, b"only on the primary");
    volume.resync(|_, _| {}).unwrap();
    assert_identical_halves(&volume, &region);
}
