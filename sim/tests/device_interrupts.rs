//! Interrupts: one message per queue when its completion ring receives entries, sent only
//! after the entries are in host memory, with per-queue enable, a coalescing count and a
//! coalescing timer, and none lost to back-pressure.

mod common;

use common::device::*;
use npmu_abi::program::QueueSettings;
use npmu_abi::queue::Opcode;
use npmu_abi::Config;
use npmu_sim::device_traffic::ring_settings;
use npmu_sim::{DeviceCompletion, DeviceOptions, DeviceStalls, Stall};

fn interrupting(device: &mut Device, queue: u16, count: u8, clocks: u16) {
    let settings = QueueSettings {
        interrupts: true,
        coalesce_count: count,
        coalesce_clocks: clocks,
        ..ring_settings(queue, 64)
    };
    device.set_up_queue(queue, &settings).unwrap();
}

/// Runs a NOP on `queue` and lets the NI settle; returns its completion.
fn nop(device: &mut Device, queue: u16, tag: u32) -> DeviceCompletion {
    device
        .submit(queue, &without_data(Opcode::Nop, tag))
        .unwrap();
    device.run_until_idle();
    for _ in 0..100 {
        device.step();
    }
    let completions = device.take_completions();
    assert_eq!(completions.len(), 1);
    completions[0]
}

#[test]
fn each_completion_interrupts_with_its_queue_as_vector_after_the_entry_is_written() {
    let (mut device, _) = set_up(&Config::SIM, DeviceOptions::default());
    for queue in 0..Config::SIM.queues as u16 {
        interrupting(&mut device, queue, 1, 0);
    }
    let mut completions = Vec::new();
    for round in 0..3 {
        for queue in 0..Config::SIM.queues as u16 {
            completions.push(nop(&mut device, queue, round));
        }
    }
    let interrupts = device.interrupts();
    assert_eq!(interrupts.len(), completions.len());
    for (completion, (clock, vector)) in completions.iter().zip(interrupts) {
        assert_eq!(u16::from(*vector), completion.queue);
        assert!(
            completion.clock < *clock,
            "interrupt at {clock} before its completion was visible at {}",
            completion.clock
        );
    }
}

#[test]
fn a_queue_with_interrupts_disabled_stays_silent() {
    let (mut device, _) = set_up(&Config::SIM, DeviceOptions::default());
    let settings = QueueSettings {
        interrupts: false,
        coalesce_count: 1,
        ..ring_settings(QUEUE, 64)
    };
    device.set_up_queue(QUEUE, &settings).unwrap();
    for tag in 0..10 {
        nop(&mut device, QUEUE, tag);
    }
    assert_eq!(device.interrupts(), []);
}

#[test]
fn a_coalescing_count_interrupts_once_per_that_many_completions() {
    let (mut device, _) = set_up(&Config::SIM, DeviceOptions::default());
    interrupting(&mut device, QUEUE, 4, 0);
    let completions: Vec<DeviceCompletion> =
        (0..10).map(|tag| nop(&mut device, QUEUE, tag)).collect();
    for _ in 0..5000 {
        device.step();
    }
    let clocks: Vec<u64> = device
        .interrupts()
        .iter()
        .map(|(clock, _)| *clock)
        .collect();
    // After the 4th and the 8th; the last two wait for more, however long, there being no
    // timer.
    assert_eq!(clocks.len(), 2);
    assert!(completions[3].clock <= clocks[0] && clocks[0] < completions[4].clock);
    assert!(completions[7].clock <= clocks[1] && clocks[1] < completions[8].clock);
}

#[test]
fn a_coalescing_timer_interrupts_for_completions_short_of_the_count() {
    let options = DeviceOptions::default();
    let host_latency = options.host_latency;
    let (mut device, _) = set_up(&Config::SIM, options);
    let wait = 300;
    interrupting(&mut device, QUEUE, 8, wait);
    for tag in 0..3 {
        device
            .submit(QUEUE, &without_data(Opcode::Nop, tag))
            .unwrap();
    }
    device.run_until_idle();
    for _ in 0..2 * u64::from(wait) {
        device.step();
    }
    let completions = device.take_completions();
    let interrupts = device.interrupts();
    assert_eq!(interrupts.len(), 1);
    // The timer runs from the first entry's write acknowledgement, a host latency after it
    // is visible.
    let first = completions[0].clock;
    let clock = interrupts[0].0;
    assert!(
        clock >= first + u64::from(wait),
        "interrupt at {clock}, first entry at {first}"
    );
    assert!(
        clock <= first + u64::from(wait) + host_latency + 10,
        "interrupt at {clock}, first entry at {first}"
    );
}

/// Completions on every queue at once, the interrupt port mostly stalled: each queue's last
/// completion is followed by an interrupt with its vector. (Completions of one queue that
/// land while its interrupt waits may share it: that is coalescing, not loss.)
#[test]
fn no_interrupt_is_lost_to_back_pressure() {
    let options = DeviceOptions {
        stalls: DeviceStalls {
            interrupt: Stall::Random(0.8),
            ..DeviceStalls::all(Stall::Random(0.2))
        },
        ..DeviceOptions::default()
    };
    let (mut device, _) = set_up(&Config::SIM, options);
    let queues = Config::SIM.queues as u16;
    for queue in 0..queues {
        interrupting(&mut device, queue, 1, 0);
    }
    let (rounds, per_round): (u16, u16) = (5, 3);
    for round in 0..rounds {
        for queue in 0..queues {
            for tag in 0..per_round {
                let descriptor = without_data(Opcode::Nop, u32::from(round * per_round + tag));
                device.submit(queue, &descriptor).unwrap();
            }
        }
        device.run_until_idle();
        for _ in 0..200 {
            device.step();
        }
    }
    let completions = device.take_completions();
    assert_eq!(completions.len(), usize::from(queues * rounds * per_round));
    for queue in 0..queues {
        let last = completions
            .iter()
            .filter(|completion| completion.queue == queue)
            .map(|completion| completion.clock)
            .max()
            .unwrap();
        assert!(
            device
                .interrupts()
                .iter()
                .any(|(clock, vector)| u16::from(*vector) == queue && *clock > last),
            "queue {queue}'s last completion, at {last}, was never announced"
        );
    }
}
