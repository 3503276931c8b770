//! The adapter between a model of the root complex (packets in and out, host memory) and a
//! model of the NI's host ports.

use super::tlp::model::{self, payload};
use super::tlp::{STATUS_ABORTED, STATUS_SUCCESSFUL, STATUS_UNSUPPORTED};
use super::*;
use crate::testing::{cycle, lane_beats, settle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rstest::rstest;
use std::collections::VecDeque;

const FUNCTION_ID: u16 = 0x0108;
const HOST_ID: u16 = 0x0000;
/// A short watchdog, so a test can outwait it.
const TEST_TIMEOUT_BITS: usize = 6;

struct Packet {
    dwords: Vec<u32>,
    bar0: bool,
    forwarded_error: bool,
}

#[derive(Debug, PartialEq)]
struct RegisterAccess {
    write: bool,
    address: u64,
    data: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct CompletionBeat {
    tag: u64,
    data: u64,
    last: bool,
    error: bool,
}

struct Bench {
    adapter: Box<PcieAdapter<TEST_TIMEOUT_BITS>>,
    random: StdRng,
    /// The root complex's side: beats to send, and packets received.
    rx: VecDeque<(u64, bool, bool, bool)>,
    tx_beats: Vec<(u64, u64, bool)>,
    sent: VecDeque<Vec<u32>>,
    tx_stalls: bool,
    unsupported_posted: usize,
    msi_ready: bool,
    messages: Vec<u64>,
    // The NI's side.
    register_accesses: Vec<RegisterAccess>,
    register_answers: VecDeque<u64>,
    reads: VecDeque<(u8, u64, u64)>,
    writes: VecDeque<(u64, u64, u64, u64, bool)>,
    write_responses: Vec<bool>,
    completions: Vec<CompletionBeat>,
    interrupts: VecDeque<u64>,
}

fn clock(adapter: &mut PcieAdapter<TEST_TIMEOUT_BITS>, level: bool) {
    adapter.clock.next = Clock::from(level);
}

impl Bench {
    fn new() -> Self {
        let mut adapter = Box::<PcieAdapter<TEST_TIMEOUT_BITS>>::default();
        adapter.connect_all();
        adapter.function_id.next = u64::from(FUNCTION_ID).into();
        adapter.bus_master_enable.next = true;
        adapter.msi_enable.next = true;
        adapter.reset.next = true;
        cycle(&mut *adapter, clock);
        adapter.reset.next = false;
        Self {
            adapter,
            random: StdRng::seed_from_u64(npmu_test_seed::seed("PCIe adapter stalls", 11)),
            rx: VecDeque::new(),
            tx_beats: Vec::new(),
            sent: VecDeque::new(),
            tx_stalls: false,
            unsupported_posted: 0,
            msi_ready: true,
            messages: Vec::new(),
            register_accesses: Vec::new(),
            register_answers: VecDeque::new(),
            reads: VecDeque::new(),
            writes: VecDeque::new(),
            write_responses: Vec::new(),
            completions: Vec::new(),
            interrupts: VecDeque::new(),
        }
    }

    fn send(&mut self, packet: Packet) {
        for (data, _, last) in model::beats(&packet.dwords) {
            self.rx
                .push_back((data, last, packet.bar0, packet.forwarded_error));
        }
    }

    fn send_to_bar0(&mut self, dwords: Vec<u32>) {
        self.send(Packet {
            dwords,
            bar0: true,
            forwarded_error: false,
        });
    }

    /// A DMA write from the NI: beats with bytes in the lanes of their addresses.
    fn offer_write(&mut self, address: u64, data: &[u8]) {
        let beats = lane_beats(8, (address & 7) as usize, data);
        let count = beats.len();
        for (index, (value, enables)) in beats.into_iter().enumerate() {
            self.writes.push_back((
                address,
                data.len() as u64,
                value,
                enables,
                index + 1 == count,
            ));
        }
    }

    fn step(&mut self) {
        let stall = self.tx_stalls && self.random.gen_bool(0.3);
        let a = &mut *self.adapter;
        a.rx_valid.next = !self.rx.is_empty();
        if let Some((data, last, bar0, forwarded_error)) = self.rx.front() {
            a.rx_data.next = (*data).into();
            a.rx_last.next = *last;
            a.rx_bar0.next = *bar0;
            a.rx_forwarded_error.next = *forwarded_error;
        }
        a.tx_ready.next = !stall;
        a.msi_ready.next = self.msi_ready;
        a.mmio_request_ready.next = true;
        a.mmio_response_valid.next = !self.register_answers.is_empty();
        a.mmio_response_data.next = self.register_answers.front().copied().unwrap_or(0).into();
        a.dma_read_request_valid.next = !self.reads.is_empty();
        if let Some((tag, address, length)) = self.reads.front() {
            a.dma_read_request_tag.next = u64::from(*tag).into();
            a.dma_read_request_address.next = (*address).into();
            a.dma_read_request_length.next = (*length).into();
        }
        a.dma_write_valid.next = !self.writes.is_empty();
        if let Some((address, length, data, enables, last)) = self.writes.front() {
            a.dma_write_address.next = (*address).into();
            a.dma_write_length.next = (*length).into();
            a.dma_write_data.next = (*data).into();
            a.dma_write_byte_enable.next = (*enables).into();
            a.dma_write_last.next = *last;
        }
        a.dma_write_response_ready.next = true;
        a.interrupt_valid.next = !self.interrupts.is_empty();
        a.interrupt_vector.next = self.interrupts.front().copied().unwrap_or(0).into();
        settle(a);

        if a.rx_valid.val() && a.rx_ready.val() {
            self.rx.pop_front();
        }
        if a.tx_valid.val() && a.tx_ready.val() {
            let beat = (
                a.tx_data.val().to_u64(),
                a.tx_keep.val().to_u64(),
                a.tx_last.val(),
            );
            self.tx_beats.push(beat);
            if beat.2 {
                self.sent
                    .push_back(model::dwords(&std::mem::take(&mut self.tx_beats)));
            }
        }
        if a.unsupported_posted.val() {
            self.unsupported_posted += 1;
        }
        if a.msi_request.val() && a.msi_ready.val() {
            self.messages.push(a.msi_vector.val().to_u64());
        }
        if a.mmio_request_valid.val() && a.mmio_request_ready.val() {
            self.register_accesses.push(RegisterAccess {
                write: a.mmio_request_write.val(),
                address: a.mmio_request_address.val().to_u64(),
                data: a.mmio_request_write_data.val().to_u64(),
            });
        }
        if a.mmio_response_valid.val() && a.mmio_response_ready.val() {
            self.register_answers.pop_front();
        }
        if a.dma_read_request_valid.val() && a.dma_read_request_ready.val() {
            self.reads.pop_front();
        }
        if a.dma_write_valid.val() && a.dma_write_ready.val() {
            self.writes.pop_front();
        }
        if a.dma_write_response_valid.val() {
            self.write_responses.push(a.dma_write_response_error.val());
        }
        if a.dma_read_completion_valid.val() {
            self.completions.push(CompletionBeat {
                tag: a.dma_read_completion_tag.val().to_u64(),
                data: a.dma_read_completion_data.val().to_u64(),
                last: a.dma_read_completion_last.val(),
                error: a.dma_read_completion_error.val(),
            });
        }
        if a.interrupt_valid.val() && a.interrupt_ready.val() {
            self.interrupts.pop_front();
        }
        cycle(a, clock);
    }

    fn run(&mut self, clocks: usize) {
        for _ in 0..clocks {
            self.step();
        }
    }

    /// Steps until a packet has gone out, and returns it.
    fn next_sent(&mut self) -> Vec<u32> {
        for _ in 0..200 {
            if let Some(packet) = self.sent.pop_front() {
                return packet;
            }
            self.step();
        }
        panic!("no packet went out");
    }
}

fn register_write(address: u64, value: u64, wide: bool) -> Vec<u32> {
    let mut packet = model::request_header(true, HOST_ID, 1, address, 8);
    if wide {
        packet = model::request_header(true, HOST_ID, 1, address | 1 << 40, 8);
    }
    packet.extend(payload(address, &value.to_le_bytes()));
    packet
}

fn field(dword: u32, shift: u32, bits: u32) -> u32 {
    (dword >> shift) & ((1 << bits) - 1)
}

#[rstest]
#[case::three_dword_header(false)]
#[case::four_dword_header(true)]
fn a_register_write_reaches_the_ni_whole(#[case] wide: bool) {
    let mut bench = Bench::new();
    bench.send_to_bar0(register_write(0x1208, 0x1122_3344_5566_7788, wide));
    bench.run(10);
    assert_eq!(
        bench.register_accesses,
        vec![RegisterAccess {
            write: true,
            address: 0x1208,
            data: 0x1122_3344_5566_7788
        }]
    );
    assert_eq!(bench.unsupported_posted, 0);
}

#[rstest]
#[case::a_lone_dword(0x1000, 4)]
#[case::an_unaligned_pair(0x1004, 8)]
#[case::three_dwords(0x1000, 12)]
fn a_write_that_is_not_one_whole_register_is_dropped_and_reported(
    #[case] address: u64,
    #[case] length: usize,
) {
    let mut bench = Bench::new();
    let mut packet = model::request_header(true, HOST_ID, 1, address, length as u64);
    packet.extend(payload(address, &vec![0xab; length]));
    bench.send_to_bar0(packet);
    bench.send_to_bar0(register_write(0x10, 7, false));
    bench.run(12);
    assert_eq!(bench.unsupported_posted, 1);
    assert_eq!(
        bench.register_accesses,
        vec![RegisterAccess {
            write: true,
            address: 0x10,
            data: 7
        }],
        "the next write still goes through"
    );
}

#[test]
fn a_poisoned_register_write_is_dropped() {
    let mut bench = Bench::new();
    bench.send(Packet {
        dwords: register_write(0x10, 7, false),
        bar0: true,
        forwarded_error: true,
    });
    bench.run(8);
    assert!(bench.register_accesses.is_empty());
    assert_eq!(bench.unsupported_posted, 1);
}

/// A register read of `length` bytes at `address`: the NI's access, then the completion.
#[rstest]
#[case::whole_register(0x2010, 8, 0x8877_6655_4433_2211, vec![0x1122_3344, 0x5566_7788])]
#[case::lower_dword(0x2010, 4, 0x8877_6655_4433_2211, vec![0x1122_3344])]
#[case::upper_dword(0x2014, 4, 0x8877_6655_4433_2211, vec![0x5566_7788])]
fn a_register_read_is_answered_with_the_registers_bytes(
    #[case] address: u64,
    #[case] length: u64,
    #[case] value: u64,
    #[case] expected_payload: Vec<u32>,
) {
    let mut bench = Bench::new();
    bench.send_to_bar0(model::request_header(false, 0x0200, 0x3c, address, length));
    bench.run(6);
    assert_eq!(
        bench.register_accesses,
        vec![RegisterAccess {
            write: false,
            address: address & !7,
            data: bench.register_accesses[0].data
        }]
    );
    bench.register_answers.push_back(value);
    let packet = bench.next_sent();
    assert_eq!(
        packet,
        model::completion(
            FUNCTION_ID,
            0x0200,
            0x3c,
            STATUS_SUCCESSFUL,
            length as u32,
            address as u32 & 0x7f,
            &expected_payload,
            false
        )
    );
    assert!(
        bench.register_answers.is_empty(),
        "the NI's answer is taken"
    );
}

#[test]
fn a_second_read_waits_for_the_first_ones_answer() {
    let mut bench = Bench::new();
    bench.send_to_bar0(model::request_header(false, HOST_ID, 1, 0x100, 8));
    bench.send_to_bar0(model::request_header(false, HOST_ID, 2, 0x108, 8));
    bench.run(20);
    assert_eq!(bench.register_accesses.len(), 1);
    assert!(!bench.adapter.rx_non_posted_ok.val());
    bench.register_answers.push_back(1);
    bench.register_answers.push_back(2);
    let first = bench.next_sent();
    let second = bench.next_sent();
    assert_eq!(field(first[2], 8, 8), 1);
    assert_eq!(field(second[2], 8, 8), 2);
    assert_eq!((first[3], second[3]), (1 << 24, 2 << 24));
    assert_eq!(bench.register_accesses.len(), 2);
}

#[rstest]
#[case::a_long_read(model::request_header(false, HOST_ID, 9, 0x40, 64), true, 64)]
#[case::a_read_of_another_bar(model::request_header(false, HOST_ID, 9, 0x40, 8), false, 8)]
#[case::an_io_read(vec![(0x02 << 24) | 1, 0x0000_090f, 0x40], true, 4)]
fn other_requests_are_answered_unsupported(
    #[case] request: Vec<u32>,
    #[case] bar0: bool,
    #[case] byte_count: u32,
) {
    let mut bench = Bench::new();
    bench.send(Packet {
        dwords: request,
        bar0,
        forwarded_error: false,
    });
    let packet = bench.next_sent();
    assert!(bench.register_accesses.is_empty());
    assert_eq!(
        packet,
        model::completion(
            FUNCTION_ID,
            HOST_ID,
            9,
            STATUS_UNSUPPORTED,
            byte_count,
            0x40,
            &[],
            false
        )
    );
}

/// Decodes a memory request packet: (write, tag, address, length, payload bytes).
fn decode_request(packet: &[u32]) -> (bool, u8, u64, u64, Vec<u8>) {
    let fmt = field(packet[0], 29, 2);
    assert_eq!(field(packet[0], 24, 5), 0, "a memory request");
    assert_eq!(field(packet[1], 16, 16), u32::from(FUNCTION_ID));
    let dwords = u64::from(field(packet[0], 0, 10));
    let tag = field(packet[1], 8, 8) as u8;
    let (first, last) = (field(packet[1], 0, 4), field(packet[1], 4, 4));
    let (address, header) = if fmt & 1 == 1 {
        let address = u64::from(packet[2]) << 32 | u64::from(packet[3]);
        assert_ne!(address >> 32, 0, "a 4-dword header only above 4 GiB");
        (address, 4)
    } else {
        (u64::from(packet[2]), 3)
    };
    assert_eq!(address & 3, 0);
    let offset = u64::from(first.trailing_zeros());
    let tail = if dwords == 1 {
        u64::from(4 - (32 - first.leading_zeros()))
    } else {
        u64::from(4 - (32 - last.leading_zeros()))
    };
    let length = dwords * 4 - offset - tail;
    let write = fmt & 2 == 2;
    let bytes: Vec<u8> = packet[header..]
        .iter()
        .flat_map(|dword| dword.to_be_bytes())
        .skip(offset as usize)
        .take(length as usize)
        .collect();
    if write {
        assert_eq!(
            packet.len() as u64,
            header as u64 + dwords,
            "payload length"
        );
    } else {
        assert_eq!(packet.len(), header);
    }
    (write, tag, address + offset, length, bytes)
}

#[test]
fn dma_writes_go_out_whole_at_every_alignment_and_both_header_sizes() {
    let mut bench = Bench::new();
    bench.tx_stalls = true;
    let mut random = StdRng::seed_from_u64(npmu_test_seed::seed("PCIe DMA writes", 3));
    for round in 0..200 {
        let high = if round % 2 == 0 {
            0
        } else {
            0x0000_0040_0000_0000
        };
        let address = high | random.gen_range(0..0x1_0000u64);
        let length = random.gen_range(1..=256u64).min(4096 - (address & 0xfff));
        let data: Vec<u8> = (0..length).map(|_| random.gen()).collect();
        bench.offer_write(address, &data);
        let packet = bench.next_sent();
        assert_eq!(
            decode_request(&packet),
            (true, 0, address, length, data.clone()),
            "round {round}: {length} bytes at {address:#x}"
        );
        bench.run(2);
    }
    assert_eq!(
        bench.write_responses,
        vec![false; 200],
        "one response a write"
    );
}

#[test]
fn dma_read_requests_carry_tag_address_and_length() {
    let mut bench = Bench::new();
    for (tag, address, length) in [
        (0u8, 0x1000u64, 512u64),
        (33, 0x7_0000_0003, 5),
        (7, 0xffd, 3),
    ] {
        bench.reads.push_back((tag, address, length));
        let packet = bench.next_sent();
        assert_eq!(
            decode_request(&packet),
            (false, tag, address, length, vec![])
        );
    }
}

/// The host's completions of a read of `length` bytes at `address`, split at `boundary`.
fn completions_for(tag: u8, address: u64, data: &[u8], boundary: u64) -> Vec<Vec<u32>> {
    let end = address + data.len() as u64;
    let mut packets = Vec::new();
    let mut start = address;
    while start < end {
        let stop = ((start / boundary + 1) * boundary).min(end);
        let bytes = &data[(start - address) as usize..(stop - address) as usize];
        packets.push(model::completion(
            HOST_ID,
            FUNCTION_ID,
            tag,
            STATUS_SUCCESSFUL,
            (end - start) as u32,
            start as u32 & 0x7f,
            &payload(start, bytes),
            false,
        ));
        start = stop;
    }
    packets
}

#[test]
fn read_completions_reach_the_ni_in_the_lanes_of_their_addresses() {
    let mut bench = Bench::new();
    let mut random = StdRng::seed_from_u64(npmu_test_seed::seed("PCIe read completions", 5));
    for round in 0..150 {
        let tag = random.gen_range(0..40u8);
        let address = random.gen_range(0..0x4000u64);
        let length = random.gen_range(1..=512u64).min(4096 - (address & 0xfff));
        let data: Vec<u8> = (0..length).map(|_| random.gen()).collect();
        let boundary = [64, 128, 4096][round % 3];
        bench.reads.push_back((tag, address, length));
        bench.next_sent();
        for packet in completions_for(tag, address, &data, boundary) {
            bench.send(Packet {
                dwords: packet,
                bar0: false,
                forwarded_error: false,
            });
        }
        bench.completions.clear();
        bench.run(length as usize / 8 + 20);
        let expected = lane_beats(8, (address & 7) as usize, &data);
        let got = &bench.completions;
        assert_eq!(got.len(), expected.len(), "round {round}: beats");
        for (index, (beat, (value, lanes))) in got.iter().zip(&expected).enumerate() {
            let mask = (0..8)
                .filter(|lane| lanes >> lane & 1 == 1)
                .fold(0u64, |mask, lane| mask | 0xff << (8 * lane));
            assert_eq!(beat.tag, u64::from(tag));
            assert!(!beat.error);
            assert_eq!(
                beat.last,
                index + 1 == expected.len(),
                "round {round} beat {index}"
            );
            assert_eq!(beat.data & mask, *value, "round {round} beat {index}");
        }
    }
}

#[rstest]
#[case::unsupported(STATUS_UNSUPPORTED, false)]
#[case::aborted(STATUS_ABORTED, false)]
#[case::poisoned(STATUS_SUCCESSFUL, true)]
fn a_failed_completion_fails_its_read_once(#[case] status: u32, #[case] poisoned: bool) {
    let mut bench = Bench::new();
    bench.reads.push_back((4, 0x2000, 16));
    bench.next_sent();
    let data = if status == STATUS_SUCCESSFUL {
        payload(0x2000, &[0; 16])
    } else {
        vec![]
    };
    let packet = model::completion(HOST_ID, FUNCTION_ID, 4, status, 16, 0, &data, poisoned);
    bench.send_to_bar0(packet.clone());
    bench.run(10);
    assert_eq!(
        bench.completions,
        vec![CompletionBeat {
            tag: 4,
            data: bench.completions[0].data,
            last: true,
            error: true
        }]
    );
    // The same again: no read of that tag is in flight any more.
    bench.send_to_bar0(packet);
    bench.run(10);
    assert_eq!(bench.completions.len(), 1);
}

#[test]
fn a_completion_no_read_waits_for_is_dropped() {
    let mut bench = Bench::new();
    for packet in completions_for(9, 0x100, &[1; 8], 64) {
        bench.send_to_bar0(packet);
    }
    bench.run(10);
    assert!(bench.completions.is_empty());
    assert!(bench.rx.is_empty(), "and the stream moves on");
}

#[test]
fn reads_no_completion_comes_for_fail_after_the_watchdog() {
    let mut bench = Bench::new();
    bench.reads.push_back((3, 0x1000, 8));
    bench.reads.push_back((1, 0x2000, 8));
    bench.run(20);
    assert!(bench.completions.is_empty());
    bench.run(1 << TEST_TIMEOUT_BITS);
    let failed: Vec<(u64, bool, bool)> = bench
        .completions
        .iter()
        .map(|beat| (beat.tag, beat.error, beat.last))
        .collect();
    assert_eq!(failed, vec![(1, true, true), (3, true, true)]);
    // A late completion is dropped.
    for packet in completions_for(3, 0x1000, &[1; 8], 64) {
        bench.send_to_bar0(packet);
    }
    bench.run(10);
    assert_eq!(bench.completions.len(), 2);
}

#[test]
fn without_bus_mastering_dma_is_refused_and_nothing_goes_out() {
    let mut bench = Bench::new();
    bench.adapter.bus_master_enable.next = false;
    bench.reads.push_back((6, 0x1000, 64));
    bench.offer_write(0x3000, &[5; 20]);
    bench.run(20);
    assert!(bench.sent.is_empty() && bench.tx_beats.is_empty());
    assert_eq!(bench.write_responses, vec![true]);
    assert_eq!(
        bench.completions,
        vec![CompletionBeat {
            tag: 6,
            data: bench.completions[0].data,
            last: true,
            error: true
        }]
    );
}

#[test]
fn an_interrupt_is_a_message_on_an_enabled_vector() {
    let mut bench = Bench::new();
    bench.adapter.msi_vectors_log2.next = 1.into();
    bench.interrupts.extend([3, 2]);
    bench.run(10);
    assert_eq!(
        bench.messages,
        vec![1, 0],
        "two vectors granted: the low bit"
    );
    assert!(bench.interrupts.is_empty());
}

#[test]
fn an_interrupt_waits_for_the_block_and_for_the_writes_before_it() {
    let mut bench = Bench::new();
    bench.msi_ready = false;
    bench.offer_write(0x3000, &[5; 64]);
    bench.run(2);
    bench.interrupts.push_back(2);
    bench.run(2);
    assert!(!bench.adapter.msi_request.val(), "a write is going out");
    bench.run(20);
    assert!(bench.writes.is_empty());
    assert!(bench.adapter.msi_request.val(), "up once the write is out");
    assert_eq!(bench.adapter.msi_vector.val().to_u64(), 0);
    bench.run(5);
    assert_eq!(bench.interrupts.len(), 1, "held until the block takes it");
    bench.msi_ready = true;
    bench.run(3);
    assert!(bench.interrupts.is_empty());
    assert_eq!(bench.messages, vec![0]);
}

#[test]
fn with_msi_off_interrupts_are_dropped_not_held() {
    let mut bench = Bench::new();
    bench.adapter.msi_enable.next = false;
    bench.interrupts.extend([1, 2, 3]);
    bench.run(6);
    assert!(bench.interrupts.is_empty());
    assert!(bench.messages.is_empty());
}
