//! A mirrored volume: a primary and a mirror card under one persistent memory manager, and
//! the region verbs of seed 001 over it.
//!
//! - [`open`]: format, open, and which card's copy is the volume's (epochs, missing cards,
//!   forked histories, the repair after an unclean shutdown);
//! - [`inner`]: the state behind the volume's mutex and the data path with write intent;
//! - [`rebuild`]: replacing a card and the online resync;
//! - [`check`]: comparing the two cards byte for byte.

mod check;
mod inner;
mod open;
mod rebuild;

pub use check::{CheckReport, Difference};
pub use inner::RepairReport;

use crate::allocation;
use crate::attributes::Attributes;
use crate::error::{CardRole, Error, Result};
use crate::metadata::{self, RegionRecord};
use crate::per_card::PerCard;
use inner::{Inner, OpenRegion};
use npmu_driver::{Device, DriverOptions};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// The key strapped on the simulated cards (and the default of `npmu_sim::CardOptions`).
pub const DEFAULT_MANAGEMENT_KEY: u64 = 0x6e70_6d75_6b65_7921;

#[derive(Clone, Copy, Debug)]
pub struct VolumeOptions {
    /// Opens the cards' management lock.
    pub management_key: u64,
    pub driver: DriverOptions,
    /// Opens the volume even if a card it has in sync is missing (does not answer, or is
    /// blank), going on with the other alone: whatever only the missing card holds is lost.
    /// The open itself records the missing card as out of sync at a new epoch, so if that
    /// card went on alone elsewhere, the two cards' histories have now forked.
    pub degraded: bool,
    /// Records the chunks each write touches before it reaches the cards (see
    /// [`crate::intent`]). Off, as md without a bitmap, the first write records every chunk
    /// as dirty: after an unclean shutdown the next open repairs every region, and a card
    /// that missed writes made meanwhile is resynced in full.
    pub write_intent: bool,
}

impl Default for VolumeOptions {
    fn default() -> Self {
        Self {
            management_key: DEFAULT_MANAGEMENT_KEY,
            driver: DriverOptions::default(),
            degraded: false,
            write_intent: true,
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
    /// Region pages copied: those in the chunks the card missed, or every one.
    pub pages: u64,
    pub bytes: u64,
    /// Whether every region was copied (a blank or replaced card, or a dirty set that was
    /// not known chunk by chunk).
    pub full: bool,
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
    /// Changes of which cards are in sync, counted since the format.
    pub epoch: u64,
    /// Chunks recorded dirty in the write intent; `None` for every chunk.
    pub dirty_chunks: Option<u64>,
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
        crate::layout::network_base(self.context)
    }

    /// The key of the region's context on `card` as last registered (a resync registers it
    /// anew on the rebuilt card); `None` if it never was on that card, or once closed.
    pub fn key(&self, card: CardRole) -> Option<u32> {
        let inner = lock(&self.volume);
        inner.open.get(&self.id)?.keys[card]
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

fn lock<D: Device>(shared: &Shared<D>) -> MutexGuard<'_, Inner<D>> {
    shared
        .inner
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

impl<D: Device> Volume<D> {
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
            epoch: inner.record.epoch,
            dirty_chunks: match inner.intent.dirty() {
                crate::intent::Dirty::Chunks(chunks) => Some(chunks.len() as u64),
                crate::intent::Dirty::Everything => None,
            },
        }
    }

    /// How each card stands.
    pub fn status(&self) -> PerCard<CardStatus> {
        let inner = self.inner();
        PerCard::from_fn(|role| {
            let half = &inner.halves[role];
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
        let device = inner.halves[role].device.as_ref()?;
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
            keys: PerCard::both(None),
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

    fn check_handle(&self, handle: &RegionHandle<D>) -> Result<()> {
        if !Arc::ptr_eq(&handle.volume, &self.shared) {
            return Err(Error::ForeignHandle);
        }
        Ok(())
    }
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
    if !npmu_abi::range_fits(offset, length, handle.size) {
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
