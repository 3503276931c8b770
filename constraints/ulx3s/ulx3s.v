// ULX3S wrapper of npmu_board: the board's clock, reset, LEDs and memory around the
// generated, vendor-neutral npmu_board (the protection core behind its serial bridge).
//
// Clock: the 25 MHz oscillator through the PLL to 100 MHz; the UART runs at 1 Mbaud (100
// clocks a bit: the FT231X tops out at 3 Mbaud). Persistent memory: 128 KiB of block RAM
// (DP16KD), the capacity of the ice40 configuration this build uses; the board's SDRAM
// needs a controller npmu does not have yet.
`default_nettype none

module npmu_ulx3s #(
    parameter [63:0] MANAGEMENT_KEY = 64'h6e706d756b657921
) (
    input  wire clock_25mhz,
    input  wire uart_receive,
    output wire uart_transmit,
    input  wire button_n,
    output wire led_running,
    output wire led_overrun
);
    wire clock;
    wire locked;
    // 25 MHz / CLKI_DIV * CLKFB_DIV = 100 MHz; VCO = 100 MHz * CLKOP_DIV = 600 MHz
    // (ecppll -i 25 -o 100).
    (* ICP_CURRENT="12" *) (* LPF_RESISTOR="8" *) (* MFG_ENABLE_FILTEROPAMP="1" *) (* MFG_GMCREF_SEL="2" *)
    EHXPLLL #(
        .PLLRST_ENA("DISABLED"),
        .INTFB_WAKE("DISABLED"),
        .STDBY_ENABLE("DISABLED"),
        .DPHASE_SOURCE("DISABLED"),
        .OUTDIVIDER_MUXA("DIVA"),
        .OUTDIVIDER_MUXB("DIVB"),
        .OUTDIVIDER_MUXC("DIVC"),
        .OUTDIVIDER_MUXD("DIVD"),
        .CLKI_DIV(1),
        .CLKOP_ENABLE("ENABLED"),
        .CLKOP_DIV(6),
        .CLKOP_CPHASE(2),
        .CLKOP_FPHASE(0),
        .FEEDBK_PATH("CLKOP"),
        .CLKFB_DIV(4)
    ) pll (
        .RST(1'b0),
        .STDBY(1'b0),
        .CLKI(clock_25mhz),
        .CLKOP(clock),
        .CLKFB(clock),
        .CLKINTFB(),
        .PHASESEL0(1'b0),
        .PHASESEL1(1'b0),
        .PHASEDIR(1'b1),
        .PHASESTEP(1'b1),
        .PHASELOADREG(1'b1),
        .PLLWAKESYNC(1'b0),
        .ENCLKOP(1'b0),
        .LOCK(locked)
    );

    // Held in reset until the PLL locks and for 2^16 clocks after, or while the button is down.
    reg [16:0] reset_count = 0;
    wire reset = !reset_count[16];
    always @(posedge clock) begin
        if (!locked || !button_n)
            reset_count <= 0;
        else if (reset)
            reset_count <= reset_count + 1'b1;
    end

    wire memory_request_valid;
    wire memory_request_ready;
    wire memory_request_write;
    wire [47:0] memory_request_address;
    wire [31:0] memory_request_write_data;
    wire [3:0] memory_request_byte_enable;
    wire memory_response_valid;
    wire memory_response_ready;
    wire uart_overrun;
    reg [31:0] response_data;

    npmu_board board (
        .clock(clock),
        .reset(reset),
        .management_key(MANAGEMENT_KEY),
        .uart_receive(uart_receive),
        .uart_transmit(uart_transmit),
        .uart_overrun(uart_overrun),
        .memory_request_valid(memory_request_valid),
        .memory_request_ready(memory_request_ready),
        .memory_request_write(memory_request_write),
        .memory_request_address(memory_request_address),
        .memory_request_write_data(memory_request_write_data),
        .memory_request_byte_enable(memory_request_byte_enable),
        .memory_request_context(),
        .memory_response_valid(memory_response_valid),
        .memory_response_ready(memory_response_ready),
        .memory_response_data(response_data)
    );

    // One request at a time, in steps that each end in flip-flops. The request is
    // registered on the way in: its write enables reach 64 block RAMs across the chip. The
    // RAM works in the next clock. A block RAM's data arrives 5.6 ns after the clock, so in
    // the clock after that it is copied into flip-flops beside its block RAM, and then the
    // bank's copy is selected into the answer, which waits until the core takes it. Memory
    // is 16 banks of 2 KiB a byte lane, one DP16KD each.
    reg held = 1'b0;
    reg read = 1'b0;
    reg copied = 1'b0;
    reg pending = 1'b0;
    reg held_write;
    reg [3:0] held_byte_enable;
    reg [31:0] held_write_data;
    // Stable until the answer is taken: no other request is taken meanwhile.
    reg [3:0] bank;
    reg [10:0] offset;
    wire [511:0] copies;
    assign memory_request_ready = !held && !read && !copied && !pending;
    assign memory_response_valid = pending;
    always @(posedge clock) begin
        held <= memory_request_valid && memory_request_ready;
        read <= held;
        copied <= read;
        if (memory_request_valid && memory_request_ready) begin
            held_write <= memory_request_write;
            held_byte_enable <= memory_request_byte_enable;
            held_write_data <= memory_request_write_data;
            bank <= memory_request_address[16:13];
            offset <= memory_request_address[12:2];
        end
        if (copied) begin
            pending <= 1'b1;
            response_data <= copies[32 * bank +: 32];
        end
        if (memory_response_valid && memory_response_ready)
            pending <= 1'b0;
        if (reset) begin
            held <= 1'b0;
            read <= 1'b0;
            copied <= 1'b0;
            pending <= 1'b0;
        end
    end

    genvar bank_index, lane;
    generate
        for (bank_index = 0; bank_index < 16; bank_index = bank_index + 1) begin : banks
            for (lane = 0; lane < 4; lane = lane + 1) begin : lanes
                reg [7:0] bytes [0:2047];
                reg [7:0] data;
                reg [7:0] copy;
                always @(posedge clock) begin
                    if (held && bank == bank_index) begin
                        if (held_write && held_byte_enable[lane])
                            bytes[offset] <= held_write_data[8 * lane +: 8];
                        data <= bytes[offset];
                    end
                    copy <= data;
                end
                assign copies[32 * bank_index + 8 * lane +: 8] = copy;
            end
        end
    endgenerate

    // The LED from its own flip-flop, so that the reset register, which reaches every
    // register of the design, is not pulled out to the LED's pin.
    reg led_running_register = 1'b0;
    always @(posedge clock)
        led_running_register <= !reset;
    assign led_running = led_running_register;
    assign led_overrun = uart_overrun;
endmodule

`default_nettype wire
