//! A mirrored volume: a primary and a mirror card under one persistent memory manager, and
//! the region verbs of seed 001 over it.

use crate::allocation::{self, EntryAllocator};
use crate::attributes::Attributes;
use crate::error::{CardRole, Error, Result};
use crate::half::{is_card_failure, Found, Half};
use crate::layout::{self, Geometry, FIRST_REGION_CONTEXT, QUEUE};
use crate::metadata::{self, CardHealth, Copy, MetadataError, RegionRecord, VolumeRecord};
use npmu_driver::{
    ContextSettings, Device, DmaBuffer, DmaDirection, DmaDomain, DriverError, DriverOptions,
    NpmuDevice, Operation, Transfer,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// The key strapped on the simulated cards (and the default of `npmu_sim::CardOptions`).
pub const DEFAULT_MANAGEMENT_KEY: u64 = 0x6e70_6d75_6b65_7921;

/// The largest piece of a transfer staged at once.
const MAX_STAGING_BYTES: u64 = 1 << 20;

#[derive(Clone, Copy, Debug)]
pub struct VolumeOptions {
    /// Opens the cards' management lock.
    pub management_key: u64,
    pub driver: DriverOptions,
}

impl Default for VolumeOptions {
    fn default() -> Self {
        Self {
            management_key: DEFAULT_MANAGEMENT_KEY,
            driver: DriverOptions::default(),
        }
    }
}

/// Which half a write goes to (seed 001 \[0088\]: PM_BOTH, PM_PRIMARY, PM_MIRROR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mirror {
    /// Normal operation: both cards, at once.
    Both,
    /// Recovery only: the primary alone, which must be in sync. The mirror is not marked
    /// stale: the halves differ in these bytes until a BOTH write covers them.
    Primary,
    /// Recovery only: the mirror alone, likewise.
    Mirror,
}

/// Which half a read comes from (seed 001 \[0090\]: PM_ANY, PM_PRIMARY, PM_MIRROR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFrom {
    /// Normal operation: an in-sync card, the other if it fails.
    Any,
    Primary,
    Mirror,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardState {
    InSync,
    Stale,
    /// Stale, being resynced: written to, not yet read from.
    Rebuilding,
}

/// How one card of a volume stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardStatus {
    pub role: CardRole,
    pub name: String,
    pub state: CardState,
    /// Why the card is out of use, if it is.
    pub failure: Option<String>,
}

/// What a resync did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResyncReport {
    pub card: CardRole,
    pub pages: u64,
    pub bytes: u64,
}

/// What a volume says of itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeInfo {
    pub id: u128,
    pub name: String,
    pub created: u64,
    pub page_bytes: u64,
    pub data_pages: u64,
    pub free_pages: u64,
    pub max_region_bytes: u64,
    pub regions: usize,
    /// Sequence number of the current metadata copy.
    pub sequence: u64,
}

/// A volume of two cards. Every verb takes `&self`; one runs at a time.
pub struct Volume<D: Device> {
    shared: Arc<Shared<D>>,
}

struct Shared<D: Device> {
    inner: Mutex<Inner<D>>,
}

/// An open region (seed 001 \[0066\]): the base pointer, the network virtual base and the
/// context on each card. Closed by [`Volume::close_region`] or when dropped.
pub struct RegionHandle<D: Device> {
    volume: Arc<Shared<D>>,
    id: u64,
    name: String,
    base_pointer: u64,
    size: u64,
    context: u16,
    closed: bool,
}

impl<D: Device> RegionHandle<D> {
    /// Identifies the handle within its volume, like a file descriptor.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn base_pointer(&self) -> u64 {
        self.base_pointer
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The context handle on each card (the same number on both).
    pub fn context(&self) -> u16 {
        self.context
    }

    /// Where the region starts in the card's network virtual address space: the same on
    /// both cards, which map the region in the same context.
    pub fn network_base(&self, _card: CardRole) -> u64 {
        layout::network_base(self.context)
    }

    /// The key of the region's context on `card` as last registered (a resync registers it
    /// anew on the rebuilt card); `None` if it never was on that card, or once closed.
    pub fn key(&self, card: CardRole) -> Option<u32> {
        let inner = lock(&self.volume);
        inner.open.get(&self.id)?.keys[card.index()]
    }

    /// The network address a region pointer maps to (seed 001 \[0087\]); `None` for a
    /// pointer outside the region.
    pub fn network_address(&self, card: CardRole, pointer: u64) -> Option<u64> {
        let offset = check_range(self, pointer, 1).ok()?;
        Some(self.network_base(card) + offset)
    }
}

impl<D: Device> Drop for RegionHandle<D> {
    fn drop(&mut self) {
        if !self.closed {
            if let Err(error) = lock(&self.volume).close(self.id) {
                tracing::warn!(region = %self.name, %error, "closing a dropped region handle");
            }
        }
    }
}

/// A resync under way: which card from which, and which resync it is.
#[derive(Clone, Copy)]
struct Resync {
    target: CardRole,
    source: CardRole,
    generation: u64,
}

/// Ends a resync that stops early (an error, a panic in the progress callback), so the next
/// one can start; the card stays stale.
struct RunningResync<'a, D: Device> {
    volume: &'a Volume<D>,
    resync: Resync,
    finished: bool,
}

impl<D: Device> Drop for RunningResync<'_, D> {
    fn drop(&mut self) {
        if !self.finished {
            let mut inner = self.volume.inner();
            if inner.is_current(&self.resync) {
                inner.rebuilding = None;
            }
        }
    }
}

struct OpenRegion {
    name: String,
    context: u16,
    first_entry: u32,
    pages: u32,
    keys: [Option<u32>; 2],
}

struct Inner<D: Device> {
    halves: [Half<D>; 2],
    domain: Arc<DmaDomain>,
    options: VolumeOptions,
    geometry: Geometry,
    sequence: u64,
    record: VolumeRecord,
    /// Staging for data the cards read (writes, zeroes, resync).
    outgoing: DmaBuffer,
    /// Staging for data the cards write (reads).
    incoming: DmaBuffer,
    /// Staging for metadata copies, one per card: a commit in the middle of a data
    /// transfer (a card failing) must not overwrite the data still being sent.
    metadata_out: DmaBuffer,
    open: HashMap<u64, OpenRegion>,
    entries: EntryAllocator,
    contexts_in_use: Vec<bool>,
    rebuilding: Option<CardRole>,
    /// Counts resyncs started, so a resync whose card was taken from it stops.
    resync_generation: u64,
}

/// The DMA buffers a volume moves everything through.
struct Staging {
    outgoing: DmaBuffer,
    incoming: DmaBuffer,
    metadata_out: DmaBuffer,
}

fn lock<D: Device>(shared: &Shared<D>) -> MutexGuard<'_, Inner<D>> {
    shared
        .inner
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

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
        for half in &halves {
            if let Some(why) = &half.failure {
                return Err(Error::CardUnavailable {
                    role: half.role,
                    why: why.clone(),
                });
            }
        }
        let staging = staging(&domain, &geometry)?;
        let mut newest = 0;
        let mut replaces = 0;
        for half in &mut halves {
            match half
                .read_metadata(&geometry, &staging.incoming)
                .map_err(|source| Error::Card {
                    role: half.role,
                    source,
                })? {
                Found::Damaged(source) if !overwrite => {
                    return Err(Error::Metadata {
                        role: half.role,
                        source,
                    });
                }
                Found::Copy(copy, _) if !overwrite => {
                    return Err(Error::AlreadyFormatted {
                        role: half.role,
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
            created: now(),
            page_shift: geometry.page_shift,
            memory_pages: geometry.memory_pages,
            copy_pages: geometry.copy_pages,
            health: [CardHealth::InSync; 2],
            regions: Vec::new(),
        };
        let mut inner = Inner::new(halves, domain, options, geometry, (newest, record), staging);
        // Both slots get the new volume, so no copy of an earlier one can come back.
        inner.commit()?;
        inner.commit()?;
        tracing::info!(volume = name, "formatted");
        Ok(Self::from_inner(inner))
    }

    /// Opens the volume on two cards from the metadata they hold. A card that does not
    /// answer leaves the volume degraded, its state stale; a card whose metadata is behind
    /// is brought up to date, or marked stale if the newer metadata says it missed writes.
    /// Every region an earlier process left open is closed.
    pub fn open(primary: D, mirror: D, options: VolumeOptions) -> Result<Self> {
        let (mut halves, domain, geometry) = take_cards(primary, mirror, options)?;
        let staging = staging(&domain, &geometry)?;
        let mut found = [None, None];
        for half in &mut halves {
            if !half.is_usable() {
                continue;
            }
            match half.read_metadata(&geometry, &staging.incoming) {
                Ok(what) => found[half.role.index()] = Some(what),
                Err(error) => {
                    tracing::warn!(card = half.role.to_string(), %error, "reading metadata");
                    half.failure = Some(error.to_string());
                }
            }
        }
        forget_replaced_volume(&mut found);
        let copies: Vec<(CardRole, &Copy)> = CardRole::BOTH
            .into_iter()
            .filter_map(|role| match &found[role.index()] {
                Some(Found::Copy(copy, _)) => Some((role, copy)),
                _ => None,
            })
            .collect();
        for (role, copy) in &copies {
            if copy.role != *role {
                return Err(Error::WrongRole {
                    role: *role,
                    found: copy.role,
                });
            }
        }
        if let [(_, primary), (_, mirror)] = copies[..] {
            if primary.volume.id != mirror.volume.id {
                return Err(Error::DifferentVolumes {
                    primary: primary.volume.id,
                    mirror: mirror.volume.id,
                });
            }
        }
        let Some(&(newest_role, newest)) = copies.iter().max_by_key(|(_, copy)| copy.sequence)
        else {
            return Err(no_volume(&halves, &found));
        };
        let newest = newest.clone();
        check_geometry(newest_role, &newest.volume, &geometry)?;
        let mut record = newest.volume.clone();
        let mut needs_commit = false;
        for half in &mut halves {
            let index = half.role.index();
            match &found[index] {
                Some(Found::Copy(copy, slot)) => {
                    half.current_slot = Some(*slot);
                    needs_commit |= copy.sequence != newest.sequence;
                }
                _ if half.is_usable() => {
                    // A blank or damaged card beside a good one: a replacement to rebuild.
                    record.health[index] = CardHealth::Stale;
                    needs_commit = true;
                }
                _ => {}
            }
            if !half.is_usable() && record.health[index] == CardHealth::InSync {
                record.health[index] = CardHealth::Stale;
                needs_commit = true;
            }
            // Only regions hold data: with none, a card that answers has nothing to rebuild.
            if half.is_usable() && record.regions.is_empty() {
                needs_commit |= record.health[index] != CardHealth::InSync;
                record.health[index] = CardHealth::InSync;
            }
        }
        let mut inner = Inner::new(
            halves,
            domain,
            options,
            geometry,
            (newest.sequence, record),
            staging,
        );
        if inner.readable_cards().is_empty() {
            return Err(inner.both_failed());
        }
        if needs_commit {
            inner.commit()?;
        }
        tracing::info!(volume = %inner.record.name, sequence = inner.sequence, "opened");
        Ok(Self::from_inner(inner))
    }

    fn from_inner(inner: Inner<D>) -> Self {
        Self {
            shared: Arc::new(Shared {
                inner: Mutex::new(inner),
            }),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner<D>> {
        lock(&self.shared)
    }

    pub fn info(&self) -> VolumeInfo {
        let inner = self.inner();
        VolumeInfo {
            id: inner.record.id,
            name: inner.record.name.clone(),
            created: inner.record.created,
            page_bytes: inner.geometry.page_bytes(),
            data_pages: inner.geometry.data_pages(),
            free_pages: allocation::free_pages(&inner.record),
            max_region_bytes: inner.geometry.max_region_bytes(),
            regions: inner.record.regions.len(),
            sequence: inner.sequence,
        }
    }

    /// How each card stands, primary first.
    pub fn status(&self) -> [CardStatus; 2] {
        let inner = self.inner();
        CardRole::BOTH.map(|role| {
            let half = &inner.halves[role.index()];
            CardStatus {
                role,
                name: half.name(),
                state: inner.state(role),
                failure: half.failure.clone(),
            }
        })
    }

    /// Runs `inspect` on a card's device, if the card opened.
    pub fn inspect_card<R>(&self, role: CardRole, inspect: impl FnOnce(&D) -> R) -> Option<R> {
        let inner = self.inner();
        let device = inner.halves[role.index()].device.as_ref()?;
        Some(inspect(device.card()))
    }

    /// Creates region `name` of `size` bytes addressed from `base_pointer` (seed 001
    /// \[0078\]-\[0081\]): pages on both cards, zeroed, then the metadata on both.
    pub fn create_region(&self, name: &str, size: u64, base_pointer: u64) -> Result<()> {
        check_name(name)?;
        let mut inner = self.inner();
        let max = inner.geometry.max_region_bytes();
        if size == 0 || size > max {
            return Err(Error::BadSize { size, max });
        }
        if base_pointer > u64::MAX - (size - 1) {
            return Err(Error::BaseWraps { base_pointer, size });
        }
        if inner.record.region(name).is_some() {
            return Err(Error::RegionExists(name.to_owned()));
        }
        let pages = inner.geometry.pages_for(size);
        let extents =
            allocation::allocate_pages(&inner.record, pages).ok_or_else(|| Error::NoSpace {
                needed: pages,
                free: allocation::free_pages(&inner.record),
            })?;
        let region = RegionRecord {
            name: name.to_owned(),
            size,
            base_pointer,
            owner: user(),
            created: now(),
            last_opened: 0,
            extents,
        };
        let mut record = inner.record.clone();
        record.regions.push(region.clone());
        inner.check_fits(&record)?;
        inner.zero_pages(&region.physical_pages().collect::<Vec<_>>())?;
        // Taken again: a card failing while the pages were zeroed changed the state.
        let mut record = inner.record.clone();
        record.regions.push(region);
        inner.update(record)?;
        tracing::info!(region = name, size, pages, "created");
        Ok(())
    }

    /// Deletes region `name` and frees its pages (seed 001 \[0082\]); refused while it is
    /// open, or to anyone but its owner and root.
    pub fn delete_region(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let mut inner = self.inner();
        let region = inner
            .record
            .region(name)
            .ok_or_else(|| Error::NoSuchRegion(name.to_owned()))?;
        let caller = user();
        if caller != 0 && caller != region.owner {
            return Err(Error::NotOwner {
                name: name.to_owned(),
                owner: region.owner,
                caller,
            });
        }
        let handles = inner.open.values().filter(|open| open.name == name).count() as u32;
        if handles > 0 {
            return Err(Error::RegionOpen {
                name: name.to_owned(),
                handles,
            });
        }
        let mut record = inner.record.clone();
        record.regions.retain(|region| region.name != name);
        inner.update(record)?;
        tracing::info!(region = name, "deleted");
        Ok(())
    }

    /// Opens region `name` (seed 001 \[0083\]-\[0084\]): maps its pages to a contiguous network
    /// virtual range on each card, in a context with a fresh key that admits only this
    /// process's queue.
    pub fn open_region(&self, name: &str) -> Result<RegionHandle<D>> {
        check_name(name)?;
        let mut inner = self.inner();
        let region = inner
            .record
            .region(name)
            .ok_or_else(|| Error::NoSuchRegion(name.to_owned()))?
            .clone();
        let pages = region.pages() as u32;
        let context = inner.free_context().ok_or(Error::NoFreeContext)?;
        let first_entry = inner
            .entries
            .allocate(pages)
            .ok_or(Error::NoFreeEntries { needed: pages })?;
        let mut open = OpenRegion {
            name: name.to_owned(),
            context,
            first_entry,
            pages,
            keys: [None, None],
        };
        let cards = inner.write_targets_all();
        let programmed = inner.program_region(&region, &mut open, &cards);
        if let Err(error) = programmed {
            inner.revoke(&open);
            inner.entries.release(first_entry, pages);
            return Err(error);
        }
        let mut record = inner.record.clone();
        if let Some(opened) = record.regions.iter_mut().find(|r| r.name == name) {
            opened.last_opened = now();
        }
        if let Err(error) = inner.update(record) {
            inner.revoke(&open);
            inner.entries.release(first_entry, pages);
            return Err(error);
        }
        inner.contexts_in_use[usize::from(context)] = true;
        let id = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
        inner.open.insert(id, open);
        tracing::info!(region = name, context, handle = id, "opened");
        Ok(RegionHandle {
            volume: Arc::clone(&self.shared),
            id,
            name: name.to_owned(),
            base_pointer: region.base_pointer,
            size: region.size,
            context,
            closed: false,
        })
    }

    /// Closes a region (seed 001 \[0085\]): its contexts are revoked on both cards, so its keys
    /// fail in hardware from now on.
    pub fn close_region(&self, mut handle: RegionHandle<D>) -> Result<()> {
        self.check_handle(&handle)?;
        handle.closed = true;
        self.inner().close(handle.id)
    }

    /// Writes `data` at region pointer `pointer` (seed 001 \[0086\]).
    pub fn write_region(
        &self,
        handle: &RegionHandle<D>,
        data: &[u8],
        pointer: u64,
        mirror: Mirror,
    ) -> Result<()> {
        self.check_handle(handle)?;
        let offset = check_range(handle, pointer, data.len() as u64)?;
        self.inner().write(handle.id, data, offset, mirror)
    }

    /// Fills `buffer` from region pointer `pointer` (seed 001 \[0089\]-\[0094\]).
    pub fn read_region(
        &self,
        handle: &RegionHandle<D>,
        buffer: &mut [u8],
        pointer: u64,
        from: ReadFrom,
    ) -> Result<()> {
        self.check_handle(handle)?;
        let offset = check_range(handle, pointer, buffer.len() as u64)?;
        self.inner().read(handle.id, buffer, offset, from)
    }

    /// Names of every region, in creation order (seed 001 \[0095\]).
    pub fn list_regions(&self) -> Vec<String> {
        let inner = self.inner();
        inner
            .record
            .regions
            .iter()
            .map(|region| region.name.clone())
            .collect()
    }

    /// Reads region `name`'s attributes into a cache (seed 001 \[0096\]-\[0098\]).
    pub fn read_attributes(&self, name: &str) -> Result<Attributes> {
        check_name(name)?;
        let inner = self.inner();
        let region = inner
            .record
            .region(name)
            .ok_or_else(|| Error::NoSuchRegion(name.to_owned()))?;
        let handles = inner.open.values().filter(|open| open.name == name).count() as u32;
        Ok(Attributes::of(region, handles))
    }

    /// Puts `card` in place of the `role` card, which must be stale or out of use; the new
    /// card gets the metadata and is stale until [`Volume::resync`] has rebuilt it.
    pub fn replace_card(&self, role: CardRole, card: D) -> Result<()> {
        let mut inner = self.inner();
        if inner.state(role) == CardState::InSync && inner.halves[role.index()].is_usable() {
            return Err(Error::CardInUse { role });
        }
        if inner.rebuilding == Some(role) {
            return Err(Error::ResyncRunning { role });
        }
        // The other card must hold the current data, or replacing this one loses it.
        inner.in_sync_card(role.other())?;
        let device = NpmuDevice::open_in(card, Arc::clone(&inner.domain), inner.options.driver)
            .map_err(|source| Error::Card { role, source })?;
        let geometry = Geometry::of(role, device.capabilities())?;
        if let Some((what, volume, card)) = inner.geometry.first_difference(&geometry) {
            return Err(Error::UnsuitableCard {
                role,
                why: format!("the volume's cards have {what} {volume}, this one {card}"),
            });
        }
        let mut half = Half::new(role, device);
        half.prepare(&geometry, inner.options.management_key)
            .map_err(|source| Error::Card { role, source })?;
        inner.halves[role.index()] = half;
        inner.record.health[role.index()] = CardHealth::Stale;
        // Both slots of the new card get this volume, so no earlier copy on it can win.
        inner.commit()?;
        inner.commit()?;
        tracing::info!(card = %role, "replaced; stale until resynced");
        Ok(())
    }

    /// Rebuilds the stale card from the in-sync one while the volume stays in use: every
    /// region's pages are copied a window at a time, writes meanwhile go to both.
    /// `progress(bytes done, bytes to do)` is called after each window.
    pub fn resync(&self, mut progress: impl FnMut(u64, u64)) -> Result<ResyncReport> {
        let (resync, pages) = self.inner().start_resync()?;
        let mut running = RunningResync {
            volume: self,
            resync,
            finished: false,
        };
        let window = self.inner().geometry.scratch_pages as usize;
        let page_bytes = self.inner().geometry.page_bytes();
        let total = pages.len() as u64 * page_bytes;
        let mut done = 0;
        for chunk in pages.chunks(window) {
            self.inner().copy_pages(&resync, chunk)?;
            done += chunk.len() as u64 * page_bytes;
            progress(done, total);
        }
        self.inner().finish_resync(&resync)?;
        running.finished = true;
        tracing::info!(card = %resync.target, pages = pages.len(), "resynced");
        Ok(ResyncReport {
            card: resync.target,
            pages: pages.len() as u64,
            bytes: total,
        })
    }

    fn check_handle(&self, handle: &RegionHandle<D>) -> Result<()> {
        if !Arc::ptr_eq(&handle.volume, &self.shared) {
            return Err(Error::ForeignHandle);
        }
        Ok(())
    }
}

impl<D: Device> Inner<D> {
    fn new(
        halves: [Half<D>; 2],
        domain: Arc<DmaDomain>,
        options: VolumeOptions,
        geometry: Geometry,
        (sequence, record): (u64, VolumeRecord),
        staging: Staging,
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
            open: HashMap::new(),
            contexts_in_use,
            rebuilding: None,
            resync_generation: 0,
        }
    }

    fn state(&self, role: CardRole) -> CardState {
        match (self.record.health[role.index()], self.rebuilding) {
            (CardHealth::InSync, _) => CardState::InSync,
            (CardHealth::Stale, Some(rebuilding)) if rebuilding == role => CardState::Rebuilding,
            (CardHealth::Stale, _) => CardState::Stale,
        }
    }

    /// Cards that hold current data and answer.
    fn readable_cards(&self) -> Vec<CardRole> {
        CardRole::BOTH
            .into_iter()
            .filter(|&role| {
                self.halves[role.index()].is_usable() && self.state(role) == CardState::InSync
            })
            .collect()
    }

    /// Cards that take writes: the readable ones and one being rebuilt.
    fn write_targets_all(&self) -> Vec<CardRole> {
        CardRole::BOTH
            .into_iter()
            .filter(|&role| {
                self.halves[role.index()].is_usable() && self.state(role) != CardState::Stale
            })
            .collect()
    }

    fn why_unreadable(&self, role: CardRole) -> String {
        match (&self.halves[role.index()].failure, self.state(role)) {
            (Some(why), _) => why.clone(),
            (None, CardState::InSync) => "in sync".into(),
            (None, _) => "stale".into(),
        }
    }

    fn unavailable(&self, role: CardRole) -> Error {
        match &self.halves[role.index()].failure {
            Some(why) => Error::CardUnavailable {
                role,
                why: why.clone(),
            },
            None => Error::CardStale { role },
        }
    }

    fn free_context(&self) -> Option<u16> {
        self.contexts_in_use
            .iter()
            .position(|used| !used)
            .map(|context| context as u16)
    }

    fn check_fits(&self, record: &VolumeRecord) -> Result<()> {
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
    fn update(&mut self, record: VolumeRecord) -> Result<()> {
        let previous = std::mem::replace(&mut self.record, record);
        let committed = self.commit();
        if committed.is_err() {
            // The cards' state is the old or the new one; the next open tells which.
            let health = self.record.health;
            self.record = VolumeRecord { health, ..previous };
        }
        committed
    }

    /// Writes the state as a new copy on every card that answers, stale ones included, and
    /// waits until it is durable. A card failing on the way is taken out of use and the
    /// state written again to the other.
    fn commit(&mut self) -> Result<()> {
        self.check_fits(&self.record)?;
        loop {
            let targets = CardRole::BOTH.map(|role| self.halves[role.index()].is_usable());
            if !targets.contains(&true) {
                return Err(self.both_failed());
            }
            self.sequence = self.sequence.checked_add(1).ok_or(Error::Metadata {
                role: CardRole::Primary,
                source: MetadataError::Inconsistent("the sequence number is exhausted".into()),
            })?;
            let copy_bytes = self.geometry.copy_bytes();
            let mut pending = [None, None];
            for role in CardRole::BOTH {
                if !targets[role.index()] {
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
                let half = &mut self.halves[role.index()];
                pending[role.index()] = Some(half.submit_copy(
                    &self.geometry,
                    &self.metadata_out,
                    offset,
                    bytes.len() as u64,
                ));
            }
            let mut lost = false;
            for role in CardRole::BOTH {
                let Some(submitted) = pending[role.index()].take() else {
                    continue;
                };
                let half = &mut self.halves[role.index()];
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
    fn take_out_of_use(&mut self, role: CardRole, why: String) -> bool {
        self.halves[role.index()].failure = Some(why);
        if self.rebuilding == Some(role) {
            self.rebuilding = None;
        }
        let other = role.other();
        let other_is_current = self.record.health[other.index()] == CardHealth::InSync
            && self.halves[other.index()].is_usable();
        if self.record.health[role.index()] == CardHealth::InSync && other_is_current {
            self.record.health[role.index()] = CardHealth::Stale;
            return true;
        }
        false
    }

    /// Takes `role` out of use after `error`, and records on the other card that it is stale.
    fn fail_card(&mut self, role: CardRole, error: &DriverError) -> Result<String> {
        let why = error.to_string();
        tracing::error!(card = %role, %why, "card failed");
        if self.take_out_of_use(role, why.clone()) {
            self.commit()?;
        }
        Ok(why)
    }

    fn both_failed(&self) -> Error {
        Error::BothCardsFailed {
            primary: self.why_unreadable(CardRole::Primary),
            mirror: self.why_unreadable(CardRole::Mirror),
        }
    }

    /// Zeroes physical `pages` on every card that takes writes, through the scratch window.
    fn zero_pages(&mut self, pages: &[u64]) -> Result<()> {
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
                let half = &mut self.halves[role.index()];
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
        Ok(())
    }

    /// Maps `region` into `open`'s context on each of `cards`, with a fresh key.
    fn program_region(
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
            let half = &mut self.halves[role.index()];
            let Some(device) = half.device_mut() else {
                continue;
            };
            let programmed = device
                .write_entries(open.first_entry, &pages)
                .and_then(|()| device.register_context(open.context, &settings));
            match programmed {
                Ok(key) => open.keys[role.index()] = Some(key),
                Err(error) if is_card_failure(&error) => {
                    self.fail_card(role, &error)?;
                }
                Err(source) => return Err(Error::Card { role, source }),
            }
        }
        if open.keys.iter().all(Option::is_none) {
            return Err(self.both_failed());
        }
        Ok(())
    }

    /// Revokes `open`'s context wherever it was registered; a card that does not answer
    /// loses its tables at its next reset anyway.
    fn revoke(&mut self, open: &OpenRegion) {
        for role in CardRole::BOTH {
            if open.keys[role.index()].is_none() {
                continue;
            }
            let half = &mut self.halves[role.index()];
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

    fn close(&mut self, id: u64) -> Result<()> {
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

    fn write(&mut self, id: u64, data: &[u8], offset: u64, mirror: Mirror) -> Result<()> {
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
        let mut failed: Option<(CardRole, String)> = None;
        let chunk_bytes = self.staging_bytes() as usize;
        for (index, chunk) in data.chunks(chunk_bytes).enumerate() {
            self.outgoing.write(0, chunk).map_err(DriverError::from)?;
            let address = layout::network_base(context) + offset + (index * chunk_bytes) as u64;
            // Submitted to every card before any is waited for: the cards work at once.
            let mut pending = [None, None];
            for &role in &targets {
                let write = Operation::Write(Transfer {
                    context,
                    key: key_on(keys, role)?,
                    address,
                    buffer: &self.outgoing,
                    offset: 0,
                    length: chunk.len() as u64,
                });
                pending[role.index()] = Some(self.halves[role.index()].submit(write));
            }
            // Every card is waited for before anything is reported, so no transfer is left
            // reading the staging buffer.
            let mut refused = None;
            for role in CardRole::BOTH {
                let Some(submitted) = pending[role.index()].take() else {
                    continue;
                };
                let half = &mut self.halves[role.index()];
                match submitted.and_then(|ticket| half.wait(ticket)) {
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

    /// `role`, if it holds the current data and answers: a single-card write (recovery) is
    /// refused on a stale or rebuilding card, where it would be written and never read.
    fn in_sync_card(&self, role: CardRole) -> Result<CardRole> {
        if self.readable_cards().contains(&role) {
            Ok(role)
        } else {
            Err(self.unavailable(role))
        }
    }

    fn read(&mut self, id: u64, buffer: &mut [u8], offset: u64, from: ReadFrom) -> Result<()> {
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
                let half = &mut self.halves[role.index()];
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

    /// Chooses the card to rebuild, takes it over again, and maps the open regions on it.
    fn start_resync(&mut self) -> Result<(Resync, Vec<u64>)> {
        if let Some(role) = self.rebuilding {
            return Err(Error::ResyncRunning { role });
        }
        let target = CardRole::BOTH
            .into_iter()
            .find(|&role| self.record.health[role.index()] == CardHealth::Stale)
            .ok_or(Error::NothingToResync)?;
        let source = target.other();
        if !self.readable_cards().contains(&source) {
            return Err(self.unavailable(source));
        }
        let management_key = self.options.management_key;
        let half = &mut self.halves[target.index()];
        if half.device.is_none() {
            return Err(Error::CardUnavailable {
                role: target,
                why: "the card never opened: replace it first".into(),
            });
        }
        half.prepare(&self.geometry, management_key)
            .map_err(|source| Error::Card {
                role: target,
                source,
            })?;
        let ids: Vec<u64> = self.open.keys().copied().collect();
        for id in ids {
            let mut open = self.open.remove(&id).expect("listed");
            let region = self.record.region(&open.name).cloned();
            let programmed = match region {
                Some(region) => self.program_region(&region, &mut open, &[target]),
                None => Ok(()),
            };
            self.open.insert(id, open);
            programmed?;
        }
        self.rebuilding = Some(target);
        self.resync_generation += 1;
        let resync = Resync {
            target,
            source,
            generation: self.resync_generation,
        };
        self.commit()?;
        let mut pages: Vec<u64> = self
            .record
            .regions
            .iter()
            .flat_map(|region| region.physical_pages())
            .collect();
        pages.sort_unstable();
        Ok((resync, pages))
    }

    /// Whether `resync` is still the one under way: a card failing, or another resync
    /// starting, ends it.
    fn is_current(&self, resync: &Resync) -> bool {
        self.rebuilding == Some(resync.target) && self.resync_generation == resync.generation
    }

    /// Copies physical `pages` from `source` to `target` through both scratch windows.
    fn copy_pages(&mut self, resync: &Resync, pages: &[u64]) -> Result<()> {
        let Resync { target, source, .. } = *resync;
        if !self.is_current(resync) {
            return Err(self.unavailable(target));
        }
        let length = pages.len() as u64 * self.geometry.page_bytes();
        let half = &mut self.halves[source.index()];
        let read = half.map_scratch(&self.geometry, pages).and_then(|()| {
            let read = Operation::Read(half.scratch_transfer(&self.incoming, length));
            let ticket = half.submit(read)?;
            half.wait(ticket)
        });
        if let Err(error) = read {
            if is_card_failure(&error) {
                self.fail_card(source, &error)?;
            }
            return Err(Error::Card {
                role: source,
                source: error,
            });
        }
        let mut bytes = vec![0u8; length as usize];
        self.incoming
            .read(0, &mut bytes)
            .map_err(DriverError::from)?;
        self.outgoing.write(0, &bytes).map_err(DriverError::from)?;
        let half = &mut self.halves[target.index()];
        let written = half.map_scratch(&self.geometry, pages).and_then(|()| {
            let write = Operation::Write(half.scratch_transfer(&self.outgoing, length));
            let tickets = half.submit_all(&[write, Operation::Flush])?;
            half.wait_all(tickets)
        });
        if let Err(error) = written {
            self.fail_card(target, &error)?;
            return Err(Error::Card {
                role: target,
                source: error,
            });
        }
        Ok(())
    }

    fn finish_resync(&mut self, resync: &Resync) -> Result<()> {
        let target = resync.target;
        if !self.is_current(resync) {
            return Err(self.unavailable(target));
        }
        self.record.health[target.index()] = CardHealth::InSync;
        self.rebuilding = None;
        self.commit()
    }
}

impl<D: Device> Drop for Inner<D> {
    /// Revokes every region still open and closes the management lock, so nothing this
    /// process opened stays reachable on a card that outlives it.
    fn drop(&mut self) {
        let open: Vec<OpenRegion> = self.open.drain().map(|(_, open)| open).collect();
        for region in &open {
            self.revoke(region);
        }
        for half in &mut self.halves {
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
fn key_on(keys: [Option<u32>; 2], role: CardRole) -> Result<u32> {
    keys[role.index()].ok_or_else(|| Error::CardUnavailable {
        role,
        why: "the region is not mapped on it".into(),
    })
}

/// Opens both cards in one DMA domain and checks they can hold the same volume.
fn take_cards<D: Device>(
    primary: D,
    mirror: D,
    options: VolumeOptions,
) -> Result<([Half<D>; 2], Arc<DmaDomain>, Geometry)> {
    let domain = DmaDomain::new(primary.dma(), npmu_abi::IOVA_BITS as u32);
    let mut geometries = [None, None];
    let halves = [(CardRole::Primary, primary), (CardRole::Mirror, mirror)].map(|(role, card)| {
        let opened = NpmuDevice::open_in(card, Arc::clone(&domain), options.driver);
        match opened {
            Ok(device) => {
                let geometry = Geometry::of(role, device.capabilities());
                let mut half = Half::new(role, device);
                match geometry {
                    Ok(geometry) => {
                        geometries[role.index()] = Some(Ok(geometry));
                        if let Err(error) = half.prepare(&geometry, options.management_key) {
                            tracing::warn!(card = %role, %error, "taking the card over");
                            half.failure = Some(error.to_string());
                        }
                    }
                    Err(error) => geometries[role.index()] = Some(Err(error)),
                }
                half
            }
            Err(error @ DriverError::ForeignDomain { .. }) => {
                geometries[role.index()] = Some(Err(Error::Card {
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
    let [primary_geometry, mirror_geometry] = geometries;
    let geometry = match (primary_geometry, mirror_geometry) {
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
                primary: halves[0].failure.clone().unwrap_or_default(),
                mirror: halves[1].failure.clone().unwrap_or_default(),
            })
        }
    };
    Ok((halves, domain, geometry))
}

fn staging(domain: &Arc<DmaDomain>, geometry: &Geometry) -> Result<Staging> {
    let bytes = MAX_STAGING_BYTES
        .min(u64::from(geometry.max_request_bytes))
        .max(geometry.copy_bytes())
        .max(geometry.scratch_bytes());
    let buffer = |bytes, direction| {
        DmaBuffer::new(domain, bytes, direction)
            .map_err(|error| Error::from(DriverError::from(error)))
    };
    Ok(Staging {
        outgoing: buffer(bytes, DmaDirection::ToDevice)?,
        incoming: buffer(bytes, DmaDirection::FromDevice)?,
        metadata_out: buffer(2 * geometry.copy_bytes(), DmaDirection::ToDevice)?,
    })
}

/// A format killed after reaching one card leaves the other holding the volume the new one
/// replaced: that card is a blank for the new volume.
fn forget_replaced_volume(found: &mut [Option<Found>; 2]) {
    let newest = found
        .iter()
        .filter_map(|what| match what {
            Some(Found::Copy(copy, _)) => Some(copy),
            _ => None,
        })
        .max_by_key(|copy| copy.sequence)
        .map(|copy| (copy.volume.id, copy.volume.replaces));
    let Some((id, replaces)) = newest else {
        return;
    };
    for what in found.iter_mut() {
        if let Some(Found::Copy(copy, _)) = what {
            if copy.volume.id != id && replaces != 0 && copy.volume.id == replaces {
                tracing::info!(volume = %copy.volume.name, "a card still holds the volume a format replaced");
                *what = Some(Found::Blank);
            }
        }
    }
}

/// Why no volume was found: blank cards, or damaged metadata.
fn no_volume<D: Device>(halves: &[Half<D>; 2], found: &[Option<Found>; 2]) -> Error {
    for role in CardRole::BOTH {
        if let Some(Found::Damaged(source)) = &found[role.index()] {
            return Error::Metadata {
                role,
                source: source.clone(),
            };
        }
    }
    if halves.iter().all(Half::is_usable) {
        Error::NotFormatted
    } else {
        Error::BothCardsFailed {
            primary: halves[0].failure.clone().unwrap_or_else(|| "blank".into()),
            mirror: halves[1].failure.clone().unwrap_or_else(|| "blank".into()),
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

fn check_name(name: &str) -> Result<()> {
    if metadata::name_is_valid(name) {
        Ok(())
    } else {
        Err(Error::BadName {
            length: name.len(),
            max: metadata::MAX_NAME_BYTES,
        })
    }
}

/// The offset in the region of `length` bytes at `pointer`, if they lie inside it.
fn check_range<D: Device>(handle: &RegionHandle<D>, pointer: u64, length: u64) -> Result<u64> {
    let outside = || Error::OutsideRegion {
        pointer,
        length,
        base_pointer: handle.base_pointer,
        size: handle.size,
    };
    if pointer < handle.base_pointer {
        return Err(outside());
    }
    let offset = pointer - handle.base_pointer;
    if length > handle.size {
        return Err(outside());
    }
    if offset > handle.size - length {
        return Err(outside());
    }
    Ok(offset)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

fn user() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}
