//! RustHDL's own simulator and Verilator run the same design: on the same stimulus they
//! must agree clock for clock.

use npmu_abi::program;
use npmu_abi::Config;
use npmu_sim::ports::protection_core::{Inputs, Outputs};
use npmu_sim::traffic::Traffic;
use npmu_sim::RustHdlCore;
use npmu_sim::{
    Backend, Completion, CoreHarness, HarnessOptions, MemoryAccess, Stall, Stalls, VerilatedCore,
};

fn run<B: Backend<Inputs = Inputs, Outputs = Outputs>>(
    backend: B,
) -> (Vec<Completion>, Vec<MemoryAccess>, u64) {
    let options = HarnessOptions {
        stalls: Stalls::all(Stall::Random(0.2)),
        ..HarnessOptions::default()
    };
    let key = options.management_key;
    let mut harness = CoreHarness::new(backend, options);
    program::unlock(&mut harness, key).unwrap();
    let mut traffic = Traffic::new(&Config::ICE40, 12);
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
fn rust_hdl_and_verilator_agree_clock_for_clock() {
    let verilator = run(VerilatedCore::new(&Config::ICE40).unwrap());
    let rust_hdl = run(RustHdlCore::new());
    assert_eq!(verilator.0.len(), 60);
    assert_eq!(
        verilator.2, rust_hdl.2,
        "both ran the same number of clocks"
    );
    assert_eq!(verilator.0, rust_hdl.0, "completions differ");
    assert_eq!(verilator.1, rust_hdl.1, "memory traffic differs");
}
