//! One card of a volume as the manager drives it: its own contexts for the metadata and
//! intent areas and the scratch window, the two metadata slots, the two intent slots, and
//! the card's queue.

use crate::error::CardRole;
use crate::intent::{self, Record};
use crate::layout::{self, Geometry, METADATA_CONTEXT, QUEUE, QUEUE_ENTRIES, SCRATCH_CONTEXT};
use crate::metadata::{self, Copy, MetadataError, HEADER_BYTES};
use npmu_abi::program::ProgramError;
use npmu_driver::{
    ContextSettings, Device, DmaBuffer, DriverError, NpmuDevice, Operation, Ticket, Transfer,
};

/// The best a card's two metadata slots hold.
pub enum Found {
    /// A valid copy, and the slot it is in.
    Copy(Copy, usize),
    /// Neither slot was ever written.
    Blank,
    /// Something is there but no copy holds up.
    Damaged(MetadataError),
}

/// The best a card's two intent slots hold for a volume.
#[derive(Debug)]
pub enum FoundIntent {
    /// A valid record of the volume, and the slot it is in.
    Record(Record, usize),
    /// No valid record of this volume, and why.
    Missing(MetadataError),
}

/// Which slot of two holds the newest of `decoded`, and what is wrong if none does.
fn newest<T>(
    decoded: [Result<T, MetadataError>; 2],
    sequence: impl Fn(&T) -> u64,
) -> Result<(T, usize), Option<MetadataError>> {
    let mut best: Option<(T, usize)> = None;
    let mut damage = None;
    for (slot, item) in decoded.into_iter().enumerate() {
        match item {
            Ok(item)
                if best
                    .as_ref()
                    .is_none_or(|(best, _)| sequence(best) < sequence(&item)) =>
            {
                best = Some((item, slot))
            }
            Ok(_) | Err(MetadataError::NoMagic) => {}
            Err(error) => damage = Some(error),
        }
    }
    best.ok_or(damage)
}

pub struct Half<D: Device> {
    pub role: CardRole,
    /// `None` if the card never opened.
    pub device: Option<NpmuDevice<D>>,
    /// Why the card is out of use: it did not open, or failed since.
    pub failure: Option<String>,
    /// The slot of the current copy on this card; the next copy goes to the other.
    pub current_slot: Option<usize>,
    /// The slot of the current intent record; the next record goes to the other.
    pub intent_slot: Option<usize>,
    /// Sequence number of the current intent record.
    pub intent_sequence: u64,
    metadata_key: u32,
    scratch_key: u32,
}

impl<D: Device> Half<D> {
    pub fn missing(role: CardRole, why: String) -> Self {
        Self {
            role,
            device: None,
            failure: Some(why),
            current_slot: None,
            intent_slot: None,
            intent_sequence: 0,
            metadata_key: 0,
            scratch_key: 0,
        }
    }

    pub fn new(role: CardRole, device: NpmuDevice<D>) -> Self {
        Self {
            device: Some(device),
            failure: None,
            ..Self::missing(role, String::new())
        }
    }

    pub fn is_usable(&self) -> bool {
        self.device.is_some() && self.failure.is_none()
    }

    pub fn name(&self) -> String {
        match &self.device {
            Some(device) => device.card().name().to_owned(),
            None => format!("{} card", self.role),
        }
    }

    fn device(&mut self) -> Result<&mut NpmuDevice<D>, DriverError> {
        let role = self.role;
        let why = self.failure.clone();
        self.device.as_mut().ok_or_else(|| DriverError::Failed {
            card: format!("{role} card"),
            why: why.unwrap_or_default(),
        })
    }

    /// Takes the card over as the manager: a reset drops whatever an earlier owner left in
    /// the tables (its open regions are closed by this), then the manager's own contexts and
    /// the queue are set up.
    pub fn prepare(&mut self, geometry: &Geometry, management_key: u64) -> Result<(), DriverError> {
        let device = self.device()?;
        device.reset()?;
        device.unlock(management_key)?;
        let metadata_pages = geometry.manager_pages();
        let identity: Vec<Option<u32>> = (0..metadata_pages).map(Some).collect();
        device.write_entries(0, &identity)?;
        let metadata_key = device.register_context(
            METADATA_CONTEXT,
            &settings(0, metadata_pages, METADATA_CONTEXT),
        )?;
        let scratch_key = device.register_context(
            SCRATCH_CONTEXT,
            &settings(
                geometry.scratch_first_entry(),
                geometry.scratch_pages,
                SCRATCH_CONTEXT,
            ),
        )?;
        device.create_queue(QUEUE, QUEUE_ENTRIES)?;
        self.metadata_key = metadata_key;
        self.scratch_key = scratch_key;
        self.failure = None;
        Ok(())
    }

    /// Reads both slots and keeps the newest valid copy.
    pub fn read_metadata(
        &mut self,
        geometry: &Geometry,
        incoming: &DmaBuffer,
    ) -> Result<Found, DriverError> {
        let capacity = geometry.copy_bytes() as usize;
        let mut decoded = [Err(MetadataError::NoMagic), Err(MetadataError::NoMagic)];
        for (slot, copy) in decoded.iter_mut().enumerate() {
            let address = slot_address(slot, geometry);
            let mut header = [0u8; HEADER_BYTES];
            self.read_metadata_bytes(address, incoming, &mut header)?;
            *copy = match metadata::decode_header(&header, capacity) {
                Ok(found) => {
                    let mut bytes = vec![0u8; HEADER_BYTES + found.body_bytes];
                    self.read_metadata_bytes(address, incoming, &mut bytes)?;
                    metadata::decode(&bytes, capacity)
                }
                Err(error) => Err(error),
            };
        }
        Ok(match newest(decoded, |copy| copy.sequence) {
            Ok((copy, slot)) => Found::Copy(copy, slot),
            Err(Some(error)) => Found::Damaged(error),
            Err(None) => Found::Blank,
        })
    }

    /// Reads both intent slots and keeps the newest valid record of volume `volume`; a
    /// record of another volume counts as none.
    pub fn read_intent(
        &mut self,
        geometry: &Geometry,
        incoming: &DmaBuffer,
        volume: u128,
    ) -> Result<FoundIntent, DriverError> {
        let chunks = intent::chunk_of(geometry.memory_pages - 1) + 1;
        let mut decoded = [Err(MetadataError::NoMagic), Err(MetadataError::NoMagic)];
        for (slot, record) in decoded.iter_mut().enumerate() {
            let mut bytes = vec![0u8; geometry.intent_slot_bytes() as usize];
            self.read_metadata_bytes(intent_address(slot, geometry), incoming, &mut bytes)?;
            *record = intent::decode(&bytes, chunks).and_then(|record| {
                if record.volume == volume {
                    Ok(record)
                } else {
                    Err(MetadataError::Inconsistent(format!(
                        "a record of volume {:032x}",
                        record.volume
                    )))
                }
            });
        }
        Ok(match newest(decoded, |record| record.sequence) {
            Ok((record, slot)) => FoundIntent::Record(record, slot),
            Err(error) => FoundIntent::Missing(error.unwrap_or(MetadataError::NoMagic)),
        })
    }

    /// Starts writing a metadata copy (`length` bytes staged at `offset` of `outgoing`)
    /// into the slot that does not hold the current copy, followed by a FLUSH; returns the
    /// slot and the tickets.
    pub fn submit_copy(
        &mut self,
        geometry: &Geometry,
        outgoing: &DmaBuffer,
        offset: u64,
        length: u64,
    ) -> Result<(usize, Vec<Ticket>), DriverError> {
        let slot = self.current_slot.map_or(0, |current| 1 - current);
        let address = slot_address(slot, geometry);
        let tickets = self.submit_durable(address, outgoing, offset, length)?;
        Ok((slot, tickets))
    }

    /// Starts writing an intent record (staged like a copy) into the intent slot that does
    /// not hold the current record, followed by a FLUSH; returns the slot and the tickets.
    pub fn submit_intent(
        &mut self,
        geometry: &Geometry,
        outgoing: &DmaBuffer,
        offset: u64,
        length: u64,
    ) -> Result<(usize, Vec<Ticket>), DriverError> {
        let slot = self.intent_slot.map_or(0, |current| 1 - current);
        let address = intent_address(slot, geometry);
        let tickets = self.submit_durable(address, outgoing, offset, length)?;
        Ok((slot, tickets))
    }

    /// A write into the metadata context followed by a FLUSH.
    fn submit_durable(
        &mut self,
        address: u64,
        outgoing: &DmaBuffer,
        offset: u64,
        length: u64,
    ) -> Result<Vec<Ticket>, DriverError> {
        let key = self.metadata_key;
        let device = self.device()?;
        let write = device.submit(
            QUEUE,
            Operation::Write(Transfer {
                context: METADATA_CONTEXT,
                key,
                address,
                buffer: outgoing,
                offset,
                length,
            }),
        )?;
        let flush = device.submit(QUEUE, Operation::Flush);
        match flush {
            Ok(flush) => Ok(vec![write, flush]),
            Err(error) => {
                let _ = device.wait(write);
                Err(error)
            }
        }
    }

    /// Points the scratch window at `pages`.
    pub fn map_scratch(&mut self, geometry: &Geometry, pages: &[u64]) -> Result<(), DriverError> {
        let entries: Vec<Option<u32>> = pages.iter().map(|&page| Some(page as u32)).collect();
        self.device()?
            .write_entries(geometry.scratch_first_entry(), &entries)
    }

    /// A transfer through the scratch window, from its first byte.
    pub fn scratch_transfer<'a>(&self, buffer: &'a DmaBuffer, length: u64) -> Transfer<'a> {
        Transfer {
            context: SCRATCH_CONTEXT,
            key: self.scratch_key,
            address: layout::network_base(SCRATCH_CONTEXT),
            buffer,
            offset: 0,
            length,
        }
    }

    pub fn submit(&mut self, operation: Operation) -> Result<Ticket, DriverError> {
        self.device()?.submit(QUEUE, operation)
    }

    /// Waits for `ticket`; returns the bytes it moved.
    pub fn wait(&mut self, ticket: Ticket) -> Result<u64, DriverError> {
        self.device()?.wait(ticket).map(u64::from)
    }

    /// Submits `operations` in order; if one is refused, waits for those already out.
    pub fn submit_all(&mut self, operations: &[Operation]) -> Result<Vec<Ticket>, DriverError> {
        let device = self.device()?;
        let mut tickets = Vec::with_capacity(operations.len());
        for operation in operations {
            match device.submit(QUEUE, *operation) {
                Ok(ticket) => tickets.push(ticket),
                Err(error) => {
                    for ticket in tickets {
                        let _ = device.wait(ticket);
                    }
                    return Err(error);
                }
            }
        }
        Ok(tickets)
    }

    /// Waits for every ticket; the first error wins, every ticket is waited for.
    pub fn wait_all(&mut self, tickets: Vec<Ticket>) -> Result<u64, DriverError> {
        let device = self.device()?;
        let mut moved = 0u64;
        let mut first_error = None;
        for ticket in tickets {
            match device.wait(ticket) {
                Ok(bytes) => moved += u64::from(bytes),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        first_error.map_or(Ok(moved), Err)
    }

    /// Reads `into.len()` bytes from `address` of the metadata area through `incoming`.
    fn read_metadata_bytes(
        &mut self,
        address: u64,
        incoming: &DmaBuffer,
        into: &mut [u8],
    ) -> Result<(), DriverError> {
        let key = self.metadata_key;
        self.device()?.run(
            QUEUE,
            Operation::Read(Transfer {
                context: METADATA_CONTEXT,
                key,
                address,
                buffer: incoming,
                offset: 0,
                length: into.len() as u64,
            }),
        )?;
        incoming.read(0, into)?;
        Ok(())
    }

    pub fn device_mut(&mut self) -> Option<&mut NpmuDevice<D>> {
        self.device.as_mut()
    }
}

fn slot_address(slot: usize, geometry: &Geometry) -> u64 {
    layout::network_base(METADATA_CONTEXT) + slot as u64 * geometry.copy_bytes()
}

fn intent_address(slot: usize, geometry: &Geometry) -> u64 {
    let first = u64::from(geometry.first_intent_page()) << geometry.page_shift;
    layout::network_base(METADATA_CONTEXT) + first + slot as u64 * geometry.intent_slot_bytes()
}

/// A read-write context of the manager, open to this process's queue alone.
fn settings(first_entry: u32, pages: u32, context: u16) -> ContextSettings {
    ContextSettings {
        tag: rand::random::<u32>() & 0xff_ffff,
        read: true,
        write: true,
        initiator: Some(QUEUE),
        base: layout::network_base(context),
        pages,
        first_entry,
    }
}

/// Whether an error means the card itself is gone or broken, rather than one request
/// being refused.
pub fn is_card_failure(error: &DriverError) -> bool {
    matches!(
        error,
        DriverError::NoAnswer { .. }
            | DriverError::Timeout { .. }
            | DriverError::Failed { .. }
            | DriverError::QueueHalted { .. }
            | DriverError::UnknownStatus { .. }
            | DriverError::Device { .. }
            | DriverError::NotAnNpmu { .. }
            | DriverError::BadCapability { .. }
            | DriverError::Program {
                source: ProgramError::Timeout,
                ..
            }
    )
}
