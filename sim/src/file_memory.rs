//! Persistent memory kept in a file: the simulated card's contents survive the process,
//! as a real card's do. The file is mapped shared, so every acknowledged write is in the
//! page cache the moment it lands: killing the process loses nothing; surviving a power
//! loss of the host as well needs [`FileMemory::sync`].

use memmap2::MmapMut;
use npmu_model::Memory;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum FileMemoryError {
    #[error("cannot open persistent memory file {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("persistent memory file {path} is in use by another simulated card")]
    InUse { path: PathBuf },
    #[error(
        "persistent memory file {path} holds {found} bytes, but this card's memory is {expected}: it belongs to a card of another configuration"
    )]
    WrongSize {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error("cannot map persistent memory file {path}: {source}")]
    Map {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub struct FileMemory {
    map: MmapMut,
    /// Held open for its lock: one card per file.
    _file: File,
}

impl FileMemory {
    /// Opens `path` as `bytes` of persistent memory, creating it zeroed (sparse) if it is
    /// missing or empty. An existing file of another size is refused, not resized: it holds
    /// another card's data.
    pub fn open(path: &Path, bytes: u64) -> Result<Self, FileMemoryError> {
        let failed = |source| FileMemoryError::Open {
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(failed)?;
        // Safety: flock on an open descriptor has no memory effects.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(FileMemoryError::InUse {
                path: path.to_owned(),
            });
        }
        let found = file.metadata().map_err(failed)?.len();
        if found == 0 {
            file.set_len(bytes).map_err(failed)?;
        } else if found != bytes {
            return Err(FileMemoryError::WrongSize {
                path: path.to_owned(),
                found,
                expected: bytes,
            });
        }
        // Safety: the file is locked against other cards; another program changing it
        // under the card is what a real card's memory failing would look like.
        let map = unsafe { MmapMut::map_mut(&file) }.map_err(|source| FileMemoryError::Map {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self { map, _file: file })
    }

    pub fn bytes(&self) -> u64 {
        self.map.len() as u64
    }

    /// Writes every change through to the disk.
    pub fn sync(&self) -> std::io::Result<()> {
        self.map.flush()
    }

    /// The part of `[address, address + length)` inside the memory, as a range of `map`.
    fn span(&self, address: u64, length: usize) -> Option<std::ops::Range<usize>> {
        let size = self.map.len() as u64;
        (length as u64 <= size && address <= size - length as u64)
            .then(|| address as usize..address as usize + length)
    }
}

impl Memory for FileMemory {
    /// Reads beyond the memory read as zero, as on a bus with nothing behind it.
    fn read(&self, address: u64, buffer: &mut [u8]) {
        match self.span(address, buffer.len()) {
            Some(span) => buffer.copy_from_slice(&self.map[span]),
            None => {
                tracing::error!(address, "persistent memory read beyond the memory");
                buffer.fill(0);
            }
        }
    }

    fn write(&mut self, address: u64, data: &[u8]) {
        match self.span(address, data.len()) {
            Some(span) => self.map[span].copy_from_slice(data),
            None => tracing::error!(address, "persistent memory write beyond the memory dropped"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_survive_reopening() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("card.pm");
        let mut memory = FileMemory::open(&path, 1 << 20).unwrap();
        memory.write(0xf_fff0, &[7; 16]);
        memory.write(4096, b"kept");
        drop(memory);
        let memory = FileMemory::open(&path, 1 << 20).unwrap();
        let mut bytes = [0; 4];
        memory.read(4096, &mut bytes);
        assert_eq!(&bytes, b"kept");
        memory.read(0xf_fffc, &mut bytes);
        assert_eq!(bytes, [7; 4]);
    }

    #[test]
    fn another_size_or_a_second_user_is_refused() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("card.pm");
        let memory = FileMemory::open(&path, 1 << 16).unwrap();
        assert!(matches!(
            FileMemory::open(&path, 1 << 16),
            Err(FileMemoryError::InUse { .. })
        ));
        drop(memory);
        assert!(matches!(
            FileMemory::open(&path, 1 << 17),
            Err(FileMemoryError::WrongSize {
                found: 65536,
                expected: 131072,
                ..
            })
        ));
        assert_eq!(FileMemory::open(&path, 1 << 16).unwrap().bytes(), 1 << 16);
    }

    #[test]
    fn accesses_beyond_the_memory_change_nothing() {
        let directory = tempfile::tempdir().unwrap();
        let mut memory = FileMemory::open(&directory.path().join("card.pm"), 4096).unwrap();
        memory.write(4090, &[1; 8]);
        memory.write(u64::MAX, &[1]);
        let mut all = vec![9; 4096];
        memory.read(0, &mut all);
        assert!(all.iter().all(|byte| *byte == 0));
        let mut beyond = [9; 8];
        memory.read(4090, &mut beyond);
        assert_eq!(beyond, [0; 8]);
    }
}
