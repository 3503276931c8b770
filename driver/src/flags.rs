//! The NI's status registers as flags, for matching and for messages that name each bit.

use bitflags::bitflags;
use npmu_abi::registers::{queue_status, status};

bitflags! {
    /// [`npmu_abi::registers::STATUS`].
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Status: u64 {
        const INITIALIZING = status::INITIALIZING.mask();
        const UNLOCKED = status::UNLOCKED.mask();
        const COMMAND_BUSY = status::COMMAND_BUSY.mask();
    }
}

bitflags! {
    /// A queue's [`npmu_abi::registers::queue::STATUS`].
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct QueueStatus: u64 {
        const RUNNING = queue_status::RUNNING.mask();
        const BUSY = queue_status::BUSY.mask();
        const CONFIG_ERROR = queue_status::CONFIG_ERROR.mask();
        const SQ_DOORBELL_ERROR = queue_status::SQ_DOORBELL_ERROR.mask();
        const CQ_DOORBELL_ERROR = queue_status::CQ_DOORBELL_ERROR.mask();
        const FETCH_ERROR = queue_status::FETCH_ERROR.mask();
        const COMPLETION_ERROR = queue_status::COMPLETION_ERROR.mask();
        const REFUSED_WRITE = queue_status::REFUSED_WRITE.mask();
        const WINDOW_ERROR = queue_status::WINDOW_ERROR.mask();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_bit_has_a_flag() {
        let named = QueueStatus::all().bits() & queue_status::ERRORS.mask();
        assert_eq!(
            named,
            queue_status::ERRORS.mask() & !0x8000,
            "bit 15 is unused"
        );
    }
}
