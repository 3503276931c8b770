use npmu_abi::program::{self, ContextSettings, QueueSettings};
use npmu_abi::queue::{Descriptor, Opcode};
use npmu_abi::Config;
use npmu_model::DmaDirection;
use npmu_sim::{DeviceHarness, DeviceOptions};

#[test]
fn write_then_read_through_queues() {
    let options = DeviceOptions::default();
    let key = options.management_key;
    let mut device = DeviceHarness::verilated(&Config::SIM, options).unwrap();
    program::unlock(&mut device, key).unwrap();
    program::write_entries(&mut device, 0, &[Some(5), Some(9)]).unwrap();
    let settings = ContextSettings {
        tag: 7,
        read: true,
        write: true,
        initiator: Some(1),
        base: 0x10000,
        pages: 2,
        first_entry: 0,
    };
    let context_key = program::register_context(&mut device, 3, &settings).unwrap();
    device.map_host(0x100000, 0x10000, DmaDirection::Bidirectional);
    let queue = QueueSettings {
        submission_base: 0x100000,
        submission_entries: 16,
        completion_base: 0x101000,
        completion_entries: 16,
        interrupts: true,
        coalesce_count: 1,
        coalesce_clocks: 0,
    };
    device.set_up_queue(1, &queue).unwrap();
    let data: Vec<u8> = (0..100).map(|i| i as u8 ^ 0x5a).collect();
    device.write_host(0x102003, &data);
    let write = Descriptor {
        opcode: Opcode::Write as u8,
        context: 3.into(),
        key: context_key.into(),
        address: (0x10000 + 4090u64).into(),
        host_address: 0x102003u64.into(),
        length: 100.into(),
        tag: 11.into(),
        ..Descriptor::default()
    };
    let read = Descriptor {
        opcode: Opcode::Read as u8,
        host_address: 0x104005u64.into(),
        tag: 12.into(),
        ..write
    };
    device.submit(1, &write).unwrap();
    device.submit(1, &read).unwrap();
    device.run_until_idle();
    let completions = device.take_completions();
    assert_eq!(completions.len(), 2);
    assert_eq!(device.read_host(0x104005, 100), data);
    device.check_memory();
}
