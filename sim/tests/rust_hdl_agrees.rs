//! RustHDL's own simulator and Verilator run the same design: on the same stimulus they
//! must agree clock for clock.

use npmu_abi::program;
use npmu_abi::Config;
use npmu_sim::device_traffic::DeviceTraffic;
use npmu_sim::ports::{network_interface, protection_core};
use npmu_sim::traffic::Traffic;
use npmu_sim::{
    Backend, Completion, CoreHarness, DeviceCompletion, DeviceHarness, DeviceOptions, DeviceStalls,
    HarnessOptions, MemoryAccess, RustHdlCore, RustHdlNetworkInterface, Stall, Stalls,
    VerilatedCore, VerilatedNetworkInterface,
};

fn run_core<B: Backend<Inputs = protection_core::Inputs, Outputs = protection_core::Outputs>>(
    backend: B,
) -> (Vec<Completion>, Vec<MemoryAccess>, u64) {
    let options = HarnessOptions {
        stalls: Stalls::all(Stall::Random(0.2)),
        ..HarnessOptions::default()
    };
    let key = options.management_key;
    let mut harness = CoreHarness::new(backend, options);
    program::unlock(&mut harness, key).unwrap();
    let mut traffic = Traffic::new(
        &Config::ICE40,
        npmu_test_seed::seed("RustHDL and Verilator on the core", 12),
    );
    traffic.program(&mut harness);
    harness.record_memory_requests(true);
    for _ in 0..60 {
        let (request, data) = traffic.request(harness.model(), true);
        harness.submit(request, data);
    }
    traffic.reprogram(&mut harness);
    harness.run_until_idle();
    harness.check_memory();
    (
        harness.take_completions(),
        harness.memory_requests().to_vec(),
        harness.now(),
    )
}

#[test]
fn on_the_core_rust_hdl_and_verilator_agree_clock_for_clock() {
    let verilator = run_core(VerilatedCore::new(&Config::ICE40).unwrap());
    let rust_hdl = run_core(RustHdlCore::new());
    assert_eq!(verilator.0.len(), 60);
    assert_eq!(
        verilator.2, rust_hdl.2,
        "both ran the same number of clocks"
    );
    assert_eq!(verilator.0, rust_hdl.0, "completions differ");
    assert_eq!(verilator.1, rust_hdl.1, "memory traffic differs");
}

/// Completions with the clock each became visible, interrupts, DMA reads and writes, and
/// the clocks run.
type DeviceRun = (Vec<DeviceCompletion>, Vec<(u64, u8)>, (u64, u64), u64);

fn run_device<
    B: Backend<Inputs = network_interface::Inputs, Outputs = network_interface::Outputs>,
>(
    backend: B,
) -> DeviceRun {
    let seed = npmu_test_seed::seed("RustHDL and Verilator on the whole NI", 13);
    let options = DeviceOptions {
        stalls: DeviceStalls::all(Stall::Random(0.2)),
        seed,
        ..DeviceOptions::default()
    };
    let key = options.management_key;
    let mut device = DeviceHarness::new(backend, options);
    let mut traffic = DeviceTraffic::set_up(&mut device, key, seed);
    traffic.fill_buffers(&mut device);
    let mut completions = Vec::new();
    let mut done = 0;
    while done < 80 {
        for queue in 0..Config::ICE40.queues as u16 {
            let (descriptor, payload) = traffic.submission(queue);
            device.submit_inline(queue, &descriptor, &payload).unwrap();
        }
        device.run_until_idle();
        let finished = device.take_completions();
        done += finished.len();
        completions.extend(finished);
    }
    device.check_memory();
    (
        completions,
        device.interrupts().to_vec(),
        device.host_traffic(),
        device.now(),
    )
}

#[test]
fn on_the_whole_ni_rust_hdl_and_verilator_agree_clock_for_clock() {
    let verilator = run_device(VerilatedNetworkInterface::new(&Config::ICE40).unwrap());
    let rust_hdl = run_device(RustHdlNetworkInterface::new());
    assert_eq!(
        verilator.3, rust_hdl.3,
        "both ran the same number of clocks"
    );
    assert_eq!(verilator.2, rust_hdl.2, "DMA traffic differs");
    assert_eq!(verilator.0, rust_hdl.0, "completions differ");
    assert_eq!(verilator.1, rust_hdl.1, "interrupts differ");
}
