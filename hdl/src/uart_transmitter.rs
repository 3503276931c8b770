//! A UART transmitter: 8 data bits, no parity, one stop bit, `CLOCKS_PER_BIT` clocks a bit.

use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct UartTransmitter<const CLOCKS_PER_BIT: u64> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, bool>,
    pub data_valid: Signal<In, bool>,
    pub data_ready: Signal<Out, bool>,
    pub data: Signal<In, Bits<8>>,
    /// The line, idle high.
    pub line: Signal<Out, bool>,

    /// Start bit, data bits, stop bit, shifted out from bit 0.
    frame: DFF<Bits<10>>,
    bits_left: DFF<Bits<4>>,
    countdown: DFF<Bits<16>>,
    due: Signal<Local, bool>,
    idle: Signal<Local, bool>,

    full_bit: Constant<Bits<16>>,
    one_16: Constant<Bits<16>>,
    zero_16: Constant<Bits<16>>,
    ten: Constant<Bits<4>>,
    one_4: Constant<Bits<4>>,
    zero_4: Constant<Bits<4>>,
    stop_bit: Constant<Bits<10>>,
}

impl<const CLOCKS_PER_BIT: u64> Default for UartTransmitter<CLOCKS_PER_BIT> {
    fn default() -> Self {
        assert!((4..1 << 15).contains(&CLOCKS_PER_BIT));
        Self {
            clock: Default::default(),
            reset: Default::default(),
            data_valid: Default::default(),
            data_ready: Default::default(),
            data: Default::default(),
            line: Default::default(),
            frame: Default::default(),
            bits_left: Default::default(),
            countdown: Default::default(),
            due: Default::default(),
            idle: Default::default(),
            full_bit: Constant::new((CLOCKS_PER_BIT - 1).into()),
            one_16: Constant::new(1u64.into()),
            zero_16: Constant::new(0u64.into()),
            ten: Constant::new(10u64.into()),
            one_4: Constant::new(1u64.into()),
            zero_4: Constant::new(0u64.into()),
            stop_bit: Constant::new((1u64 << 9).into()),
        }
    }
}

impl<const CLOCKS_PER_BIT: u64> Logic for UartTransmitter<CLOCKS_PER_BIT> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, frame, bits_left, countdown);
        self.due.next = self.countdown.q.val() == self.zero_16.val();
        if !self.due.val() {
            self.countdown.d.next = self.countdown.q.val() - self.one_16.val();
        }
        self.idle.next = self.bits_left.q.val() == self.zero_4.val();
        self.line.next = self.idle.val() || self.frame.q.val().get_bit(0);
        self.data_ready.next = self.idle.val() && !self.reset.val();
        if self.idle.val() {
            if self.data_valid.val() && !self.reset.val() {
                self.frame.d.next = self.stop_bit.val() | (bit_cast::<10, 8>(self.data.val()) << 1);
                self.bits_left.d.next = self.ten.val();
                self.countdown.d.next = self.full_bit.val();
            }
        } else if self.due.val() {
            self.frame.d.next = self.frame.q.val() >> 1;
            self.bits_left.d.next = self.bits_left.q.val() - self.one_4.val();
            self.countdown.d.next = self.full_bit.val();
        }
        if self.reset.val() {
            self.bits_left.d.next = self.zero_4.val();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cycle, settle};

    const CLOCKS: u64 = 5;

    #[test]
    fn sends_each_byte_as_start_data_and_stop_bits() {
        let mut transmitter = UartTransmitter::<CLOCKS>::default();
        transmitter.connect_all();
        let clock = |t: &mut UartTransmitter<CLOCKS>, level| t.clock.next = Clock { clk: level };
        let bytes = [0xa5u8, 0x00, 0xff];
        let mut queue = bytes.to_vec();
        let mut levels = Vec::new();
        for _ in 0..(bytes.len() as u64 * 10 * CLOCKS + 20) {
            transmitter.data_valid.next = !queue.is_empty();
            transmitter.data.next = u64::from(queue.first().copied().unwrap_or(0)).into();
            settle(&mut transmitter);
            levels.push(transmitter.line.val());
            if transmitter.data_ready.val() && !queue.is_empty() {
                queue.remove(0);
            }
            cycle(&mut transmitter, clock);
        }
        // Decode the line as a receiver would: each bit sampled in its middle.
        let mut decoded = Vec::new();
        let mut at = levels.iter().position(|level| !level).unwrap();
        while at + 10 * CLOCKS as usize <= levels.len() {
            let bit = |index: usize| levels[at + index * CLOCKS as usize + CLOCKS as usize / 2];
            assert!(!bit(0), "start bit");
            assert!(bit(9), "stop bit");
            decoded.push((1..9).fold(0u8, |byte, index| {
                byte | u8::from(bit(index)) << (index - 1)
            }));
            at += 10 * CLOCKS as usize;
            match levels[at..].iter().position(|level| !level) {
                Some(next) => at += next,
                None => break,
            }
        }
        assert_eq!(decoded, bytes);
        assert!(
            levels[levels.len() - 10..].iter().all(|level| *level),
            "idle high"
        );
    }
}
