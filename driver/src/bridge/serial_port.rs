//! A serial port (a USB UART such as the iCEBreaker's FTDI) in raw mode, 8N1, with a read
//! timeout, for [`super::BridgedCard`].

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SerialPortError {
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{path} is not a serial port: {source}")]
    NotATerminal { path: PathBuf, source: io::Error },
    #[error("{baud} baud is not a rate Linux can set (try 3000000, 1000000 or 115200)")]
    UnsupportedBaud { baud: u32 },
    #[error("a read timeout of {0:?} is outside 0.1 to 25.5 s")]
    UnsupportedTimeout(Duration),
}

pub struct SerialPort {
    file: File,
}

impl SerialPort {
    /// Opens `path` at `baud`, raw, 8 data bits, no parity, one stop bit, no flow control;
    /// a read with nothing arriving for `timeout` fails with `TimedOut`.
    pub fn open(path: &Path, baud: u32, timeout: Duration) -> Result<Self, SerialPortError> {
        let speed = speed(baud).ok_or(SerialPortError::UnsupportedBaud { baud })?;
        let tenths = u8::try_from(timeout.as_millis() / 100)
            .ok()
            .filter(|tenths| *tenths > 0)
            .ok_or(SerialPortError::UnsupportedTimeout(timeout))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(path)
            .map_err(|source| SerialPortError::Open {
                path: path.to_owned(),
                source,
            })?;
        let not_a_terminal = |source| SerialPortError::NotATerminal {
            path: path.to_owned(),
            source,
        };
        let fd = file.as_raw_fd();
        // SAFETY: termios is plain data, filled by tcgetattr before use; fd is open.
        unsafe {
            let mut settings: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut settings) != 0 {
                return Err(not_a_terminal(io::Error::last_os_error()));
            }
            libc::cfmakeraw(&mut settings);
            settings.c_cflag |= libc::CLOCAL | libc::CREAD;
            settings.c_cflag &= !(libc::CSTOPB | libc::PARENB | libc::CRTSCTS);
            // Reads return what has come once the line has been quiet for VTIME tenths.
            settings.c_cc[libc::VMIN] = 0;
            settings.c_cc[libc::VTIME] = tenths;
            if libc::cfsetispeed(&mut settings, speed) != 0
                || libc::cfsetospeed(&mut settings, speed) != 0
                || libc::tcsetattr(fd, libc::TCSANOW, &settings) != 0
            {
                return Err(not_a_terminal(io::Error::last_os_error()));
            }
            libc::tcflush(fd, libc::TCIOFLUSH);
        }
        Ok(Self { file })
    }
}

fn speed(baud: u32) -> Option<libc::speed_t> {
    Some(match baud {
        9600 => libc::B9600,
        115_200 => libc::B115200,
        230_400 => libc::B230400,
        460_800 => libc::B460800,
        921_600 => libc::B921600,
        1_000_000 => libc::B1000000,
        2_000_000 => libc::B2000000,
        3_000_000 => libc::B3000000,
        _ => return None,
    })
}

impl Read for SerialPort {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self.file.read(buffer)? {
            // Raw mode with VMIN 0: nothing within the timeout.
            0 if !buffer.is_empty() => Err(io::ErrorKind::TimedOut.into()),
            read => Ok(read),
        }
    }
}

impl Write for SerialPort {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        self.file.write(buffer)
    }

    fn flush(&mut self) -> io::Result<()> {
        // SAFETY: the descriptor is open; tcdrain waits until the bytes are on the line.
        match unsafe { libc::tcdrain(self.file.as_raw_fd()) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }
}
