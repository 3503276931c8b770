//! Back-pressure on every channel of the NI, one at a time and all at once, one clock in
//! four and at random: random descriptor streams on every queue (transfers of every size,
//! faults, DMA faults mid-transfer) still match the golden model byte for byte, and the
//! monitor holds every offer steady until it is taken.

use npmu_abi::Config;
use npmu_sim::device_traffic::DeviceTraffic;
use npmu_sim::{DeviceHarness, DeviceOptions, DeviceStalls, Stall};
use rstest::rstest;

fn on(channel: &str, stall: Stall) -> DeviceStalls {
    let mut stalls = DeviceStalls::NONE;
    let slot = match channel {
        "mmio_request" => &mut stalls.mmio_request,
        "mmio_response" => &mut stalls.mmio_response,
        "dma_read_request" => &mut stalls.dma_read_request,
        "dma_read_completion" => &mut stalls.dma_read_completion,
        "dma_write" => &mut stalls.dma_write,
        "dma_write_response" => &mut stalls.dma_write_response,
        "interrupt" => &mut stalls.interrupt,
        "memory_request" => &mut stalls.memory_request,
        "memory_response" => &mut stalls.memory_response,
        "all" => return DeviceStalls::all(stall),
        other => panic!("no channel {other}"),
    };
    *slot = stall;
    stalls
}

#[rstest]
fn random_descriptors_match_the_golden_model_with_a_channel_held_back(
    #[values(
        "mmio_request",
        "mmio_response",
        "dma_read_request",
        "dma_read_completion",
        "dma_write",
        "dma_write_response",
        "interrupt",
        "memory_request",
        "memory_response",
        "all"
    )]
    channel: &str,
    #[values(Stall::OneInFour, Stall::Random(0.5))] stall: Stall,
) {
    let seed = npmu_test_seed::seed("device back pressure", 11);
    let options = DeviceOptions {
        stalls: on(channel, stall),
        seed,
        ..DeviceOptions::default()
    };
    let key = options.management_key;
    let mut device = DeviceHarness::verilated(&Config::SIM, options).unwrap();
    let mut traffic = DeviceTraffic::set_up(&mut device, key, seed);
    traffic.fill_buffers(&mut device);
    let statuses = traffic.run(&mut device, 600);
    assert!(statuses[&0] > 300, "{statuses:?}");
    assert!(statuses.contains_key(&16), "no DMA fault met: {statuses:?}");
}
