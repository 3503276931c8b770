//! Finding a volume on its cards: format, open, and the rules that decide whose copy is the
//! volume's.
//!
//! - Of two cards of one history, the one whose metadata has the higher epoch (then the
//!   higher sequence number) wins, and says which cards are in sync.
//! - Opening without a card the winning metadata has in sync (a card that does not answer,
//!   or a blank or replaced one in its place) is refused unless the caller asks for a
//!   degraded open: the absent card may hold writes the present one lacks.
//! - Two cards each of whose metadata says it is in sync and the other is not were each
//!   written while the other was away: their histories forked, and the open is refused
//!   until the caller chooses the copy to keep ([`Volume::choose`]).
//! - After an unclean shutdown the copies can differ only in the chunks the cards' intent
//!   records name; with both cards in sync the open copies those chunks from the primary to
//!   the mirror before it returns, so the copies agree byte for byte before any read.

use super::inner::{Inner, RepairReport, Staging};
use super::{Volume, VolumeOptions};
use crate::error::{CardRole, Error, Result};
use crate::half::{Found, FoundIntent, Half};
use crate::intent::Dirty;
use crate::layout::Geometry;
use crate::metadata::{self, CardHealth, Copy, MetadataError, VolumeRecord};
use crate::per_card::PerCard;
use npmu_driver::{Device, DmaDomain, DriverError, NpmuDevice};
use std::sync::Arc;
use std::time::Instant;

impl<D: Device> Volume<D> {
    /// Writes a new, empty volume named `name` onto two cards. Refused if either card holds a
    /// volume already, unless `overwrite`; then every region on them is lost.
    pub fn format(
        primary: D,
        mirror: D,
        name: &str,
        overwrite: bool,
        options: VolumeOptions,
    ) -> Result<Self> {
        if !metadata::name_is_valid(name) {
            return Err(Error::BadVolumeName {
                length: name.len(),
                max: metadata::MAX_NAME_BYTES,
            });
        }
        let (mut halves, domain, geometry) = take_cards(primary, mirror, options)?;
        for (role, half) in halves.iter() {
            if let Some(why) = &half.failure {
                return Err(Error::CardUnavailable {
                    role,
                    why: why.clone(),
                });
            }
        }
        let staging = Staging::new(&domain, &geometry)?;
        let mut newest = 0;
        let mut replaces = 0;
        for (role, half) in halves.iter_mut() {
            match half
                .read_metadata(&geometry, staging.incoming())
                .map_err(|source| Error::Card { role, source })?
            {
                Found::Damaged(source) if !overwrite => {
                    return Err(Error::Metadata { role, source });
                }
                Found::Copy(copy, _) if !overwrite => {
                    return Err(Error::AlreadyFormatted {
                        role,
                        name: copy.volume.name,
                    });
                }
                Found::Copy(copy, slot) => {
                    if copy.sequence > newest {
                        replaces = copy.volume.id;
                    }
                    newest = newest.max(copy.sequence);
                    half.current_slot = Some(slot);
                }
                Found::Blank | Found::Damaged(_) => {}
            }
        }
        let record = VolumeRecord {
            id: rand::random(),
            replaces,
            name: name.to_owned(),
            created: super::now(),
            page_shift: geometry.page_shift,
            memory_pages: geometry.memory_pages,
            copy_pages: geometry.copy_pages,
            epoch: 1,
            health: PerCard::both(CardHealth::InSync),
            regions: Vec::new(),
        };
        let mut inner = Inner::new(
            halves,
            domain,
            options,
            geometry,
            (newest, record),
            staging,
            Dirty::none(),
        );
        // Both slots get the new volume, so no copy of an earlier one can come back.
        inner.commit()?;
        inner.commit()?;
        inner.record_intent_now(Dirty::none())?;
        tracing::info!(volume = name, "formatted");
        Ok(Self::from_inner(inner))
    }

    /// Opens the volume on two cards from the metadata they hold (the rules are in this
    /// module's documentation). A card whose metadata is behind is brought up to date, or
    /// marked stale if the newer metadata says it missed writes; chunks an unclean shutdown
    /// left dirty are repaired before this returns. Every region an earlier process left
    /// open is closed.
    pub fn open(primary: D, mirror: D, options: VolumeOptions) -> Result<Self> {
        open_volume(primary, mirror, options, None)
    }

    /// Opens a volume whose two cards' histories forked, keeping the `keep` card's copy: the
    /// other card is marked stale, and [`Volume::resync`] then overwrites on it every chunk
    /// either card wrote since they parted. Refused with [`Error::NotForked`] if they did not
    /// fork.
    pub fn choose(primary: D, mirror: D, keep: CardRole, options: VolumeOptions) -> Result<Self> {
        open_volume(primary, mirror, options, Some(keep))
    }

    /// What the open repaired after an unclean shutdown, if the cards' intent records named
    /// any dirty chunk.
    pub fn repaired(&self) -> Option<RepairReport> {
        self.inner().repaired
    }
}

fn open_volume<D: Device>(
    primary: D,
    mirror: D,
    options: VolumeOptions,
    keep: Option<CardRole>,
) -> Result<Volume<D>> {
    let (mut halves, domain, geometry) = take_cards(primary, mirror, options)?;
    let staging = Staging::new(&domain, &geometry)?;
    let mut found: PerCard<Option<Found>> = PerCard::from_fn(|_| None);
    for (role, half) in halves.iter_mut() {
        if !half.is_usable() {
            continue;
        }
        match half.read_metadata(&geometry, staging.incoming()) {
            Ok(what) => found[role] = Some(what),
            Err(error) => {
                tracing::warn!(card = %role, %error, "reading metadata");
                half.failure = Some(error.to_string());
            }
        }
    }
    forget_replaced_volume(&mut found);
    let copies: PerCard<Option<Copy>> = PerCard::from_fn(|role| match &found[role] {
        Some(Found::Copy(copy, _)) => Some(copy.clone()),
        _ => None,
    });
    for (role, copy) in copies.iter() {
        if let Some(copy) = copy {
            if copy.role != role {
                return Err(Error::WrongRole {
                    role,
                    found: copy.role,
                });
            }
        }
    }
    if let (Some(primary), Some(mirror)) = (&copies.primary, &copies.mirror) {
        if primary.volume.id != mirror.volume.id {
            return Err(Error::DifferentVolumes {
                primary: primary.volume.id,
                mirror: mirror.volume.id,
            });
        }
    }
    let Some(winner) = winner(&copies, keep)? else {
        return Err(no_volume(&halves, &found));
    };
    let newest = copies[winner].clone().expect("the winner has a copy");
    check_geometry(winner, &newest.volume, &geometry)?;
    let mut record = newest.volume.clone();
    let started = Instant::now();
    // What each card's intent record says may differ between the copies.
    let mut recorded: PerCard<Option<std::result::Result<Dirty, MetadataError>>> =
        PerCard::from_fn(|_| None);
    for (role, half) in halves.iter_mut() {
        let Some(Found::Copy(_, slot)) = &found[role] else {
            continue;
        };
        half.current_slot = Some(*slot);
        if !half.is_usable() {
            continue;
        }
        match half.read_intent(&geometry, staging.incoming(), record.id) {
            Ok(FoundIntent::Record(intent, slot)) => {
                half.intent_slot = Some(slot);
                half.intent_sequence = intent.sequence;
                recorded[role] = Some(Ok(intent.dirty));
            }
            Ok(FoundIntent::Missing(why)) => recorded[role] = Some(Err(why)),
            Err(error) => {
                tracing::warn!(card = %role, %error, "reading the intent area");
                half.failure = Some(error.to_string());
            }
        }
    }
    let holds_volume =
        |role: CardRole| halves[role].is_usable() && matches!(found[role], Some(Found::Copy(..)));
    let why_absent = |role: CardRole| match (&halves[role].failure, &found[role]) {
        (Some(why), _) => why.clone(),
        (None, Some(Found::Damaged(error))) => format!("its metadata is damaged: {error}"),
        (None, _) => "it is blank: a new or replaced card".into(),
    };
    if record.health[winner] != CardHealth::InSync {
        let current = winner.other();
        if !holds_volume(current) {
            return Err(Error::OnlyStaleCard {
                present: winner,
                missing: current,
                why: why_absent(current),
            });
        }
    }
    let mut needs_commit = copies
        .values()
        .flatten()
        .any(|copy| copy.sequence != newest.sequence);
    if let Some(keep) = keep {
        // Past both forks' epochs, so neither card's copy can win over the choice again.
        let other_epoch = copies[keep.other()]
            .as_ref()
            .map_or(0, |copy| copy.volume.epoch);
        record.epoch = record.epoch.max(other_epoch);
        record.epoch += 1;
        record.health[keep.other()] = CardHealth::Stale;
        needs_commit = true;
        tracing::warn!(kept = %keep, "forked histories: the other card is stale");
    }
    for role in CardRole::BOTH {
        let answers = halves[role].is_usable();
        // Only regions hold data: with none, a card that answers misses nothing. A blank
        // one (a format that reached only the other card) gets the volume written onto it.
        if answers && record.regions.is_empty() {
            needs_commit |= record.health[role] != CardHealth::InSync || !holds_volume(role);
            record.health[role] = CardHealth::InSync;
            continue;
        }
        if holds_volume(role) {
            continue;
        }
        if record.health[role] == CardHealth::InSync && !options.degraded {
            return Err(Error::MemberMissing {
                missing: role,
                present: role.other(),
                why: why_absent(role),
            });
        }
        let health = if answers {
            // A blank or damaged card beside a good one: a replacement to rebuild in full.
            CardHealth::Replaced
        } else {
            CardHealth::Stale
        };
        needs_commit |= record.health[role] != health;
        record.mark_out_of_sync(role, health);
    }
    // What may differ between the copies: every record of a card that holds data. A
    // replaced card is rebuilt in full, whatever its intent area says.
    let mut dirty = Dirty::none();
    for (role, found) in recorded {
        match found {
            _ if record.health[role] == CardHealth::Replaced => {}
            None => {}
            Some(Ok(found)) => dirty = dirty.union(&found),
            Some(Err(why)) => {
                tracing::warn!(card = %role, %why, "no intent record: every chunk counts as dirty");
                dirty = Dirty::Everything;
            }
        }
    }
    let mut inner = Inner::new(
        halves,
        domain,
        options,
        geometry,
        (newest.sequence, record),
        staging,
        dirty,
    );
    if inner.readable_cards().is_empty() {
        return Err(inner.both_failed());
    }
    if needs_commit {
        inner.commit()?;
    }
    inner.repair_dirty_chunks(started)?;
    tracing::info!(volume = %inner.record.name, sequence = inner.sequence, epoch = inner.record.epoch, "opened");
    Ok(Volume::from_inner(inner))
}

/// The card whose copy is the volume's: the `keep` card of a forked pair, else the one of
/// higher epoch, then higher sequence. `None` if neither card holds a copy.
fn winner(copies: &PerCard<Option<Copy>>, keep: Option<CardRole>) -> Result<Option<CardRole>> {
    let forked = match (&copies.primary, &copies.mirror) {
        (Some(primary), Some(mirror)) => forked(&primary.volume, &mirror.volume),
        _ => false,
    };
    match keep {
        Some(keep) if forked => return Ok(Some(keep)),
        Some(_) => return Err(Error::NotForked),
        None if forked => {
            let epoch = |role| copies[role].as_ref().map_or(0, |copy| copy.volume.epoch);
            return Err(Error::Forked {
                primary_epoch: epoch(CardRole::Primary),
                mirror_epoch: epoch(CardRole::Mirror),
            });
        }
        None => {}
    }
    Ok(copies
        .iter()
        .filter_map(|(role, copy)| Some((role, copy.as_ref()?)))
        .max_by_key(|(_, copy)| (copy.volume.epoch, copy.sequence))
        .map(|(role, _)| role))
}

/// Whether each card's metadata says it is in sync and the other is not: each went on
/// without the other, so neither holds the other's writes.
fn forked(primary: &VolumeRecord, mirror: &VolumeRecord) -> bool {
    let went_on_alone = |record: &VolumeRecord, role: CardRole| {
        record.health[role] == CardHealth::InSync
            && record.health[role.other()] != CardHealth::InSync
    };
    went_on_alone(primary, CardRole::Primary) && went_on_alone(mirror, CardRole::Mirror)
}

impl<D: Device> Inner<D> {
    /// Makes the copies agree in every chunk the intent records name, copying from the
    /// primary (the rule when both are in sync: for a chunk whose last write was never
    /// acknowledged either version is correct), then clears the records. With a card out of
    /// sync nothing is copied: the records, merged, are kept on the in-sync card for the
    /// resync.
    fn repair_dirty_chunks(&mut self, started: Instant) -> Result<()> {
        let dirty = self.intent.dirty();
        if dirty.is_empty() {
            return Ok(());
        }
        if !self.settled() {
            return self.record_intent_now(dirty);
        }
        let (source, target) = (CardRole::Primary, CardRole::Mirror);
        let pages = self.region_pages_in(&dirty);
        let window = self.geometry.scratch_pages as usize;
        for chunk in pages.chunks(window) {
            if let Err(error) = self.copy_pages(source, target, chunk) {
                if self.settled() {
                    return Err(error);
                }
                // A card failed during the repair: it is stale now, and the dirty chunks
                // stay recorded on the other for its resync.
                tracing::warn!(%error, "repairing dirty chunks");
                return self.record_intent_now(self.intent.dirty());
            }
        }
        self.settle_intent()?;
        let dirty_chunks = match &dirty {
            Dirty::Chunks(chunks) => Some(chunks.len() as u64),
            Dirty::Everything => None,
        };
        tracing::info!(
            chunks = ?dirty_chunks,
            pages = pages.len(),
            elapsed = ?started.elapsed(),
            "repaired the chunks an unclean shutdown left dirty"
        );
        self.repaired = Some(RepairReport {
            source,
            target,
            dirty_chunks,
            pages: pages.len() as u64,
        });
        Ok(())
    }
}

/// Opens both cards in one DMA domain and checks they can hold the same volume.
pub(super) fn take_cards<D: Device>(
    primary: D,
    mirror: D,
    options: VolumeOptions,
) -> Result<(PerCard<Half<D>>, Arc<DmaDomain>, Geometry)> {
    let domain = DmaDomain::new(primary.dma(), npmu_abi::IOVA_BITS as u32);
    let mut geometries: PerCard<Option<Result<Geometry>>> = PerCard::from_fn(|_| None);
    let halves = PerCard::new(primary, mirror).map(|role, card| {
        let opened = NpmuDevice::open_in(card, Arc::clone(&domain), options.driver);
        match opened {
            Ok(device) => {
                let geometry = Geometry::of(role, device.capabilities());
                let mut half = Half::new(role, device);
                match geometry {
                    Ok(geometry) => {
                        geometries[role] = Some(Ok(geometry));
                        if let Err(error) = half.prepare(&geometry, options.management_key) {
                            tracing::warn!(card = %role, %error, "taking the card over");
                            half.failure = Some(error.to_string());
                        }
                    }
                    Err(error) => geometries[role] = Some(Err(error)),
                }
                half
            }
            Err(error @ DriverError::ForeignDomain { .. }) => {
                geometries[role] = Some(Err(Error::Card {
                    role,
                    source: error,
                }));
                Half::missing(role, "in another DMA domain".into())
            }
            Err(error) => {
                tracing::warn!(card = %role, %error, "opening the card");
                Half::missing(role, error.to_string())
            }
        }
    });
    let geometry = match (geometries.primary, geometries.mirror) {
        (Some(Err(error)), _) | (_, Some(Err(error))) => return Err(error),
        (Some(Ok(primary)), Some(Ok(mirror))) => {
            if let Some((what, primary, mirror)) = primary.first_difference(&mirror) {
                return Err(Error::CardsDiffer {
                    what,
                    primary,
                    mirror,
                });
            }
            primary
        }
        (Some(Ok(geometry)), None) | (None, Some(Ok(geometry))) => geometry,
        (None, None) => {
            return Err(Error::BothCardsFailed {
                primary: halves.primary.failure.clone().unwrap_or_default(),
                mirror: halves.mirror.failure.clone().unwrap_or_default(),
            })
        }
    };
    Ok((halves, domain, geometry))
}

/// A format killed after reaching one card leaves the other holding the volume the new one
/// replaced: that card is a blank for the new volume.
fn forget_replaced_volume(found: &mut PerCard<Option<Found>>) {
    let newest = found
        .values()
        .filter_map(|what| match what {
            Some(Found::Copy(copy, _)) => Some(copy),
            _ => None,
        })
        .max_by_key(|copy| copy.sequence)
        .map(|copy| (copy.volume.id, copy.volume.replaces));
    let Some((id, replaces)) = newest else {
        return;
    };
    for (_, what) in found.iter_mut() {
        if let Some(Found::Copy(copy, _)) = what {
            if copy.volume.id != id && replaces != 0 && copy.volume.id == replaces {
                tracing::info!(volume = %copy.volume.name, "a card still holds the volume a format replaced");
                *what = Some(Found::Blank);
            }
        }
    }
}

/// Why no volume was found: blank cards, or damaged metadata.
fn no_volume<D: Device>(halves: &PerCard<Half<D>>, found: &PerCard<Option<Found>>) -> Error {
    for (role, what) in found.iter() {
        if let Some(Found::Damaged(source)) = what {
            return Error::Metadata {
                role,
                source: source.clone(),
            };
        }
    }
    if halves.values().all(Half::is_usable) {
        Error::NotFormatted
    } else {
        let why = |role: CardRole| {
            halves[role]
                .failure
                .clone()
                .unwrap_or_else(|| "blank".into())
        };
        Error::BothCardsFailed {
            primary: why(CardRole::Primary),
            mirror: why(CardRole::Mirror),
        }
    }
}

/// Whether the volume the `role` card describes was formatted on cards of this shape.
fn check_geometry(role: CardRole, volume: &VolumeRecord, geometry: &Geometry) -> Result<()> {
    for (what, recorded, card) in [
        (
            "page shift",
            u64::from(volume.page_shift),
            u64::from(geometry.page_shift),
        ),
        ("memory pages", volume.memory_pages, geometry.memory_pages),
        (
            "metadata copy pages",
            u64::from(volume.copy_pages),
            u64::from(geometry.copy_pages),
        ),
    ] {
        if recorded != card {
            return Err(Error::UnsuitableCard {
                role,
                why: format!(
                    "the volume was formatted with {what} {recorded}, the card has {card}"
                ),
            });
        }
    }
    Ok(())
}
