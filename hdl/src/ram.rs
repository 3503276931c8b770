//! The two memory primitives of the design, the only hand-written Verilog in it (through
//! RustHDL's custom-Verilog hook): RustHDL has no memory array it can index at run time
//! except its own `RAM`, whose read-old-data collision semantics cost Yosys extra logic.
//!
//! * [`BlockRam`]: one synchronous read port with a read enable (the data register holds
//!   its value while the enable is low, so a stalled pipeline stage keeps its operand) and
//!   one write port. Marked `(* no_rw_check *)`: reading an address in the cycle it is
//!   written returns undefined data, and the design never does so. Infers SB_RAM40_4K on
//!   iCE40 and DP16KD on ECP5.
//! * [`RegisterFile`]: one combinational read port and one write port, for small FIFOs
//!   whose head must be visible in the cycle it is needed. Maps to flip-flops or LUT RAM.

use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct BlockRam<D: Synth, const ADDRESS_BITS: usize> {
    pub clock: Signal<In, Clock>,
    pub read_enable: Signal<In, bool>,
    pub read_address: Signal<In, Bits<ADDRESS_BITS>>,
    pub read_data: Signal<Out, D>,
    pub write_enable: Signal<In, bool>,
    pub write_address: Signal<In, Bits<ADDRESS_BITS>>,
    pub write_data: Signal<In, D>,
    _contents: Vec<D>,
}

impl<D: Synth, const ADDRESS_BITS: usize> Default for BlockRam<D, ADDRESS_BITS> {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            read_enable: Default::default(),
            read_address: Default::default(),
            read_data: Default::default(),
            write_enable: Default::default(),
            write_address: Default::default(),
            write_data: Default::default(),
            _contents: vec![D::default(); 1 << ADDRESS_BITS],
        }
    }
}

impl<D: Synth, const ADDRESS_BITS: usize> Logic for BlockRam<D, ADDRESS_BITS> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let read = self.read_address.val().index();
            let write = self.write_address.val().index();
            assert!(
                !(self.read_enable.val() && self.write_enable.val() && read == write),
                "block RAM read and write of address {read} in one cycle: data undefined"
            );
            if self.read_enable.val() {
                self.read_data.next = self._contents[read];
            }
            if self.write_enable.val() {
                self._contents[write] = self.write_data.val();
            }
        }
    }

    fn connect(&mut self) {
        self.read_data.connect();
    }

    fn hdl(&self) -> Verilog {
        Verilog::Custom(format!(
            "\
(* no_rw_check *)
reg [{msb}:0] contents [0:{last}];

always @(posedge clock) begin
    if (read_enable) begin
        read_data <= contents[read_address];
    end
    if (write_enable) begin
        contents[write_address] <= write_data;
    end
end
",
            msb = D::BITS - 1,
            last = (1usize << ADDRESS_BITS) - 1,
        ))
    }

    fn timing(&self) -> Vec<TimingInfo> {
        vec![TimingInfo {
            name: "block_ram".into(),
            clock: "clock".into(),
            inputs: vec![
                "read_enable".into(),
                "read_address".into(),
                "write_enable".into(),
                "write_address".into(),
                "write_data".into(),
            ],
            outputs: vec!["read_data".into()],
        }]
    }
}

#[derive(LogicBlock)]
pub struct RegisterFile<D: Synth, const ADDRESS_BITS: usize> {
    pub clock: Signal<In, Clock>,
    pub read_address: Signal<In, Bits<ADDRESS_BITS>>,
    pub read_data: Signal<Out, D>,
    pub write_enable: Signal<In, bool>,
    pub write_address: Signal<In, Bits<ADDRESS_BITS>>,
    pub write_data: Signal<In, D>,
    _contents: Vec<D>,
}

impl<D: Synth, const ADDRESS_BITS: usize> Default for RegisterFile<D, ADDRESS_BITS> {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            read_address: Default::default(),
            read_data: Default::default(),
            write_enable: Default::default(),
            write_address: Default::default(),
            write_data: Default::default(),
            _contents: vec![D::default(); 1 << ADDRESS_BITS],
        }
    }
}

impl<D: Synth, const ADDRESS_BITS: usize> Logic for RegisterFile<D, ADDRESS_BITS> {
    fn update(&mut self) {
        if self.clock.pos_edge() && self.write_enable.val() {
            self._contents[self.write_address.val().index()] = self.write_data.val();
        }
        self.read_data.next = self._contents[self.read_address.val().index()];
    }

    fn connect(&mut self) {
        self.read_data.connect();
    }

    fn hdl(&self) -> Verilog {
        Verilog::Custom(format!(
            "\
reg [{msb}:0] contents [0:{last}];

always @(posedge clock) begin
    if (write_enable) begin
        contents[write_address] <= write_data;
    end
end

always @(*) begin
    read_data = contents[read_address];
end
",
            msb = D::BITS - 1,
            last = (1usize << ADDRESS_BITS) - 1,
        ))
    }

    fn timing(&self) -> Vec<TimingInfo> {
        vec![TimingInfo {
            name: "register_file_write".into(),
            clock: "clock".into(),
            inputs: vec![
                "write_enable".into(),
                "write_address".into(),
                "write_data".into(),
            ],
            outputs: vec![],
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cycle, settle};

    fn block_ram_clock(ram: &mut BlockRam<Bits<12>, 4>, level: bool) {
        ram.clock.next = Clock { clk: level };
    }

    #[test]
    fn block_ram_reads_a_clock_late_and_holds_while_disabled() {
        let mut ram = BlockRam::<Bits<12>, 4>::default();
        ram.connect_all();
        ram.write_enable.next = true;
        ram.write_address.next = 3u64.into();
        ram.write_data.next = 0xabcu64.into();
        cycle(&mut ram, block_ram_clock);
        ram.write_enable.next = false;
        ram.read_enable.next = true;
        ram.read_address.next = 3u64.into();
        settle(&mut ram);
        assert_eq!(ram.read_data.val().to_u64(), 0, "not before the clock edge");
        cycle(&mut ram, block_ram_clock);
        assert_eq!(ram.read_data.val().to_u64(), 0xabc);
        ram.read_enable.next = false;
        ram.read_address.next = 4u64.into();
        cycle(&mut ram, block_ram_clock);
        assert_eq!(
            ram.read_data.val().to_u64(),
            0xabc,
            "held while the enable is low"
        );
    }

    #[test]
    #[should_panic(expected = "read and write of address 5 in one cycle")]
    fn block_ram_refuses_a_read_of_the_address_being_written() {
        let mut ram = BlockRam::<Bits<12>, 4>::default();
        ram.connect_all();
        ram.write_enable.next = true;
        ram.read_enable.next = true;
        ram.write_address.next = 5u64.into();
        ram.read_address.next = 5u64.into();
        cycle(&mut ram, block_ram_clock);
    }

    #[test]
    fn register_file_reads_at_once() {
        let mut file = RegisterFile::<Bits<8>, 2>::default();
        file.connect_all();
        let clock =
            |file: &mut RegisterFile<Bits<8>, 2>, level| file.clock.next = Clock { clk: level };
        file.write_enable.next = true;
        file.write_address.next = 2u64.into();
        file.write_data.next = 0x5au64.into();
        file.read_address.next = 2u64.into();
        settle(&mut file);
        assert_eq!(file.read_data.val().to_u64(), 0);
        cycle(&mut file, clock);
        assert_eq!(file.read_data.val().to_u64(), 0x5a);
    }

    #[test]
    fn block_ram_verilog_waives_the_collision_check() {
        let mut ram = BlockRam::<Bits<12>, 4>::default();
        ram.connect_all();
        let verilog = crate::verilog::generate("ram", &ram).unwrap();
        assert!(verilog.contains("(* no_rw_check *)"));
        assert!(verilog.contains("reg [11:0] contents [0:15];"));
    }
}
