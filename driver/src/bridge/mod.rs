//! The serial bridge backend: a board whose protection core sits behind a byte link (the
//! iCEBreaker's USB UART), driven through the same [`crate::NpmuDevice`] code as a PCIe
//! card (protocol: `npmu_abi::bridge`).
//!
//! The link carries both of the host's roles: registers for the manager, and network
//! requests as a remote initiator would send them ([`BridgedCard::network_read`],
//! [`BridgedCard::network_write`]). There is no DMA and no interrupt over a UART: the board
//! reports no queues, and its DMA domain has no IOVA range to hand out.

mod serial_port;

pub use serial_port::{SerialPort, SerialPortError};

use npmu_abi::bridge as protocol;
use npmu_abi::{decode_status, registers as reg, Fault, Operation, Request};
use npmu_device::{Device, DeviceError, DmaDirection, DmaMapping, Interrupts, Mmio};
use std::io::{ErrorKind, Read, Write};
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum BridgeError {
    #[error("the link failed: {0}")]
    Link(std::io::Error),
    #[error("the board did not answer (the link timed out)")]
    NoAnswer,
    #[error("the board answered {got:#04x} where {expected:#04x} was due")]
    Unexpected { expected: u8, got: u8 },
    #[error("the board refused command {0:#04x}")]
    Refused(u8),
    #[error("the board answered with unknown status {0}")]
    UnknownStatus(u8),
    #[error("the board reports a {0}-byte data path; the bridge carries 1 to 8")]
    BadDataPath(u64),
    #[error("a request of {0} bytes does not fit a request's 32-bit length")]
    TooLong(usize),
}

impl From<std::io::Error> for BridgeError {
    fn from(error: std::io::Error) -> Self {
        match error.kind() {
            ErrorKind::TimedOut | ErrorKind::WouldBlock | ErrorKind::UnexpectedEof => {
                BridgeError::NoAnswer
            }
            _ => BridgeError::Link(error),
        }
    }
}

/// A response beat as the board sent it: the request's outcome and the beat's lanes.
type ResponseBeat = (Result<(), Fault>, u64);

/// Where a network request goes and who sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Initiator {
    pub context: u16,
    pub key: u32,
    pub initiator: u16,
}

/// A byte link to a board: a serial port, or a simulated board's line. Reads must give up
/// with [`ErrorKind::TimedOut`] (or end of file) when the board stays silent.
pub trait Link: Read + Write + Send {}
impl<T: Read + Write + Send> Link for T {}

/// A board behind a serial bridge.
pub struct BridgedCard<L: Link> {
    name: String,
    link: Mutex<L>,
    data_bytes: u32,
    dma: Arc<NoDma>,
}

impl<L: Link> BridgedCard<L> {
    /// Takes the board at the other end of `link` over; reads its data path width.
    pub fn new(name: impl Into<String>, link: L) -> Result<Self, BridgeError> {
        let mut card = Self {
            name: name.into(),
            link: Mutex::new(link),
            data_bytes: 1,
            dma: Arc::new(NoDma),
        };
        let data_bytes = card.try_read_register(reg::DATA_BYTES.offset)?;
        if !(1..=8).contains(&data_bytes) || !data_bytes.is_power_of_two() {
            return Err(BridgeError::BadDataPath(data_bytes));
        }
        card.data_bytes = data_bytes as u32;
        Ok(card)
    }

    fn link(&self) -> MutexGuard<'_, L> {
        // A panic while holding the link leaves at worst a command half sent, which the
        // board drops after its idle timeout; the bytes themselves are still usable.
        self.link
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn try_read_register(&self, offset: u16) -> Result<u64, BridgeError> {
        let mut link = self.link();
        let [low, high] = offset.to_le_bytes();
        link.write_all(&[protocol::READ_REGISTER, low, high])?;
        link.flush()?;
        expect(&mut *link, protocol::REGISTER_VALUE)?;
        let mut value = [0u8; 8];
        link.read_exact(&mut value)?;
        Ok(u64::from_le_bytes(value))
    }

    pub fn try_write_register(&self, offset: u16, value: u64) -> Result<(), BridgeError> {
        let mut link = self.link();
        let mut command = vec![protocol::WRITE_REGISTER];
        command.extend_from_slice(&offset.to_le_bytes());
        command.extend_from_slice(&value.to_le_bytes());
        link.write_all(&command)?;
        link.flush()?;
        expect(&mut *link, protocol::REGISTER_WRITTEN)
    }

    /// Reads `length` bytes at network virtual `address` as `initiator`: the data, or the
    /// fault the core refused the request with.
    pub fn network_read(
        &self,
        initiator: Initiator,
        address: u64,
        length: usize,
    ) -> Result<Result<Vec<u8>, Fault>, BridgeError> {
        let request = request(false, initiator, address, length)?;
        let mut link = self.link();
        link.write_all(&header(&request))?;
        link.flush()?;
        let beats = self.responses(&mut *link)?;
        let status = beats.first().map_or(Ok(()), |(status, _)| *status);
        if let Err(fault) = status {
            return Ok(Err(fault));
        }
        let lanes = self.data_bytes as usize;
        let first_lane = (address % u64::from(self.data_bytes)) as usize;
        let bytes: Vec<u8> = beats
            .iter()
            .flat_map(|(_, data)| data.to_le_bytes().into_iter().take(lanes))
            .skip(first_lane)
            .take(length)
            .collect();
        Ok(Ok(bytes))
    }

    /// Writes `data` at network virtual `address` as `initiator`; answers once the core
    /// reports it durable, or with the fault it refused the request with.
    pub fn network_write(
        &self,
        initiator: Initiator,
        address: u64,
        data: &[u8],
    ) -> Result<Result<(), Fault>, BridgeError> {
        let request = request(true, initiator, address, data.len())?;
        let mut command = header(&request);
        let lanes = self.data_bytes as usize;
        let first_lane = (address % u64::from(self.data_bytes)) as usize;
        let mut lane_bytes = vec![None; first_lane];
        lane_bytes.extend(data.iter().copied().map(Some));
        for beat in lane_bytes.chunks(lanes) {
            let enable = (0..beat.len())
                .filter(|lane| beat[*lane].is_some())
                .fold(0u8, |enable, lane| enable | 1 << lane);
            command.push(enable);
            command.extend((0..lanes).map(|lane| beat.get(lane).copied().flatten().unwrap_or(0)));
        }
        debug_assert_eq!(
            (command.len() - 1 - protocol::NETWORK_REQUEST_BYTES) as u64,
            request.beats(self.data_bytes) * (1 + self.data_bytes as u64)
        );
        let mut link = self.link();
        link.write_all(&command)?;
        link.flush()?;
        let beats = self.responses(&mut *link)?;
        Ok(beats.first().map_or(Ok(()), |(status, _)| *status))
    }

    /// The response beats of one request, up to the one marked last.
    fn responses(&self, link: &mut L) -> Result<Vec<ResponseBeat>, BridgeError> {
        let mut beats = Vec::new();
        loop {
            expect(link, protocol::RESPONSE_BEAT)?;
            let mut status = [0u8; 1];
            link.read_exact(&mut status)?;
            let mut data = [0u8; 8];
            link.read_exact(&mut data[..self.data_bytes as usize])?;
            let code = status[0] & !protocol::LAST_BEAT;
            let outcome = decode_status(code).map_err(|_| BridgeError::UnknownStatus(code))?;
            beats.push((outcome, u64::from_le_bytes(data)));
            if status[0] & protocol::LAST_BEAT != 0 {
                return Ok(beats);
            }
        }
    }
}

fn request(
    write: bool,
    initiator: Initiator,
    address: u64,
    length: usize,
) -> Result<Request, BridgeError> {
    Ok(Request {
        operation: if write {
            Operation::Write
        } else {
            Operation::Read
        },
        context: initiator.context,
        key: initiator.key,
        initiator: initiator.initiator,
        address,
        length: u32::try_from(length).map_err(|_| BridgeError::TooLong(length))?,
    })
}

fn header(request: &Request) -> Vec<u8> {
    let write = request.operation == Operation::Write;
    let mut bytes = vec![protocol::NETWORK_REQUEST, u8::from(write)];
    bytes.extend_from_slice(&request.context.to_le_bytes());
    bytes.extend_from_slice(&request.key.to_le_bytes());
    bytes.extend_from_slice(&request.initiator.to_le_bytes());
    bytes.extend_from_slice(&request.address.to_le_bytes());
    bytes.extend_from_slice(&request.length.to_le_bytes());
    bytes
}

/// Reads the answer's first byte: `expected`, or what the board said instead.
fn expect(link: &mut impl Read, expected: u8) -> Result<(), BridgeError> {
    let mut byte = [0u8; 1];
    link.read_exact(&mut byte)?;
    match byte[0] {
        got if got == expected => Ok(()),
        protocol::REFUSED => {
            link.read_exact(&mut byte)?;
            Err(BridgeError::Refused(byte[0]))
        }
        got => Err(BridgeError::Unexpected { expected, got }),
    }
}

impl<L: Link> Mmio for BridgedCard<L> {
    /// All ones when the board does not answer, as a PCIe read of a vanished card.
    fn read_register(&self, offset: u16) -> u64 {
        self.try_read_register(offset).unwrap_or_else(|error| {
            tracing::warn!(card = self.name, offset, %error, "register read failed");
            u64::MAX
        })
    }

    fn write_register(&self, offset: u16, value: u64) {
        if let Err(error) = self.try_write_register(offset, value) {
            tracing::warn!(card = self.name, offset, %error, "register write failed");
        }
    }
}

impl<L: Link> Interrupts for BridgedCard<L> {
    fn interrupt_vectors(&self) -> u16 {
        0
    }

    fn wait_interrupt(&self, vector: u16, _timeout: Duration) -> Result<bool, DeviceError> {
        Err(DeviceError::NoSuchVector { vector, vectors: 0 })
    }
}

impl<L: Link> Device for BridgedCard<L> {
    fn name(&self) -> &str {
        &self.name
    }

    fn dma(&self) -> Arc<dyn DmaMapping> {
        self.dma.clone()
    }

    fn reset(&self) -> Result<(), DeviceError> {
        let mut link = self.link();
        let mut reset = || -> Result<(), BridgeError> {
            link.write_all(&[protocol::RESET])?;
            link.flush()?;
            expect(&mut *link, protocol::RESET_DONE)
        };
        reset().map_err(|error| DeviceError::Reset(error.to_string()))
    }
}

/// The DMA domain of a board without DMA: nothing can be mapped.
struct NoDma;

impl DmaMapping for NoDma {
    fn iova_ranges(&self) -> Vec<Range<u64>> {
        Vec::new()
    }

    unsafe fn map(
        &self,
        iova: u64,
        _host: *mut u8,
        length: u64,
        _direction: DmaDirection,
    ) -> Result<(), DeviceError> {
        Err(DeviceError::BadMapping {
            iova,
            length,
            why: "a board behind a serial bridge has no DMA",
        })
    }

    fn unmap(&self, iova: u64, length: u64) -> Result<(), DeviceError> {
        Err(DeviceError::BadMapping {
            iova,
            length,
            why: "a board behind a serial bridge has no DMA",
        })
    }
}
