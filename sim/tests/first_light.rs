use npmu_abi::program::{self, ContextSettings, RegisterAccess};
use npmu_abi::registers as reg;
use npmu_abi::{Config, Operation, Request};
use npmu_sim::{Harness, HarnessOptions};

#[test]
fn write_then_read_back() {
    let options = HarnessOptions::default();
    let key = options.management_key;
    let mut harness = Harness::verilated(&Config::SIM, options).unwrap();
    assert_eq!(harness.read(reg::IDENTITY.offset), reg::identity::VALUE);
    program::unlock(&mut harness, key).unwrap();
    program::write_entries(&mut harness, 0, &[Some(5), Some(9)]).unwrap();
    let settings = ContextSettings {
        tag: 7,
        read: true,
        write: true,
        initiator: None,
        base: 0x10000,
        pages: 2,
        first_entry: 0,
    };
    let context_key = program::register_context(&mut harness, 3, &settings).unwrap();
    let data: Vec<u8> = (0..100).collect();
    let write = Request {
        operation: Operation::Write,
        context: 3,
        key: context_key,
        initiator: 1,
        address: 0x10000 + 4090,
        length: 100,
    };
    harness.submit(write, data.clone());
    harness.submit(
        Request {
            operation: Operation::Read,
            ..write
        },
        vec![],
    );
    harness.run_until_idle();
    let completions = harness.take_completions();
    println!("{completions:?}");
    assert_eq!(completions[1].data, data);
    harness.check_memory();
}
