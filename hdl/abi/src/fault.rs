//! Why the network interface refused a request.

use thiserror::Error;

/// A request's fault. The code travels in the response's status field and in
/// [`crate::registers::LAST_FAULT`]; status 0 means success.
///
/// The checks run in this order and the first that fails is reported:
/// [`RequestTooLong`](Fault::RequestTooLong), [`NoSuchContext`](Fault::NoSuchContext),
/// [`ContextInvalid`](Fault::ContextInvalid), [`KeyMismatch`](Fault::KeyMismatch),
/// [`InitiatorNotAllowed`](Fault::InitiatorNotAllowed),
/// [`PermissionDenied`](Fault::PermissionDenied), [`OutOfBounds`](Fault::OutOfBounds),
/// [`PageNotMapped`](Fault::PageNotMapped). A faulting request touches no persistent memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Error)]
#[repr(u8)]
pub enum Fault {
    #[error("no such context: the context id is beyond the context table")]
    NoSuchContext = 1,
    #[error("context invalid: the context is not registered")]
    ContextInvalid = 2,
    #[error("key mismatch: the key is not the context's current key")]
    KeyMismatch = 3,
    #[error("initiator not allowed to use the context")]
    InitiatorNotAllowed = 4,
    #[error("permission denied: the context does not allow this operation")]
    PermissionDenied = 5,
    #[error("out of bounds: the range is not inside the context")]
    OutOfBounds = 6,
    #[error("page not mapped: a translation entry of the range is invalid")]
    PageNotMapped = 7,
    #[error("request too long: the length exceeds the interface's maximum")]
    RequestTooLong = 8,
}

/// A status code that names no fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("unknown status code {0}")]
pub struct UnknownStatus(pub u8);

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::NoSuchContext,
        Fault::ContextInvalid,
        Fault::KeyMismatch,
        Fault::InitiatorNotAllowed,
        Fault::PermissionDenied,
        Fault::OutOfBounds,
        Fault::PageNotMapped,
        Fault::RequestTooLong,
    ];
    pub const MAX_CODE: u8 = 8;

    pub const fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Result<Fault, UnknownStatus> {
        Fault::ALL
            .into_iter()
            .find(|fault| fault.code() == code)
            .ok_or(UnknownStatus(code))
    }
}

/// Status field of a response: 0 for success, else the fault code.
pub fn encode_status(status: Result<(), Fault>) -> u8 {
    match status {
        Ok(()) => 0,
        Err(fault) => fault.code(),
    }
}

pub fn decode_status(code: u8) -> Result<Result<(), Fault>, UnknownStatus> {
    match code {
        0 => Ok(Ok(())),
        code => Fault::from_code(code).map(Err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_decodes_to_its_fault() {
        for fault in Fault::ALL {
            assert_eq!(decode_status(fault.code()), Ok(Err(fault)));
            assert!(fault.code() <= Fault::MAX_CODE);
        }
        assert_eq!(decode_status(0), Ok(Ok(())));
        assert_eq!(decode_status(Fault::MAX_CODE + 1), Err(UnknownStatus(9)));
    }

    #[test]
    fn codes_fit_the_status_field() {
        assert!(u32::from(Fault::MAX_CODE) < 1 << crate::STATUS_BITS);
    }
}
