// LiteFury wrapper of npmu_ni: the 7-series PCIe block (x1 Gen2, 125 MHz user clock),
// the generated PCIe adapter between it and the NI's host ports, persistent memory, and
// the LEDs.
//
// The block is regymm/pcie_7x's `pcie_7x` (see pcie_7x_interface.v for why it is not in
// this repository). BAR0 is the NI's 64 KiB of registers. Persistent memory: 256 KiB of
// block RAM, the capacity of the artix7 configuration; the board's DDR3 needs a controller
// npmu does not have yet. Block RAM keeps its contents across PCIe resets, not across a
// power cycle.
`default_nettype none

module npmu_litefury #(
    // The secret that opens the management lock: build your own.
    parameter [63:0] MANAGEMENT_KEY = 64'h6e706d756b657921,
    parameter [15:0] VENDOR_ID = 16'h10EE,
    parameter [15:0] DEVICE_ID = 16'h7011
) (
    input  wire pcie_refclk_p,
    input  wire pcie_refclk_n,
    input  wire pcie_rx_p,
    input  wire pcie_rx_n,
    output wire pcie_tx_p,
    output wire pcie_tx_n,
    input  wire pcie_reset_n,
    // Active low: link up, NI out of reset, interrupts enabled (MSI), unsupported write seen.
    output wire [3:0] led_n
);
    wire refclk;
    IBUFDS_GTE2 refclk_buffer (
        .O(refclk),
        .ODIV2(),
        .CEB(1'b0),
        .I(pcie_refclk_p),
        .IB(pcie_refclk_n)
    );

    wire clock;
    wire block_reset;
    wire link_up;
    wire [63:0] rx_data;
    wire rx_valid;
    wire rx_ready;
    wire rx_last;
    wire [21:0] rx_user;
    wire rx_non_posted_ok;
    wire [63:0] tx_data;
    wire [7:0] tx_keep;
    wire tx_valid;
    wire tx_ready;
    wire tx_last;
    wire [15:0] command;
    wire [7:0] bus_number;
    wire [4:0] device_number;
    wire [2:0] function_number;
    wire msi_request;
    wire msi_ready;
    wire [7:0] msi_vector;
    wire [2:0] msi_vectors_log2;
    wire msi_enable;

    pcie_7x #(
        .LINK_CAP_MAX_LINK_SPEED(4'h2),  // Gen2: the LiteFury's -2L part reaches 5 GT/s
        .USER_CLK_FREQ(2),               // 125 MHz, for 64 bits at Gen2
        .BAR0(32'hFFFF0000),             // 64 KiB, 32-bit memory, not prefetchable
        .CFG_VEND_ID(VENDOR_ID),
        .CFG_DEV_ID(DEVICE_ID),
        .CLASS_CODE(24'h058000)          // memory controller, other
    ) pcie (
        .pci_exp_txn(pcie_tx_n),
        .pci_exp_txp(pcie_tx_p),
        .pci_exp_rxn(pcie_rx_n),
        .pci_exp_rxp(pcie_rx_p),
        .sys_clk(refclk),
        .sys_rst_n(pcie_reset_n),
        .user_clk_out(clock),
        .user_reset_out(block_reset),
        .user_lnk_up(link_up),
        .tx_cfg_gnt(1'b1),               // the block's own configuration answers go first
        .rx_np_ok(rx_non_posted_ok),
        .rx_np_req(1'b1),
        .cfg_turnoff_ok(1'b0),
        .cfg_trn_pending(1'b0),
        .cfg_pm_halt_aspm_l0s(1'b0),
        .cfg_pm_halt_aspm_l1(1'b0),
        .cfg_pm_force_state_en(1'b0),
        .cfg_pm_force_state(2'b00),
        .cfg_dsn(64'h0),
        .cfg_pm_wake(1'b0),
        .s_axis_tx_tdata(tx_data),
        .s_axis_tx_tvalid(tx_valid),
        .s_axis_tx_tready(tx_ready),
        .s_axis_tx_tkeep(tx_keep),
        .s_axis_tx_tlast(tx_last),
        .s_axis_tx_tuser(4'b0000),
        .m_axis_rx_tdata(rx_data),
        .m_axis_rx_tvalid(rx_valid),
        .m_axis_rx_tready(rx_ready),
        .m_axis_rx_tkeep(),
        .m_axis_rx_tlast(rx_last),
        .m_axis_rx_tuser(rx_user),
        .tx_err_drop(),
        .tx_cfg_req(),
        .tx_buf_av(),
        .cfg_status(),
        .cfg_command(command),
        .cfg_dstatus(),
        .cfg_dcommand(),
        .cfg_lstatus(),
        .cfg_lcommand(),
        .cfg_dcommand2(),
        .cfg_pcie_link_state(),
        .cfg_to_turnoff(),
        .cfg_bus_number(bus_number),
        .cfg_device_number(device_number),
        .cfg_function_number(function_number),
        .cfg_pmcsr_pme_en(),
        .cfg_pmcsr_powerstate(),
        .cfg_pmcsr_pme_status(),
        .cfg_received_func_lvl_rst(),
        .cfg_interrupt(msi_request),
        .cfg_interrupt_rdy(msi_ready),
        .cfg_interrupt_assert(1'b0),
        .cfg_interrupt_di(msi_vector),
        .cfg_interrupt_do(),
        .cfg_interrupt_mmenable(msi_vectors_log2),
        .cfg_interrupt_msienable(msi_enable),
        .cfg_interrupt_msixenable(),
        .cfg_interrupt_msixfm(),
        .cfg_interrupt_stat(1'b0),
        .cfg_pciecap_interrupt_msgnum(5'd0),
        .gt_reset_fsm(),
        .pl_ltssm_state()
    );

    // The NI is held in reset with the block (PERST#, hot reset, link down), a clock late.
    reg reset = 1'b1;
    always @(posedge clock)
        reset <= block_reset || !link_up;

    wire mmio_request_valid;
    wire mmio_request_ready;
    wire mmio_request_write;
    wire [15:0] mmio_request_address;
    wire [63:0] mmio_request_write_data;
    wire mmio_response_valid;
    wire mmio_response_ready;
    wire [63:0] mmio_response_data;
    wire dma_read_request_valid;
    wire dma_read_request_ready;
    wire [7:0] dma_read_request_tag;
    wire [63:0] dma_read_request_address;
    wire [12:0] dma_read_request_length;
    wire dma_read_completion_valid;
    wire dma_read_completion_ready;
    wire [7:0] dma_read_completion_tag;
    wire [63:0] dma_read_completion_data;
    wire dma_read_completion_last;
    wire dma_read_completion_error;
    wire dma_write_valid;
    wire dma_write_ready;
    wire [63:0] dma_write_address;
    wire [12:0] dma_write_length;
    wire [63:0] dma_write_data;
    wire [7:0] dma_write_byte_enable;
    wire dma_write_last;
    wire dma_write_response_valid;
    wire dma_write_response_ready;
    wire dma_write_response_error;
    wire interrupt_valid;
    wire interrupt_ready;
    wire [7:0] interrupt_vector;
    wire unsupported_posted;

    npmu_pcie_adapter adapter (
        .clock(clock),
        .reset(reset),
        .rx_data(rx_data),
        .rx_last(rx_last),
        .rx_valid(rx_valid),
        .rx_ready(rx_ready),
        .rx_bar0(rx_user[2]),
        .rx_forwarded_error(rx_user[1]),
        .rx_non_posted_ok(rx_non_posted_ok),
        .tx_data(tx_data),
        .tx_keep(tx_keep),
        .tx_last(tx_last),
        .tx_valid(tx_valid),
        .tx_ready(tx_ready),
        .function_id({bus_number, device_number, function_number}),
        .bus_master_enable(command[2]),
        .unsupported_posted(unsupported_posted),
        .msi_request(msi_request),
        .msi_ready(msi_ready),
        .msi_vector(msi_vector),
        .msi_enable(msi_enable),
        .msi_vectors_log2(msi_vectors_log2),
        .mmio_request_valid(mmio_request_valid),
        .mmio_request_ready(mmio_request_ready),
        .mmio_request_write(mmio_request_write),
        .mmio_request_address(mmio_request_address),
        .mmio_request_write_data(mmio_request_write_data),
        .mmio_response_valid(mmio_response_valid),
        .mmio_response_ready(mmio_response_ready),
        .mmio_response_data(mmio_response_data),
        .dma_read_request_valid(dma_read_request_valid),
        .dma_read_request_ready(dma_read_request_ready),
        .dma_read_request_tag(dma_read_request_tag),
        .dma_read_request_address(dma_read_request_address),
        .dma_read_request_length(dma_read_request_length),
        .dma_read_completion_valid(dma_read_completion_valid),
        .dma_read_completion_tag(dma_read_completion_tag),
        .dma_read_completion_data(dma_read_completion_data),
        .dma_read_completion_last(dma_read_completion_last),
        .dma_read_completion_error(dma_read_completion_error),
        .dma_write_valid(dma_write_valid),
        .dma_write_ready(dma_write_ready),
        .dma_write_address(dma_write_address),
        .dma_write_length(dma_write_length),
        .dma_write_data(dma_write_data),
        .dma_write_byte_enable(dma_write_byte_enable),
        .dma_write_last(dma_write_last),
        .dma_write_response_valid(dma_write_response_valid),
        .dma_write_response_ready(dma_write_response_ready),
        .dma_write_response_error(dma_write_response_error),
        .interrupt_valid(interrupt_valid),
        .interrupt_ready(interrupt_ready),
        .interrupt_vector(interrupt_vector)
    );

    wire memory_request_valid;
    wire memory_request_ready;
    wire memory_request_write;
    wire [47:0] memory_request_address;
    wire [63:0] memory_request_write_data;
    wire [7:0] memory_request_byte_enable;
    wire memory_response_valid;
    wire memory_response_ready;
    reg [63:0] memory_response_data;

    npmu_ni ni (
        .clock(clock),
        .reset(reset),
        .management_key(MANAGEMENT_KEY),
        .mmio_request_valid(mmio_request_valid),
        .mmio_request_ready(mmio_request_ready),
        .mmio_request_write(mmio_request_write),
        .mmio_request_address(mmio_request_address),
        .mmio_request_write_data(mmio_request_write_data),
        .mmio_response_valid(mmio_response_valid),
        .mmio_response_ready(mmio_response_ready),
        .mmio_response_data(mmio_response_data),
        .dma_read_request_valid(dma_read_request_valid),
        .dma_read_request_ready(dma_read_request_ready),
        .dma_read_request_tag(dma_read_request_tag),
        .dma_read_request_address(dma_read_request_address),
        .dma_read_request_length(dma_read_request_length),
        .dma_read_completion_valid(dma_read_completion_valid),
        .dma_read_completion_ready(dma_read_completion_ready),
        .dma_read_completion_tag(dma_read_completion_tag),
        .dma_read_completion_data(dma_read_completion_data),
        .dma_read_completion_last(dma_read_completion_last),
        .dma_read_completion_error(dma_read_completion_error),
        .dma_write_valid(dma_write_valid),
        .dma_write_ready(dma_write_ready),
        .dma_write_address(dma_write_address),
        .dma_write_length(dma_write_length),
        .dma_write_data(dma_write_data),
        .dma_write_byte_enable(dma_write_byte_enable),
        .dma_write_last(dma_write_last),
        .dma_write_response_valid(dma_write_response_valid),
        .dma_write_response_ready(dma_write_response_ready),
        .dma_write_response_error(dma_write_response_error),
        .interrupt_valid(interrupt_valid),
        .interrupt_ready(interrupt_ready),
        .interrupt_vector(interrupt_vector),
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

    // One memory request at a time: registered, then the RAM, then the answer, which waits
    // until the NI takes it. 32K words of 64 bits, one RAM a byte lane. Addresses past
    // 256 KiB never come: the NI refuses translation entries beyond its memory pages.
    reg held = 1'b0;
    reg read = 1'b0;
    reg pending = 1'b0;
    reg held_write;
    reg [7:0] held_byte_enable;
    reg [63:0] held_write_data;
    reg [14:0] word;
    wire [63:0] words;
    assign memory_request_ready = !held && !read && !pending;
    assign memory_response_valid = pending;
    always @(posedge clock) begin
        held <= memory_request_valid && memory_request_ready;
        read <= held;
        if (memory_request_valid && memory_request_ready) begin
            held_write <= memory_request_write;
            held_byte_enable <= memory_request_byte_enable;
            held_write_data <= memory_request_write_data;
            word <= memory_request_address[17:3];
        end
        if (read) begin
            pending <= 1'b1;
            memory_response_data <= words;
        end
        if (memory_response_valid && memory_response_ready)
            pending <= 1'b0;
        if (reset) begin
            held <= 1'b0;
            read <= 1'b0;
            pending <= 1'b0;
        end
    end

    genvar lane;
    generate
        for (lane = 0; lane < 8; lane = lane + 1) begin : lanes
            reg [7:0] bytes [0:32767];
            reg [7:0] data;
            always @(posedge clock) begin
                if (held) begin
                    if (held_write && held_byte_enable[lane])
                        bytes[word] <= held_write_data[8 * lane +: 8];
                    data <= bytes[word];
                end
            end
            assign words[8 * lane +: 8] = data;
        end
    endgenerate

    // LEDs from their own flip-flops; the last one stays lit once a write was dropped.
    reg [3:0] leds = 4'b0000;
    always @(posedge clock) begin
        leds[0] <= link_up;
        leds[1] <= !reset;
        leds[2] <= msi_enable;
        if (unsupported_posted)
            leds[3] <= 1'b1;
        if (block_reset)
            leds[3] <= 1'b0;
    end
    assign led_n = ~leds;
endmodule

`default_nettype wire
