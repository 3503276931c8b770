//! Bringing a card back: replacing a lost one and resyncing a stale one online. A stale card
//! gets only the chunks dirtied while it was out (the write-intent record of the card that
//! took them); a blank or replaced card gets every region.

use super::inner::Inner;
use super::{CardState, ResyncReport, Volume};
use crate::error::{CardRole, Error, Result};
use crate::half::Half;
use crate::intent::Dirty;
use crate::layout::Geometry;
use crate::metadata::CardHealth;
use npmu_driver::{Device, NpmuDevice};
use std::sync::Arc;

/// A resync under way: which card from which, and which resync it is.
#[derive(Clone, Copy)]
struct Resync {
    target: CardRole,
    source: CardRole,
    generation: u64,
    full: bool,
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

impl<D: Device> Volume<D> {
    /// Puts `card` in place of the `role` card, which must be stale or out of use; the new
    /// card gets the metadata and is stale until [`Volume::resync`] has rebuilt it in full.
    pub fn replace_card(&self, role: CardRole, card: D) -> Result<()> {
        let mut inner = self.inner();
        if inner.state(role) == CardState::InSync && inner.halves[role].is_usable() {
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
        inner.halves[role] = half;
        inner.record.mark_out_of_sync(role, CardHealth::Replaced);
        // Both slots of the new card get this volume, so no earlier copy on it can win.
        inner.commit()?;
        inner.commit()?;
        tracing::info!(card = %role, "replaced; stale until resynced");
        Ok(())
    }

    /// Rebuilds the stale card from the in-sync one while the volume stays in use, a window
    /// of pages at a time; writes meanwhile go to both. A stale card gets the region pages
    /// in the chunks dirtied since it went out, a replaced card every region's pages.
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
            {
                let mut inner = self.inner();
                if !inner.is_current(&resync) {
                    return Err(inner.unavailable(resync.target));
                }
                inner.copy_pages(resync.source, resync.target, chunk)?;
            }
            done += chunk.len() as u64 * page_bytes;
            progress(done, total);
        }
        self.inner().finish_resync(&resync)?;
        running.finished = true;
        tracing::info!(card = %resync.target, pages = pages.len(), full = resync.full, "resynced");
        Ok(ResyncReport {
            card: resync.target,
            pages: pages.len() as u64,
            bytes: total,
            full: resync.full,
        })
    }
}

impl<D: Device> Inner<D> {
    /// Chooses the card to rebuild and what it misses, takes it over again, and maps the
    /// open regions on it.
    fn start_resync(&mut self) -> Result<(Resync, Vec<u64>)> {
        if let Some(role) = self.rebuilding {
            return Err(Error::ResyncRunning { role });
        }
        let target = CardRole::BOTH
            .into_iter()
            .find(|&role| self.record.health[role] != CardHealth::InSync)
            .ok_or(Error::NothingToResync)?;
        let source = target.other();
        if !self.readable_cards().contains(&source) {
            return Err(self.unavailable(source));
        }
        let management_key = self.options.management_key;
        let half = &mut self.halves[target];
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
        let full = self.record.health[target] == CardHealth::Replaced;
        let missed = if full {
            Dirty::Everything
        } else {
            self.intent.dirty()
        };
        let resync = Resync {
            target,
            source,
            generation: self.resync_generation,
            full: missed == Dirty::Everything,
        };
        self.commit()?;
        Ok((resync, self.region_pages_in(&missed)))
    }

    /// Whether `resync` is still the one under way: a card failing, or another resync
    /// starting, ends it.
    fn is_current(&self, resync: &Resync) -> bool {
        self.rebuilding == Some(resync.target) && self.resync_generation == resync.generation
    }

    /// The target is in sync at a new epoch; then, and only then, the dirty chunks are
    /// cleared (the other way round, a crash between would leave a stale card with nothing
    /// recorded to copy).
    fn finish_resync(&mut self, resync: &Resync) -> Result<()> {
        let target = resync.target;
        if !self.is_current(resync) {
            return Err(self.unavailable(target));
        }
        self.record.health[target] = CardHealth::InSync;
        self.record.epoch += 1;
        self.rebuilding = None;
        self.commit()?;
        self.settle_intent()
    }
}
