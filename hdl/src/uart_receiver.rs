//! A UART receiver: 8 data bits, no parity, one stop bit, `CLOCKS_PER_BIT` clocks a bit.
//!
//! The line is synchronized through two flip-flops, a start bit is confirmed in its middle
//! and every later bit sampled in its middle. A byte whose stop bit is low (a framing error
//! or a break) is dropped. A byte waits in `data` until taken; one that completes while the
//! previous is still waiting is dropped and raises `overrun` until reset.

use rust_hdl::prelude::*;

#[derive(Copy, Clone, Debug, PartialEq, LogicState)]
pub enum ReceiverState {
    Idle,
    Start,
    Data,
    Stop,
    /// After a low stop bit: waiting for the line to go idle before the next start bit.
    Break,
}

#[derive(LogicBlock)]
pub struct UartReceiver<const CLOCKS_PER_BIT: u64> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,
    /// The line, idle high.
    pub line: Signal<In, bool>,
    pub data_valid: Signal<Out, bool>,
    pub data_ready: Signal<In, bool>,
    pub data: Signal<Out, Bits<8>>,
    /// A byte was dropped because the previous one was not taken in time.
    pub overrun: Signal<Out, bool>,

    synchronizer: DFF<Bits<2>>,
    state: DFF<ReceiverState>,
    /// Clocks left until the next sample.
    countdown: DFF<Bits<16>>,
    bits_left: DFF<Bits<4>>,
    shifter: DFF<Bits<8>>,
    held: DFF<Bits<8>>,
    held_valid: DFF<bool>,
    overran: DFF<bool>,
    sample: Signal<Local, bool>,
    due: Signal<Local, bool>,
    taken: Signal<Local, bool>,

    half_bit: Constant<Bits<16>>,
    full_bit: Constant<Bits<16>>,
    one_16: Constant<Bits<16>>,
    eight: Constant<Bits<4>>,
    one_4: Constant<Bits<4>>,
    zero_16: Constant<Bits<16>>,
}

impl<const CLOCKS_PER_BIT: u64> Default for UartReceiver<CLOCKS_PER_BIT> {
    fn default() -> Self {
        assert!((4..1 << 15).contains(&CLOCKS_PER_BIT));
        Self {
            clock: Default::default(),
            reset: Default::default(),
            line: Default::default(),
            data_valid: Default::default(),
            data_ready: Default::default(),
            data: Default::default(),
            overrun: Default::default(),
            synchronizer: Default::default(),
            state: Default::default(),
            countdown: Default::default(),
            bits_left: Default::default(),
            shifter: Default::default(),
            held: Default::default(),
            held_valid: Default::default(),
            overran: Default::default(),
            sample: Default::default(),
            due: Default::default(),
            taken: Default::default(),
            // Counting down to zero takes one clock more than the count.
            half_bit: Constant::new((CLOCKS_PER_BIT / 2 - 1).into()),
            full_bit: Constant::new((CLOCKS_PER_BIT - 1).into()),
            one_16: Constant::new(1u64.into()),
            eight: Constant::new(8u64.into()),
            one_4: Constant::new(1u64.into()),
            zero_16: Constant::new(0u64.into()),
        }
    }
}

impl<const CLOCKS_PER_BIT: u64> Logic for UartReceiver<CLOCKS_PER_BIT> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            synchronizer,
            state,
            countdown,
            bits_left,
            shifter,
            held,
            held_valid,
            overran
        );
        self.synchronizer.d.next =
            (self.synchronizer.q.val() << 1) | bit_cast::<2, 1>(self.line.val().into());
        self.sample.next = self.synchronizer.q.val().get_bit(1);
        self.due.next = self.countdown.q.val() == self.zero_16.val();
        if !self.due.val() {
            self.countdown.d.next = self.countdown.q.val() - self.one_16.val();
        }

        self.data_valid.next = self.held_valid.q.val();
        self.data.next = self.held.q.val();
        self.overrun.next = self.overran.q.val();
        self.taken.next = self.held_valid.q.val() && self.data_ready.val();
        if self.taken.val() {
            self.held_valid.d.next = false;
        }

        match self.state.q.val() {
            ReceiverState::Idle => {
                if !self.sample.val() {
                    self.state.d.next = ReceiverState::Start;
                    self.countdown.d.next = self.half_bit.val();
                }
            }
            ReceiverState::Start => {
                if self.due.val() {
                    if self.sample.val() {
                        // A glitch, not a start bit.
                        self.state.d.next = ReceiverState::Idle;
                    } else {
                        self.state.d.next = ReceiverState::Data;
                        self.countdown.d.next = self.full_bit.val();
                        self.bits_left.d.next = self.eight.val();
                    }
                }
            }
            ReceiverState::Data => {
                if self.due.val() {
                    self.shifter.d.next = (self.shifter.q.val() >> 1)
                        | (bit_cast::<8, 1>(self.sample.val().into()) << 7);
                    self.bits_left.d.next = self.bits_left.q.val() - self.one_4.val();
                    self.countdown.d.next = self.full_bit.val();
                    if self.bits_left.q.val() == self.one_4.val() {
                        self.state.d.next = ReceiverState::Stop;
                    }
                }
            }
            ReceiverState::Stop => {
                if self.due.val() {
                    self.state.d.next = ReceiverState::Break;
                    if self.sample.val() {
                        self.state.d.next = ReceiverState::Idle;
                        if self.held_valid.q.val() && !self.taken.val() {
                            self.overran.d.next = true;
                        } else {
                            self.held.d.next = self.shifter.q.val();
                            self.held_valid.d.next = true;
                        }
                    }
                }
            }
            ReceiverState::Break => {
                if self.sample.val() {
                    self.state.d.next = ReceiverState::Idle;
                }
            }
            _ => {
                self.state.d.next = ReceiverState::Idle;
            }
        }

        if self.reset.val() {
            self.state.d.next = ReceiverState::Idle;
            self.held_valid.d.next = false;
            self.overran.d.next = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::cycle;

    const CLOCKS: u64 = 8;

    fn clock(receiver: &mut UartReceiver<CLOCKS>, level: bool) {
        receiver.clock.next = Clock { clk: level };
    }

    /// The line levels of `byte` in a frame, one per clock; `stop` is the stop bit's level.
    fn frame(byte: u8, stop: bool) -> Vec<bool> {
        let mut bits = vec![false];
        bits.extend((0..8).map(|bit| byte >> bit & 1 == 1));
        bits.push(stop);
        bits.into_iter()
            .flat_map(|bit| std::iter::repeat_n(bit, CLOCKS as usize))
            .collect()
    }

    /// Drives `levels` onto the line, taking bytes as they come if `take`.
    fn drive(receiver: &mut UartReceiver<CLOCKS>, levels: &[bool], take: bool) -> Vec<u8> {
        let mut received = Vec::new();
        receiver.data_ready.next = take;
        for level in levels.iter().copied().chain(std::iter::repeat_n(true, 40)) {
            receiver.line.next = level;
            crate::testing::settle(receiver);
            if take && receiver.data_valid.val() {
                received.push(receiver.data.val().to_u64() as u8);
            }
            cycle(receiver, clock);
        }
        received
    }

    fn receiver() -> UartReceiver<CLOCKS> {
        let mut receiver = UartReceiver::<CLOCKS>::default();
        receiver.connect_all();
        receiver.line.next = true;
        receiver
    }

    #[test]
    fn receives_bytes_back_to_back() {
        let mut receiver = receiver();
        let bytes = [0x00, 0xff, 0x55, 0xa5, 0x01, 0x80];
        let levels: Vec<bool> = bytes.iter().flat_map(|byte| frame(*byte, true)).collect();
        assert_eq!(drive(&mut receiver, &levels, true), bytes);
    }

    #[test]
    fn drops_a_byte_without_its_stop_bit_and_ignores_a_glitch() {
        let mut receiver = receiver();
        let mut levels = frame(0x3c, false);
        levels.extend([true; 16]);
        // Low for less than half a bit: not a start bit.
        levels.extend([false, false, true, true, true, true, true, true]);
        levels.extend(frame(0x42, true));
        assert_eq!(drive(&mut receiver, &levels, true), [0x42]);
    }

    #[test]
    fn flags_a_byte_that_found_the_previous_one_untaken() {
        let mut receiver = receiver();
        let levels: Vec<bool> = [0x11, 0x22]
            .iter()
            .flat_map(|byte| frame(*byte, true))
            .collect();
        drive(&mut receiver, &levels, false);
        crate::testing::settle(&mut receiver);
        assert_eq!(receiver.data.val().to_u64(), 0x11);
        assert!(receiver.overrun.val());
    }
}
