// iCEBreaker wrapper of npmu_board: the board's clock, reset, LEDs and memory around the
// generated, vendor-neutral npmu_board (the protection core behind its serial bridge).
//
// Clock: the 12 MHz oscillator through the PLL to 24 MHz, which the UART at 3 Mbaud
// needs (8 clocks a bit). Persistent memory: the UP5K's four SPRAMs, 128 KiB as 32K
// words of 32 bits. SPRAM keeps its contents across core resets and host reconnects but
// not across a power cycle.
`default_nettype none

module npmu_icebreaker #(
    // The secret that opens the management lock; build your own with
    // `npmu-synth --board icebreaker --management-key 0x...`.
    parameter [63:0] MANAGEMENT_KEY = 64'h6e706d756b657921
) (
    input  wire clock_12mhz,
    input  wire uart_receive,
    output wire uart_transmit,
    input  wire button_n,
    output wire led_red_n,
    output wire led_green_n
);
    wire clock;
    wire locked;
    // 12 MHz * (DIVF + 1) / (2^DIVQ * (DIVR + 1)) = 24 MHz, VCO 768 MHz (icepll -i 12 -o 24).
    SB_PLL40_PAD #(
        .FEEDBACK_PATH("SIMPLE"),
        .DIVR(4'b0000),
        .DIVF(7'b0111111),
        .DIVQ(3'b101),
        .FILTER_RANGE(3'b001)
    ) pll (
        .PACKAGEPIN(clock_12mhz),
        .PLLOUTGLOBAL(clock),
        .LOCK(locked),
        .RESETB(1'b1),
        .BYPASS(1'b0)
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
    wire [31:0] memory_response_data;
    wire uart_overrun;

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
        .memory_response_data(memory_response_data)
    );

    // One request at a time. It is held in registers the clock it is accepted, so that
    // no path from the core runs on across the chip to the SPRAMs in the corner; the
    // SPRAMs take it the clock after, their output is captured the clock after that, and
    // the answer waits until the core takes it.
    reg pending = 1'b0;
    reg holding = 1'b0;
    reg capturing = 1'b0;
    reg held_write;
    reg [14:0] held_word;
    reg [31:0] held_data;
    reg [3:0] held_enable;
    reg [31:0] read_data;
    wire accepted = memory_request_valid && !pending;
    // Bank 0 (the lower 64 KiB) in bits 31:0, bank 1 in bits 63:32.
    wire [63:0] bank_data;
    assign memory_request_ready = !pending;
    assign memory_response_valid = pending && !holding && !capturing;
    assign memory_response_data = read_data;
    always @(posedge clock) begin
        holding <= accepted;
        capturing <= holding;
        if (accepted) begin
            pending <= 1'b1;
            held_write <= memory_request_write;
            held_word <= memory_request_address[16:2];
            held_data <= memory_request_write_data;
            held_enable <= memory_request_write ? memory_request_byte_enable : 4'b0000;
        end
        if (capturing)
            read_data <= held_word[14] ? bank_data[63:32] : bank_data[31:0];
        if (memory_response_valid && memory_response_ready)
            pending <= 1'b0;
        if (reset) begin
            pending <= 1'b0;
            holding <= 1'b0;
            capturing <= 1'b0;
        end
    end

    // Each SPRAM is 16K x 16 with a write mask per nibble: two side by side make a 32-bit
    // word, two such pairs the 32K words.
    genvar bank, half;
    generate
        for (bank = 0; bank < 2; bank = bank + 1) begin : banks
            for (half = 0; half < 2; half = half + 1) begin : halves
                wire selected = holding && held_word[14] == bank;
                wire [1:0] bytes = held_enable[2 * half +: 2];
                SB_SPRAM256KA spram (
                    .ADDRESS(held_word[13:0]),
                    .DATAIN(held_data[16 * half +: 16]),
                    .MASKWREN({bytes[1], bytes[1], bytes[0], bytes[0]}),
                    .WREN(selected && held_write),
                    .CHIPSELECT(selected),
                    .CLOCK(clock),
                    .STANDBY(1'b0),
                    .SLEEP(1'b0),
                    .POWEROFF(1'b1),
                    .DATAOUT(bank_data[32 * bank + 16 * half +: 16])
                );
            end
        end
    endgenerate

    assign led_red_n = !uart_overrun;
    // The LED from its own flip-flop, so that the reset register, which reaches every
    // register of the design, is not pulled out to the LED's pin.
    reg led_green_n_register = 1'b1;
    always @(posedge clock)
        led_green_n_register <= reset;
    assign led_green_n = led_green_n_register;
endmodule

`default_nettype wire
