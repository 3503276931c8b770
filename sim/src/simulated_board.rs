//! A simulated serial board: the Verilator model of `npmu_board` (the protection core behind
//! its UART bridge) on a thread of its own, its line driven bit by bit, persistent memory in
//! a file. [`SimulatedBoard::link`] is the host's end of the line, a byte stream as a serial
//! port is, for the driver's bridge backend.
//!
//! The board clocks while bytes move and sleeps when the line has been quiet a while. On
//! waking it first clocks through the time it slept (up to the bridge's idle timeout), as a
//! real board's clock runs on while the host is silent: a command the host abandoned midway
//! is dropped just as on hardware.

use crate::backend::Backend;
use crate::file_memory::{FileMemory, FileMemoryError};
use crate::memory_port::MemoryPort;
use crate::ports::serial_board::Inputs;
use crate::verilated::VerilatedBoard;
use crate::SimError;
use npmu_abi::bridge::{CLOCKS_PER_BIT, IDLE_CLOCKS};
use npmu_abi::Config;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Clocks of a quiet line after which the board sleeps.
const QUIET_CLOCKS: u64 = 4096;
/// The clock the board is taken to run at, for the time it sleeps through.
const CLOCK_HZ: u64 = 24_000_000;

#[derive(Debug, Error)]
pub enum BoardError {
    #[error(transparent)]
    Memory(#[from] FileMemoryError),
    #[error(transparent)]
    Simulator(#[from] SimError),
    #[error("cannot start the board thread: {0}")]
    Thread(io::Error),
}

#[derive(Clone, Debug)]
pub struct BoardOptions {
    pub config: Config,
    pub management_key: u64,
    /// How long a read of the link waits for a byte before it times out.
    pub read_timeout: Duration,
    /// Write a waveform of every signal here (VCD, for GTKWave).
    pub waveform: Option<PathBuf>,
}

impl Default for BoardOptions {
    fn default() -> Self {
        Self {
            config: Config::ICE40,
            management_key: 0x6e70_6d75_6b65_7921,
            read_timeout: Duration::from_secs(2),
            waveform: None,
        }
    }
}

pub struct SimulatedBoard {
    thread: Option<JoinHandle<()>>,
    link: Option<BoardLink>,
}

/// The host's end of a simulated board's line.
pub struct BoardLink {
    to_board: Sender<u8>,
    from_board: Receiver<u8>,
    read_timeout: Duration,
}

impl SimulatedBoard {
    /// Starts a board whose persistent memory is the file at `memory` (created zeroed).
    pub fn open(memory: &Path, options: BoardOptions) -> Result<Self, BoardError> {
        let mut model = VerilatedBoard::new(&options.config)?;
        if let Some(path) = &options.waveform {
            model.trace_to(path)?;
        }
        let file = FileMemory::open(memory, options.config.memory_bytes())?;
        let (to_board, host_bytes) = mpsc::channel();
        let (board_bytes, from_board) = mpsc::channel();
        let thread = BoardThread {
            memory: MemoryPort::new(file, options.config.data_bytes, 2),
            model,
            inputs: Inputs {
                management_key: options.management_key,
                uart_receive: true,
                ..Inputs::default()
            },
            host_bytes,
            board_bytes,
            now: 0,
            sending: Vec::new(),
            receiving: None,
            quiet: 0,
        };
        let thread = std::thread::Builder::new()
            .name("npmu-board".into())
            .spawn(move || thread.run())
            .map_err(BoardError::Thread)?;
        Ok(Self {
            thread: Some(thread),
            link: Some(BoardLink {
                to_board,
                from_board,
                read_timeout: options.read_timeout,
            }),
        })
    }

    /// The host's end of the line; there is one, taken once.
    pub fn link(&mut self) -> Option<BoardLink> {
        self.link.take()
    }
}

impl Drop for SimulatedBoard {
    fn drop(&mut self) {
        // The thread ends once the host's end is gone; a link still held keeps it running,
        // so it is not waited for here.
        if self.link.take().is_some() {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

impl Read for BoardLink {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if buffer.is_empty() {
            return Ok(0);
        }
        let first = match self.from_board.recv_timeout(self.read_timeout) {
            Ok(byte) => byte,
            Err(RecvTimeoutError::Timeout) => return Err(io::ErrorKind::TimedOut.into()),
            Err(RecvTimeoutError::Disconnected) => return Ok(0),
        };
        buffer[0] = first;
        let mut read = 1;
        while read < buffer.len() {
            match self.from_board.try_recv() {
                Ok(byte) => {
                    buffer[read] = byte;
                    read += 1;
                }
                Err(_) => break,
            }
        }
        Ok(read)
    }
}

impl Write for BoardLink {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        for byte in buffer {
            self.to_board
                .send(*byte)
                .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        }
        Ok(buffer.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct BoardThread {
    model: VerilatedBoard,
    memory: MemoryPort<FileMemory>,
    inputs: Inputs,
    host_bytes: Receiver<u8>,
    board_bytes: Sender<u8>,
    now: u64,
    /// Line levels still to drive towards the board, one per clock, last first.
    sending: Vec<bool>,
    /// The board's byte being received: the clock its start bit began, the bits so far.
    receiving: Option<(u64, u8)>,
    quiet: u64,
}

impl BoardThread {
    fn run(mut self) {
        self.inputs.reset = true;
        self.model.hold_reset(&self.inputs);
        self.inputs.reset = false;
        loop {
            if self.sending.is_empty() {
                match self.host_bytes.try_recv() {
                    Ok(byte) => self.send(byte),
                    Err(TryRecvError::Disconnected) => return,
                    Err(TryRecvError::Empty) if self.quiet >= QUIET_CLOCKS => {
                        let asleep = Instant::now();
                        let Ok(byte) = self.host_bytes.recv() else {
                            return;
                        };
                        let slept = asleep.elapsed().as_nanos() as u64 * CLOCK_HZ / 1_000_000_000;
                        for _ in 0..slept.min(u64::from(IDLE_CLOCKS) + QUIET_CLOCKS) {
                            self.clock();
                        }
                        self.send(byte);
                    }
                    Err(TryRecvError::Empty) => {}
                }
            }
            self.clock();
        }
    }

    /// Queues `byte`'s start bit, data bits and stop bit on the line.
    fn send(&mut self, byte: u8) {
        let bits = std::iter::once(false)
            .chain((0..8).map(|bit| byte >> bit & 1 == 1))
            .chain(std::iter::once(true));
        self.sending = bits
            .flat_map(|bit| std::iter::repeat_n(bit, CLOCKS_PER_BIT as usize))
            .rev()
            .collect();
        self.quiet = 0;
    }

    fn clock(&mut self) {
        self.inputs.uart_receive = self.sending.pop().unwrap_or(true);
        if !self.inputs.memory_response_valid {
            if let Some(data) = self.memory.response(self.now) {
                self.inputs.memory_response_valid = true;
                self.inputs.memory_response_data = data;
            }
        }
        self.inputs.memory_request_ready = true;
        let outputs = self.model.settle(&self.inputs);
        if outputs.memory_request_valid {
            self.memory.accept(
                self.now,
                outputs.memory_request_write,
                outputs.memory_request_address,
                outputs.memory_request_write_data,
                outputs.memory_request_byte_enable,
            );
            self.quiet = 0;
        }
        if self.inputs.memory_response_valid && outputs.memory_response_ready {
            self.memory.take_response();
            self.inputs.memory_response_valid = false;
        }
        self.receive(outputs.uart_transmit);
        self.model.rising_edge();
        self.now += 1;
        self.quiet += 1;
    }

    /// Samples the board's line in the middle of each bit, as a UART on the host does; a
    /// byte whose stop bit is low is dropped.
    fn receive(&mut self, line: bool) {
        let bit = u64::from(CLOCKS_PER_BIT);
        let Some((start, byte)) = self.receiving else {
            if !line {
                self.receiving = Some((self.now, 0));
                self.quiet = 0;
            }
            return;
        };
        self.quiet = 0;
        let elapsed = self.now - start;
        if elapsed % bit != bit / 2 {
            return;
        }
        match elapsed / bit {
            0 if line => self.receiving = None,
            index @ 1..=8 => self.receiving = Some((start, byte | u8::from(line) << (index - 1))),
            9 => {
                self.receiving = None;
                if line {
                    // A host that hung up no longer reads; the board goes on regardless.
                    let _ = self.board_bytes.send(byte);
                }
            }
            _ => {}
        }
    }
}
