//! The realigner: moves a transfer's bytes from the lanes of their source addresses to the
//! lanes of their destination addresses, one beat a clock.
//!
//! Host buffers and network addresses need not agree modulo the data path width, so the
//! bytes of a transfer shift across lanes on their way. Each output beat combines the
//! previous input beat and the current one; a per-lane valid mask travels with the data and
//! comes out limited to the lanes the transfer covers.

use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct Realigner<const DATA_BITS: usize, const STROBE_BITS: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,

    /// A transfer: the lane of its first byte in the source and destination streams, and
    /// its length in bytes (at least 1).
    pub plan_valid: Signal<In, bool>,
    pub plan_ready: Signal<Out, bool>,
    pub plan_source_lane: Signal<In, Bits<4>>,
    pub plan_destination_lane: Signal<In, Bits<4>>,
    pub plan_length: Signal<In, Bits<32>>,

    pub input_valid: Signal<In, bool>,
    pub input_ready: Signal<Out, bool>,
    pub input_data: Signal<In, Bits<DATA_BITS>>,
    pub input_mask: Signal<In, Bits<STROBE_BITS>>,

    pub output_valid: Signal<Out, bool>,
    pub output_ready: Signal<In, bool>,
    pub output_data: Signal<Out, Bits<DATA_BITS>>,
    pub output_mask: Signal<Out, Bits<STROBE_BITS>>,
    pub output_last: Signal<Out, bool>,

    active: DFF<bool>,
    /// The destination starts at a lower lane than the source: the first output needs two
    /// inputs, so the first input is only loaded.
    priming: DFF<bool>,
    shift: DFF<Bits<4>>,
    first_lane: DFF<Bits<4>>,
    end_lane: DFF<Bits<4>>,
    inputs_left: DFF<Bits<32>>,
    outputs_left: DFF<Bits<32>>,
    first_output: DFF<bool>,
    previous_data: DFF<Bits<DATA_BITS>>,
    previous_mask: DFF<Bits<STROBE_BITS>>,

    source_beats: Signal<Local, Bits<32>>,
    destination_beats: Signal<Local, Bits<32>>,
    source_span: Signal<Local, Bits<32>>,
    destination_span: Signal<Local, Bits<32>>,
    flushing: Signal<Local, bool>,
    current_data: Signal<Local, Bits<DATA_BITS>>,
    current_mask: Signal<Local, Bits<STROBE_BITS>>,
    lanes_behind: Signal<Local, Bits<4>>,
    combined_data: Signal<Local, Bits<DATA_BITS>>,
    combined_mask: Signal<Local, Bits<STROBE_BITS>>,
    range_mask: Signal<Local, Bits<STROBE_BITS>>,
    lanes_from_end: Signal<Local, Bits<4>>,
    emits: Signal<Local, bool>,
    takes: Signal<Local, bool>,
    emitted: Signal<Local, bool>,

    lanes: Constant<Bits<4>>,
    lane_mask: Constant<Bits<4>>,
    lane_mask_32: Constant<Bits<32>>,
    beat_shift: Constant<Bits<8>>,
    byte_shift: Constant<Bits<8>>,
    all_lanes: Constant<Bits<STROBE_BITS>>,
    no_lanes: Constant<Bits<STROBE_BITS>>,
    zero_data: Constant<Bits<DATA_BITS>>,
    zero_4: Constant<Bits<4>>,
    one_4: Constant<Bits<4>>,
    zero_32: Constant<Bits<32>>,
    one_32: Constant<Bits<32>>,
}

impl<const DATA_BITS: usize, const STROBE_BITS: usize> Realigner<DATA_BITS, STROBE_BITS> {
    pub fn new() -> Self {
        assert_eq!(DATA_BITS, 8 * STROBE_BITS);
        assert!(STROBE_BITS.is_power_of_two() && STROBE_BITS <= 8);
        let lanes = STROBE_BITS as u64;
        Self {
            clock: Default::default(),
            reset: Default::default(),
            plan_valid: Default::default(),
            plan_ready: Default::default(),
            plan_source_lane: Default::default(),
            plan_destination_lane: Default::default(),
            plan_length: Default::default(),
            input_valid: Default::default(),
            input_ready: Default::default(),
            input_data: Default::default(),
            input_mask: Default::default(),
            output_valid: Default::default(),
            output_ready: Default::default(),
            output_data: Default::default(),
            output_mask: Default::default(),
            output_last: Default::default(),
            active: Default::default(),
            priming: Default::default(),
            shift: Default::default(),
            first_lane: Default::default(),
            end_lane: Default::default(),
            inputs_left: Default::default(),
            outputs_left: Default::default(),
            first_output: Default::default(),
            previous_data: Default::default(),
            previous_mask: Default::default(),
            source_beats: Default::default(),
            destination_beats: Default::default(),
            source_span: Default::default(),
            destination_span: Default::default(),
            flushing: Default::default(),
            current_data: Default::default(),
            current_mask: Default::default(),
            lanes_behind: Default::default(),
            combined_data: Default::default(),
            combined_mask: Default::default(),
            range_mask: Default::default(),
            lanes_from_end: Default::default(),
            emits: Default::default(),
            takes: Default::default(),
            emitted: Default::default(),
            lanes: Constant::new(lanes.into()),
            lane_mask: Constant::new((lanes - 1).into()),
            lane_mask_32: Constant::new((lanes - 1).into()),
            beat_shift: Constant::new(u64::from(lanes.trailing_zeros()).into()),
            byte_shift: Constant::new(3u64.into()),
            all_lanes: Constant::new(((1u64 << STROBE_BITS) - 1).into()),
            no_lanes: Constant::new(0u64.into()),
            zero_data: Constant::new(0u64.into()),
            zero_4: Constant::new(0u64.into()),
            one_4: Constant::new(1u64.into()),
            zero_32: Constant::new(0u64.into()),
            one_32: Constant::new(1u64.into()),
        }
    }
}

impl<const DATA_BITS: usize, const STROBE_BITS: usize> Default
    for Realigner<DATA_BITS, STROBE_BITS>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<const DATA_BITS: usize, const STROBE_BITS: usize> Logic for Realigner<DATA_BITS, STROBE_BITS> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            active,
            priming,
            shift,
            first_lane,
            end_lane,
            inputs_left,
            outputs_left,
            first_output,
            previous_data,
            previous_mask
        );

        // A new plan: beats on either side, and the lane shift between them.
        self.plan_ready.next = !self.active.q.val() && !self.reset.val();
        self.source_span.next = bit_cast::<32, 4>(self.plan_source_lane.val())
            + self.plan_length.val()
            + self.lane_mask_32.val();
        self.destination_span.next = bit_cast::<32, 4>(self.plan_destination_lane.val())
            + self.plan_length.val()
            + self.lane_mask_32.val();
        self.source_beats.next = self.source_span.val() >> self.beat_shift.val();
        self.destination_beats.next = self.destination_span.val() >> self.beat_shift.val();
        if self.plan_valid.val() && !self.active.q.val() {
            self.active.d.next = true;
            self.priming.d.next = self.plan_source_lane.val() > self.plan_destination_lane.val();
            self.shift.d.next = (self.plan_destination_lane.val() - self.plan_source_lane.val())
                & self.lane_mask.val();
            self.first_lane.d.next = self.plan_destination_lane.val();
            // One past the lane of the last byte: 1 to the width.
            self.end_lane.d.next = ((self.plan_destination_lane.val()
                + self.plan_length.val().get_bits::<4>(0)
                - self.one_4.val())
                & self.lane_mask.val())
                + self.one_4.val();
            self.inputs_left.d.next = self.source_beats.val();
            self.outputs_left.d.next = self.destination_beats.val();
            self.first_output.d.next = true;
            self.previous_data.d.next = self.zero_data.val();
            self.previous_mask.d.next = self.no_lanes.val();
        }

        // One output from the previous input and the current one (zero once inputs run out).
        self.flushing.next =
            self.active.q.val() && (self.inputs_left.q.val() == self.zero_32.val());
        self.current_data.next = self.input_data.val();
        self.current_mask.next = self.input_mask.val();
        if self.flushing.val() {
            self.current_data.next = self.zero_data.val();
            self.current_mask.next = self.no_lanes.val();
        }
        self.lanes_behind.next = self.lanes.val() - self.shift.q.val();
        self.combined_data.next = self.current_data.val();
        self.combined_mask.next = self.current_mask.val();
        if self.shift.q.val() != self.zero_4.val() {
            self.combined_data.next = (self.previous_data.q.val()
                >> (bit_cast::<8, 4>(self.lanes_behind.val()) << self.byte_shift.val()))
                | (self.current_data.val()
                    << (bit_cast::<8, 4>(self.shift.q.val()) << self.byte_shift.val()));
            self.combined_mask.next = (self.previous_mask.q.val() >> self.lanes_behind.val())
                | (self.current_mask.val() << self.shift.q.val());
        }
        // The lanes of this destination beat that the transfer covers.
        self.lanes_from_end.next = self.lanes.val() - self.end_lane.q.val();
        self.range_mask.next = self.all_lanes.val();
        if self.first_output.q.val() {
            self.range_mask.next = self.all_lanes.val() << self.first_lane.q.val();
        }
        if self.outputs_left.q.val() == self.one_32.val() {
            self.range_mask.next =
                self.range_mask.val() & (self.all_lanes.val() >> self.lanes_from_end.val());
        }

        // Priming takes an input without an output; flushing gives one without an input.
        self.emits.next = self.active.q.val()
            && !self.priming.q.val()
            && (self.flushing.val() || self.input_valid.val());
        self.takes.next = self.active.q.val()
            && !self.flushing.val()
            && self.input_valid.val()
            && (self.priming.q.val() || self.output_ready.val());
        self.output_valid.next = self.emits.val();
        self.output_data.next = self.combined_data.val();
        self.output_mask.next = self.combined_mask.val() & self.range_mask.val();
        self.output_last.next = self.outputs_left.q.val() == self.one_32.val();
        self.input_ready.next = self.active.q.val()
            && !self.flushing.val()
            && (self.priming.q.val() || self.output_ready.val());
        self.emitted.next = self.emits.val() && self.output_ready.val();

        if self.takes.val() {
            self.previous_data.d.next = self.input_data.val();
            self.previous_mask.d.next = self.input_mask.val();
            self.inputs_left.d.next = self.inputs_left.q.val() - self.one_32.val();
            self.priming.d.next = false;
        }
        if self.emitted.val() {
            self.first_output.d.next = false;
            self.outputs_left.d.next = self.outputs_left.q.val() - self.one_32.val();
            if self.outputs_left.q.val() == self.one_32.val() {
                self.active.d.next = false;
            }
        }
        if self.reset.val() {
            self.active.d.next = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cycle, settle};
    use rand::{Rng, SeedableRng};
    use std::collections::VecDeque;

    type Small = Realigner<32, 4>;

    fn beats(lane: usize, bytes: &[u8]) -> Vec<(u64, u64)> {
        crate::testing::lane_beats(4, lane, bytes)
    }

    #[test]
    fn every_lane_combination_and_length_comes_out_in_place() {
        let mut random =
            rand::rngs::StdRng::seed_from_u64(npmu_test_seed::seed("realigner lanes", 3));
        let mut realigner = Small::new();
        realigner.connect_all();
        let clock = |r: &mut Small, level| r.clock.next = Clock { clk: level };
        for source in 0..4usize {
            for destination in 0..4usize {
                for length in [1usize, 2, 3, 4, 5, 7, 8, 9, 13, 31] {
                    let bytes: Vec<u8> = (0..length).map(|_| random.gen_range(1..=255)).collect();
                    let mut input: VecDeque<(u64, u64)> = beats(source, &bytes).into();
                    let expected = beats(destination, &bytes);
                    realigner.plan_valid.next = true;
                    realigner.plan_source_lane.next = (source as u64).into();
                    realigner.plan_destination_lane.next = (destination as u64).into();
                    realigner.plan_length.next = (length as u64).into();
                    cycle(&mut realigner, clock);
                    realigner.plan_valid.next = false;
                    let mut output = Vec::new();
                    for _ in 0..100 {
                        realigner.input_valid.next = !input.is_empty() && random.gen_bool(0.7);
                        let (data, _) = input.front().copied().unwrap_or_default();
                        realigner.input_data.next = data.into();
                        realigner.input_mask.next = 0xfu64.into();
                        realigner.output_ready.next = random.gen_bool(0.7);
                        settle(&mut realigner);
                        if realigner.input_valid.val() && realigner.input_ready.val() {
                            input.pop_front();
                        }
                        if realigner.output_valid.val() && realigner.output_ready.val() {
                            output.push((
                                realigner.output_data.val().to_u64(),
                                realigner.output_mask.val().to_u64(),
                                realigner.output_last.val(),
                            ));
                        }
                        cycle(&mut realigner, clock);
                    }
                    let lasts: Vec<bool> = output.iter().map(|beat| beat.2).collect();
                    let masked: Vec<(u64, u64)> = output
                        .iter()
                        .map(|(data, mask, _)| {
                            let lanes = (0..4).filter(|lane| mask >> lane & 1 == 1);
                            (
                                lanes.fold(0, |kept, lane| kept | data & 0xff << (8 * lane)),
                                *mask,
                            )
                        })
                        .collect();
                    assert_eq!(
                        masked, expected,
                        "{source} -> {destination}, {length} bytes"
                    );
                    assert!(input.is_empty(), "every input consumed");
                    assert_eq!(lasts.iter().filter(|last| **last).count(), 1);
                    assert_eq!(lasts.last(), Some(&true));
                }
            }
        }
    }

    #[test]
    fn invalid_input_lanes_stay_invalid() {
        let mut realigner = Small::new();
        realigner.connect_all();
        let clock = |r: &mut Small, level| r.clock.next = Clock { clk: level };
        realigner.plan_valid.next = true;
        realigner.plan_source_lane.next = 1u64.into();
        realigner.plan_destination_lane.next = 3u64.into();
        realigner.plan_length.next = 6u64.into();
        cycle(&mut realigner, clock);
        realigner.plan_valid.next = false;
        realigner.output_ready.next = true;
        let mut masks = Vec::new();
        for mask in [0b1110u64, 0b0000, 0b0000] {
            realigner.input_valid.next = true;
            realigner.input_mask.next = mask.into();
            settle(&mut realigner);
            if realigner.output_valid.val() {
                masks.push(realigner.output_mask.val().to_u64());
            }
            cycle(&mut realigner, clock);
        }
        // Source lanes 1..3 valid become destination lanes 3, then 0..1; the rest invalid.
        assert_eq!(masks, vec![0b1000, 0b0011, 0b0000]);
    }
}
