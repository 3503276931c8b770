//! The C API: the PMU library verbs of seed 001 [0078]-[0099] under the seed's names
//! (`pm_create_region`, `pm_open_region`, `pm_write_region`, ...), for C and any language
//! with a C FFI. `include/npmu.h` is generated from this file by cbindgen (see
//! `cbindgen.toml`); `tests/c_api.rs` fails if the committed header is not what this file
//! generates.
//!
//! Conventions, the same for every function:
//!
//! - Every verb returns a `pm_status`: `PM_OK` (0) or one positive `PM_ERR_*` code per kind
//!   of failure. `pm_strerror` names a code; `pm_last_error` gives the detailed message of
//!   the calling thread's latest failure.
//! - A verb that fails changes nothing: not the volume, not the caller's output arguments
//!   (`*out` is written only on success). The exceptions are spelled out where they apply:
//!   `PM_ERR_DEGRADED` (the write went to one card), `PM_ERR_BUFFER_TOO_SMALL` (the first
//!   bytes are copied, as seed 001 [0098] has it), and a read that fails on the cards after
//!   starting (the buffer may hold part of the data).
//! - A NULL pointer argument gives `PM_ERR_NULL_POINTER` before anything is done; only
//!   `pm_close_volume` and `pm_free_region_attrs` accept NULL (and do nothing), and
//!   `pm_list_regions` accepts a NULL list when its size is 0.
//! - Names are NUL-terminated UTF-8: a name that is not UTF-8 gives `PM_ERR_INVALID_UTF8`, a
//!   region name of 0 or more than 63 bytes `PM_ERR_BAD_NAME`.
//! - A region handle is a number, like a file descriptor (seed 001 [0066]), valid on the
//!   volume that opened it until `pm_close_region` or `pm_close_volume`. Handle numbers are
//!   unique in the process, so a closed handle, one never opened and one of another volume
//!   all give `PM_ERR_BAD_HANDLE`; 0 (`PM_INVALID_HANDLE`) is never a handle.
//! - A panic inside the library is caught at the boundary and gives `PM_ERR_INTERNAL`.
//! - A `pm_volume` may be used from several threads at once: the verbs of one volume run one
//!   at a time, except that writes and reads go on while `pm_resync` copies.

// The seed's paragraphs are cited as [0095], as in the patent and the generated C header;
// rustdoc would take them for links.
#![allow(rustdoc::broken_intra_doc_links)]
#![allow(non_camel_case_types)]

use crate::attributes::Attributes;
use crate::cards::Card;
use crate::error::{CardRole, Error};
use crate::metadata;
use crate::volume::{CardState, Mirror, ReadFrom, RegionHandle, Volume, VolumeOptions};
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

// ---------------------------------------------------------------------------------------
// Status codes.

/// What a verb did: `PM_OK` or one of the `PM_ERR_*` codes.
pub type pm_status = i32;

/// Success.
pub const PM_OK: pm_status = 0;
/// A pointer argument was NULL. Nothing was done.
pub const PM_ERR_NULL_POINTER: pm_status = 1;
/// A name (region, volume, attribute, PCI address) is not UTF-8.
pub const PM_ERR_INVALID_UTF8: pm_status = 2;
/// A region name is empty or longer than 63 bytes.
pub const PM_ERR_BAD_NAME: pm_status = 3;
/// A volume name is empty or longer than 63 bytes.
pub const PM_ERR_BAD_VOLUME_NAME: pm_status = 4;
/// A region size of 0, or more than the volume's `max_region_bytes`.
pub const PM_ERR_BAD_SIZE: pm_status = 5;
/// The base pointer plus the size wraps past 2^64.
pub const PM_ERR_BASE_WRAPS: pm_status = 6;
/// A `pm_mirror` value the verb does not take (PM_ANY to a write, PM_BOTH to a read, ...).
pub const PM_ERR_BAD_MIRROR: pm_status = 7;
/// A region of that name exists already (seed 001 [0079]).
pub const PM_ERR_REGION_EXISTS: pm_status = 8;
/// No region of that name exists.
pub const PM_ERR_NO_SUCH_REGION: pm_status = 9;
/// The region is open; close every handle of it before deleting it.
pub const PM_ERR_REGION_OPEN: pm_status = 10;
/// The region belongs to another user (only its owner and root may delete it).
pub const PM_ERR_NOT_OWNER: pm_status = 11;
/// The handle is not open on this volume: closed, never opened, or another volume's.
pub const PM_ERR_BAD_HANDLE: pm_status = 12;
/// The bytes asked for lie (partly) outside `[base_pointer, base_pointer + size)`.
pub const PM_ERR_OUTSIDE_REGION: pm_status = 13;
/// No attribute of that name.
pub const PM_ERR_NO_SUCH_ATTRIBUTE: pm_status = 14;
/// The attribute has another type than the accessor's (seed 001 [0098]).
pub const PM_ERR_WRONG_TYPE: pm_status = 15;
/// The string did not fit: its first bytes were copied, NUL-terminated (seed 001 [0098]).
pub const PM_ERR_BUFFER_TOO_SMALL: pm_status = 16;
/// Not enough free pages on the volume for the region.
pub const PM_ERR_NO_SPACE: pm_status = 17;
/// The volume's metadata has no room for another region.
pub const PM_ERR_METADATA_FULL: pm_status = 18;
/// Every address context of the cards is in use: close a region first.
pub const PM_ERR_NO_FREE_CONTEXT: pm_status = 19;
/// Not enough contiguous translation entries to map the region: close a region first.
pub const PM_ERR_NO_FREE_ENTRIES: pm_status = 20;
/// Opening the cards failed: the simulated cards' directory or files, or VFIO.
pub const PM_ERR_CARDS: pm_status = 21;
/// The two cards do not make one volume: unusable, different shapes, swapped or from two
/// different volumes.
pub const PM_ERR_UNSUITABLE_CARDS: pm_status = 22;
/// The cards hold a volume already; format with `overwrite` to replace it.
pub const PM_ERR_ALREADY_FORMATTED: pm_status = 23;
/// Neither card holds a volume: format one first.
pub const PM_ERR_NOT_FORMATTED: pm_status = 24;
/// A card's metadata is damaged beyond both of its copies.
pub const PM_ERR_METADATA_DAMAGED: pm_status = 25;
/// The card asked for is stale (it missed writes): resync it first.
pub const PM_ERR_CARD_STALE: pm_status = 26;
/// The card asked for does not answer, or is out of use.
pub const PM_ERR_CARD_UNAVAILABLE: pm_status = 27;
/// Neither card answers.
pub const PM_ERR_BOTH_CARDS_FAILED: pm_status = 28;
/// A write reached one card only: the other failed during it and is now stale. The data is
/// written, on the survivor alone; `pm_resync` restores the mirror.
pub const PM_ERR_DEGRADED: pm_status = 29;
/// Both cards are in sync: there is nothing to resync.
pub const PM_ERR_NOTHING_TO_RESYNC: pm_status = 30;
/// A card refused an operation or its driver failed.
pub const PM_ERR_CARD: pm_status = 31;
/// An I/O error of the host.
pub const PM_ERR_IO: pm_status = 32;
/// The library was built without what the call needs (simulated cards), or the volume's
/// cards cannot do it (`pm_simulated_fail_card` on real cards).
pub const PM_ERR_UNSUPPORTED: pm_status = 33;
/// A bug in the library (a panic, caught at the boundary).
pub const PM_ERR_INTERNAL: pm_status = 34;
/// A resync of the volume is already running.
pub const PM_ERR_RESYNC_RUNNING: pm_status = 35;
/// A card the volume has in sync is missing (does not answer, or is blank): it may hold
/// writes the other lacks. Open with `PM_OPEN_DEGRADED` to go on without it.
pub const PM_ERR_MEMBER_MISSING: pm_status = 36;
/// Each card was written while the other was away: their histories forked. Open with
/// `PM_OPEN_KEEP_PRIMARY` or `PM_OPEN_KEEP_MIRROR` to keep one card's copy.
pub const PM_ERR_FORKED: pm_status = 37;
/// `PM_OPEN_KEEP_*` was given, but the cards' histories have not forked.
pub const PM_ERR_NOT_FORKED: pm_status = 38;
/// The `PM_OPEN_*` flags have an unknown bit set, or both `PM_OPEN_KEEP_PRIMARY` and
/// `PM_OPEN_KEEP_MIRROR`. Nothing was opened.
pub const PM_ERR_BAD_FLAGS: pm_status = 39;

// ---------------------------------------------------------------------------------------
// Types.

/// Bytes of a region name buffer: the longest name (63 bytes) and its NUL.
pub const PM_NAME_CAPACITY: usize = 64;
/// Bytes of a message buffer in `pm_card_status` (longer messages are cut).
pub const PM_MESSAGE_CAPACITY: usize = 256;

const _: () = assert!(PM_NAME_CAPACITY == metadata::MAX_NAME_BYTES + 1);

/// Which half of the volume (seed 001 [0088], [0090]). A write takes `PM_BOTH` (normal
/// operation), `PM_PRIMARY` or `PM_MIRROR` (recovery only); a read takes `PM_ANY` (normal
/// operation: either card, the other if the first fails), `PM_PRIMARY` or `PM_MIRROR`. The
/// seed names `PM_PRIMARY` and `PM_MIRROR` for both verbs, so one type holds all four
/// values; a value the verb does not take gives `PM_ERR_BAD_MIRROR`, and so does 0.
pub type pm_mirror = u32;

/// The primary card alone.
pub const PM_PRIMARY: pm_mirror = 1;
/// The mirror card alone.
pub const PM_MIRROR: pm_mirror = 2;
/// Writes: both cards (`PM_PRIMARY | PM_MIRROR`).
pub const PM_BOTH: pm_mirror = 3;
/// Reads: any in-sync card, falling back to the other.
pub const PM_ANY: pm_mirror = 4;

/// How `pm_open_simulated_volume` and `pm_open_vfio_volume` open a volume: 0 (the safe
/// default: refuse a volume a card of which is missing, or whose cards' histories forked) or
/// `PM_OPEN_*` flags or-ed together. An unknown bit gives `PM_ERR_BAD_FLAGS`.
pub type pm_open_flags = u32;

/// Opens the volume even if a card it has in sync is missing (does not answer, or is blank:
/// a new or replaced card in its place), going on with the other card alone, and marks the
/// missing card stale; without this flag such an open gives `PM_ERR_MEMBER_MISSING`. The
/// risk: the missing card may hold writes the present one lacks (it went on alone while the
/// present card was away). They are not on the volume opened, and if that card comes back
/// the two cards' histories have forked: opens are refused with `PM_ERR_FORKED` until
/// `PM_OPEN_KEEP_PRIMARY` or `PM_OPEN_KEEP_MIRROR` discards one card's writes since the
/// fork. Use it when the missing card is lost for good, or known to hold nothing newer. A
/// missing card that comes back without such writes is stale, and `pm_resync` rebuilds it
/// (a blank card in full).
pub const PM_OPEN_DEGRADED: pm_open_flags = 1;
/// Opens a volume whose cards' histories forked (`PM_ERR_FORKED`: each was written while the
/// other was away) keeping the primary card's copy. The mirror becomes stale: its writes
/// since the fork are discarded, and `pm_resync` then copies onto it every chunk either
/// card wrote since they parted. `PM_ERR_NOT_FORKED` if the histories have not forked.
pub const PM_OPEN_KEEP_PRIMARY: pm_open_flags = 2;
/// As `PM_OPEN_KEEP_PRIMARY`, keeping the mirror card's copy: the primary becomes stale and
/// its writes since the fork are discarded. Not together with `PM_OPEN_KEEP_PRIMARY`.
pub const PM_OPEN_KEEP_MIRROR: pm_open_flags = 4;

/// An open region, like a file descriptor: see `pm_open_region`.
pub type pm_region_handle = u64;

/// Never a region handle.
pub const PM_INVALID_HANDLE: pm_region_handle = 0;

/// How a card stands (`pm_card_status.state`).
pub type pm_card_state = u32;

/// The card holds current data.
pub const PM_CARD_IN_SYNC: pm_card_state = 1;
/// The card missed writes and is not read from until resynced.
pub const PM_CARD_STALE: pm_card_state = 2;
/// The card is being resynced: written to, not yet read from.
pub const PM_CARD_REBUILDING: pm_card_state = 3;

/// A mirrored volume of two cards (seed 001 [0075]) and the region handles opened on it.
/// Opened by `pm_format_*_volume` or `pm_open_*_volume`, closed by `pm_close_volume`.
pub struct pm_volume {
    volume: Volume<Card>,
    handles: Mutex<HashMap<u64, RegionHandle<Card>>>,
}

/// A region's attribute cache (seed 001 [0096]-[0099]): its attributes as they were when
/// `pm_read_attributes` read them. Freed by `pm_free_region_attrs`.
pub struct pm_attrs {
    attributes: Attributes,
}

/// What an open region handle holds (seed 001 [0066], [0084]).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pm_region_info {
    /// The region's name, NUL-terminated.
    pub name: [c_char; PM_NAME_CAPACITY],
    /// The address of the region's first byte in read and write pointers.
    pub base_pointer: u64,
    /// Bytes of the region: pointers run from `base_pointer` to `base_pointer + size`.
    pub size: u64,
    /// The address context (memory handle) of the region on both cards.
    pub context: u16,
    /// Network virtual address of the region's first byte on the primary card.
    pub primary_network_base: u64,
    /// Network virtual address of the region's first byte on the mirror card.
    pub mirror_network_base: u64,
    /// Whether the region is mapped on the primary card (false if the card was out of use
    /// when the region was opened).
    pub primary_mapped: bool,
    /// Whether the region is mapped on the mirror card.
    pub mirror_mapped: bool,
    /// The region's context key on the primary card, if mapped there.
    pub primary_key: u32,
    /// The region's context key on the mirror card, if mapped there.
    pub mirror_key: u32,
}

/// What a volume says of itself.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pm_volume_info {
    /// The volume's name, NUL-terminated.
    pub name: [c_char; PM_NAME_CAPACITY],
    /// The volume's random 128-bit identity, high half.
    pub id_high: u64,
    /// The volume's identity, low half.
    pub id_low: u64,
    /// When the volume was formatted, in nanoseconds since the Unix epoch.
    pub created: u64,
    /// Bytes of a page, the unit of allocation.
    pub page_bytes: u64,
    /// Pages for regions.
    pub data_pages: u64,
    /// Pages no region holds.
    pub free_pages: u64,
    /// The largest region size `pm_create_region` takes.
    pub max_region_bytes: u64,
    /// Regions on the volume.
    pub regions: u64,
    /// Sequence number of the current metadata copy.
    pub sequence: u64,
    /// Changes of which cards are in sync, counted since the format: a card failing, being
    /// resynced, or a fork resolved each start a new epoch.
    pub epoch: u64,
    /// Chunks recorded dirty in the write intent (what a resync of a stale card, or the
    /// repair after an unclean shutdown, copies), or -1 if every chunk counts as dirty.
    pub dirty_chunks: i64,
}

/// How one card of a volume stands.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pm_card_status {
    /// `PM_CARD_IN_SYNC`, `PM_CARD_STALE` or `PM_CARD_REBUILDING`.
    pub state: pm_card_state,
    /// Whether the card is out of use (it failed or never opened).
    pub failed: bool,
    /// The card's name (a simulated card's role, a real card's PCI address), NUL-terminated.
    pub name: [c_char; PM_NAME_CAPACITY],
    /// Why the card is out of use, NUL-terminated; empty if it is not.
    pub failure: [c_char; PM_MESSAGE_CAPACITY],
}

/// What `pm_resync` did.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pm_resync_report {
    /// The card rebuilt: `PM_PRIMARY` or `PM_MIRROR`.
    pub card: pm_mirror,
    /// Pages copied.
    pub pages: u64,
    /// Bytes copied.
    pub bytes: u64,
    /// Whether every region was copied (a blank or replaced card, or a card whose missed
    /// chunks were not known one by one) rather than only the chunks the card missed.
    pub full: bool,
}

/// Bytes of a region where the two cards' copies differ: one of the differences
/// `pm_check_volume` found.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pm_difference {
    /// The region's name, NUL-terminated.
    pub region: [c_char; PM_NAME_CAPACITY],
    /// From the region's first byte (add the base pointer for a read or write pointer).
    pub offset: u64,
    /// Bytes that differ from `offset` on.
    pub length: u64,
}

/// What `pm_check_volume` found. The cards agree if `differences` and
/// `metadata_differences` are both 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pm_check_report {
    /// Runs of region bytes where the cards' copies differ: all of them, also those past the
    /// caller's array.
    pub differences: u64,
    /// Bytes in those runs.
    pub bytes_differing: u64,
    /// Ways in which the cards' newest metadata copies differ (0 if they agree).
    pub metadata_differences: u32,
    /// Regions compared.
    pub regions: u64,
    /// Region bytes compared on each card.
    pub bytes_compared: u64,
    /// Whether the differences were repaired: the mirror now holds the primary's bytes and
    /// metadata. False if there was nothing to repair.
    pub repaired: bool,
}

// ---------------------------------------------------------------------------------------
// The boundary: failures, panics, arguments.

/// A verb's failure: its status and what to tell in `pm_last_error`.
#[derive(Debug)]
struct Failure {
    status: pm_status,
    message: String,
}

impl Failure {
    fn new(status: pm_status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn null(what: &str) -> Self {
        Self::new(PM_ERR_NULL_POINTER, format!("{what} is NULL"))
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !message.contains(&cause_text) {
                message.push_str(": ");
                message.push_str(&cause_text);
            }
            source = cause.source();
        }
        Self::new(status_of(&error), message)
    }
}

impl From<crate::cards::CardsError> for Failure {
    fn from(error: crate::cards::CardsError) -> Self {
        Error::from(error).into()
    }
}

/// The status code of each error of the Rust API.
fn status_of(error: &Error) -> pm_status {
    match error {
        Error::BadName { .. } => PM_ERR_BAD_NAME,
        Error::BadSize { .. } => PM_ERR_BAD_SIZE,
        Error::BaseWraps { .. } => PM_ERR_BASE_WRAPS,
        Error::BadVolumeName { .. } => PM_ERR_BAD_VOLUME_NAME,
        Error::RegionExists(_) => PM_ERR_REGION_EXISTS,
        Error::NoSuchRegion(_) => PM_ERR_NO_SUCH_REGION,
        Error::RegionOpen { .. } => PM_ERR_REGION_OPEN,
        Error::NotOwner { .. } => PM_ERR_NOT_OWNER,
        Error::ForeignHandle | Error::HandleNotOpen(_) => PM_ERR_BAD_HANDLE,
        Error::OutsideRegion { .. } => PM_ERR_OUTSIDE_REGION,
        Error::NoSuchAttribute(_) => PM_ERR_NO_SUCH_ATTRIBUTE,
        Error::WrongAttributeType { .. } => PM_ERR_WRONG_TYPE,
        Error::BufferTooSmall { .. } => PM_ERR_BUFFER_TOO_SMALL,
        Error::NoSpace { .. } => PM_ERR_NO_SPACE,
        Error::MetadataFull { .. } => PM_ERR_METADATA_FULL,
        Error::NoFreeContext => PM_ERR_NO_FREE_CONTEXT,
        Error::NoFreeEntries { .. } => PM_ERR_NO_FREE_ENTRIES,
        Error::UnsuitableCard { .. }
        | Error::CardsDiffer { .. }
        | Error::WrongRole { .. }
        | Error::DifferentVolumes { .. } => PM_ERR_UNSUITABLE_CARDS,
        Error::AlreadyFormatted { .. } => PM_ERR_ALREADY_FORMATTED,
        Error::NotFormatted => PM_ERR_NOT_FORMATTED,
        Error::Metadata { .. } => PM_ERR_METADATA_DAMAGED,
        Error::CardStale { .. } | Error::OnlyStaleCard { .. } => PM_ERR_CARD_STALE,
        Error::MemberMissing { .. } => PM_ERR_MEMBER_MISSING,
        Error::Forked { .. } => PM_ERR_FORKED,
        Error::NotForked => PM_ERR_NOT_FORKED,
        Error::CardUnavailable { .. } => PM_ERR_CARD_UNAVAILABLE,
        Error::BothCardsFailed { .. } => PM_ERR_BOTH_CARDS_FAILED,
        Error::Degraded { .. } => PM_ERR_DEGRADED,
        Error::NothingToResync => PM_ERR_NOTHING_TO_RESYNC,
        Error::ResyncRunning { .. } => PM_ERR_RESYNC_RUNNING,
        Error::Card { .. } | Error::Driver(_) => PM_ERR_CARD,
        Error::Cards(_) => PM_ERR_CARDS,
        Error::Io(_) => PM_ERR_IO,
        // Only `Volume::replace_card` says this, and no C verb replaces a card.
        Error::CardInUse { .. } => PM_ERR_INTERNAL,
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn record(failure: Failure, verb: &str) -> pm_status {
    let text = format!("{verb}: {}", failure.message).replace('\0', "\\0");
    let text = CString::new(text).expect("NULs replaced");
    LAST_ERROR.with(|last| *last.borrow_mut() = text);
    failure.status
}

/// Runs a verb's body: its failure or panic becomes a status and the thread's last error.
fn run(verb: &str, body: impl FnOnce() -> Result<(), Failure>) -> pm_status {
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => PM_OK,
        Ok(Err(failure)) => record(failure, verb),
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            record(
                Failure::new(PM_ERR_INTERNAL, format!("internal error (panic): {what}")),
                verb,
            )
        }
    }
}

/// The NUL-terminated UTF-8 string at `pointer`.
///
/// # Safety
///
/// `pointer` is NULL or points to a NUL-terminated string that outlives `'a`.
unsafe fn text<'a>(pointer: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if pointer.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: not NULL, and the caller promises a NUL-terminated string living for 'a.
    let bytes = unsafe { CStr::from_ptr(pointer) };
    bytes
        .to_str()
        .map_err(|error| Failure::new(PM_ERR_INVALID_UTF8, format!("{what} is not UTF-8: {error}")))
}

/// The NUL-terminated path at `pointer`, any bytes but NUL.
///
/// # Safety
///
/// As for [`text`].
unsafe fn path(pointer: *const c_char, what: &str) -> Result<PathBuf, Failure> {
    use std::os::unix::ffi::OsStrExt;
    if pointer.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: not NULL, and the caller promises a NUL-terminated string.
    let bytes = unsafe { CStr::from_ptr(pointer) }.to_bytes();
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
}

/// The volume behind `pointer`.
///
/// # Safety
///
/// `pointer` is NULL or a volume from a `pm_*_volume` opener not yet closed.
unsafe fn volume<'a>(pointer: *mut pm_volume) -> Result<&'a pm_volume, Failure> {
    // SAFETY: the caller promises a live volume or NULL; only shared references are made,
    // and every verb of a volume takes `&self` (its state is behind mutexes).
    unsafe { pointer.as_ref() }.ok_or_else(|| Failure::null("the volume"))
}

/// The attribute cache behind `pointer`.
///
/// # Safety
///
/// `pointer` is NULL or a cache from `pm_read_attributes` not yet freed.
unsafe fn attrs<'a>(pointer: *const pm_attrs) -> Result<&'a Attributes, Failure> {
    // SAFETY: the caller promises a live cache or NULL; it is only read.
    unsafe { pointer.as_ref() }
        .map(|attrs| &attrs.attributes)
        .ok_or_else(|| Failure::null("the attribute handle"))
}

/// Writes `value` to `*out`.
///
/// # Safety
///
/// `out` is NULL (checked before: never here) or valid for a write of a `T`.
unsafe fn put<T>(out: *mut T, value: T) {
    debug_assert!(!out.is_null());
    // SAFETY: the caller checked `out` is not NULL and promises it is writable; `write`
    // does not read or drop the old, possibly uninitialised, value.
    unsafe { out.write(value) }
}

fn check_out<T>(out: *mut T, what: &str) -> Result<(), Failure> {
    if out.is_null() {
        Err(Failure::null(what))
    } else {
        Ok(())
    }
}

/// Copies `value` into `buffer` as a NUL-terminated string, cut to fit; the rest is zeroed.
fn copy_cut(buffer: &mut [c_char], value: &str) {
    let length = value.len().min(buffer.len().saturating_sub(1));
    for (slot, byte) in buffer.iter_mut().zip(value.as_bytes()[..length].iter()) {
        *slot = *byte as c_char;
    }
    buffer[length..].fill(0);
}

fn name_buffer(value: &str) -> [c_char; PM_NAME_CAPACITY] {
    let mut buffer = [0; PM_NAME_CAPACITY];
    copy_cut(&mut buffer, value);
    buffer
}

fn card_role(card: pm_mirror) -> Result<CardRole, Failure> {
    match card {
        PM_PRIMARY => Ok(CardRole::Primary),
        PM_MIRROR => Ok(CardRole::Mirror),
        other => Err(Failure::new(
            PM_ERR_BAD_MIRROR,
            format!("a card is PM_PRIMARY or PM_MIRROR, not {other}"),
        )),
    }
}

fn role_value(role: CardRole) -> pm_mirror {
    match role {
        CardRole::Primary => PM_PRIMARY,
        CardRole::Mirror => PM_MIRROR,
    }
}

fn write_mirror(mirror: pm_mirror) -> Result<Mirror, Failure> {
    match mirror {
        PM_BOTH => Ok(Mirror::Both),
        PM_PRIMARY => Ok(Mirror::Primary),
        PM_MIRROR => Ok(Mirror::Mirror),
        PM_ANY => Err(Failure::new(
            PM_ERR_BAD_MIRROR,
            "PM_ANY is for reads: a write takes PM_BOTH, PM_PRIMARY or PM_MIRROR",
        )),
        other => Err(Failure::new(
            PM_ERR_BAD_MIRROR,
            format!("a write takes PM_BOTH, PM_PRIMARY or PM_MIRROR, not {other}"),
        )),
    }
}

fn read_from(mirror: pm_mirror) -> Result<ReadFrom, Failure> {
    match mirror {
        PM_ANY => Ok(ReadFrom::Any),
        PM_PRIMARY => Ok(ReadFrom::Primary),
        PM_MIRROR => Ok(ReadFrom::Mirror),
        PM_BOTH => Err(Failure::new(
            PM_ERR_BAD_MIRROR,
            "PM_BOTH is for writes: a read takes PM_ANY, PM_PRIMARY or PM_MIRROR",
        )),
        other => Err(Failure::new(
            PM_ERR_BAD_MIRROR,
            format!("a read takes PM_ANY, PM_PRIMARY or PM_MIRROR, not {other}"),
        )),
    }
}

fn check_volume_name(name: &str) -> Result<(), Failure> {
    if metadata::name_is_valid(name) {
        Ok(())
    } else {
        Err(Error::BadVolumeName {
            length: name.len(),
            max: metadata::MAX_NAME_BYTES,
        }
        .into())
    }
}

impl pm_volume {
    fn new(volume: Volume<Card>) -> *mut pm_volume {
        Box::into_raw(Box::new(pm_volume {
            volume,
            handles: Mutex::new(HashMap::new()),
        }))
    }

    fn handles(&self) -> MutexGuard<'_, HashMap<u64, RegionHandle<Card>>> {
        self.handles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `use_handle` on the open handle `handle` of this volume.
    fn with_handle<R>(
        &self,
        handle: pm_region_handle,
        use_handle: impl FnOnce(&RegionHandle<Card>) -> Result<R, Failure>,
    ) -> Result<R, Failure> {
        let handles = self.handles();
        let region = handles.get(&handle).ok_or_else(|| bad_handle(handle))?;
        use_handle(region)
    }
}

fn bad_handle(handle: pm_region_handle) -> Failure {
    Failure::new(
        PM_ERR_BAD_HANDLE,
        format!(
            "region handle {handle} is not open on this volume \
             (closed, never opened, or another volume's)"
        ),
    )
}

/// Checks `length` bytes at `pointer` lie in the region before a slice of `length` bytes is
/// made from a C pointer (a slice may not exceed `isize::MAX` bytes).
fn check_length(region: &RegionHandle<Card>, pointer: u64, length: usize) -> Result<(), Failure> {
    if length as u64 > region.size() || length > isize::MAX as usize {
        return Err(Error::OutsideRegion {
            pointer,
            length: length as u64,
            base_pointer: region.base_pointer(),
            size: region.size(),
        }
        .into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Status and messages.

/// The name and meaning of a status code, as a static string (never NULL).
#[no_mangle]
pub extern "C" fn pm_strerror(status: pm_status) -> *const c_char {
    let text: &'static CStr = match status {
        PM_OK => c"PM_OK: success",
        PM_ERR_NULL_POINTER => c"PM_ERR_NULL_POINTER: a pointer argument is NULL",
        PM_ERR_INVALID_UTF8 => c"PM_ERR_INVALID_UTF8: a name is not UTF-8",
        PM_ERR_BAD_NAME => c"PM_ERR_BAD_NAME: a region name must be 1 to 63 bytes",
        PM_ERR_BAD_VOLUME_NAME => c"PM_ERR_BAD_VOLUME_NAME: a volume name must be 1 to 63 bytes",
        PM_ERR_BAD_SIZE => c"PM_ERR_BAD_SIZE: the region size is 0 or too large",
        PM_ERR_BASE_WRAPS => c"PM_ERR_BASE_WRAPS: base pointer plus size wraps past 2^64",
        PM_ERR_BAD_MIRROR => c"PM_ERR_BAD_MIRROR: a pm_mirror value this verb does not take",
        PM_ERR_REGION_EXISTS => c"PM_ERR_REGION_EXISTS: a region of that name exists",
        PM_ERR_NO_SUCH_REGION => c"PM_ERR_NO_SUCH_REGION: no region of that name",
        PM_ERR_REGION_OPEN => c"PM_ERR_REGION_OPEN: the region is open",
        PM_ERR_NOT_OWNER => c"PM_ERR_NOT_OWNER: the region belongs to another user",
        PM_ERR_BAD_HANDLE => c"PM_ERR_BAD_HANDLE: the region handle is not open on this volume",
        PM_ERR_OUTSIDE_REGION => c"PM_ERR_OUTSIDE_REGION: the bytes lie outside the region",
        PM_ERR_NO_SUCH_ATTRIBUTE => c"PM_ERR_NO_SUCH_ATTRIBUTE: no attribute of that name",
        PM_ERR_WRONG_TYPE => c"PM_ERR_WRONG_TYPE: the attribute has another type",
        PM_ERR_BUFFER_TOO_SMALL => c"PM_ERR_BUFFER_TOO_SMALL: the string was cut to fit",
        PM_ERR_NO_SPACE => c"PM_ERR_NO_SPACE: not enough free pages",
        PM_ERR_METADATA_FULL => c"PM_ERR_METADATA_FULL: no room in the metadata",
        PM_ERR_NO_FREE_CONTEXT => c"PM_ERR_NO_FREE_CONTEXT: every address context is in use",
        PM_ERR_NO_FREE_ENTRIES => c"PM_ERR_NO_FREE_ENTRIES: not enough translation entries",
        PM_ERR_CARDS => c"PM_ERR_CARDS: the cards could not be opened",
        PM_ERR_UNSUITABLE_CARDS => c"PM_ERR_UNSUITABLE_CARDS: the two cards do not make one volume",
        PM_ERR_ALREADY_FORMATTED => c"PM_ERR_ALREADY_FORMATTED: the cards hold a volume already",
        PM_ERR_NOT_FORMATTED => c"PM_ERR_NOT_FORMATTED: neither card holds a volume",
        PM_ERR_METADATA_DAMAGED => c"PM_ERR_METADATA_DAMAGED: a card's metadata is damaged",
        PM_ERR_CARD_STALE => c"PM_ERR_CARD_STALE: the card is stale; resync it",
        PM_ERR_CARD_UNAVAILABLE => c"PM_ERR_CARD_UNAVAILABLE: the card is not available",
        PM_ERR_BOTH_CARDS_FAILED => c"PM_ERR_BOTH_CARDS_FAILED: neither card answers",
        PM_ERR_DEGRADED => c"PM_ERR_DEGRADED: written to one card only; resync the other",
        PM_ERR_NOTHING_TO_RESYNC => c"PM_ERR_NOTHING_TO_RESYNC: both cards are in sync",
        PM_ERR_CARD => c"PM_ERR_CARD: a card refused the operation",
        PM_ERR_IO => c"PM_ERR_IO: an I/O error",
        PM_ERR_UNSUPPORTED => c"PM_ERR_UNSUPPORTED: not supported by this build or these cards",
        PM_ERR_INTERNAL => c"PM_ERR_INTERNAL: an internal error of the library",
        PM_ERR_RESYNC_RUNNING => c"PM_ERR_RESYNC_RUNNING: a resync is already running",
        PM_ERR_MEMBER_MISSING => c"PM_ERR_MEMBER_MISSING: a card of the volume is missing",
        PM_ERR_FORKED => c"PM_ERR_FORKED: the cards' histories forked; choose one to keep",
        PM_ERR_NOT_FORKED => c"PM_ERR_NOT_FORKED: the cards' histories have not forked",
        PM_ERR_BAD_FLAGS => c"PM_ERR_BAD_FLAGS: unknown or contradictory PM_OPEN_* flags",
        _ => c"unknown pm_status",
    };
    text.as_ptr()
}

/// The detailed message of the calling thread's latest failure ("" if none failed yet),
/// naming the verb: e.g. `pm_create_region: region "log" already exists`. Valid until the
/// thread's next failing call; never NULL. Success leaves it as it was.
#[no_mangle]
pub extern "C" fn pm_last_error() -> *const c_char {
    LAST_ERROR.with(|last| last.borrow().as_ptr())
}

// ---------------------------------------------------------------------------------------
// Volumes.

/// How the `PM_OPEN_*` flags ask for a volume to be opened.
#[derive(Clone, Copy, Debug)]
struct OpenFlags {
    degraded: bool,
    /// The card whose copy a forked pair keeps (`Volume::choose`).
    keep: Option<CardRole>,
}

fn open_flags(flags: pm_open_flags) -> Result<OpenFlags, Failure> {
    let unknown = flags & !(PM_OPEN_DEGRADED | PM_OPEN_KEEP_PRIMARY | PM_OPEN_KEEP_MIRROR);
    if unknown != 0 {
        return Err(Failure::new(
            PM_ERR_BAD_FLAGS,
            format!(
                "unknown open flags {unknown:#x}: the flags are PM_OPEN_DEGRADED, \
                 PM_OPEN_KEEP_PRIMARY and PM_OPEN_KEEP_MIRROR"
            ),
        ));
    }
    let keep = match (
        flags & PM_OPEN_KEEP_PRIMARY != 0,
        flags & PM_OPEN_KEEP_MIRROR != 0,
    ) {
        (true, true) => {
            return Err(Failure::new(
                PM_ERR_BAD_FLAGS,
                "PM_OPEN_KEEP_PRIMARY and PM_OPEN_KEEP_MIRROR together: a forked volume keeps \
                 one card's copy",
            ))
        }
        (true, false) => Some(CardRole::Primary),
        (false, true) => Some(CardRole::Mirror),
        (false, false) => None,
    };
    Ok(OpenFlags {
        degraded: flags & PM_OPEN_DEGRADED != 0,
        keep,
    })
}

/// Formats (`format` is the name and whether to overwrite) or opens the volume on `cards`
/// into `*out`.
fn open_or_format(
    cards: Result<(Card, Card), Failure>,
    format: Option<(&str, bool)>,
    flags: OpenFlags,
    out: *mut *mut pm_volume,
) -> Result<(), Failure> {
    let (primary, mirror) = cards?;
    let options = VolumeOptions {
        degraded: flags.degraded,
        ..VolumeOptions::default()
    };
    let volume = match (format, flags.keep) {
        (Some((name, overwrite)), _) => Volume::format(primary, mirror, name, overwrite, options)?,
        (None, Some(keep)) => Volume::choose(primary, mirror, keep, options)?,
        (None, None) => Volume::open(primary, mirror, options)?,
    };
    // SAFETY: the callers checked `out` is not NULL; the C caller promises it is writable.
    unsafe { put(out, pm_volume::new(volume)) };
    Ok(())
}

/// How a format opens: no flag applies.
const FORMAT: OpenFlags = OpenFlags {
    degraded: false,
    keep: None,
};

#[cfg(feature = "simulated")]
fn simulated_cards(directory: PathBuf) -> Result<(Card, Card), Failure> {
    use crate::cards::{simulated_cards, SimulatedCards};
    Ok(simulated_cards(&SimulatedCards::in_directory(&directory))?)
}

#[cfg(not(feature = "simulated"))]
fn simulated_cards(_directory: PathBuf) -> Result<(Card, Card), Failure> {
    Err(Failure::new(
        PM_ERR_UNSUPPORTED,
        "this libnpmu was built without simulated cards (feature `simulated`)",
    ))
}

fn vfio_cards(primary: &str, mirror: &str) -> Result<(Card, Card), Failure> {
    Ok(crate::cards::vfio_cards(primary, mirror)?)
}

/// Formats a new, empty volume named `volume_name` on two simulated cards whose persistent
/// memory is kept in `directory` (files `primary.pm` and `mirror.pm`, created if missing),
/// and opens it into `*out`. If the cards hold a volume already, gives
/// `PM_ERR_ALREADY_FORMATTED` unless `overwrite` is nonzero; then every region is lost.
///
/// # Safety
///
/// `directory` and `volume_name` are NULL or NUL-terminated strings; `out` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn pm_format_simulated_volume(
    directory: *const c_char,
    volume_name: *const c_char,
    overwrite: c_int,
    out: *mut *mut pm_volume,
) -> pm_status {
    run("pm_format_simulated_volume", || {
        // SAFETY: the caller promises NUL-terminated strings or NULL.
        let (directory, name) = unsafe {
            (
                path(directory, "the directory")?,
                text(volume_name, "the volume name")?,
            )
        };
        check_out(out, "the volume output")?;
        check_volume_name(name)?;
        open_or_format(
            simulated_cards(directory),
            Some((name, overwrite != 0)),
            FORMAT,
            out,
        )
    })
}

/// Opens the volume on the two simulated cards kept in `directory` into `*out`. `flags` is
/// 0 or `PM_OPEN_*` flags (see `pm_open_flags`); the flags are checked before anything is
/// opened. An open is refused with `PM_ERR_MEMBER_MISSING` if a card the volume has in sync
/// is missing (without `PM_OPEN_DEGRADED`), and with `PM_ERR_FORKED` if the cards'
/// histories forked (without a `PM_OPEN_KEEP_*` flag); `pm_last_error` tells which card and
/// why. Chunks an unclean shutdown left dirty are repaired, primary to mirror, before it
/// returns.
///
/// # Safety
///
/// `directory` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn pm_open_simulated_volume(
    directory: *const c_char,
    flags: pm_open_flags,
    out: *mut *mut pm_volume,
) -> pm_status {
    run("pm_open_simulated_volume", || {
        // SAFETY: the caller promises a NUL-terminated string or NULL.
        let directory = unsafe { path(directory, "the directory")? };
        check_out(out, "the volume output")?;
        let flags = open_flags(flags)?;
        open_or_format(simulated_cards(directory), None, flags, out)
    })
}

/// Formats a new volume named `volume_name` on two real cards through VFIO, at PCI
/// addresses `primary_pci` and `mirror_pci` (e.g. "0000:01:00.0"), and opens it into
/// `*out`; `overwrite` as for `pm_format_simulated_volume`.
///
/// # Safety
///
/// The strings are NULL or NUL-terminated; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn pm_format_vfio_volume(
    primary_pci: *const c_char,
    mirror_pci: *const c_char,
    volume_name: *const c_char,
    overwrite: c_int,
    out: *mut *mut pm_volume,
) -> pm_status {
    run("pm_format_vfio_volume", || {
        // SAFETY: the caller promises NUL-terminated strings or NULL.
        let (primary, mirror, name) = unsafe {
            (
                text(primary_pci, "the primary's PCI address")?,
                text(mirror_pci, "the mirror's PCI address")?,
                text(volume_name, "the volume name")?,
            )
        };
        check_out(out, "the volume output")?;
        check_volume_name(name)?;
        open_or_format(
            vfio_cards(primary, mirror),
            Some((name, overwrite != 0)),
            FORMAT,
            out,
        )
    })
}

/// Opens the volume on two real cards through VFIO at PCI addresses `primary_pci` and
/// `mirror_pci` into `*out`; `flags` as for `pm_open_simulated_volume`.
///
/// # Safety
///
/// The strings are NULL or NUL-terminated; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn pm_open_vfio_volume(
    primary_pci: *const c_char,
    mirror_pci: *const c_char,
    flags: pm_open_flags,
    out: *mut *mut pm_volume,
) -> pm_status {
    run("pm_open_vfio_volume", || {
        // SAFETY: the caller promises NUL-terminated strings or NULL.
        let (primary, mirror) = unsafe {
            (
                text(primary_pci, "the primary's PCI address")?,
                text(mirror_pci, "the mirror's PCI address")?,
            )
        };
        check_out(out, "the volume output")?;
        let flags = open_flags(flags)?;
        open_or_format(vfio_cards(primary, mirror), None, flags, out)
    })
}

/// Closes every region handle still open on `volume`, then the volume and its cards.
/// NULL is accepted and does nothing.
///
/// # Safety
///
/// `volume` is NULL or a volume not yet closed, which no other thread is using; it is
/// invalid afterwards.
#[no_mangle]
pub unsafe extern "C" fn pm_close_volume(volume: *mut pm_volume) {
    if volume.is_null() {
        return;
    }
    run("pm_close_volume", || {
        // SAFETY: the caller gives up a volume made by `Box::into_raw` in `pm_volume::new`.
        let volume = unsafe { Box::from_raw(volume) };
        let handles: Vec<_> = volume.handles().drain().map(|(_, handle)| handle).collect();
        for handle in handles {
            if let Err(error) = volume.volume.close_region(handle) {
                tracing::warn!(%error, "closing a region with its volume");
            }
        }
        drop(volume);
        Ok(())
    });
}

/// Describes the volume into `*out`.
///
/// # Safety
///
/// `volume` is NULL or an open volume; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn pm_get_volume_info(
    volume: *mut pm_volume,
    out: *mut pm_volume_info,
) -> pm_status {
    run("pm_get_volume_info", || {
        // SAFETY: the caller promises an open volume or NULL.
        let volume = unsafe { self::volume(volume)? };
        check_out(out, "the info output")?;
        let info = volume.volume.info();
        let described = pm_volume_info {
            name: name_buffer(&info.name),
            id_high: (info.id >> 64) as u64,
            id_low: info.id as u64,
            created: info.created,
            page_bytes: info.page_bytes,
            data_pages: info.data_pages,
            free_pages: info.free_pages,
            max_region_bytes: info.max_region_bytes,
            regions: info.regions as u64,
            sequence: info.sequence,
            epoch: info.epoch,
            dirty_chunks: info
                .dirty_chunks
                .map_or(-1, |chunks| i64::try_from(chunks).unwrap_or(i64::MAX)),
        };
        // SAFETY: `out` is not NULL and the caller promises it is writable.
        unsafe { put(out, described) };
        Ok(())
    })
}

/// How card `card` (`PM_PRIMARY` or `PM_MIRROR`) stands, into `*out`.
///
/// # Safety
///
/// `volume` is NULL or an open volume; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn pm_get_card_status(
    volume: *mut pm_volume,
    card: pm_mirror,
    out: *mut pm_card_status,
) -> pm_status {
    run("pm_get_card_status", || {
        // SAFETY: the caller promises an open volume or NULL.
        let volume = unsafe { self::volume(volume)? };
        check_out(out, "the status output")?;
        let role = card_role(card)?;
        let status = &volume.volume.status()[role];
        let mut described = pm_card_status {
            state: match status.state {
                CardState::InSync => PM_CARD_IN_SYNC,
                CardState::Stale => PM_CARD_STALE,
                CardState::Rebuilding => PM_CARD_REBUILDING,
            },
            failed: status.failure.is_some(),
            name: name_buffer(&status.name),
            failure: [0; PM_MESSAGE_CAPACITY],
        };
        copy_cut(
            &mut described.failure,
            status.failure.as_deref().unwrap_or(""),
        );
        // SAFETY: `out` is not NULL and the caller promises it is writable.
        unsafe { put(out, described) };
        Ok(())
    })
}

/// Rebuilds the stale card from the in-sync one while the volume stays in use (writes and
/// reads of other threads go on meanwhile), and tells what it copied in `*report`.
/// `PM_ERR_NOTHING_TO_RESYNC` if both cards are in sync.
///
/// # Safety
///
/// `volume` is NULL or an open volume; `report` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn pm_resync(
    volume: *mut pm_volume,
    report: *mut pm_resync_report,
) -> pm_status {
    run("pm_resync", || {
        // SAFETY: the caller promises an open volume or NULL.
        let volume = unsafe { self::volume(volume)? };
        check_out(report, "the report output")?;
        let done = volume.volume.resync(|_, _| {})?;
        let described = pm_resync_report {
            card: role_value(done.card),
            pages: done.pages,
            bytes: done.bytes,
            full: done.full,
        };
        // SAFETY: `report` is not NULL and the caller promises it is writable.
        unsafe { put(report, described) };
        Ok(())
    })
}

/// Compares the two cards' copies of the volume, their metadata and every byte of every
/// region, while the volume stays in use (writes and reads of other threads go on), and
/// tells what it found in `*report`. The first `capacity` differences, in region order then
/// offset, are copied into the caller's array `differences` (which may be NULL when
/// `capacity` is 0); `report->differences` counts them all. Differences found are not an
/// error: the verb returns `PM_OK` and the report tells them.
///
/// With `repair` nonzero, every difference is repaired by copying the primary's bytes (and
/// metadata) onto the mirror, and `report->repaired` says whether anything was; the report
/// still tells what differed before. Both cards must be in sync and answer: otherwise
/// `PM_ERR_CARD_STALE` (resync first) or `PM_ERR_CARD_UNAVAILABLE`. A card failing during the
/// check fails it; a repair that fails after starting may have repaired some differences.
///
/// # Safety
///
/// `volume` is NULL or an open volume; `differences` is NULL or writable for `capacity`
/// differences; `report` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn pm_check_volume(
    volume: *mut pm_volume,
    repair: c_int,
    differences: *mut pm_difference,
    capacity: usize,
    report: *mut pm_check_report,
) -> pm_status {
    run("pm_check_volume", || {
        // SAFETY: the caller promises an open volume or NULL.
        let volume = unsafe { self::volume(volume)? };
        if differences.is_null() && capacity > 0 {
            return Err(Failure::null("the differences array"));
        }
        check_out(report, "the report output")?;
        let found = volume.volume.check(repair != 0, |_, _| {})?;
        for (index, difference) in found.differences.iter().take(capacity).enumerate() {
            let copied = pm_difference {
                region: name_buffer(&difference.region),
                offset: difference.offset,
                length: difference.length,
            };
            // SAFETY: `differences` is not NULL (capacity > 0 here) and the caller promises
            // `capacity` > `index` writable differences there.
            unsafe { put(differences.add(index), copied) };
        }
        let described = pm_check_report {
            differences: found.differences.len() as u64,
            bytes_differing: found.differences.iter().map(|d| d.length).sum(),
            metadata_differences: u32::try_from(found.metadata.len()).unwrap_or(u32::MAX),
            regions: found.regions as u64,
            bytes_compared: found.bytes_compared,
            repaired: found.repaired,
        };
        // SAFETY: `report` is not NULL and the caller promises it is writable.
        unsafe { put(report, described) };
        Ok(())
    })
}

/// Makes simulated card `card` (`PM_PRIMARY` or `PM_MIRROR`) stop answering, as a card that
/// died: for testing a program's recovery. `PM_ERR_UNSUPPORTED` on real cards.
///
/// # Safety
///
/// `volume` is NULL or an open volume.
#[no_mangle]
pub unsafe extern "C" fn pm_simulated_fail_card(
    volume: *mut pm_volume,
    card: pm_mirror,
) -> pm_status {
    run("pm_simulated_fail_card", || {
        // SAFETY: the caller promises an open volume or NULL.
        let volume = unsafe { self::volume(volume)? };
        let role = card_role(card)?;
        fail_card(&volume.volume, role)
    })
}

#[cfg(feature = "simulated")]
fn fail_card(volume: &Volume<Card>, role: CardRole) -> Result<(), Failure> {
    match volume.inspect_card(role, Card::fail) {
        Some(true) => Ok(()),
        Some(false) => Err(Failure::new(
            PM_ERR_UNSUPPORTED,
            "the card is real: only a simulated card fails on request",
        )),
        None => Err(Error::CardUnavailable {
            role,
            why: "the card never opened".into(),
        }
        .into()),
    }
}

#[cfg(not(feature = "simulated"))]
fn fail_card(_volume: &Volume<Card>, _role: CardRole) -> Result<(), Failure> {
    Err(Failure::new(
        PM_ERR_UNSUPPORTED,
        "this libnpmu was built without simulated cards (feature `simulated`)",
    ))
}

// ---------------------------------------------------------------------------------------
// Regions.

/// Creates region `region_name` of `region_size` bytes (1 to the volume's
/// `max_region_bytes`) on both cards, zeroed, addressed by pointers from `base_pointer` to
/// `base_pointer + region_size` (seed 001 [0078]-[0081]).
///
/// # Safety
///
/// `volume` is NULL or an open volume; `region_name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn pm_create_region(
    volume: *mut pm_volume,
    region_name: *const c_char,
    region_size: u64,
    base_pointer: u64,
) -> pm_status {
    run("pm_create_region", || {
        // SAFETY: the caller promises an open volume and a NUL-terminated string, or NULLs.
        let (volume, name) = unsafe { (self::volume(volume)?, text(region_name, "the name")?) };
        Ok(volume
            .volume
            .create_region(name, region_size, base_pointer)?)
    })
}

/// Deletes region `region_name` and frees its memory (seed 001 [0082]); refused while any
/// handle of it is open (`PM_ERR_REGION_OPEN`).
///
/// # Safety
///
/// `volume` is NULL or an open volume; `region_name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn pm_delete_region(
    volume: *mut pm_volume,
    region_name: *const c_char,
) -> pm_status {
    run("pm_delete_region", || {
        // SAFETY: the caller promises an open volume and a NUL-terminated string, or NULLs.
        let (volume, name) = unsafe { (self::volume(volume)?, text(region_name, "the name")?) };
        Ok(volume.volume.delete_region(name)?)
    })
}

/// Opens region `region_name` (seed 001 [0083]-[0084]) and puts its handle in
/// `*region_handle`; `pm_get_region_info` tells what the handle holds.
///
/// # Safety
///
/// `volume` is NULL or an open volume; `region_name` is NULL or a NUL-terminated string;
/// `region_handle` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn pm_open_region(
    volume: *mut pm_volume,
    region_name: *const c_char,
    region_handle: *mut pm_region_handle,
) -> pm_status {
    run("pm_open_region", || {
        // SAFETY: the caller promises an open volume and a NUL-terminated string, or NULLs.
        let (volume, name) = unsafe { (self::volume(volume)?, text(region_name, "the name")?) };
        check_out(region_handle, "the handle output")?;
        let region = volume.volume.open_region(name)?;
        let id = region.id();
        volume.handles().insert(id, region);
        // SAFETY: `region_handle` is not NULL and the caller promises it is writable.
        unsafe { put(region_handle, id) };
        Ok(())
    })
}

/// What open handle `region_handle` holds, into `*out` (seed 001 [0066]).
///
/// # Safety
///
/// `volume` is NULL or an open volume; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn pm_get_region_info(
    volume: *mut pm_volume,
    region_handle: pm_region_handle,
    out: *mut pm_region_info,
) -> pm_status {
    run("pm_get_region_info", || {
        // SAFETY: the caller promises an open volume or NULL.
        let volume = unsafe { self::volume(volume)? };
        check_out(out, "the info output")?;
        let described = volume.with_handle(region_handle, |region| {
            let key = |role| region.key(role);
            Ok(pm_region_info {
                name: name_buffer(region.name()),
                base_pointer: region.base_pointer(),
                size: region.size(),
                context: region.context(),
                primary_network_base: region.network_base(CardRole::Primary),
                mirror_network_base: region.network_base(CardRole::Mirror),
                primary_mapped: key(CardRole::Primary).is_some(),
                mirror_mapped: key(CardRole::Mirror).is_some(),
                primary_key: key(CardRole::Primary).unwrap_or(0),
                mirror_key: key(CardRole::Mirror).unwrap_or(0),
            })
        })?;
        // SAFETY: `out` is not NULL and the caller promises it is writable.
        unsafe { put(out, described) };
        Ok(())
    })
}

/// Closes open handle `region_handle` (seed 001 [0085]): the region's mappings are revoked
/// on both cards and the handle is invalid from now on.
///
/// # Safety
///
/// `volume` is NULL or an open volume.
#[no_mangle]
pub unsafe extern "C" fn pm_close_region(
    volume: *mut pm_volume,
    region_handle: pm_region_handle,
) -> pm_status {
    run("pm_close_region", || {
        // SAFETY: the caller promises an open volume or NULL.
        let volume = unsafe { self::volume(volume)? };
        let region = volume
            .handles()
            .remove(&region_handle)
            .ok_or_else(|| bad_handle(region_handle))?;
        Ok(volume.volume.close_region(region)?)
    })
}

/// Writes `len` bytes from `buf` to the region at pointer `write_pointer` (seed 001 [0086],
/// [0088]): `mirror` is `PM_BOTH` normally, `PM_PRIMARY` or `PM_MIRROR` for recovery. The
/// bytes must lie within `[base_pointer, base_pointer + size)`. `PM_ERR_DEGRADED` means the
/// data was written, but to one card only.
///
/// # Safety
///
/// `volume` is NULL or an open volume; `buf` is NULL or readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn pm_write_region(
    volume: *mut pm_volume,
    region_handle: pm_region_handle,
    buf: *const c_void,
    len: usize,
    write_pointer: u64,
    mirror: pm_mirror,
) -> pm_status {
    run("pm_write_region", || {
        // SAFETY: the caller promises an open volume or NULL.
        let volume = unsafe { self::volume(volume)? };
        if buf.is_null() {
            return Err(Failure::null("the buffer"));
        }
        let mirror = write_mirror(mirror)?;
        volume.with_handle(region_handle, |region| {
            check_length(region, write_pointer, len)?;
            // SAFETY: `buf` is not NULL, the caller promises `len` readable bytes there, and
            // `len` is at most the region's size, so within isize::MAX.
            let data = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) };
            Ok(volume
                .volume
                .write_region(region, data, write_pointer, mirror)?)
        })
    })
}

/// Reads `len` bytes of the region at pointer `read_pointer` into `buf` (seed 001 [0089]-
/// [0094]): `mirror` is `PM_ANY` normally (either card, the other if it fails), `PM_PRIMARY`
/// or `PM_MIRROR` for recovery. The bytes must lie within `[base_pointer, base_pointer +
/// size)`.
///
/// # Safety
///
/// `volume` is NULL or an open volume; `buf` is NULL or writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn pm_read_region(
    volume: *mut pm_volume,
    region_handle: pm_region_handle,
    buf: *mut c_void,
    len: usize,
    read_pointer: u64,
    mirror: pm_mirror,
) -> pm_status {
    run("pm_read_region", || {
        // SAFETY: the caller promises an open volume or NULL.
        let volume = unsafe { self::volume(volume)? };
        if buf.is_null() {
            return Err(Failure::null("the buffer"));
        }
        let from = read_from(mirror)?;
        volume.with_handle(region_handle, |region| {
            check_length(region, read_pointer, len)?;
            // SAFETY: `buf` is not NULL, the caller promises `len` writable bytes there that
            // nothing else uses meanwhile, and `len` is within isize::MAX.
            let buffer = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
            Ok(volume
                .volume
                .read_region(region, buffer, read_pointer, from)?)
        })
    })
}

/// Lists the volume's regions (seed 001 [0095]) into the caller's array `region_list` of
/// `list_size` names of `PM_NAME_CAPACITY` bytes each, in creation order, each
/// NUL-terminated. The array is filled until it is full or every region is listed, and
/// `*region_cnt` gets the number of regions on the volume, which may exceed `list_size`
/// (not an error). `region_list` may be NULL when `list_size` is 0, to count only.
///
/// # Safety
///
/// `volume` is NULL or an open volume; `region_list` is NULL or writable for `list_size`
/// names; `region_cnt` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn pm_list_regions(
    volume: *mut pm_volume,
    region_list: *mut [c_char; PM_NAME_CAPACITY],
    list_size: usize,
    region_cnt: *mut usize,
) -> pm_status {
    run("pm_list_regions", || {
        // SAFETY: the caller promises an open volume or NULL.
        let volume = unsafe { self::volume(volume)? };
        if region_list.is_null() && list_size > 0 {
            return Err(Failure::null("the region list"));
        }
        check_out(region_cnt, "the region count output")?;
        let names = volume.volume.list_regions();
        let filled = names.len().min(list_size);
        if filled > 0 {
            // SAFETY: `region_list` is not NULL (list_size > 0) and the caller promises
            // `list_size` >= `filled` writable names there.
            let list = unsafe { std::slice::from_raw_parts_mut(region_list, filled) };
            for (slot, name) in list.iter_mut().zip(&names) {
                copy_cut(slot, name);
            }
        }
        // SAFETY: `region_cnt` is not NULL and the caller promises it is writable.
        unsafe { put(region_cnt, names.len()) };
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------
// Attributes.

/// Reads region `region_name`'s attributes into a new cache, `*attr_handle` (seed 001
/// [0097]); later changes show only in a new read. Free it with `pm_free_region_attrs`.
/// The attributes: "name" (string), "size", "base_pointer", "creation_time",
/// "last_open_time" (ns since the Unix epoch, 0 if never opened), "pages" (u64), "owner"
/// (the uid), "extents", "open_handles" (u32).
///
/// # Safety
///
/// `volume` is NULL or an open volume; `region_name` is NULL or a NUL-terminated string;
/// `attr_handle` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn pm_read_attributes(
    volume: *mut pm_volume,
    region_name: *const c_char,
    attr_handle: *mut *mut pm_attrs,
) -> pm_status {
    run("pm_read_attributes", || {
        // SAFETY: the caller promises an open volume and a NUL-terminated string, or NULLs.
        let (volume, name) = unsafe { (self::volume(volume)?, text(region_name, "the name")?) };
        check_out(attr_handle, "the attribute handle output")?;
        let attributes = volume.volume.read_attributes(name)?;
        let cache = Box::into_raw(Box::new(pm_attrs { attributes }));
        // SAFETY: `attr_handle` is not NULL and the caller promises it is writable.
        unsafe { put(attr_handle, cache) };
        Ok(())
    })
}

/// Puts the 64-bit attribute `attr_name` in `*attr_val` (seed 001 [0098]);
/// `PM_ERR_WRONG_TYPE` if it is not a 64-bit attribute.
///
/// # Safety
///
/// `attr_handle` is NULL or a live cache; `attr_name` is NULL or a NUL-terminated string;
/// `attr_val` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn pm_get_attr_u64(
    attr_handle: *const pm_attrs,
    attr_name: *const c_char,
    attr_val: *mut u64,
) -> pm_status {
    run("pm_get_attr_u64", || {
        // SAFETY: the caller promises a live cache and a NUL-terminated string, or NULLs.
        let (attributes, name) =
            unsafe { (attrs(attr_handle)?, text(attr_name, "the attribute name")?) };
        check_out(attr_val, "the value output")?;
        let value = attributes.get_u64(name)?;
        // SAFETY: `attr_val` is not NULL and the caller promises it is writable.
        unsafe { put(attr_val, value) };
        Ok(())
    })
}

/// Puts the 32-bit attribute `attr_name` in `*attr_val`; `PM_ERR_WRONG_TYPE` if it is not a
/// 32-bit attribute.
///
/// # Safety
///
/// As for `pm_get_attr_u64`.
#[no_mangle]
pub unsafe extern "C" fn pm_get_attr_u32(
    attr_handle: *const pm_attrs,
    attr_name: *const c_char,
    attr_val: *mut u32,
) -> pm_status {
    run("pm_get_attr_u32", || {
        // SAFETY: the caller promises a live cache and a NUL-terminated string, or NULLs.
        let (attributes, name) =
            unsafe { (attrs(attr_handle)?, text(attr_name, "the attribute name")?) };
        check_out(attr_val, "the value output")?;
        let value = attributes.get_u32(name)?;
        // SAFETY: `attr_val` is not NULL and the caller promises it is writable.
        unsafe { put(attr_val, value) };
        Ok(())
    })
}

/// Copies the string attribute `attr_name` into `attr_val`, a buffer of `max_string_len`
/// bytes, NUL-terminated (seed 001 [0098]). If the string and its NUL do not fit, the first
/// `max_string_len - 1` bytes and a NUL are copied (nothing if `max_string_len` is 0) and
/// `PM_ERR_BUFFER_TOO_SMALL` is returned; `pm_last_error` tells the size needed.
/// `PM_ERR_WRONG_TYPE` if it is not a string attribute (then nothing is copied).
///
/// # Safety
///
/// `attr_handle` is NULL or a live cache; `attr_name` is NULL or a NUL-terminated string;
/// `attr_val` is NULL or writable for `max_string_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn pm_get_attr_string(
    attr_handle: *const pm_attrs,
    attr_name: *const c_char,
    attr_val: *mut c_char,
    max_string_len: usize,
) -> pm_status {
    run("pm_get_attr_string", || {
        // SAFETY: the caller promises a live cache and a NUL-terminated string, or NULLs.
        let (attributes, name) =
            unsafe { (attrs(attr_handle)?, text(attr_name, "the attribute name")?) };
        check_out(attr_val, "the value buffer")?;
        let value = attributes.get_string(name)?;
        if max_string_len > 0 {
            // SAFETY: `attr_val` is not NULL and the caller promises `max_string_len`
            // writable bytes there.
            let buffer = unsafe { std::slice::from_raw_parts_mut(attr_val, max_string_len) };
            let length = value.len().min(max_string_len - 1);
            copy_cut(&mut buffer[..=length], value);
        }
        if value.len() >= max_string_len {
            return Err(Error::BufferTooSmall {
                name: name.to_owned(),
                needed: value.len() + 1,
                capacity: max_string_len,
            }
            .into());
        }
        Ok(())
    })
}

/// Frees attribute cache `attr_handle` (seed 001 [0099]); it is invalid afterwards. NULL is
/// accepted and does nothing.
///
/// # Safety
///
/// `attr_handle` is NULL or a cache from `pm_read_attributes` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn pm_free_region_attrs(attr_handle: *mut pm_attrs) {
    if attr_handle.is_null() {
        return;
    }
    // SAFETY: the caller gives up a cache made by `Box::into_raw` in `pm_read_attributes`.
    drop(unsafe { Box::from_raw(attr_handle) });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        // SAFETY: pm_last_error returns a NUL-terminated string valid until the next failure.
        unsafe { CStr::from_ptr(pm_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_is_caught_at_the_boundary() {
        let status = run("pm_test", || panic!("boom"));
        assert_eq!(status, PM_ERR_INTERNAL);
        assert_eq!(last_error(), "pm_test: internal error (panic): boom");
    }

    #[test]
    fn every_status_has_its_own_name() {
        let mut seen = std::collections::HashSet::new();
        for status in PM_OK..=PM_ERR_BAD_FLAGS {
            // SAFETY: pm_strerror returns a static NUL-terminated string.
            let text = unsafe { CStr::from_ptr(pm_strerror(status)) }
                .to_str()
                .unwrap();
            assert!(text.starts_with("PM_"), "{status}: {text}");
            assert!(seen.insert(text.split(':').next().unwrap().to_owned()));
        }
        // SAFETY: as above.
        let unknown = unsafe { CStr::from_ptr(pm_strerror(-1)) };
        assert_eq!(unknown.to_str().unwrap(), "unknown pm_status");
    }

    #[test]
    fn strings_are_cut_to_fit_with_their_nul() {
        let mut buffer = [1 as c_char; 4];
        copy_cut(&mut buffer, "journal");
        assert_eq!(buffer, [b'j' as c_char, b'o' as c_char, b'u' as c_char, 0]);
        copy_cut(&mut buffer, "a");
        assert_eq!(buffer, [b'a' as c_char, 0, 0, 0]);
    }

    #[test]
    fn a_volume_is_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<pm_volume>();
        shared::<pm_attrs>();
    }
}
