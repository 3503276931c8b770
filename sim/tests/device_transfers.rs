//! Transfers of every awkward shape through the queues, in the manner of DMA engine test
//! benches: host buffers starting at offsets 0-3 and 4092-4095 of a page, lengths from one
//! byte to a few pages, odd ones around every burst size, at network addresses that are
//! misaligned and cross pages too. Each is written to persistent memory and read back into
//! a fresh buffer; the host port fails the run at any request that crosses a 4 KiB page or
//! exceeds the maximum payload or read request. Each configuration runs the sweep free,
//! with every channel held back one clock in four, and at random.

mod common;

use common::device::*;
use npmu_abi::Config;
use npmu_sim::{DeviceOptions, DeviceStalls, Stall};
use rstest::rstest;

const HOST_OFFSETS: [u64; 8] = [0, 1, 2, 3, 4092, 4093, 4094, 4095];
const LENGTHS: [u32; 32] = [
    1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 512,
    513, 1000, 4095, 4096, 4097, 8191, 8192, 8193, 12289,
];
const GUARD: u8 = 0xee;

fn pattern(length: u32, seed: u32) -> Vec<u8> {
    (0..length)
        .map(|index| (index.wrapping_mul(151) ^ seed.wrapping_mul(29)) as u8)
        .collect()
}

#[rstest]
#[case::sim(Config::SIM)]
#[case::ice40(Config::ICE40)]
fn every_host_offset_and_length_round_trips(
    #[case] config: Config,
    #[values(Stall::Never, Stall::OneInFour, Stall::Random(0.3))] stall: Stall,
) {
    let options = DeviceOptions {
        stalls: DeviceStalls::all(stall),
        ..DeviceOptions::default()
    };
    let (mut device, key) = set_up(&config, options);
    let context_bytes = context_bytes(&config);
    let mut transfers = 0u32;
    for host_offset in HOST_OFFSETS {
        for length in LENGTHS {
            transfers += 1;
            // Wanders over the context: every lane alignment, page crossings included.
            let room = context_bytes - u64::from(length);
            let network_offset = (u64::from(transfers) * 4099) % (room + 1);
            let data = pattern(length, transfers);
            device.write_host(SOURCE + host_offset, &data);
            let target = DESTINATION + host_offset;
            device.write_host(target - 1, &vec![GUARD; length as usize + 2]);

            let completions = run(
                &mut device,
                QUEUE,
                &[
                    write(
                        key,
                        network_offset,
                        SOURCE + host_offset,
                        length,
                        2 * transfers,
                    ),
                    read(key, network_offset, target, length, 2 * transfers + 1),
                ],
            );

            let case = format!(
                "host offset {host_offset}, length {length}, network offset {network_offset}"
            );
            assert_eq!(completions.len(), 2, "{case}");
            for (completion, tag) in completions.iter().zip([2 * transfers, 2 * transfers + 1]) {
                assert_eq!(completion.tag.get(), tag, "{case}");
                assert_eq!(completion.status, 0, "{case}");
                assert_eq!(completion.bytes_done.get(), length, "{case}");
            }
            assert_eq!(device.read_host(target, length as usize), data, "{case}");
            assert_eq!(
                device.read_host(target - 1, 1),
                [GUARD],
                "{case}: byte before"
            );
            assert_eq!(
                device.read_host(target + u64::from(length), 1),
                [GUARD],
                "{case}: byte after"
            );
        }
        device.check_memory();
    }
}
