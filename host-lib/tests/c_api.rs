//! The C API (src/ffi.rs): the committed header is what cbindgen generates; every verb and
//! every error through the C ABI, called from Rust; and the two C programs of
//! examples/c/, compiled with the system C compiler against the libnpmu.so cargo built
//! beside this test, and run.
//!
//! After changing src/ffi.rs, regenerate include/npmu.h with
//! `NPMU_BLESS_HEADER=1 cargo test -p npmu --test c_api header`.

use npmu::ffi::*;
use std::ffi::{c_char, c_int, CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------------------
// The header.

fn generated_header() -> Vec<u8> {
    let directory = crate_dir();
    let config =
        cbindgen::Config::from_file(directory.join("cbindgen.toml")).expect("cbindgen.toml reads");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(directory.join("src/ffi.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut header = Vec::new();
    bindings.write(&mut header);
    header
}

#[test]
fn header_is_what_ffi_rs_generates() {
    let path = crate_dir().join("include/npmu.h");
    let generated = generated_header();
    if std::env::var_os("NPMU_BLESS_HEADER").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale: regenerate it with \
         `NPMU_BLESS_HEADER=1 cargo test -p npmu --test c_api header`",
        path.display()
    );
}

#[test]
fn header_compiles_as_c_and_as_cpp() {
    let header = crate_dir().join("include/npmu.h");
    for (compiler, language) in [(c_compiler(), "c"), ("c++".to_owned(), "c++")] {
        let output = Command::new(&compiler)
            .args([
                "-fsyntax-only",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-x",
                language,
            ])
            .arg(&header)
            .output()
            .unwrap_or_else(|error| panic!("running {compiler}: {error}"));
        assert!(
            output.status.success(),
            "{compiler} -x {language} npmu.h: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------
// The C programs.

fn c_compiler() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".to_owned())
}

/// The directory holding the libnpmu.so that cargo built with this test: integration tests
/// run from target/<profile>/deps/, where the cdylib is built (without a hash in its name);
/// `cargo test -p npmu` also copies it up to target/<profile>/, a workspace build does not.
fn library_dir() -> PathBuf {
    let test = std::env::current_exe().unwrap();
    let deps = test
        .parent()
        .expect("the test runs from target/<profile>/deps")
        .to_owned();
    let candidates = [
        deps.clone(),
        deps.parent().map(Path::to_owned).unwrap_or_default(),
    ];
    candidates
        .into_iter()
        .find(|directory| directory.join("libnpmu.so").is_file())
        .unwrap_or_else(|| {
            panic!(
                "libnpmu.so is in neither {} nor its parent: the cdylib is built with the \
                 library by `cargo test -p npmu`",
                deps.display()
            )
        })
}

/// Compiles examples/c/`source` into `output` against libnpmu.so.
fn compile(source: &str, output: &Path) {
    let library = library_dir();
    let compiler = c_compiler();
    let result = Command::new(&compiler)
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Wpedantic",
            "-Werror",
            "-O1",
            "-o",
        ])
        .arg(output)
        .arg(crate_dir().join("examples/c").join(source))
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg("-L")
        .arg(&library)
        .arg("-lnpmu")
        .arg(format!("-Wl,-rpath,{}", library.display()))
        .output()
        .unwrap_or_else(|error| panic!("running {compiler}: {error}"));
    assert!(
        result.status.success(),
        "{compiler} {source}:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
}

/// Compiles and runs examples/c/`source` with a fresh directory; its standard output.
fn run_c_program(source: &str) -> String {
    let scratch = tempfile::tempdir().unwrap();
    let program = scratch.path().join(source.trim_end_matches(".c"));
    compile(source, &program);
    let data = scratch.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let result = Command::new(&program).arg(&data).output().unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        result.status.success(),
        "{source} exited with {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        result.status
    );
    stdout
}

#[test]
fn the_c_example_stores_a_linked_list_and_follows_it_after_reopening() {
    let output = run_c_program("npmu_example.c");
    println!("{output}");
    for line in [
        "formatted volume example: ",
        "opened region list: handle ",
        "bytes at base pointer 0x7f0000000000",
        "wrote a list of 5 nodes, head at 0x7f00000001c0",
        "closed the region and the volume",
        "reopened: head at 0x7f00000001c0",
        "node at 0x7f00000001c0: value 100, label alpha, next 0x7f0000000080",
        "node at 0x7f0000000100: value 500, label echo, next 0x0",
        "followed 5 nodes, values summing to 1500",
        "checked 1 region, 8192 bytes on each card: 0 differences, 0 in the metadata",
        "listed 2 of 3 regions: list, spare-a",
        "counted 3 regions without a list",
        "attributes: name list, size 8192, base_pointer 0x7f0000000000, pages 2, extents 1",
        "size as u32: PM_ERR_WRONG_TYPE",
        "the value is untouched: 12345",
        "name into 3 bytes: \"li\", PM_ERR_BUFFER_TOO_SMALL",
        "deleted the region: 0 regions left",
        "example done",
    ] {
        assert!(output.contains(line), "no {line:?} in:\n{output}");
    }
}

#[test]
fn the_c_error_program_meets_every_error_with_its_status() {
    let output = run_c_program("npmu_errors.c");
    println!("{output}");
    assert!(
        !output.lines().any(|line| line.starts_with("FAIL")),
        "{output}"
    );
    let summary = output.lines().last().unwrap_or_default();
    assert!(summary.ends_with("checks, 0 failed"), "{summary}");
    let checks: usize = summary.split(' ').next().unwrap().parse().unwrap();
    assert!(checks > 200, "{summary}");
    // Every status code a C program can meet here, met.
    for status in [
        PM_OK,
        PM_ERR_NULL_POINTER,
        PM_ERR_INVALID_UTF8,
        PM_ERR_BAD_NAME,
        PM_ERR_BAD_VOLUME_NAME,
        PM_ERR_BAD_SIZE,
        PM_ERR_BASE_WRAPS,
        PM_ERR_BAD_MIRROR,
        PM_ERR_REGION_EXISTS,
        PM_ERR_NO_SUCH_REGION,
        PM_ERR_REGION_OPEN,
        PM_ERR_BAD_HANDLE,
        PM_ERR_OUTSIDE_REGION,
        PM_ERR_NO_SUCH_ATTRIBUTE,
        PM_ERR_WRONG_TYPE,
        PM_ERR_BUFFER_TOO_SMALL,
        PM_ERR_NO_FREE_CONTEXT,
        PM_ERR_NO_FREE_ENTRIES,
        PM_ERR_CARDS,
        PM_ERR_UNSUITABLE_CARDS,
        PM_ERR_ALREADY_FORMATTED,
        PM_ERR_NOT_FORMATTED,
        PM_ERR_METADATA_DAMAGED,
        PM_ERR_CARD_STALE,
        PM_ERR_CARD_UNAVAILABLE,
        PM_ERR_BOTH_CARDS_FAILED,
        PM_ERR_DEGRADED,
        PM_ERR_NOTHING_TO_RESYNC,
        PM_ERR_CARD,
        PM_ERR_MEMBER_MISSING,
        PM_ERR_FORKED,
        PM_ERR_NOT_FORKED,
        PM_ERR_BAD_FLAGS,
    ] {
        let name = strerror(status);
        let name = name.split(':').next().unwrap();
        assert!(
            output.contains(&format!("ok   {name}:")),
            "{name} not met in C"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The same from Rust, through the C ABI.

fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

fn strerror(status: pm_status) -> String {
    // SAFETY: pm_strerror returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(pm_strerror(status)) }
        .to_string_lossy()
        .into_owned()
}

fn last_error() -> String {
    // SAFETY: pm_last_error returns a NUL-terminated string valid until the next failure.
    unsafe { CStr::from_ptr(pm_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn text_of(buffer: &[c_char]) -> String {
    // SAFETY: every name buffer the library fills is NUL-terminated within its length.
    unsafe { CStr::from_ptr(buffer.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Asserts a call returned `expected`, naming both and the last error if not.
#[track_caller]
fn expect(status: pm_status, expected: pm_status) {
    assert_eq!(
        status,
        expected,
        "got {} ({}), expected {}",
        strerror(status),
        if status == PM_OK {
            String::new()
        } else {
            last_error()
        },
        strerror(expected)
    );
}

/// A difference `pm_check_volume` found: the region's name, the offset and the length.
type Found = (String, u64, u64);

/// An open volume, closed when dropped.
struct Volume(*mut pm_volume);

impl Volume {
    fn format(directory: &Path, name: &str) -> Self {
        let directory = c(directory.to_str().unwrap());
        let mut volume = ptr::null_mut();
        // SAFETY: valid strings and output.
        expect(
            unsafe {
                pm_format_simulated_volume(directory.as_ptr(), c(name).as_ptr(), 0, &mut volume)
            },
            PM_OK,
        );
        Self(volume)
    }

    fn open(directory: &Path) -> Self {
        Self::open_with(directory, 0)
            .unwrap_or_else(|status| panic!("opening: {} ({})", strerror(status), last_error()))
    }

    /// Opens with `flags`; the output stays NULL on failure.
    fn open_with(directory: &Path, flags: pm_open_flags) -> Result<Self, pm_status> {
        let directory = c(directory.to_str().unwrap());
        let mut volume = ptr::null_mut();
        // SAFETY: valid string and output.
        let status = unsafe { pm_open_simulated_volume(directory.as_ptr(), flags, &mut volume) };
        match status {
            PM_OK => Ok(Self(volume)),
            status => {
                assert!(volume.is_null(), "the output was written on failure");
                Err(status)
            }
        }
    }

    fn info(&self) -> pm_volume_info {
        let mut info = std::mem::MaybeUninit::uninit();
        // SAFETY: an open volume and a writable output.
        expect(
            unsafe { pm_get_volume_info(self.0, info.as_mut_ptr()) },
            PM_OK,
        );
        // SAFETY: PM_OK: the info was written.
        unsafe { info.assume_init() }
    }

    fn create(&self, name: &str, size: u64, base_pointer: u64) -> pm_status {
        // SAFETY: an open volume and a valid string.
        unsafe { pm_create_region(self.0, c(name).as_ptr(), size, base_pointer) }
    }

    fn delete(&self, name: &str) -> pm_status {
        // SAFETY: an open volume and a valid string.
        unsafe { pm_delete_region(self.0, c(name).as_ptr()) }
    }

    fn open_region(&self, name: &str) -> Result<pm_region_handle, pm_status> {
        let mut handle = PM_INVALID_HANDLE;
        // SAFETY: an open volume, a valid string and output.
        match unsafe { pm_open_region(self.0, c(name).as_ptr(), &mut handle) } {
            PM_OK => Ok(handle),
            status => Err(status),
        }
    }

    fn close_region(&self, handle: pm_region_handle) -> pm_status {
        // SAFETY: an open volume.
        unsafe { pm_close_region(self.0, handle) }
    }

    fn region_info(&self, handle: pm_region_handle) -> Result<pm_region_info, pm_status> {
        let mut info = std::mem::MaybeUninit::uninit();
        // SAFETY: an open volume and a writable output.
        match unsafe { pm_get_region_info(self.0, handle, info.as_mut_ptr()) } {
            // SAFETY: PM_OK: the info was written.
            PM_OK => Ok(unsafe { info.assume_init() }),
            status => Err(status),
        }
    }

    fn write(
        &self,
        handle: pm_region_handle,
        data: &[u8],
        pointer: u64,
        mirror: pm_mirror,
    ) -> pm_status {
        // SAFETY: an open volume and `data.len()` readable bytes.
        unsafe {
            pm_write_region(
                self.0,
                handle,
                data.as_ptr().cast(),
                data.len(),
                pointer,
                mirror,
            )
        }
    }

    fn read(
        &self,
        handle: pm_region_handle,
        buffer: &mut [u8],
        pointer: u64,
        mirror: pm_mirror,
    ) -> pm_status {
        // SAFETY: an open volume and `buffer.len()` writable bytes.
        unsafe {
            pm_read_region(
                self.0,
                handle,
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                pointer,
                mirror,
            )
        }
    }

    /// The names fitting in a list of `size`, and the number of regions.
    fn list(&self, size: usize) -> (Vec<String>, usize) {
        let mut list = vec![[0 as c_char; PM_NAME_CAPACITY]; size];
        let mut count = usize::MAX;
        let pointer = if size == 0 {
            ptr::null_mut()
        } else {
            list.as_mut_ptr()
        };
        // SAFETY: an open volume, a list of `size` names (or NULL for 0) and a count.
        expect(
            unsafe { pm_list_regions(self.0, pointer, size, &mut count) },
            PM_OK,
        );
        let names = list
            .iter()
            .take(count.min(size))
            .map(|name| text_of(name))
            .collect();
        (names, count)
    }

    fn attributes(&self, name: &str) -> Result<Attrs, pm_status> {
        let mut attrs = ptr::null_mut();
        // SAFETY: an open volume, a valid string and output.
        match unsafe { pm_read_attributes(self.0, c(name).as_ptr(), &mut attrs) } {
            PM_OK => Ok(Attrs(attrs)),
            status => Err(status),
        }
    }

    fn card(&self, card: pm_mirror) -> pm_card_status {
        let mut status = std::mem::MaybeUninit::uninit();
        // SAFETY: an open volume and a writable output.
        expect(
            unsafe { pm_get_card_status(self.0, card, status.as_mut_ptr()) },
            PM_OK,
        );
        // SAFETY: PM_OK: the status was written.
        unsafe { status.assume_init() }
    }

    fn resync(&self) -> Result<pm_resync_report, pm_status> {
        let mut report = pm_resync_report {
            card: 0,
            pages: 0,
            bytes: 0,
            full: false,
        };
        // SAFETY: an open volume and a writable output.
        match unsafe { pm_resync(self.0, &mut report) } {
            PM_OK => Ok(report),
            status => Err(status),
        }
    }

    /// Checks the volume with room for `capacity` differences: the report and the
    /// differences copied.
    fn check(
        &self,
        repair: bool,
        capacity: usize,
    ) -> Result<(pm_check_report, Vec<Found>), pm_status> {
        let unfilled = pm_difference {
            region: [b'?' as c_char; PM_NAME_CAPACITY],
            offset: u64::MAX,
            length: u64::MAX,
        };
        // One more than the library is told of, to see it writes none past `capacity`.
        let mut differences = vec![unfilled; capacity + 1];
        let mut report = std::mem::MaybeUninit::uninit();
        let list = if capacity == 0 {
            ptr::null_mut()
        } else {
            differences.as_mut_ptr()
        };
        // SAFETY: an open volume, `capacity` writable differences (or NULL for 0) and a
        // writable report.
        match unsafe {
            pm_check_volume(
                self.0,
                c_int::from(repair),
                list,
                capacity,
                report.as_mut_ptr(),
            )
        } {
            PM_OK => {
                // SAFETY: PM_OK: the report was written.
                let report = unsafe { report.assume_init() };
                let copied = report.differences.min(capacity as u64) as usize;
                // Nothing written past the differences found, nor past `capacity`.
                for difference in &differences[copied..] {
                    assert_eq!(
                        (difference.offset, difference.length, difference.region[0]),
                        (u64::MAX, u64::MAX, b'?' as c_char)
                    );
                }
                let found = differences[..copied]
                    .iter()
                    .map(|difference| {
                        (
                            text_of(&difference.region),
                            difference.offset,
                            difference.length,
                        )
                    })
                    .collect();
                Ok((report, found))
            }
            status => Err(status),
        }
    }

    fn fail(&self, card: pm_mirror) -> pm_status {
        // SAFETY: an open volume.
        unsafe { pm_simulated_fail_card(self.0, card) }
    }

    fn regions(&self) -> usize {
        self.list(0).1
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        // SAFETY: the volume is open and used by no one else.
        unsafe { pm_close_volume(self.0) }
    }
}

/// An attribute cache, freed when dropped.
struct Attrs(*mut pm_attrs);

impl Attrs {
    fn u64(&self, name: &str) -> Result<u64, pm_status> {
        let mut value = 0;
        // SAFETY: a live cache, a valid string and output.
        match unsafe { pm_get_attr_u64(self.0, c(name).as_ptr(), &mut value) } {
            PM_OK => Ok(value),
            status => Err(status),
        }
    }

    fn u32(&self, name: &str) -> Result<u32, pm_status> {
        let mut value = 0;
        // SAFETY: a live cache, a valid string and output.
        match unsafe { pm_get_attr_u32(self.0, c(name).as_ptr(), &mut value) } {
            PM_OK => Ok(value),
            status => Err(status),
        }
    }

    /// The status and the buffer of `capacity` bytes (filled with 'x' beforehand).
    fn string(&self, name: &str, capacity: usize) -> (pm_status, Vec<u8>) {
        let mut buffer = vec![b'x'; capacity.max(1)];
        // SAFETY: a live cache, a valid string and `capacity` writable bytes.
        let status = unsafe {
            pm_get_attr_string(
                self.0,
                c(name).as_ptr(),
                buffer.as_mut_ptr().cast(),
                capacity,
            )
        };
        (status, buffer)
    }
}

impl Drop for Attrs {
    fn drop(&mut self) {
        // SAFETY: the cache is live and freed once.
        unsafe { pm_free_region_attrs(self.0) }
    }
}

const BASE: u64 = 0x7f00_0000_0000;

fn pattern(length: usize, seed: u8) -> Vec<u8> {
    (0..length)
        .map(|index| (index as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn every_verb_through_the_c_abi() {
    let directory = tempfile::tempdir().unwrap();
    let volume = Volume::format(directory.path(), "rust");
    let info = volume.info();
    assert_eq!(text_of(&info.name), "rust");
    assert_eq!(info.page_bytes, 4096);
    assert_eq!(info.regions, 0);
    assert!(info.max_region_bytes >= 4096 && info.free_pages == info.data_pages);

    expect(volume.create("log", 3 * 4096 + 100, BASE), PM_OK);
    let handle = volume.open_region("log").unwrap();
    assert_ne!(handle, PM_INVALID_HANDLE);
    let region = volume.region_info(handle).unwrap();
    assert_eq!(text_of(&region.name), "log");
    assert_eq!((region.base_pointer, region.size), (BASE, 3 * 4096 + 100));
    assert!(region.primary_mapped && region.mirror_mapped);
    assert!(region.context >= 2);

    let data = pattern(5000, 3);
    expect(volume.write(handle, &data, BASE + 4000, PM_BOTH), PM_OK);
    for half in [PM_ANY, PM_PRIMARY, PM_MIRROR] {
        let mut back = vec![0u8; 5000];
        expect(volume.read(handle, &mut back, BASE + 4000, half), PM_OK);
        assert_eq!(back, data);
    }
    // One half alone, for recovery: the other keeps what it had.
    expect(volume.write(handle, b"primary", BASE, PM_PRIMARY), PM_OK);
    expect(volume.write(handle, b"mirror!", BASE, PM_MIRROR), PM_OK);
    let mut back = [0u8; 7];
    expect(volume.read(handle, &mut back, BASE, PM_PRIMARY), PM_OK);
    assert_eq!(&back, b"primary");
    expect(volume.read(handle, &mut back, BASE, PM_MIRROR), PM_OK);
    assert_eq!(&back, b"mirror!");
    expect(volume.close_region(handle), PM_OK);

    // Listing: the array is filled until full, the count is the real one ([0095]).
    expect(volume.create("b", 100, 0), PM_OK);
    expect(volume.create("c", 100, 0), PM_OK);
    assert_eq!(volume.list(1), (vec!["log".to_owned()], 3));
    assert_eq!(
        volume.list(5),
        (vec!["log".to_owned(), "b".into(), "c".into()], 3)
    );
    assert_eq!(volume.list(0), (vec![], 3));

    // Attributes with each accessor.
    let attrs = volume.attributes("log").unwrap();
    assert_eq!(attrs.string("name", 64).1[..4], *b"log\0");
    assert_eq!(attrs.u64("size"), Ok(3 * 4096 + 100));
    assert_eq!(attrs.u64("base_pointer"), Ok(BASE));
    assert_eq!(attrs.u64("pages"), Ok(4));
    assert!(attrs.u64("creation_time").unwrap() > 0);
    assert!(attrs.u64("last_open_time").unwrap() >= attrs.u64("creation_time").unwrap());
    // SAFETY: getuid has no preconditions.
    assert_eq!(attrs.u32("owner"), Ok(unsafe { libc::getuid() }));
    assert_eq!(attrs.u32("open_handles"), Ok(0));
    assert!(attrs.u32("extents").unwrap() >= 1);
    drop(attrs);

    assert_eq!(volume.card(PM_PRIMARY).state, PM_CARD_IN_SYNC);
    assert_eq!(text_of(&volume.card(PM_MIRROR).name), "mirror");
    drop(volume);

    // Everything again from the cards.
    let volume = Volume::open(directory.path());
    assert_eq!(volume.info().regions, 3);
    let handle = volume.open_region("log").unwrap();
    let mut back = vec![0u8; 5000];
    expect(volume.read(handle, &mut back, BASE + 4000, PM_ANY), PM_OK);
    assert_eq!(back, data);
    // Closing the volume closes its handles: the region can be deleted after reopening.
    drop(volume);
    let volume = Volume::open(directory.path());
    for name in ["log", "b", "c"] {
        expect(volume.delete(name), PM_OK);
    }
    assert_eq!(volume.regions(), 0);
    assert_eq!(volume.info().free_pages, info.free_pages);
}

#[test]
fn wrong_region_arguments_are_refused_and_change_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let volume = Volume::format(&directory.path().join("a"), "a");
    let another = Volume::format(&directory.path().join("b"), "b");
    let before = volume.info();
    let long = "r".repeat(64);
    let longest = "r".repeat(63);

    expect(volume.create("", 4096, 0), PM_ERR_BAD_NAME);
    expect(volume.create(&long, 4096, 0), PM_ERR_BAD_NAME);
    expect(volume.create("r", 0, 0), PM_ERR_BAD_SIZE);
    expect(
        volume.create("r", before.max_region_bytes + 1, 0),
        PM_ERR_BAD_SIZE,
    );
    expect(volume.create("r", u64::MAX, 0), PM_ERR_BAD_SIZE);
    expect(volume.create("r", 2, u64::MAX), PM_ERR_BASE_WRAPS);
    let invalid = [0xc3u8, 0x28, 0];
    // SAFETY: an open volume and a NUL-terminated (non-UTF-8) string.
    let status = unsafe { pm_create_region(volume.0, invalid.as_ptr().cast(), 4096, 0) };
    expect(status, PM_ERR_INVALID_UTF8);
    assert!(last_error().starts_with("pm_create_region: the name is not UTF-8"));
    // SAFETY: NULL pointers are refused before use.
    unsafe {
        expect(
            pm_create_region(ptr::null_mut(), c("r").as_ptr(), 4096, 0),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_create_region(volume.0, ptr::null(), 4096, 0),
            PM_ERR_NULL_POINTER,
        );
    }
    let after = volume.info();
    assert_eq!(
        (after.regions, after.sequence, after.free_pages),
        (0, before.sequence, before.free_pages)
    );

    expect(volume.create(&longest, 1, u64::MAX), PM_OK);
    expect(volume.delete(&longest), PM_OK);
    expect(volume.create("r", 4096, BASE), PM_OK);
    expect(volume.create("r", 8192, 0), PM_ERR_REGION_EXISTS);
    assert_eq!(
        last_error(),
        "pm_create_region: region \"r\" already exists"
    );
    for name in ["nope", "", long.as_str()] {
        let expected = if name == "nope" {
            PM_ERR_NO_SUCH_REGION
        } else {
            PM_ERR_BAD_NAME
        };
        expect(volume.open_region(name).unwrap_err(), expected);
        expect(volume.delete(name), expected);
        expect(volume.attributes(name).err().unwrap(), expected);
    }
    let mut handle = 77;
    // SAFETY: NULL pointers are refused before use; the output stays as it was.
    unsafe {
        expect(
            pm_open_region(ptr::null_mut(), c("r").as_ptr(), &mut handle),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_open_region(volume.0, ptr::null(), &mut handle),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_open_region(volume.0, c("r").as_ptr(), ptr::null_mut()),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_open_region(volume.0, c("nope").as_ptr(), &mut handle),
            PM_ERR_NO_SUCH_REGION,
        );
        expect(
            pm_delete_region(ptr::null_mut(), c("r").as_ptr()),
            PM_ERR_NULL_POINTER,
        );
        expect(pm_delete_region(volume.0, ptr::null()), PM_ERR_NULL_POINTER);
    }
    assert_eq!(handle, 77);

    let handle = volume.open_region("r").unwrap();
    expect(volume.delete("r"), PM_ERR_REGION_OPEN);
    assert_eq!(volume.regions(), 1);
    let data = pattern(4096, 1);
    expect(volume.write(handle, &data, BASE, PM_BOTH), PM_OK);

    // Writes refused: nothing changes.
    let junk = vec![0xeeu8; 4097];
    expect(
        volume.write(handle, &junk[..8], BASE, PM_ANY),
        PM_ERR_BAD_MIRROR,
    );
    expect(volume.write(handle, &junk[..8], BASE, 0), PM_ERR_BAD_MIRROR);
    expect(
        volume.write(handle, &junk[..8], BASE, 99),
        PM_ERR_BAD_MIRROR,
    );
    expect(
        volume.write(handle, &junk[..2], BASE - 1, PM_BOTH),
        PM_ERR_OUTSIDE_REGION,
    );
    expect(
        volume.write(handle, &junk[..2], BASE + 4095, PM_BOTH),
        PM_ERR_OUTSIDE_REGION,
    );
    expect(
        volume.write(handle, &junk[..1], BASE + 4096, PM_BOTH),
        PM_ERR_OUTSIDE_REGION,
    );
    expect(
        volume.write(handle, &junk, BASE, PM_BOTH),
        PM_ERR_OUTSIDE_REGION,
    );
    expect(
        volume.write(handle, &junk[..8], u64::MAX - 3, PM_BOTH),
        PM_ERR_OUTSIDE_REGION,
    );
    expect(
        volume.write(PM_INVALID_HANDLE, &junk[..8], BASE, PM_BOTH),
        PM_ERR_BAD_HANDLE,
    );
    expect(
        volume.write(424_242, &junk[..8], BASE, PM_BOTH),
        PM_ERR_BAD_HANDLE,
    );
    // SAFETY: NULL pointers are refused before use, and so is a length past the region
    // before the buffer is looked at.
    unsafe {
        expect(
            pm_write_region(
                ptr::null_mut(),
                handle,
                junk.as_ptr().cast(),
                8,
                BASE,
                PM_BOTH,
            ),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_write_region(volume.0, handle, ptr::null(), 8, BASE, PM_BOTH),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_write_region(
                volume.0,
                handle,
                junk.as_ptr().cast(),
                usize::MAX,
                BASE,
                PM_BOTH,
            ),
            PM_ERR_OUTSIDE_REGION,
        );
    }
    for half in [PM_PRIMARY, PM_MIRROR] {
        let mut back = vec![0u8; 4096];
        expect(volume.read(handle, &mut back, BASE, half), PM_OK);
        assert_eq!(back, data);
    }

    // Reads refused: the buffer is untouched.
    let mut back = vec![0xaau8; 4097];
    expect(
        volume.read(handle, &mut back[..8], BASE, PM_BOTH),
        PM_ERR_BAD_MIRROR,
    );
    expect(
        volume.read(handle, &mut back[..8], BASE, 0),
        PM_ERR_BAD_MIRROR,
    );
    expect(
        volume.read(handle, &mut back[..2], BASE - 1, PM_ANY),
        PM_ERR_OUTSIDE_REGION,
    );
    expect(
        volume.read(handle, &mut back[..2], BASE + 4095, PM_ANY),
        PM_ERR_OUTSIDE_REGION,
    );
    expect(
        volume.read(handle, &mut back, BASE, PM_ANY),
        PM_ERR_OUTSIDE_REGION,
    );
    expect(
        volume.read(424_242, &mut back[..8], BASE, PM_ANY),
        PM_ERR_BAD_HANDLE,
    );
    // SAFETY: as for the writes.
    unsafe {
        expect(
            pm_read_region(
                ptr::null_mut(),
                handle,
                back.as_mut_ptr().cast(),
                8,
                BASE,
                PM_ANY,
            ),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_read_region(volume.0, handle, ptr::null_mut(), 8, BASE, PM_ANY),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_read_region(
                volume.0,
                handle,
                back.as_mut_ptr().cast(),
                usize::MAX,
                BASE,
                PM_ANY,
            ),
            PM_ERR_OUTSIDE_REGION,
        );
    }
    assert!(back.iter().all(|&byte| byte == 0xaa));
    expect(volume.read(handle, &mut [], BASE + 4096, PM_ANY), PM_OK);

    // Another volume's handle is no handle here, and survives the attempt.
    expect(another.create("r", 4096, BASE), PM_OK);
    let foreign = another.open_region("r").unwrap();
    assert_ne!(foreign, handle);
    expect(
        volume.write(foreign, &junk[..8], BASE, PM_BOTH),
        PM_ERR_BAD_HANDLE,
    );
    expect(
        volume.read(foreign, &mut back[..8], BASE, PM_ANY),
        PM_ERR_BAD_HANDLE,
    );
    expect(volume.region_info(foreign).unwrap_err(), PM_ERR_BAD_HANDLE);
    expect(volume.close_region(foreign), PM_ERR_BAD_HANDLE);
    assert!(last_error().contains("another volume's"));
    expect(another.write(foreign, &junk[..8], BASE, PM_BOTH), PM_OK);
    expect(another.close_region(foreign), PM_OK);

    // Region info and listing with NULLs.
    let mut count = 99;
    let mut list = [[0 as c_char; PM_NAME_CAPACITY]; 1];
    // SAFETY: NULL pointers are refused before use.
    unsafe {
        expect(
            pm_get_region_info(ptr::null_mut(), handle, &mut std::mem::zeroed()),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_get_region_info(volume.0, handle, ptr::null_mut()),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_list_regions(ptr::null_mut(), list.as_mut_ptr(), 1, &mut count),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_list_regions(volume.0, ptr::null_mut(), 1, &mut count),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_list_regions(volume.0, list.as_mut_ptr(), 1, ptr::null_mut()),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_get_volume_info(ptr::null_mut(), &mut std::mem::zeroed()),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_get_volume_info(volume.0, ptr::null_mut()),
            PM_ERR_NULL_POINTER,
        );
    }
    assert_eq!(count, 99);
    assert_eq!(list[0][0], 0);

    // A closed handle is no handle.
    // SAFETY: NULL is refused before use.
    expect(
        unsafe { pm_close_region(ptr::null_mut(), handle) },
        PM_ERR_NULL_POINTER,
    );
    expect(volume.close_region(handle), PM_OK);
    expect(volume.close_region(handle), PM_ERR_BAD_HANDLE);
    expect(
        volume.write(handle, &junk[..8], BASE, PM_BOTH),
        PM_ERR_BAD_HANDLE,
    );
    expect(
        volume.read(handle, &mut back[..8], BASE, PM_ANY),
        PM_ERR_BAD_HANDLE,
    );
    expect(volume.region_info(handle).unwrap_err(), PM_ERR_BAD_HANDLE);
    expect(volume.close_region(PM_INVALID_HANDLE), PM_ERR_BAD_HANDLE);
    expect(volume.delete("r"), PM_OK);
}

#[test]
fn attribute_accessors_check_types_and_buffers() {
    let directory = tempfile::tempdir().unwrap();
    let volume = Volume::format(directory.path(), "attributes");
    expect(volume.create("journal", 5000, 0x1000), PM_OK);
    let attrs = volume.attributes("journal").unwrap();

    expect(attrs.u32("size").unwrap_err(), PM_ERR_WRONG_TYPE);
    assert_eq!(
        last_error(),
        "pm_get_attr_u32: attribute \"size\" is a u64, not a u32"
    );
    expect(attrs.u64("owner").unwrap_err(), PM_ERR_WRONG_TYPE);
    expect(attrs.u64("name").unwrap_err(), PM_ERR_WRONG_TYPE);
    let (status, buffer) = attrs.string("size", 8);
    expect(status, PM_ERR_WRONG_TYPE);
    assert_eq!(buffer, b"xxxxxxxx");
    expect(attrs.u64("colour").unwrap_err(), PM_ERR_NO_SUCH_ATTRIBUTE);
    expect(attrs.u32("colour").unwrap_err(), PM_ERR_NO_SUCH_ATTRIBUTE);
    expect(attrs.string("colour", 8).0, PM_ERR_NO_SUCH_ATTRIBUTE);

    // Strings: NUL-terminated; too small gets the first bytes and an error ([0098]).
    assert_eq!(attrs.string("name", 8), (PM_OK, b"journal\0".to_vec()));
    assert_eq!(attrs.string("name", 10), (PM_OK, b"journal\0xx".to_vec()));
    assert_eq!(
        attrs.string("name", 7),
        (PM_ERR_BUFFER_TOO_SMALL, b"journa\0".to_vec())
    );
    assert_eq!(
        last_error(),
        "pm_get_attr_string: attribute \"name\" needs 8 bytes; the buffer holds 7"
    );
    assert_eq!(
        attrs.string("name", 1),
        (PM_ERR_BUFFER_TOO_SMALL, b"\0".to_vec())
    );
    assert_eq!(
        attrs.string("name", 0),
        (PM_ERR_BUFFER_TOO_SMALL, b"x".to_vec())
    );

    let mut value64 = 5u64;
    let mut value32 = 5u32;
    let mut text = [b'x' as c_char; 4];
    let invalid = [0xffu8, 0];
    // SAFETY: NULL pointers are refused before use.
    unsafe {
        expect(
            pm_get_attr_u64(ptr::null(), c("size").as_ptr(), &mut value64),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_get_attr_u64(attrs.0, ptr::null(), &mut value64),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_get_attr_u64(attrs.0, c("size").as_ptr(), ptr::null_mut()),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_get_attr_u64(attrs.0, invalid.as_ptr().cast(), &mut value64),
            PM_ERR_INVALID_UTF8,
        );
        expect(
            pm_get_attr_u32(ptr::null(), c("owner").as_ptr(), &mut value32),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_get_attr_u32(attrs.0, ptr::null(), &mut value32),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_get_attr_u32(attrs.0, c("owner").as_ptr(), ptr::null_mut()),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_get_attr_string(ptr::null(), c("name").as_ptr(), text.as_mut_ptr(), 4),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_get_attr_string(attrs.0, ptr::null(), text.as_mut_ptr(), 4),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_get_attr_string(attrs.0, c("name").as_ptr(), ptr::null_mut(), 4),
            PM_ERR_NULL_POINTER,
        );
        let mut out = ptr::null_mut();
        expect(
            pm_read_attributes(ptr::null_mut(), c("journal").as_ptr(), &mut out),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_read_attributes(volume.0, ptr::null(), &mut out),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_read_attributes(volume.0, c("journal").as_ptr(), ptr::null_mut()),
            PM_ERR_NULL_POINTER,
        );
        assert!(out.is_null());
        pm_free_region_attrs(ptr::null_mut());
    }
    assert_eq!((value64, value32, text[0]), (5, 5, b'x' as c_char));

    // A cache is a snapshot: an open shows only in a new read.
    let handle = volume.open_region("journal").unwrap();
    assert_eq!(attrs.u32("open_handles"), Ok(0));
    assert_eq!(
        volume.attributes("journal").unwrap().u32("open_handles"),
        Ok(1)
    );
    expect(volume.close_region(handle), PM_OK);
}

#[test]
fn openers_refuse_what_is_not_a_volume() {
    let directory = tempfile::tempdir().unwrap();
    let never = c(directory.path().join("never").to_str().unwrap());
    let mut volume = ptr::null_mut::<pm_volume>();
    let name = c("v");
    let long = c(&"v".repeat(64));
    // SAFETY: valid strings or NULLs; the outputs are writable or NULL.
    unsafe {
        expect(
            pm_format_simulated_volume(ptr::null(), name.as_ptr(), 0, &mut volume),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_format_simulated_volume(never.as_ptr(), ptr::null(), 0, &mut volume),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_format_simulated_volume(never.as_ptr(), name.as_ptr(), 0, ptr::null_mut()),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_format_simulated_volume(never.as_ptr(), c("").as_ptr(), 0, &mut volume),
            PM_ERR_BAD_VOLUME_NAME,
        );
        expect(
            pm_format_simulated_volume(never.as_ptr(), long.as_ptr(), 0, &mut volume),
            PM_ERR_BAD_VOLUME_NAME,
        );
        expect(
            pm_format_simulated_volume(never.as_ptr(), [0xffu8, 0].as_ptr().cast(), 0, &mut volume),
            PM_ERR_INVALID_UTF8,
        );
        expect(
            pm_open_simulated_volume(ptr::null(), 0, &mut volume),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_open_simulated_volume(never.as_ptr(), 0, ptr::null_mut()),
            PM_ERR_NULL_POINTER,
        );
        // Flags are checked before anything is opened.
        for flags in [
            8,
            PM_OPEN_DEGRADED | 1 << 31,
            PM_OPEN_KEEP_PRIMARY | PM_OPEN_KEEP_MIRROR,
            PM_OPEN_DEGRADED | PM_OPEN_KEEP_PRIMARY | PM_OPEN_KEEP_MIRROR,
        ] {
            expect(
                pm_open_simulated_volume(never.as_ptr(), flags, &mut volume),
                PM_ERR_BAD_FLAGS,
            );
        }
        assert!(
            last_error().starts_with("pm_open_simulated_volume: PM_OPEN_KEEP_PRIMARY and"),
            "{}",
            last_error()
        );
        // Nothing made: the directory would have been the first thing.
        assert!(!directory.path().join("never").exists());

        let fresh = c(directory.path().join("fresh").to_str().unwrap());
        expect(
            pm_open_simulated_volume(fresh.as_ptr(), 0, &mut volume),
            PM_ERR_NOT_FORMATTED,
        );
        std::fs::write(directory.path().join("file"), b"").unwrap();
        let under_file = c(directory.path().join("file/volume").to_str().unwrap());
        expect(
            pm_format_simulated_volume(under_file.as_ptr(), name.as_ptr(), 0, &mut volume),
            PM_ERR_CARDS,
        );
        expect(
            pm_open_simulated_volume(under_file.as_ptr(), 0, &mut volume),
            PM_ERR_CARDS,
        );

        let (primary, mirror) = (c("0000:ff:1f.6"), c("0000:ff:1f.7"));
        expect(
            pm_open_vfio_volume(primary.as_ptr(), mirror.as_ptr(), 0, &mut volume),
            PM_ERR_CARDS,
        );
        assert!(
            last_error().starts_with("pm_open_vfio_volume: "),
            "{}",
            last_error()
        );
        expect(
            pm_format_vfio_volume(
                primary.as_ptr(),
                mirror.as_ptr(),
                name.as_ptr(),
                0,
                &mut volume,
            ),
            PM_ERR_CARDS,
        );
        expect(
            pm_format_vfio_volume(
                primary.as_ptr(),
                mirror.as_ptr(),
                c("").as_ptr(),
                0,
                &mut volume,
            ),
            PM_ERR_BAD_VOLUME_NAME,
        );
        expect(
            pm_open_vfio_volume(
                primary.as_ptr(),
                mirror.as_ptr(),
                PM_OPEN_KEEP_MIRROR | PM_OPEN_KEEP_PRIMARY,
                &mut volume,
            ),
            PM_ERR_BAD_FLAGS,
        );
        expect(
            pm_open_vfio_volume(primary.as_ptr(), mirror.as_ptr(), 64, &mut volume),
            PM_ERR_BAD_FLAGS,
        );
        assert!(
            last_error().starts_with("pm_open_vfio_volume: unknown open flags 0x40"),
            "{}",
            last_error()
        );
        expect(
            pm_open_vfio_volume(ptr::null(), mirror.as_ptr(), 0, &mut volume),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_open_vfio_volume(primary.as_ptr(), ptr::null(), 0, &mut volume),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_open_vfio_volume(primary.as_ptr(), mirror.as_ptr(), 0, ptr::null_mut()),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_format_vfio_volume(ptr::null(), mirror.as_ptr(), name.as_ptr(), 0, &mut volume),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_format_vfio_volume(primary.as_ptr(), ptr::null(), name.as_ptr(), 0, &mut volume),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_format_vfio_volume(
                primary.as_ptr(),
                mirror.as_ptr(),
                ptr::null(),
                0,
                &mut volume,
            ),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_format_vfio_volume(
                primary.as_ptr(),
                mirror.as_ptr(),
                name.as_ptr(),
                0,
                ptr::null_mut(),
            ),
            PM_ERR_NULL_POINTER,
        );
        assert!(volume.is_null());
        pm_close_volume(ptr::null_mut());
    }

    // Formatted once, unless overwritten.
    let other = directory.path().join("other");
    let first = Volume::format(&other, "first");
    expect(first.create("kept", 100, 0), PM_OK);
    drop(first);
    let other_c = c(other.to_str().unwrap());
    // SAFETY: valid strings and output.
    expect(
        unsafe {
            pm_format_simulated_volume(other_c.as_ptr(), c("second").as_ptr(), 0, &mut volume)
        },
        PM_ERR_ALREADY_FORMATTED,
    );
    assert!(volume.is_null());
    assert_eq!(Volume::open(&other).info().regions, 1);
    // SAFETY: valid strings and output.
    expect(
        unsafe {
            pm_format_simulated_volume(other_c.as_ptr(), c("second").as_ptr(), 1, &mut volume)
        },
        PM_OK,
    );
    let second = Volume(volume);
    assert_eq!(text_of(&second.info().name), "second");
    assert_eq!(second.info().regions, 0);
    drop(second);

    // Swapped cards.
    let (primary, mirror, aside) = (
        other.join("primary.pm"),
        other.join("mirror.pm"),
        other.join("aside.pm"),
    );
    std::fs::rename(&primary, &aside).unwrap();
    std::fs::rename(&mirror, &primary).unwrap();
    std::fs::rename(&aside, &mirror).unwrap();
    let mut volume = ptr::null_mut();
    // SAFETY: valid string and output.
    expect(
        unsafe { pm_open_simulated_volume(other_c.as_ptr(), 0, &mut volume) },
        PM_ERR_UNSUITABLE_CARDS,
    );
    assert!(volume.is_null());

    // A volume open already: its cards' files are taken.
    let open = directory.path().join("open");
    let first = Volume::format(&open, "open");
    let open_c = c(open.to_str().unwrap());
    // SAFETY: valid string and output.
    expect(
        unsafe { pm_open_simulated_volume(open_c.as_ptr(), 0, &mut volume) },
        PM_ERR_CARDS,
    );
    assert!(volume.is_null());
    drop(first);

    // Both metadata copies (64 KiB apart from the bottom of memory) damaged on both cards.
    for card in ["primary.pm", "mirror.pm"] {
        use std::io::{Read, Seek, SeekFrom, Write};
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(open.join(card))
            .unwrap();
        for slot in [0u64, 64 << 10] {
            let mut byte = [0u8];
            file.seek(SeekFrom::Start(slot + 70)).unwrap();
            file.read_exact(&mut byte).unwrap();
            file.seek(SeekFrom::Start(slot + 70)).unwrap();
            file.write_all(&[!byte[0]]).unwrap();
        }
    }
    // SAFETY: valid string and output.
    expect(
        unsafe { pm_open_simulated_volume(open_c.as_ptr(), 0, &mut volume) },
        PM_ERR_METADATA_DAMAGED,
    );
    assert!(volume.is_null());
}

#[test]
fn a_failed_card_degrades_writes_until_resynced() {
    let directory = tempfile::tempdir().unwrap();
    let volume = Volume::format(directory.path(), "failover");
    expect(volume.create("d", 8192, 0), PM_OK);
    let handle = volume.open_region("d").unwrap();
    expect(volume.write(handle, &[1; 256], 0, PM_BOTH), PM_OK);
    expect(volume.resync().unwrap_err(), PM_ERR_NOTHING_TO_RESYNC);
    expect(volume.fail(PM_BOTH), PM_ERR_BAD_MIRROR);
    // SAFETY: NULL pointers are refused before use.
    unsafe {
        expect(
            pm_simulated_fail_card(ptr::null_mut(), PM_MIRROR),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_resync(ptr::null_mut(), &mut std::mem::zeroed()),
            PM_ERR_NULL_POINTER,
        );
        expect(pm_resync(volume.0, ptr::null_mut()), PM_ERR_NULL_POINTER);
        expect(
            pm_get_card_status(ptr::null_mut(), PM_PRIMARY, &mut std::mem::zeroed()),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_get_card_status(volume.0, PM_PRIMARY, ptr::null_mut()),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_get_card_status(volume.0, PM_ANY, &mut std::mem::zeroed()),
            PM_ERR_BAD_MIRROR,
        );
    }

    expect(volume.fail(PM_MIRROR), PM_OK);
    expect(
        volume.write(handle, &[2; 256], 256, PM_BOTH),
        PM_ERR_DEGRADED,
    );
    let mirror = volume.card(PM_MIRROR);
    assert_eq!(mirror.state, PM_CARD_STALE);
    assert!(mirror.failed);
    assert!(!text_of(&mirror.failure).is_empty());
    expect(
        volume.write(handle, &[3; 256], 0, PM_MIRROR),
        PM_ERR_CARD_UNAVAILABLE,
    );
    let mut back = [0u8; 256];
    expect(
        volume.read(handle, &mut back, 256, PM_MIRROR),
        PM_ERR_CARD_UNAVAILABLE,
    );
    expect(volume.read(handle, &mut back, 256, PM_ANY), PM_OK);
    assert_eq!(back, [2; 256]);
    // The dead card cannot be taken over again to be rebuilt.
    expect(volume.resync().unwrap_err(), PM_ERR_CARD);
    drop(volume);

    let volume = Volume::open(directory.path());
    let mirror = volume.card(PM_MIRROR);
    assert_eq!((mirror.state, mirror.failed), (PM_CARD_STALE, false));
    let handle = volume.open_region("d").unwrap();
    expect(
        volume.read(handle, &mut back, 256, PM_MIRROR),
        PM_ERR_CARD_STALE,
    );
    let report = volume.resync().unwrap();
    assert_eq!(
        (report.card, report.pages, report.bytes, report.full),
        (PM_MIRROR, 2, 8192, false)
    );
    expect(volume.resync().unwrap_err(), PM_ERR_NOTHING_TO_RESYNC);
    expect(volume.read(handle, &mut back, 256, PM_MIRROR), PM_OK);
    assert_eq!(back, [2; 256]);
    assert_eq!(volume.card(PM_MIRROR).state, PM_CARD_IN_SYNC);

    expect(volume.fail(PM_PRIMARY), PM_OK);
    expect(volume.fail(PM_MIRROR), PM_OK);
    expect(
        volume.read(handle, &mut back, 0, PM_ANY),
        PM_ERR_BOTH_CARDS_FAILED,
    );
    // And the next read, with no card left to try.
    expect(
        volume.read(handle, &mut back, 0, PM_ANY),
        PM_ERR_BOTH_CARDS_FAILED,
    );
    expect(
        volume.write(handle, &back, 0, PM_BOTH),
        PM_ERR_BOTH_CARDS_FAILED,
    );
}

/// Opens one region again and again until the volume refuses; then one close makes room
/// for one open. 17 pages a mapping: the entries run out before the contexts do.
#[rstest::rstest]
#[case::every_translation_entry_taken(17 * 4096, PM_ERR_NO_FREE_ENTRIES)]
#[case::every_context_taken(4096, PM_ERR_NO_FREE_CONTEXT)]
fn opening_until_refused(#[case] size: u64, #[case] refusal: pm_status) {
    let directory = tempfile::tempdir().unwrap();
    let volume = Volume::format(directory.path(), "opens");
    expect(volume.create("r", size, 0), PM_OK);
    let mut handles = Vec::new();
    let status = loop {
        match volume.open_region("r") {
            Ok(handle) => handles.push(handle),
            Err(status) => break status,
        }
        assert!(handles.len() < 1024);
    };
    expect(status, refusal);
    assert!(handles.len() > 1);
    expect(volume.close_region(handles.pop().unwrap()), PM_OK);
    handles.push(volume.open_region("r").unwrap());
    // The volume closes the rest.
}

#[test]
fn statuses_have_names_and_messages_name_the_verb() {
    assert_eq!(strerror(PM_OK), "PM_OK: success");
    assert!(strerror(PM_ERR_BAD_HANDLE).starts_with("PM_ERR_BAD_HANDLE: "));
    assert_eq!(strerror(12345), "unknown pm_status");
    let directory = tempfile::tempdir().unwrap();
    let volume = Volume::format(directory.path(), "messages");
    expect(volume.create("", 1, 0), PM_ERR_BAD_NAME);
    let message = last_error();
    assert!(
        message.starts_with("pm_create_region: a region name must be"),
        "{message}"
    );
    // Success leaves the message; it is per thread.
    expect(volume.create("a", 1, 0), PM_OK);
    assert_eq!(last_error(), message);
    std::thread::spawn(|| assert_eq!(last_error(), ""))
        .join()
        .unwrap();
}

#[test]
fn a_volume_serves_several_threads_at_once() {
    let directory = tempfile::tempdir().unwrap();
    let volume = Volume::format(directory.path(), "threads");
    struct Shared(*mut pm_volume);
    // SAFETY: the C API lets several threads use one volume at once.
    unsafe impl Sync for Shared {}
    let shared = Shared(volume.0);
    std::thread::scope(|scope| {
        for thread in 0..4u8 {
            let shared = &shared;
            scope.spawn(move || {
                let name = c(&format!("t{thread}"));
                let mut handle = 0;
                let data = pattern(1000, thread);
                let mut back = vec![0u8; 1000];
                // SAFETY: a volume open for the whole scope; valid strings and buffers.
                unsafe {
                    expect(pm_create_region(shared.0, name.as_ptr(), 1000, 0), PM_OK);
                    expect(pm_open_region(shared.0, name.as_ptr(), &mut handle), PM_OK);
                    expect(
                        pm_write_region(shared.0, handle, data.as_ptr().cast(), 1000, 0, PM_BOTH),
                        PM_OK,
                    );
                    expect(
                        pm_read_region(shared.0, handle, back.as_mut_ptr().cast(), 1000, 0, PM_ANY),
                        PM_OK,
                    );
                    expect(pm_close_region(shared.0, handle), PM_OK);
                }
                assert_eq!(back, data);
            });
        }
    });
    assert_eq!(volume.regions(), 4);
}

// ---------------------------------------------------------------------------------------
// Missing cards, forked histories, checking the copies.

/// 48 pages: more than two write-intent chunks (16 pages each), so writes 40 pages apart
/// dirty different chunks.
const SPLIT_REGION: u64 = 48 * 4096;
/// A region offset in another chunk than offset 0.
const FAR: u64 = 40 * 4096;

/// Reads `length` bytes at region offset `offset` of region "d" from `from`.
fn read_d(
    volume: &Volume,
    offset: u64,
    length: usize,
    from: pm_mirror,
) -> Result<Vec<u8>, pm_status> {
    let handle = volume.open_region("d").unwrap();
    let mut back = vec![0u8; length];
    let status = volume.read(handle, &mut back, BASE + offset, from);
    expect(volume.close_region(handle), PM_OK);
    match status {
        PM_OK => Ok(back),
        status => Err(status),
    }
}

/// Formats a volume with region "d", writes "AAAA" to both cards, then the primary dies and
/// "BBBB" goes to the mirror alone; closes it. The mirror's epoch, past the primary's.
fn primary_dies_after_a_write(directory: &Path) -> u64 {
    let volume = Volume::format(directory, "split");
    expect(volume.create("d", SPLIT_REGION, BASE), PM_OK);
    // Zeroing a new region with both cards in sync records nothing: the pages belong to no
    // region until the metadata is committed.
    assert_eq!(volume.info().dirty_chunks, 0);
    drop(volume);
    let volume = Volume::open(directory);
    assert_eq!(volume.info().dirty_chunks, 0);
    let handle = volume.open_region("d").unwrap();
    expect(volume.write(handle, b"AAAA", BASE, PM_BOTH), PM_OK);
    let epoch = volume.info().epoch;
    expect(volume.fail(PM_PRIMARY), PM_OK);
    expect(
        volume.write(handle, b"BBBB", BASE, PM_BOTH),
        PM_ERR_DEGRADED,
    );
    let info = volume.info();
    assert!(info.epoch > epoch, "{} after {epoch}", info.epoch);
    assert!(info.dirty_chunks >= 1, "{}", info.dirty_chunks);
    assert_eq!(volume.card(PM_PRIMARY).state, PM_CARD_STALE);
    info.epoch
}

#[test]
fn a_lost_mirror_is_refused_unless_opened_degraded() {
    let directory = tempfile::tempdir().unwrap();
    primary_dies_after_a_write(directory.path());
    // The mirror, the one card holding "BBBB", lost for good: a blank card in its place.
    std::fs::remove_file(directory.path().join("mirror.pm")).unwrap();

    expect(
        Volume::open_with(directory.path(), 0).err().unwrap(),
        PM_ERR_MEMBER_MISSING,
    );
    let message = last_error();
    assert!(
        message.starts_with(
            "pm_open_simulated_volume: the volume's mirror card is missing (it is blank"
        ),
        "{message}"
    );
    assert!(message.contains("PM_OPEN_DEGRADED"), "{message}");
    // A refusal changes nothing: refused again, and no fork to choose from.
    expect(
        Volume::open_with(directory.path(), 0).err().unwrap(),
        PM_ERR_MEMBER_MISSING,
    );
    expect(
        Volume::open_with(directory.path(), PM_OPEN_KEEP_PRIMARY)
            .err()
            .unwrap(),
        PM_ERR_NOT_FORKED,
    );

    // Degraded: the primary alone, with what it had when it died.
    let volume = Volume::open_with(directory.path(), PM_OPEN_DEGRADED).unwrap();
    let mirror = volume.card(PM_MIRROR);
    assert_eq!((mirror.state, mirror.failed), (PM_CARD_STALE, false));
    assert_eq!(volume.card(PM_PRIMARY).state, PM_CARD_IN_SYNC);
    assert_eq!(read_d(&volume, 0, 4, PM_ANY), Ok(b"AAAA".to_vec()));
    assert_eq!(read_d(&volume, 0, 4, PM_PRIMARY), Ok(b"AAAA".to_vec()));
    expect(
        read_d(&volume, 0, 4, PM_MIRROR).unwrap_err(),
        PM_ERR_CARD_STALE,
    );
    expect(volume.check(false, 0).unwrap_err(), PM_ERR_CARD_STALE);
    // The blank card is rebuilt in full.
    let report = volume.resync().unwrap();
    assert_eq!(
        (report.card, report.pages, report.bytes, report.full),
        (PM_MIRROR, 48, SPLIT_REGION, true)
    );
    let (report, found) = volume.check(false, 4).unwrap();
    assert_eq!(
        (report.differences, report.metadata_differences, found.len()),
        (0, 0, 0)
    );
    assert_eq!(report.bytes_compared, SPLIT_REGION);
    drop(volume);

    let volume = Volume::open(directory.path());
    assert_eq!(read_d(&volume, 0, 4, PM_MIRROR), Ok(b"AAAA".to_vec()));
}

#[test]
fn forked_histories_are_refused_until_one_card_is_kept() {
    let directory = tempfile::tempdir().unwrap();
    let mirror_epoch = primary_dies_after_a_write(directory.path());

    // Then the mirror is away, and the primary goes on alone in a degraded open.
    let (mirror, aside) = (
        directory.path().join("mirror.pm"),
        directory.path().join("mirror.aside"),
    );
    std::fs::rename(&mirror, &aside).unwrap();
    expect(
        Volume::open_with(directory.path(), 0).err().unwrap(),
        PM_ERR_MEMBER_MISSING,
    );
    let volume = Volume::open_with(directory.path(), PM_OPEN_DEGRADED).unwrap();
    assert_eq!(read_d(&volume, 0, 4, PM_ANY), Ok(b"AAAA".to_vec()));
    let handle = volume.open_region("d").unwrap();
    expect(volume.write(handle, b"CCCC", BASE, PM_BOTH), PM_OK);
    // In a chunk only the primary writes.
    expect(volume.write(handle, b"PPPP", BASE + FAR, PM_BOTH), PM_OK);
    let primary_epoch = volume.info().epoch;
    drop(volume);
    std::fs::rename(&aside, &mirror).unwrap();

    for flags in [0, PM_OPEN_DEGRADED] {
        expect(
            Volume::open_with(directory.path(), flags).err().unwrap(),
            PM_ERR_FORKED,
        );
        let message = last_error();
        assert!(
            message.starts_with("pm_open_simulated_volume: the cards' histories forked"),
            "{message}"
        );
        assert!(
            message.contains(&format!(
                "the primary at epoch {primary_epoch}, the mirror at epoch {mirror_epoch}"
            )),
            "{message}"
        );
        assert!(message.contains("PM_OPEN_KEEP_MIRROR"), "{message}");
    }
    expect(
        Volume::open_with(directory.path(), PM_OPEN_KEEP_PRIMARY | PM_OPEN_KEEP_MIRROR)
            .err()
            .unwrap(),
        PM_ERR_BAD_FLAGS,
    );

    // Keeping the mirror's copy: the primary's writes since the fork are discarded.
    let volume = Volume::open_with(directory.path(), PM_OPEN_KEEP_MIRROR).unwrap();
    assert_eq!(volume.card(PM_PRIMARY).state, PM_CARD_STALE);
    assert_eq!(volume.card(PM_MIRROR).state, PM_CARD_IN_SYNC);
    let info = volume.info();
    assert!(
        info.epoch > primary_epoch.max(mirror_epoch),
        "{}",
        info.epoch
    );
    // The chunks both cards wrote since they parted.
    assert_eq!(info.dirty_chunks, 2);
    assert_eq!(read_d(&volume, 0, 4, PM_ANY), Ok(b"BBBB".to_vec()));
    assert_eq!(read_d(&volume, FAR, 4, PM_ANY), Ok(vec![0; 4]));
    expect(
        read_d(&volume, 0, 4, PM_PRIMARY).unwrap_err(),
        PM_ERR_CARD_STALE,
    );
    expect(volume.check(false, 0).unwrap_err(), PM_ERR_CARD_STALE);

    // The resync copies the chunks either card wrote, not every region page.
    let report = volume.resync().unwrap();
    assert_eq!((report.card, report.full), (PM_PRIMARY, false));
    assert!(report.pages > 0 && report.pages < 48, "{}", report.pages);
    let (report, found) = volume.check(false, 4).unwrap();
    assert_eq!(found, vec![]);
    assert_eq!(
        (
            report.differences,
            report.bytes_differing,
            report.metadata_differences
        ),
        (0, 0, 0)
    );
    assert_eq!(read_d(&volume, 0, 4, PM_PRIMARY), Ok(b"BBBB".to_vec()));
    assert_eq!(read_d(&volume, FAR, 4, PM_PRIMARY), Ok(vec![0; 4]));
    drop(volume);

    // No fork any more.
    for keep in [PM_OPEN_KEEP_PRIMARY, PM_OPEN_KEEP_MIRROR] {
        expect(
            Volume::open_with(directory.path(), keep).err().unwrap(),
            PM_ERR_NOT_FORKED,
        );
    }
    let volume = Volume::open(directory.path());
    assert_eq!(read_d(&volume, 0, 4, PM_PRIMARY), Ok(b"BBBB".to_vec()));
    assert_eq!(volume.info().dirty_chunks, 0);
}

#[test]
fn check_finds_the_bytes_the_cards_differ_in_and_repairs_them() {
    let directory = tempfile::tempdir().unwrap();
    let volume = Volume::format(directory.path(), "check");
    let log_size = 3 * 4096 + 100;
    expect(volume.create("log", log_size, BASE), PM_OK);
    expect(volume.create("small", 100, 0), PM_OK);
    let data = pattern(log_size as usize, 9);
    let log = volume.open_region("log").unwrap();
    expect(volume.write(log, &data, BASE, PM_BOTH), PM_OK);
    let small = volume.open_region("small").unwrap();
    let marker = b"npmu check marker";
    expect(volume.write(small, marker, 10, PM_BOTH), PM_OK);
    let (report, found) = volume.check(false, 4).unwrap();
    assert_eq!(found, vec![]);
    assert_eq!(
        (
            report.differences,
            report.bytes_differing,
            report.metadata_differences,
            report.regions,
            report.bytes_compared,
            report.repaired,
        ),
        (0, 0, 0, 2, log_size + 100, false)
    );
    let mut untouched = pm_check_report {
        differences: 7,
        bytes_differing: 7,
        metadata_differences: 7,
        regions: 7,
        bytes_compared: 7,
        repaired: true,
    };
    // SAFETY: NULL pointers are refused before use; the report stays as it was.
    unsafe {
        expect(
            pm_check_volume(ptr::null_mut(), 0, ptr::null_mut(), 0, &mut untouched),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_check_volume(volume.0, 0, ptr::null_mut(), 1, &mut untouched),
            PM_ERR_NULL_POINTER,
        );
        expect(
            pm_check_volume(volume.0, 1, ptr::null_mut(), 0, ptr::null_mut()),
            PM_ERR_NULL_POINTER,
        );
    }
    assert_eq!((untouched.differences, untouched.repaired), (7, true));
    drop(volume);

    // The mirror's memory changed under it, as a card's memory failing: one byte of "small".
    let mirror = directory.path().join("mirror.pm");
    let memory = std::fs::read(&mirror).unwrap();
    let at: Vec<usize> = memory
        .windows(marker.len())
        .enumerate()
        .filter(|(_, window)| window == marker)
        .map(|(at, _)| at)
        .collect();
    assert_eq!(at.len(), 1, "the marker is once on the mirror");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&mirror)
            .unwrap();
        file.seek(SeekFrom::Start(at[0] as u64 + 3)).unwrap();
        file.write_all(&[!marker[3]]).unwrap();
    }
    let volume = Volume::open(directory.path());
    // And a recovery write to the mirror alone, across the first page boundary of "log".
    let log = volume.open_region("log").unwrap();
    let inverted: Vec<u8> = data[4000..4200].iter().map(|byte| !byte).collect();
    expect(volume.write(log, &inverted, BASE + 4000, PM_MIRROR), PM_OK);

    let expected = vec![("log".to_owned(), 4000, 200), ("small".to_owned(), 13, 1)];
    // The first differences fill the array; the report counts them all.
    let (report, found) = volume.check(false, 1).unwrap();
    assert_eq!(found, expected[..1]);
    assert_eq!(
        (
            report.differences,
            report.bytes_differing,
            report.metadata_differences,
            report.repaired
        ),
        (2, 201, 0, false)
    );
    let (report, found) = volume.check(false, 8).unwrap();
    assert_eq!((report.differences, found), (2, expected.clone()));
    // Without repair nothing changed.
    let mut back = vec![0u8; 200];
    expect(volume.read(log, &mut back, BASE + 4000, PM_MIRROR), PM_OK);
    assert_eq!(back, inverted);

    // Repaired: what differed is told, and the mirror holds the primary's bytes.
    let (report, found) = volume.check(true, 8).unwrap();
    assert_eq!(
        (report.differences, found, report.repaired),
        (2, expected, true)
    );
    expect(volume.read(log, &mut back, BASE + 4000, PM_MIRROR), PM_OK);
    assert_eq!(back, data[4000..4200]);
    for repair in [false, true] {
        let (report, found) = volume.check(repair, 8).unwrap();
        assert_eq!(
            (report.differences, found, report.repaired),
            (0, vec![], false)
        );
    }
    drop(volume);
    let volume = Volume::open(directory.path());
    assert_eq!(volume.check(false, 0).unwrap().0.differences, 0);
}

#[test]
fn a_lost_intent_record_makes_every_chunk_dirty() {
    let directory = tempfile::tempdir().unwrap();
    let volume = Volume::format(directory.path(), "intent");
    expect(volume.create("d", 8192, 0), PM_OK);
    let handle = volume.open_region("d").unwrap();
    expect(volume.write(handle, &[1; 100], 0, PM_BOTH), PM_OK);
    assert_eq!(volume.info().dirty_chunks, 1);
    expect(volume.fail(PM_MIRROR), PM_OK);
    expect(volume.write(handle, &[2; 100], 0, PM_BOTH), PM_ERR_DEGRADED);
    drop(volume);

    // Both intent slots of the primary (after its two 64 KiB metadata copies) wiped.
    {
        use std::io::{Read, Seek, SeekFrom, Write};
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(directory.path().join("primary.pm"))
            .unwrap();
        let area = 2 * (64 << 10);
        let bytes = 2 * npmu::metadata::INTENT_SLOT_PAGES as usize * 4096;
        let mut magic = [0u8; 8];
        file.seek(SeekFrom::Start(area)).unwrap();
        file.read_exact(&mut magic).unwrap();
        assert_eq!(magic, npmu::intent::MAGIC, "an intent record is there");
        file.seek(SeekFrom::Start(area)).unwrap();
        file.write_all(&vec![0; bytes]).unwrap();
    }

    let volume = Volume::open(directory.path());
    assert_eq!(volume.card(PM_MIRROR).state, PM_CARD_STALE);
    assert_eq!(volume.info().dirty_chunks, -1);
    let report = volume.resync().unwrap();
    assert_eq!(
        (report.card, report.pages, report.full),
        (PM_MIRROR, 2, true)
    );
    assert_eq!(volume.info().dirty_chunks, 0);
    assert_eq!(volume.check(false, 0).unwrap().0.differences, 0);
}
