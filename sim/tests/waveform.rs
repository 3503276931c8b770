//! A run can leave a waveform for GTKWave.

mod common;

use common::unlocked;
use npmu_abi::program::RegisterAccess;
use npmu_abi::registers as reg;
use npmu_sim::HarnessOptions;

#[test]
fn a_run_writes_a_vcd_of_every_port() {
    let path = std::env::temp_dir().join(format!("npmu-waveform-{}.vcd", std::process::id()));
    {
        let mut harness = unlocked(HarnessOptions::default());
        harness.trace_to(&path).unwrap();
        harness.read(reg::IDENTITY.offset);
        for _ in 0..10 {
            harness.step();
        }
    }
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(text.contains("$enddefinitions"));
    for port in [
        "mmio_request_valid",
        "request_ready",
        "memory_request_address",
        "response_last",
    ] {
        assert!(text.contains(port), "no {port} in the waveform");
    }
    assert!(
        text.lines().filter(|line| line.starts_with('#')).count() > 20,
        "too few time steps"
    );
}

#[test]
fn an_unwritable_path_is_an_error() {
    let mut harness = unlocked(HarnessOptions::default());
    assert!(harness
        .trace_to(std::path::Path::new("/nonexistent/dir/x.vcd"))
        .is_err());
}
