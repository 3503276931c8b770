//! One queue pair as the driver keeps it: the submission ring it writes, the completion
//! ring the card writes, and which descriptors are still out.
//!
//! Ordering: a descriptor's image is stored with volatile writes and a release fence
//! before the doorbell, so the card cannot fetch a half-written entry; a completion is
//! read only after its phase bit, with an acquire fence between, so none of its bytes is
//! older than the phase that said it was there.

use crate::dma::{DmaBuffer, DmaError};
use npmu_abi::queue::{Completion, Descriptor, COMPLETION_BYTES, DESCRIPTOR_BYTES};
use std::collections::HashMap;
use std::sync::atomic::{fence, Ordering};
use zerocopy::{FromBytes, IntoBytes};

pub(crate) struct QueuePair {
    pub submissions: DmaBuffer,
    pub completions: DmaBuffer,
    pub entries: u32,
    /// The slot the next descriptor goes to.
    tail: u32,
    /// Slots before this one have been fetched and may be reused.
    submission_head: u32,
    /// The next completion slot, and the phase it carries on this pass.
    completion_head: u32,
    phase: bool,
    /// Tags submitted and not yet completed, with the slot after each one's descriptor.
    pub outstanding: HashMap<u32, u32>,
    /// Completions read and not yet asked for, by tag.
    pub finished: HashMap<u32, Completion>,
}

impl QueuePair {
    pub fn new(submissions: DmaBuffer, completions: DmaBuffer, entries: u32) -> Self {
        Self {
            submissions,
            completions,
            entries,
            tail: 0,
            submission_head: 0,
            completion_head: 0,
            phase: true,
            outstanding: HashMap::new(),
            finished: HashMap::new(),
        }
    }

    /// Whether `slots` more slots fit: a ring keeps one slot empty to tell full from empty.
    pub fn has_room(&self, slots: u32) -> bool {
        let used = (self.tail + self.entries - self.submission_head) % self.entries;
        used + slots < self.entries
    }

    /// Whether an inline WRITE of `slots` slots (descriptor and payload) at the tail would
    /// come in one fetch of the card, whose reads never cross a `block_slots` boundary of
    /// the ring: it must not wrap the ring's end (the card refuses that) nor cross a block
    /// (the card would then read the payload from the ring: a round trip more).
    pub fn inline_fits(&self, slots: u32, block_slots: u32) -> bool {
        let last = self.tail + slots - 1;
        last < self.entries && self.tail / block_slots == last / block_slots
    }

    /// Writes `descriptor` into the next slot and `payload` (an inline WRITE's, padded
    /// with zeros) into the slots after it; returns the doorbell value to ring, past them.
    pub fn push(&mut self, descriptor: &Descriptor, payload: &[u8]) -> Result<u32, DmaError> {
        let slot_bytes = DESCRIPTOR_BYTES as usize;
        let mut image = descriptor.as_bytes().to_vec();
        image.extend_from_slice(payload);
        image.resize(image.len().div_ceil(slot_bytes) * slot_bytes, 0);
        let slots = (image.len() / slot_bytes) as u32;
        for (index, slot_image) in image.chunks_exact(slot_bytes).enumerate() {
            let slot = (self.tail + index as u32) % self.entries;
            let offset = u64::from(slot) * u64::from(DESCRIPTOR_BYTES);
            self.submissions.write_words(offset, slot_image)?;
        }
        fence(Ordering::Release);
        let after_descriptor = (self.tail + 1) % self.entries;
        self.tail = (self.tail + slots) % self.entries;
        self.outstanding
            .insert(descriptor.tag.get(), after_descriptor);
        Ok(self.tail)
    }

    /// Takes every completion the card has written since the last call; returns how many
    /// and the completion doorbell value to ring if any.
    pub fn reap(&mut self) -> Result<(u32, Option<u32>), DmaError> {
        let mut reaped = 0;
        loop {
            let slot = u64::from(self.completion_head) * u64::from(COMPLETION_BYTES);
            let phase = self
                .completions
                .read_byte(slot + u64::from(COMPLETION_BYTES) - 1)?;
            if (phase & 1 == 1) != self.phase {
                break;
            }
            fence(Ordering::Acquire);
            let mut image = [0u8; COMPLETION_BYTES as usize];
            self.completions.read_words(slot, &mut image)?;
            let completion = Completion::read_from_bytes(&image).expect("16 bytes");
            self.completion_head = (self.completion_head + 1) % self.entries;
            if self.completion_head == 0 {
                self.phase = !self.phase;
            }
            // Only up to the descriptor itself: its payload's last slots may not be fetched
            // yet (when they ran past its fetch), though the completion's head is past them;
            // the next completion frees them. So no slack is needed (SUBMISSION_SLACK_SLOTS).
            let tag = completion.tag.get();
            match self.outstanding.remove(&tag) {
                Some(after_descriptor) => self.submission_head = after_descriptor,
                None => tracing::warn!(tag, "a completion for a tag that was not outstanding"),
            }
            self.finished.insert(tag, completion);
            reaped += 1;
        }
        Ok((reaped, (reaped > 0).then_some(self.completion_head)))
    }
}
