//! The state of an open volume behind its mutex, and what every verb builds on: committing
//! metadata, recording write intent, taking a failed card out of use, mapping regions, and
//! the data path of writes and reads.

use super::{CardState, Mirror, ReadFrom, VolumeOptions};
use crate::allocation::EntryAllocator;
use crate::error::{CardRole, Error, Result};
use crate::half::{is_card_failure, Half};
use crate::intent::{self, Dirty, WriteIntent};
use crate::layout::{self, Geometry, FIRST_REGION_CONTEXT, QUEUE};
use crate::metadata::{self, CardHealth, Copy, MetadataError, RegionRecord, VolumeRecord};
use crate::per_card::PerCard;
use npmu_driver::{
    ContextSettings, Device, DmaBuffer, DmaDirection, DmaDomain, DriverError, Operation, Ticket,
    Transfer,
};
use std::collections::HashMap;
use std::sync::Arc;

/// The largest piece of a transfer staged at once.
const MAX_STAGING_BYTES: u64 = 1 << 20;

pub(super) struct OpenRegion {
    pub name: String,
    pub context: u16,
    pub first_entry: u32,
    pub pages: u32,
    pub keys: PerCard<Option<u32>>,
}

/// What an open repaired after an unclean shutdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepairReport {
    /// The card whose copy was kept (the rule: the primary, when both are in sync).
    pub source: CardRole,
    pub target: CardRole,
    /// Dirty chunks the cards' intent records named; `None` for every chunk.
    pub dirty_chunks: Option<u64>,
    /// Region pages in those chunks, copied from `source` to `target`.
    pub pages: u64,
}

pub(super) struct Inner<D: Device> {
    pub halves: PerCard<Half<D>>,
    pub domain: Arc<DmaDomain>,
    pub options: VolumeOptions,
    pub geometry: Geometry,
    pub sequence: u64,
    pub record: VolumeRecord,
    /// Staging for data the cards read (writes, zeroes, resync).
    pub outgoing: DmaBuffer,
    /// Staging for data the cards write (reads).
    pub incoming: DmaBuffer,
    /// Staging for metadata copies, one per card: a commit in the middle of a data
    /// transfer (a card failing) must not overwrite the data still being sent.
    pub metadata_out: DmaBuffer,
    /// Staging for intent records, one per card, sent ahead of the data they cover.
    pub intent_out: DmaBuffer,
    pub intent: WriteIntent,
    pub open: HashMap<u64, OpenRegion>,
    pub entries: EntryAllocator,
    pub contexts_in_use: Vec<bool>,
    pub rebuilding: Option<CardRole>,
    /// Counts resyncs started, so a resync whose card was taken from it stops.
    pub resync_generation: u64,
    /// What the open repaired, if it found dirty chunks.
    pub repaired: Option<RepairReport>,
}

/// The DMA buffers a volume moves everything through.
pub(super) struct Staging {
    outgoing: DmaBuffer,
    incoming: DmaBuffer,
    metadata_out: DmaBuffer,
    intent_out: DmaBuffer,
}

impl Staging {
    pub fn new(domain: &Arc<DmaDomain>, geometry: &Geometry) -> Result<Self> {
        let bytes = MAX_STAGING_BYTES
            .min(u64::from(geometry.max_request_bytes))
            .max(geometry.copy_bytes())
            .max(geometry.scratch_bytes());
        let buffer = |bytes, direction| {
            DmaBuffer::new(domain, bytes, direction)
                .map_err(|error| Error::from(DriverError::from(error)))
        };
        Ok(Self {
            outgoing: buffer(bytes, DmaDirection::ToDevice)?,
            incoming: buffer(bytes, DmaDirection::FromDevice)?,
            metadata_out: buffer(2 * geometry.copy_bytes(), DmaDirection::ToDevice)?,
            intent_out: buffer(2 * geometry.intent_slot_bytes(), DmaDirection::ToDevice)?,
        })
    }

    pub fn incoming(&self) -> &DmaBuffer {
        &self.incoming
    }
}

/// Intent records submitted to the cards and not yet waited for.
type PendingIntent = PerCard<Option<std::result::Result<Vec<Ticket>, DriverError>>>;

impl<D: Device> Inner<D> {
    pub fn new(
        halves: PerCard<Half<D>>,
        domain: Arc<DmaDomain>,
        options: VolumeOptions,
        geometry: Geometry,
        (sequence, record): (u64, VolumeRecord),
        staging: Staging,
        found: Dirty,
    ) -> Self {
        let mut contexts_in_use = vec![false; geometry.contexts as usize];
        contexts_in_use[..usize::from(FIRST_REGION_CONTEXT)].fill(true);
        Self {
            halves,
            domain,
            options,
            entries: EntryAllocator::new(
                geometry.first_region_entry(),
                geometry.translation_entries,
            ),
            geometry,
            sequence,
            record,
            outgoing: staging.outgoing,
            incoming: staging.incoming,
            metadata_out: staging.metadata_out,
            intent_out: staging.intent_out,
            intent: WriteIntent::new(options.write_intent, found),
            open: HashMap::new(),
            contexts_in_use,
            rebuilding: None,
            resync_generation: 0,
            repaired: None,
        }
    }

    pub fn state(&self, role: CardRole) -> CardState {
        match (self.record.health[role], self.rebuilding) {
            (CardHealth::InSync, _) => CardState::InSync,
            (_, Some(rebuilding)) if rebuilding == role => CardState::Rebuilding,
            (CardHealth::Stale | CardHealth::Replaced, _) => CardState::Stale,
        }
    }

    /// Cards that hold current data and answer.
    pub fn readable_cards(&self) -> Vec<CardRole> {
        CardRole::BOTH
            .into_iter()
            .filter(|&role| self.halves[role].is_usable() && self.state(role) == CardState::InSync)
            .collect()
    }

    /// Cards that take writes: the readable ones and one being rebuilt.
    pub fn write_targets_all(&self) -> Vec<CardRole> {
        CardRole::BOTH
            .into_iter()
            .filter(|&role| self.halves[role].is_usable() && self.state(role) != CardState::Stale)
            .collect()
    }

    /// Whether both cards are in sync and answer: only then may dirty chunks be cleared.
    pub fn settled(&self) -> bool {
        self.readable_cards().len() == CardRole::BOTH.len()
    }

    fn why_unreadable(&self, role: CardRole) -> String {
        match (&self.halves[role].failure, self.state(role)) {
            (Some(why), _) => why.clone(),
            (None, CardState::InSync) => "in sync".into(),
            (None, _) => "stale".into(),
        }
    }

    pub fn unavailable(&self, role: CardRole) -> Error {
        match &self.halves[role].failure {
            Some(why) => Error::CardUnavailable {
                role,
                why: why.clone(),
            },
            None => Error::CardStale { role },
        }
    }

    /// `role`, if it holds the current data and answers: a single-card write (recovery) is
    /// refused on a stale or rebuilding card, where it would be written and never read.
    pub fn in_sync_card(&self, role: CardRole) -> Result<CardRole> {
        if self.readable_cards().contains(&role) {
            Ok(role)
        } else {
            Err(self.unavailable(role))
        }
    }

    pub fn both_failed(&self) -> Error {
        Error::BothCardsFailed {
            primary: self.why_unreadable(CardRole::Primary),
            mirror: self.why_unreadable(CardRole::Mirror),
        }
    }

    pub fn free_context(&self) -> Option<u16> {
        self.contexts_in_use
            .iter()
            .position(|used| !used)
            .map(|context| context as u16)
    }

    pub fn check_fits(&self, record: &VolumeRecord) -> Result<()> {
        let needed = metadata::encode(&Copy {
            sequence: 0,
            role: CardRole::Primary,
            volume: record.clone(),
        })
        .len();
        let capacity = self.geometry.copy_bytes() as usize;
        if needed > capacity {
            return Err(Error::MetadataFull { needed, capacity });
        }
        Ok(())
    }

    /// Makes `record` the volume's state on the cards; the in-memory state follows only if
    /// it was written.
    pub fn update(&mut self, record: VolumeRecord) -> Result<()> {
        let previous = std::mem::replace(&mut self.record, record);
        let committed = self.commit();
        if committed.is_err() {
            // The cards' state is the old or the new one; the next open tells which.
            let (epoch, health) = (self.record.epoch, self.record.health);
            self.record = VolumeRecord {
                epoch,
                health,
                ..previous
            };
        }
        committed
    }

    /// Writes the state as a new copy on every card that answers, stale ones included, and
    /// waits until it is durable. A card failing on the way is taken out of use and the
    /// state written again to the other.
    pub fn commit(&mut self) -> Result<()> {
        self.check_fits(&self.record)?;
        loop {
            let targets = PerCard::from_fn(|role| self.halves[role].is_usable());
            if !targets.values().any(|&usable| usable) {
                return Err(self.both_failed());
            }
            self.sequence = self.sequence.checked_add(1).ok_or(Error::Metadata {
                role: CardRole::Primary,
                source: MetadataError::Inconsistent("the sequence number is exhausted".into()),
            })?;
            let copy_bytes = self.geometry.copy_bytes();
            let mut pending = PerCard::from_fn(|_| None);
            for role in CardRole::BOTH {
                if !targets[role] {
                    continue;
                }
                let bytes = metadata::encode(&Copy {
                    sequence: self.sequence,
                    role,
                    volume: self.record.clone(),
                });
                let offset = role.index() as u64 * copy_bytes;
                self.metadata_out
                    .write(offset, &bytes)
                    .map_err(DriverError::from)?;
                let half = &mut self.halves[role];
                pending[role] = Some(half.submit_copy(
                    &self.geometry,
                    &self.metadata_out,
                    offset,
                    bytes.len() as u64,
                ));
            }
            let mut lost = false;
            for (role, submitted) in pending {
                let Some(submitted) = submitted else {
                    continue;
                };
                let half = &mut self.halves[role];
                let outcome =
                    submitted.and_then(|(slot, tickets)| half.wait_all(tickets).map(|_| slot));
                match outcome {
                    Ok(slot) => half.current_slot = Some(slot),
                    Err(error) => {
                        tracing::error!(card = %role, %error, "writing metadata");
                        self.take_out_of_use(role, error.to_string());
                        lost = true;
                    }
                }
            }
            if !lost {
                return Ok(());
            }
            if self.readable_cards().is_empty() {
                return Err(self.both_failed());
            }
        }
    }

    /// Takes `role` out of use; returns whether that made it stale. The last card holding
    /// the current data is never marked stale: it stays in sync, out of use, so the volume
    /// opens from it again once it answers.
    pub fn take_out_of_use(&mut self, role: CardRole, why: String) -> bool {
        self.halves[role].failure = Some(why);
        if self.rebuilding == Some(role) {
            self.rebuilding = None;
        }
        let other = role.other();
        let other_is_current =
            self.record.health[other] == CardHealth::InSync && self.halves[other].is_usable();
        if self.record.health[role] == CardHealth::InSync && other_is_current {
            self.record.mark_out_of_sync(role, CardHealth::Stale);
            return true;
        }
        false
    }

    /// Takes `role` out of use after `error`, and records on the other card that it is stale.
    pub fn fail_card(&mut self, role: CardRole, error: &DriverError) -> Result<String> {
        let why = error.to_string();
        tracing::error!(card = %role, %why, "card failed");
        if self.take_out_of_use(role, why.clone()) {
            self.commit()?;
        }
        Ok(why)
    }

    /// Submits an intent record stating `dirty` to each of `cards`, not waited for.
    fn submit_intent(&mut self, dirty: Dirty, cards: &[CardRole]) -> Result<PendingIntent> {
        let slot_bytes = self.geometry.intent_slot_bytes();
        let mut pending = PerCard::from_fn(|_| None);
        for &role in cards {
            let half = &mut self.halves[role];
            let sequence = half.intent_sequence + 1;
            let record = intent::Record {
                sequence,
                volume: self.record.id,
                dirty: dirty.clone(),
            };
            let bytes = intent::encode(&record, slot_bytes as usize);
            let offset = role.index() as u64 * slot_bytes;
            self.intent_out
                .write(offset, &bytes)
                .map_err(DriverError::from)?;
            let submitted =
                half.submit_intent(&self.geometry, &self.intent_out, offset, bytes.len() as u64);
            pending[role] = Some(submitted.map(|(slot, tickets)| {
                half.intent_slot = Some(slot);
                half.intent_sequence = sequence;
                tickets
            }));
        }
        Ok(pending)
    }

    /// Records `dirty` on every card that takes writes and waits until it is durable; a card
    /// that fails on the way is taken out of use.
    pub fn record_intent_now(&mut self, dirty: Dirty) -> Result<()> {
        let targets = self.write_targets_all();
        let pending = self.submit_intent(dirty, &targets)?;
        for (role, submitted) in pending {
            let Some(submitted) = submitted else {
                continue;
            };
            let half = &mut self.halves[role];
            if let Err(error) = submitted.and_then(|tickets| half.wait_all(tickets)) {
                self.fail_card(role, &error)?;
            }
        }
        if self.write_targets_all().is_empty() {
            return Err(self.both_failed());
        }
        Ok(())
    }

    /// Marks the chunks of physical `pages` dirty, durably, before they are written.
    pub fn mark_dirty(&mut self, pages: &[u64]) -> Result<()> {
        let settled = self.settled();
        match self
            .intent
            .before_write(&intent::chunks_of(pages.iter().copied()), settled)
        {
            Some(dirty) => self.record_intent_now(dirty),
            None => Ok(()),
        }
    }

    /// Clears every dirty chunk on the cards, once both copies agree everywhere.
    pub fn settle_intent(&mut self) -> Result<()> {
        if !self.settled() {
            return Ok(());
        }
        match self.intent.settle() {
            Some(dirty) => self.record_intent_now(dirty),
            None => Ok(()),
        }
    }

    /// Zeroes physical `pages` on every card that takes writes, through the scratch window.
    /// They belong to no region until the metadata that creates one is committed, so a
    /// crash meanwhile leaves nothing to repair, and with both cards in sync nothing is
    /// recorded. With a card out of sync (from the start, or failing on the way) the pages
    /// are recorded dirty before that commit: the stale card misses the zeros.
    pub fn zero_pages(&mut self, pages: &[u64]) -> Result<()> {
        let window = self.geometry.scratch_pages as usize;
        let length = (window as u64).min(pages.len() as u64) * self.geometry.page_bytes();
        self.outgoing
            .fill(0, length, 0)
            .map_err(DriverError::from)?;
        for chunk in pages.chunks(window) {
            let targets = self.write_targets_all();
            if targets.is_empty() {
                return Err(self.both_failed());
            }
            let length = chunk.len() as u64 * self.geometry.page_bytes();
            for role in targets {
                let half = &mut self.halves[role];
                let zeroed = half.map_scratch(&self.geometry, chunk).and_then(|()| {
                    let write = Operation::Write(half.scratch_transfer(&self.outgoing, length));
                    let tickets = half.submit_all(&[write])?;
                    half.wait_all(tickets)
                });
                if let Err(error) = zeroed {
                    self.fail_card(role, &error)?;
                }
            }
        }
        if self.settled() {
            return Ok(());
        }
        self.mark_dirty(pages)
    }

    /// Maps `region` into `open`'s context on each of `cards`, with a fresh key.
    pub fn program_region(
        &mut self,
        region: &RegionRecord,
        open: &mut OpenRegion,
        cards: &[CardRole],
    ) -> Result<()> {
        let pages: Vec<Option<u32>> = region
            .physical_pages()
            .map(|page| Some(page as u32))
            .collect();
        let settings = ContextSettings {
            tag: rand::random::<u32>() & 0xff_ffff,
            read: true,
            write: true,
            initiator: Some(QUEUE),
            base: layout::network_base(open.context),
            pages: open.pages,
            first_entry: open.first_entry,
        };
        for &role in cards {
            let half = &mut self.halves[role];
            let Some(device) = half.device_mut() else {
                continue;
            };
            let programmed = device
                .write_entries(open.first_entry, &pages)
                .and_then(|()| device.register_context(open.context, &settings));
            match programmed {
                Ok(key) => open.keys[role] = Some(key),
                Err(error) if is_card_failure(&error) => {
                    self.fail_card(role, &error)?;
                }
                Err(source) => return Err(Error::Card { role, source }),
            }
        }
        if open.keys.values().all(Option::is_none) {
            return Err(self.both_failed());
        }
        Ok(())
    }

    /// Revokes `open`'s context wherever it was registered; a card that does not answer
    /// loses its tables at its next reset anyway.
    pub fn revoke(&mut self, open: &OpenRegion) {
        for role in CardRole::BOTH {
            if open.keys[role].is_none() {
                continue;
            }
            let half = &mut self.halves[role];
            if !half.is_usable() {
                continue;
            }
            if let Some(device) = half.device_mut() {
                if let Err(error) = device.invalidate_context(open.context) {
                    tracing::warn!(card = %role, %error, "revoking a context");
                }
            }
        }
    }

    pub fn close(&mut self, id: u64) -> Result<()> {
        let open = self.open.remove(&id).ok_or(Error::HandleNotOpen(id))?;
        self.revoke(&open);
        self.entries.release(open.first_entry, open.pages);
        self.contexts_in_use[usize::from(open.context)] = false;
        tracing::info!(region = %open.name, handle = id, "closed");
        Ok(())
    }

    fn staging_bytes(&self) -> u64 {
        self.outgoing
            .size()
            .min(u64::from(self.geometry.max_request_bytes))
    }

    /// The chunks that `length` bytes at `offset` of region `name` touch.
    fn chunks_written(&self, name: &str, offset: u64, length: u64) -> Vec<u32> {
        let Some(region) = self.record.region(name) else {
            return Vec::new();
        };
        let first = offset >> self.geometry.page_shift;
        let last = (offset + length - 1) >> self.geometry.page_shift;
        intent::chunks_of(region.physical_pages_of(first, last - first + 1))
    }

    pub fn write(&mut self, id: u64, data: &[u8], offset: u64, mirror: Mirror) -> Result<()> {
        let mut targets = match mirror {
            Mirror::Both => self.write_targets_all(),
            Mirror::Primary => vec![self.in_sync_card(CardRole::Primary)?],
            Mirror::Mirror => vec![self.in_sync_card(CardRole::Mirror)?],
        };
        if targets.is_empty() {
            return Err(self.both_failed());
        }
        let open = self.open.get(&id).ok_or(Error::HandleNotOpen(id))?;
        let (context, keys) = (open.context, open.keys);
        let chunks = self.chunks_written(&open.name, offset, data.len() as u64);
        let settled = self.settled();
        let mut intent = match self.intent.before_write(&chunks, settled) {
            Some(dirty) => self.submit_intent(dirty, &targets)?,
            None => PerCard::from_fn(|_| None),
        };
        let mut failed: Option<(CardRole, String)> = None;
        let chunk_bytes = self.staging_bytes() as usize;
        for (index, chunk) in data.chunks(chunk_bytes).enumerate() {
            self.outgoing.write(0, chunk).map_err(DriverError::from)?;
            let address = layout::network_base(context) + offset + (index * chunk_bytes) as u64;
            // Submitted to every card before any is waited for: the cards work at once. The
            // intent record, if one is due, is ahead of the data on each card's queue.
            let mut pending = PerCard::from_fn(|_| None);
            for &role in &targets {
                let recorded = match intent[role].take() {
                    Some(Ok(tickets)) => tickets,
                    Some(Err(error)) => {
                        pending[role] = Some(Err(error));
                        continue;
                    }
                    None => Vec::new(),
                };
                let write = Operation::Write(Transfer {
                    context,
                    key: key_on(keys, role)?,
                    address,
                    buffer: &self.outgoing,
                    offset: 0,
                    length: chunk.len() as u64,
                });
                let half = &mut self.halves[role];
                let mut tickets = recorded;
                pending[role] = Some(half.submit(write).map(|ticket| {
                    tickets.push(ticket);
                    tickets
                }));
            }
            // Every card is waited for before anything is reported, so no transfer is left
            // reading the staging buffers.
            let mut refused = None;
            for (role, submitted) in pending {
                let Some(submitted) = submitted else {
                    continue;
                };
                let half = &mut self.halves[role];
                match submitted.and_then(|tickets| half.wait_all(tickets)) {
                    Ok(_) => {}
                    Err(error) if is_card_failure(&error) => {
                        failed = Some((role, error.to_string()));
                        targets.retain(|&target| target != role);
                        if let Err(lost) = self.fail_card(role, &error) {
                            refused.get_or_insert(lost);
                        }
                    }
                    Err(source) => {
                        refused.get_or_insert(Error::Card { role, source });
                    }
                }
            }
            if let Some(error) = refused {
                return Err(error);
            }
            if targets.is_empty() {
                let (role, why) = failed.expect("a card failed");
                return Err(Error::CardUnavailable { role, why });
            }
        }
        match failed {
            None => Ok(()),
            Some((failed, why)) => Err(Error::Degraded {
                failed,
                survivor: failed.other(),
                why,
            }),
        }
    }

    pub fn read(&mut self, id: u64, buffer: &mut [u8], offset: u64, from: ReadFrom) -> Result<()> {
        let open = self.open.get(&id).ok_or(Error::HandleNotOpen(id))?;
        let (context, keys) = (open.context, open.keys);
        let chunk_bytes = self.staging_bytes() as usize;
        for (index, chunk) in buffer.chunks_mut(chunk_bytes).enumerate() {
            let address = layout::network_base(context) + offset + (index * chunk_bytes) as u64;
            let candidates = match from {
                ReadFrom::Any if self.readable_cards().is_empty() => return Err(self.both_failed()),
                ReadFrom::Any => self.readable_cards(),
                ReadFrom::Primary => vec![self.in_sync_card(CardRole::Primary)?],
                ReadFrom::Mirror => vec![self.in_sync_card(CardRole::Mirror)?],
            };
            let mut outcome = Err(self.both_failed());
            for role in candidates {
                let read = Operation::Read(Transfer {
                    context,
                    key: key_on(keys, role)?,
                    address,
                    buffer: &self.incoming,
                    offset: 0,
                    length: chunk.len() as u64,
                });
                let half = &mut self.halves[role];
                match half.submit(read).and_then(|ticket| half.wait(ticket)) {
                    Ok(_) => {
                        self.incoming.read(0, chunk).map_err(DriverError::from)?;
                        outcome = Ok(());
                        break;
                    }
                    Err(error) => {
                        if is_card_failure(&error) {
                            self.fail_card(role, &error)?;
                        } else {
                            tracing::warn!(card = %role, %error, "read refused");
                        }
                        outcome = Err(Error::Card {
                            role,
                            source: error,
                        });
                    }
                }
            }
            outcome?;
        }
        Ok(())
    }

    /// Reads physical `pages` of `role` through its scratch window; a card failing is taken
    /// out of use.
    pub fn read_pages(&mut self, role: CardRole, pages: &[u64]) -> Result<Vec<u8>> {
        let length = pages.len() as u64 * self.geometry.page_bytes();
        let half = &mut self.halves[role];
        let read = half.map_scratch(&self.geometry, pages).and_then(|()| {
            let read = Operation::Read(half.scratch_transfer(&self.incoming, length));
            let ticket = half.submit(read)?;
            half.wait(ticket)
        });
        if let Err(error) = read {
            if is_card_failure(&error) {
                self.fail_card(role, &error)?;
            }
            return Err(Error::Card {
                role,
                source: error,
            });
        }
        let mut bytes = vec![0u8; length as usize];
        self.incoming
            .read(0, &mut bytes)
            .map_err(DriverError::from)?;
        Ok(bytes)
    }

    /// Writes `bytes` into physical `pages` of `role` through its scratch window, durably; a
    /// card failing is taken out of use.
    pub fn write_pages(&mut self, role: CardRole, pages: &[u64], bytes: &[u8]) -> Result<()> {
        self.outgoing.write(0, bytes).map_err(DriverError::from)?;
        let length = bytes.len() as u64;
        let half = &mut self.halves[role];
        let written = half.map_scratch(&self.geometry, pages).and_then(|()| {
            let write = Operation::Write(half.scratch_transfer(&self.outgoing, length));
            let tickets = half.submit_all(&[write, Operation::Flush])?;
            half.wait_all(tickets)
        });
        if let Err(error) = written {
            self.fail_card(role, &error)?;
            return Err(Error::Card {
                role,
                source: error,
            });
        }
        Ok(())
    }

    /// Copies physical `pages` from `source` to `target`, a scratch window at a time.
    pub fn copy_pages(&mut self, source: CardRole, target: CardRole, pages: &[u64]) -> Result<()> {
        let bytes = self.read_pages(source, pages)?;
        self.write_pages(target, pages, &bytes)
    }

    /// Physical pages of every region inside a chunk of `dirty`, in order.
    pub fn region_pages_in(&self, dirty: &Dirty) -> Vec<u64> {
        let mut pages: Vec<u64> = self
            .record
            .regions
            .iter()
            .flat_map(|region| region.physical_pages())
            .filter(|&page| dirty.contains(intent::chunk_of(page)))
            .collect();
        pages.sort_unstable();
        pages
    }
}

impl<D: Device> Drop for Inner<D> {
    /// Revokes every region still open, clears the write intent if both cards agree (a clean
    /// shutdown leaves nothing to repair), and closes the management lock, so nothing this
    /// process opened stays reachable on a card that outlives it.
    fn drop(&mut self) {
        let open: Vec<OpenRegion> = self.open.drain().map(|(_, open)| open).collect();
        for region in &open {
            self.revoke(region);
        }
        if let Err(error) = self.settle_intent() {
            tracing::warn!(%error, "clearing the write intent at close");
        }
        for (_, half) in self.halves.iter_mut() {
            if half.is_usable() {
                if let Some(device) = half.device_mut() {
                    let _ = device.lock();
                }
            }
        }
    }
}

/// The key of a region's context on `role`: every card that takes the region's transfers
/// had it registered when it opened or was resynced.
pub(super) fn key_on(keys: PerCard<Option<u32>>, role: CardRole) -> Result<u32> {
    keys[role].ok_or_else(|| Error::CardUnavailable {
        role,
        why: "the region is not mapped on it".into(),
    })
}
