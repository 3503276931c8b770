//! Checking that the two cards hold the same volume: their metadata and every byte of every
//! region, compared online a scratch window at a time; with repair, the mirror is made to
//! agree with the primary (the rule when both are in sync, as after an unclean shutdown).

use super::inner::Inner;
use super::Volume;
use crate::error::{CardRole, Error, Result};
use crate::half::Found;
use crate::metadata::{RegionRecord, VolumeRecord};
use crate::per_card::PerCard;
use npmu_driver::Device;

/// Bytes of a region where the cards' copies differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub region: String,
    /// From the region's first byte.
    pub offset: u64,
    pub length: u64,
}

/// What [`Volume::check`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// How the cards' metadata differs, a line each; empty if it agrees.
    pub metadata: Vec<String>,
    /// Where the regions' bytes differ, in region order then offset.
    pub differences: Vec<Difference>,
    pub regions: usize,
    pub bytes_compared: u64,
    /// Whether the differences were repaired (the mirror now holds the primary's bytes).
    pub repaired: bool,
}

impl CheckReport {
    /// Whether the copies agreed.
    pub fn is_clean(&self) -> bool {
        self.metadata.is_empty() && self.differences.is_empty()
    }
}

impl<D: Device> Volume<D> {
    /// Compares both cards' metadata and every region byte for byte while the volume stays
    /// in use. With `repair`, every difference is copied from the primary to the mirror.
    /// Both cards must be in sync and answer. `progress(bytes done, bytes to do)` is called
    /// after each window.
    pub fn check(&self, repair: bool, mut progress: impl FnMut(u64, u64)) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        let regions = {
            let mut inner = self.inner();
            for role in CardRole::BOTH {
                inner.in_sync_card(role)?;
            }
            report.metadata = inner.compare_metadata()?;
            if repair && !report.metadata.is_empty() {
                inner.commit()?;
            }
            inner.record.regions.clone()
        };
        report.regions = regions.len();
        let page_bytes = self.inner().geometry.page_bytes();
        let window = self.inner().geometry.scratch_pages as usize;
        let total: u64 = regions.iter().map(|region| region.size).sum();
        let mut done = 0;
        for region in &regions {
            let pages: Vec<u64> = region.physical_pages().collect();
            for (index, window_pages) in pages.chunks(window).enumerate() {
                let start = (index * window) as u64 * page_bytes;
                let length = (window_pages.len() as u64 * page_bytes).min(region.size - start);
                let mut inner = self.inner();
                if !inner.still_holds(region) {
                    break; // deleted (or recreated) meanwhile
                }
                let copies = inner.compare_window(window_pages, length)?;
                let differing = differing_runs(&copies.primary, &copies.mirror);
                if repair && !differing.is_empty() {
                    inner.write_pages(CardRole::Mirror, window_pages, &copies.primary)?;
                }
                drop(inner);
                for (offset, run) in differing {
                    push_difference(&mut report.differences, region, start + offset, run);
                }
                report.bytes_compared += length;
                done += length;
                progress(done, total);
            }
        }
        if repair {
            self.inner().settle_intent()?;
            report.repaired = !report.is_clean();
        }
        Ok(report)
    }
}

impl<D: Device> Inner<D> {
    /// How the newest metadata copies on the two cards differ.
    fn compare_metadata(&mut self) -> Result<Vec<String>> {
        let mut records = PerCard::from_fn(|_| None);
        for role in CardRole::BOTH {
            let found = self.halves[role]
                .read_metadata(&self.geometry, &self.incoming)
                .map_err(|source| Error::Card { role, source })?;
            records[role] = match found {
                Found::Copy(copy, _) => Some((copy.sequence, copy.volume)),
                Found::Blank => None,
                Found::Damaged(source) => return Err(Error::Metadata { role, source }),
            };
        }
        let (Some(primary), Some(mirror)) = (&records.primary, &records.mirror) else {
            let blank = if records.primary.is_none() {
                CardRole::Primary
            } else {
                CardRole::Mirror
            };
            return Ok(vec![format!("the {blank} card holds no metadata")]);
        };
        let mut lines = Vec::new();
        if primary.0 != mirror.0 {
            lines.push(format!(
                "metadata sequence: {} on the primary, {} on the mirror",
                primary.0, mirror.0
            ));
        }
        lines.extend(record_differences(&primary.1, &mirror.1));
        Ok(lines)
    }

    /// Whether `region` is still on the volume as it was when the check began.
    fn still_holds(&self, region: &RegionRecord) -> bool {
        self.record.region(&region.name) == Some(region)
    }

    /// The first `length` bytes of physical `pages` on each card.
    fn compare_window(&mut self, pages: &[u64], length: u64) -> Result<PerCard<Vec<u8>>> {
        let mut primary = self.read_pages(CardRole::Primary, pages)?;
        let mut mirror = self.read_pages(CardRole::Mirror, pages)?;
        primary.truncate(length as usize);
        mirror.truncate(length as usize);
        Ok(PerCard::new(primary, mirror))
    }
}

/// The fields two records disagree in, a line each.
fn record_differences(primary: &VolumeRecord, mirror: &VolumeRecord) -> Vec<String> {
    let mut lines = Vec::new();
    let mut differ = |what: &str, mine: String, theirs: String| {
        if mine != theirs {
            lines.push(format!(
                "{what}: {mine} on the primary, {theirs} on the mirror"
            ));
        }
    };
    differ(
        "volume id",
        format!("{:032x}", primary.id),
        format!("{:032x}", mirror.id),
    );
    differ("name", primary.name.clone(), mirror.name.clone());
    differ("epoch", primary.epoch.to_string(), mirror.epoch.to_string());
    differ(
        "card health",
        format!("{:?}", primary.health),
        format!("{:?}", mirror.health),
    );
    let names = |record: &VolumeRecord| {
        let names: Vec<&str> = record.regions.iter().map(|r| r.name.as_str()).collect();
        names.join(", ")
    };
    differ("regions", names(primary), names(mirror));
    for region in &primary.regions {
        if let Some(other) = mirror.region(&region.name) {
            if other != region {
                lines.push(format!(
                    "region {:?}: its record differs between the cards",
                    region.name
                ));
            }
        }
    }
    lines
}

/// Runs of bytes where `primary` and `mirror` differ: (offset, length).
fn differing_runs(primary: &[u8], mirror: &[u8]) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for (offset, (mine, theirs)) in primary.iter().zip(mirror).enumerate() {
        if mine == theirs {
            continue;
        }
        match runs.last_mut() {
            Some((start, length)) if *start + *length == offset as u64 => *length += 1,
            _ => runs.push((offset as u64, 1)),
        }
    }
    runs
}

/// Adds a run, joining it to the previous one if they touch.
fn push_difference(list: &mut Vec<Difference>, region: &RegionRecord, offset: u64, length: u64) {
    if let Some(last) = list.last_mut() {
        if last.region == region.name && last.offset + last.length == offset {
            last.length += length;
            return;
        }
    }
    list.push(Difference {
        region: region.name.clone(),
        offset,
        length,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differing_bytes_are_reported_as_runs() {
        let primary = [0u8, 1, 2, 3, 4, 5, 6, 7];
        let mirror = [0u8, 9, 9, 3, 4, 5, 9, 7];
        assert_eq!(differing_runs(&primary, &mirror), vec![(1, 2), (6, 1)]);
        assert!(differing_runs(&primary, &primary).is_empty());
    }
}
