// Properties of the protection core (`npmu_core`, the Verilog `npmu prove` generates from
// the RustHDL sources at proof time), checked with SymbiYosys. No RTL of the design here:
// this wrapper instantiates the generated core, models the environment with assumptions
// and states the properties as assertions.
//
// `npmu_formal.vh`, written by `npmu prove` from the Rust sources, gives the
// configuration's sizes and the bit layout of the table entries (`FORMAL_*`). The core is
// read flattened, its memories mapped to flip-flops, after a Yosys `expose` of the verdict
// handshake between its AVT and its data mover and of the tables' write ports as outputs,
// and of every word of its two tables as an input cut from its flip-flop (`npmu_core.sby`,
// `npmu_formal_taps.ys`; the wrapper connects the words through `npmu_formal_taps.vh`).
// The wrapper keeps the two words the properties watch and lets the rest read as anything.
//
// P1 (protection, `define PROTECTION): every persistent-memory access of the request the
//    wrapper picks (any one request, to any one context `context`) is one the tables allow
//    at that moment. `define CONTEXT_RULES: the context valid, the request's key the
//    context's key, its initiator allowed, the operation permitted. `define BOUNDS: the
//    request inside the context's bounds and the beat inside the request. `define PAGES:
//    the beat at the physical page of the translation entry that maps its virtual page,
//    the entry valid (checked for any one entry `entry`), at the beat's offset in the page.
//    "The tables at that moment" are the table words as the core holds them in the clock
//    of the access.
// P2 (DMA windows): not here: the protection core has no queues.
// P3 (responses, `define RESPONSES): no response without a request (each accepted request
//    is closed by at most one last beat, and each MMIO read answered at most once), and
//    every output channel keeps its offer, unchanged, until it is taken.
`include "npmu_formal.vh"

module npmu_core_properties (
    input wire clock,
    input wire reset,
    input wire [63:0] management_key,
    input wire mmio_request_valid,
    input wire mmio_request_write,
    input wire [15:0] mmio_request_address,
    input wire [63:0] mmio_request_write_data,
    input wire mmio_response_ready,
    // From the command engine's queue windows (not in this proof): a window write the
    // closed lock dropped, counted in REFUSED_WRITES. Free: any value in any clock.
    input wire queue_write_refused,
    input wire request_valid,
    input wire request_write,
    input wire [15:0] request_context,
    input wire [31:0] request_key,
    input wire [15:0] request_initiator,
    input wire [63:0] request_address,
    input wire [31:0] request_length,
    input wire write_data_valid,
    input wire [`FORMAL_DATA_BITS-1:0] write_data,
    input wire [`FORMAL_DATA_BYTES-1:0] write_data_enable,
    input wire response_ready,
    input wire memory_request_ready,
    input wire memory_response_valid,
    input wire [`FORMAL_DATA_BITS-1:0] memory_response_data,
    // Any one request of the run is tracked: the one taken in a clock where this is high.
    input wire track
);
    localparam DATA_BITS = `FORMAL_DATA_BITS;
    localparam DATA_BYTES = `FORMAL_DATA_BYTES;
    localparam LANE_BITS = `FORMAL_LANE_BITS;
    localparam PAGE_SHIFT = `FORMAL_PAGE_SHIFT;
    localparam CONTEXT_TABLE_BITS = `FORMAL_CONTEXT_TABLE_BITS;
    localparam ENTRY_TABLE_BITS = `FORMAL_ENTRY_TABLE_BITS;
    localparam CONTEXT_ENTRY_BITS = `FORMAL_CONTEXT_ENTRY_BITS;
    localparam TRANSLATION_ENTRY_BITS = `FORMAL_TRANSLATION_ENTRY_BITS;

    wire mmio_request_ready;
    wire mmio_response_valid;
    wire [63:0] mmio_response_data;
    wire lock_open;
    wire request_ready;
    wire write_data_ready;
    wire response_valid;
    wire [3:0] response_status;
    wire [DATA_BITS-1:0] response_data;
    wire response_last;
    wire memory_request_valid;
    wire memory_request_write;
    wire [47:0] memory_request_address;
    wire [DATA_BITS-1:0] memory_request_write_data;
    wire [DATA_BYTES-1:0] memory_request_byte_enable;
    wire [15:0] memory_request_context;
    wire memory_response_ready;
    // Every word of the two tables as the core's logic reads it (inputs of the core: see
    // "the tables" below), and the tables' write ports.
    wire [`FORMAL_CONTEXTS * CONTEXT_ENTRY_BITS - 1:0] context_words;
    wire [`FORMAL_ENTRIES * TRANSLATION_ENTRY_BITS - 1:0] entry_words;
    wire formal_context_write_enable;
    wire [CONTEXT_TABLE_BITS-1:0] formal_context_write_address;
    wire [CONTEXT_ENTRY_BITS-1:0] formal_context_write_data;
    wire formal_entry_write_enable;
    wire [ENTRY_TABLE_BITS-1:0] formal_entry_write_address;
    wire [TRANSLATION_ENTRY_BITS-1:0] formal_entry_write_data;
    wire formal_verdict_valid;
    wire formal_verdict_ready;

    npmu_core core (
        .clock(clock),
        .reset(reset),
        .management_key(management_key),
        .mmio_request_valid(mmio_request_valid),
        .mmio_request_ready(mmio_request_ready),
        .mmio_request_write(mmio_request_write),
        .mmio_request_address(mmio_request_address),
        .mmio_request_write_data(mmio_request_write_data),
        .mmio_response_valid(mmio_response_valid),
        .mmio_response_ready(mmio_response_ready),
        .mmio_response_data(mmio_response_data),
        .lock_open(lock_open),
        .queue_write_refused(queue_write_refused),
        .request_valid(request_valid),
        .request_ready(request_ready),
        .request_write(request_write),
        .request_context(request_context),
        .request_key(request_key),
        .request_initiator(request_initiator),
        .request_address(request_address),
        .request_length(request_length),
        .write_data_valid(write_data_valid),
        .write_data_ready(write_data_ready),
        .write_data(write_data),
        .write_data_enable(write_data_enable),
        .response_valid(response_valid),
        .response_ready(response_ready),
        .response_status(response_status),
        .response_data(response_data),
        .response_last(response_last),
        .memory_request_valid(memory_request_valid),
        .memory_request_ready(memory_request_ready),
        .memory_request_write(memory_request_write),
        .memory_request_address(memory_request_address),
        .memory_request_write_data(memory_request_write_data),
        .memory_request_byte_enable(memory_request_byte_enable),
        .memory_request_context(memory_request_context),
        .memory_response_valid(memory_response_valid),
        .memory_response_ready(memory_response_ready),
        .memory_response_data(memory_response_data),
        .formal_verdict_valid(formal_verdict_valid),
        .formal_verdict_ready(formal_verdict_ready),
        .formal_context_write_enable(formal_context_write_enable),
        .formal_context_write_address(formal_context_write_address),
        .formal_context_write_data(formal_context_write_data),
        .formal_entry_write_enable(formal_entry_write_enable),
        .formal_entry_write_address(formal_entry_write_address),
        .formal_entry_write_data(formal_entry_write_data)
`include "npmu_formal_taps.vh"
    );

    // ---------------------------------------------------------------- the environment

    reg started = 1'b0;
    always @(posedge clock) started <= 1'b1;

    // The run starts with a reset, and none follows.
    always @(*) assume(reset == !started);
    // The board's management key does not change.
    always @(posedge clock) if (started) assume($stable(management_key));

    // Every input channel keeps its offer, unchanged, until it is taken.
    always @(posedge clock) if (started && !$past(reset)) begin
        if ($past(mmio_request_valid && !mmio_request_ready)) begin
            assume(mmio_request_valid);
            assume($stable(mmio_request_write));
            assume($stable(mmio_request_address));
            assume($stable(mmio_request_write_data));
        end
        if ($past(request_valid && !request_ready)) begin
            assume(request_valid);
            assume($stable(request_write));
            assume($stable(request_context));
            assume($stable(request_key));
            assume($stable(request_initiator));
            assume($stable(request_address));
            assume($stable(request_length));
        end
        if ($past(write_data_valid && !write_data_ready)) begin
            assume(write_data_valid);
            assume($stable(write_data));
            assume($stable(write_data_enable));
        end
        if ($past(memory_response_valid && !memory_response_ready)) begin
            assume(memory_response_valid);
            assume($stable(memory_response_data));
        end
    end

    // The tables. The properties watch one context and one translation entry, any ones
    // (`context`, `entry`); every other word of the tables reads as anything, in any clock,
    // which covers whatever the tables could hold there. The two watched words start holding
    // anything (programming may leave them so), except that the watched context is
    // consistent the way the programming engine registers one: its base page aligned, its
    // end and entry bias worked out from base, pages and first entry, its entries inside
    // the table. Each later write to them is the core's own, through its write ports.
    (* anyconst *) wire [CONTEXT_TABLE_BITS-1:0] context;
    (* anyconst *) wire [ENTRY_TABLE_BITS-1:0] entry;
    (* anyconst *) wire [CONTEXT_ENTRY_BITS-1:0] context_entry_at_start;
    (* anyconst *) wire [TRANSLATION_ENTRY_BITS-1:0] translation_entry_at_start;
    (* anyseq *) wire [`FORMAL_CONTEXTS * CONTEXT_ENTRY_BITS - 1:0] other_context_words;
    (* anyseq *) wire [`FORMAL_ENTRIES * TRANSLATION_ENTRY_BITS - 1:0] other_entry_words;
    reg [CONTEXT_ENTRY_BITS-1:0] context_entry_held;
    reg [TRANSLATION_ENTRY_BITS-1:0] translation_entry_held;
    wire [CONTEXT_ENTRY_BITS-1:0] context_entry =
        started ? context_entry_held : context_entry_at_start;
    wire [TRANSLATION_ENTRY_BITS-1:0] translation_entry =
        started ? translation_entry_held : translation_entry_at_start;
    always @(posedge clock) begin
        context_entry_held <= context_entry;
        if (formal_context_write_enable && formal_context_write_address == context)
            context_entry_held <= formal_context_write_data;
        translation_entry_held <= translation_entry;
        if (formal_entry_write_enable && formal_entry_write_address == entry)
            translation_entry_held <= formal_entry_write_data;
    end
    genvar word;
    for (word = 0; word < `FORMAL_CONTEXTS; word = word + 1) begin : context_table
        assign context_words[word * CONTEXT_ENTRY_BITS +: CONTEXT_ENTRY_BITS] =
            word == context ? context_entry
                : other_context_words[word * CONTEXT_ENTRY_BITS +: CONTEXT_ENTRY_BITS];
    end
    for (word = 0; word < `FORMAL_ENTRIES; word = word + 1) begin : entry_table
        assign entry_words[word * TRANSLATION_ENTRY_BITS +: TRANSLATION_ENTRY_BITS] =
            word == entry ? translation_entry
                : other_entry_words[word * TRANSLATION_ENTRY_BITS +: TRANSLATION_ENTRY_BITS];
    end
    wire context_valid = context_entry[`FORMAL_CONTEXT_VALID];
    wire [31:0] context_key = context_entry[`FORMAL_CONTEXT_KEY +: 32];
    wire context_read = context_entry[`FORMAL_CONTEXT_READ];
    wire context_write = context_entry[`FORMAL_CONTEXT_WRITE];
    wire context_any_initiator = context_entry[`FORMAL_CONTEXT_ANY_INITIATOR];
    wire [15:0] context_initiator = context_entry[`FORMAL_CONTEXT_INITIATOR +: 16];
    wire [63:0] context_base = context_entry[`FORMAL_CONTEXT_BASE +: 64];
    wire [16:0] context_pages = context_entry[`FORMAL_CONTEXT_PAGES +: 17];
    wire [15:0] context_first_entry = context_entry[`FORMAL_CONTEXT_FIRST_ENTRY +: 16];
    wire [64:0] context_end = context_entry[`FORMAL_CONTEXT_END +: 65];
    wire [15:0] context_entry_bias = context_entry[`FORMAL_CONTEXT_ENTRY_BIAS +: 16];
    wire entry_valid = translation_entry[`FORMAL_ENTRY_VALID];
    wire [31:0] entry_page = translation_entry[`FORMAL_ENTRY_PAGE +: 32];
    always @(*) if (!started) begin
        assume(context_base[PAGE_SHIFT-1:0] == 0);
        assume(context_end == {1'b0, context_base} + ({48'd0, context_pages} << PAGE_SHIFT));
        assume(context_entry_bias == context_first_entry - context_base[PAGE_SHIFT +: 16]);
        assume({1'b0, context_first_entry} + context_pages <= `FORMAL_ENTRIES);
    end

    // Persistent memory answers only requests it took, one answer each.
    reg [7:0] memory_open = 8'd0;
    wire memory_request_taken = memory_request_valid && memory_request_ready;
    wire memory_response_taken = memory_response_valid && memory_response_ready;
    always @(posedge clock)
        if (reset) memory_open <= 8'd0;
        else memory_open <= memory_open + memory_request_taken - memory_response_taken;
    always @(*) if (memory_open == 8'd0) assume(!memory_response_valid);

    // ---------------------------------------------------------------- P3: responses

`ifdef RESPONSES
    // Requests accepted and not yet closed by their last response beat; MMIO reads taken and
    // not yet answered. A response never comes in the clock its request is taken.
    wire request_taken = request_valid && request_ready;
    wire request_closed = response_valid && response_ready && response_last;
    wire mmio_read_taken = mmio_request_valid && mmio_request_ready && !mmio_request_write;
    wire mmio_read_answered = mmio_response_valid && mmio_response_ready;
    reg [7:0] requests_open = 8'd0;
    reg [7:0] mmio_reads_open = 8'd0;
    always @(posedge clock)
        if (reset) begin
            requests_open <= 8'd0;
            mmio_reads_open <= 8'd0;
        end else begin
            requests_open <= requests_open + request_taken - request_closed;
            mmio_reads_open <= mmio_reads_open + mmio_read_taken - mmio_read_answered;
        end
    always @(*) if (!reset) begin
        if (response_valid) assert(requests_open != 8'd0);
        if (mmio_response_valid) assert(mmio_reads_open != 8'd0);
    end

    // Every output channel keeps its offer, unchanged, until it is taken.
    always @(posedge clock) if (started && !$past(reset)) begin
        if ($past(mmio_response_valid && !mmio_response_ready)) begin
            assert(mmio_response_valid);
            assert($stable(mmio_response_data));
        end
        if ($past(response_valid && !response_ready)) begin
            assert(response_valid);
            assert($stable(response_status));
            assert($stable(response_data));
            assert($stable(response_last));
        end
        if ($past(memory_request_valid && !memory_request_ready)) begin
            assert(memory_request_valid);
            assert($stable(memory_request_write));
            assert($stable(memory_request_address));
            // A read's data field is don't-care: it follows the write-data port.
            if (memory_request_write) assert($stable(memory_request_write_data));
            assert($stable(memory_request_byte_enable));
            assert($stable(memory_request_context));
        end
    end

    // Not vacuous: a request is answered in full, and an MMIO read too.
    always @(*) if (!reset) begin
        cover(request_closed);
        cover(mmio_read_answered);
    end
`endif

    // ---------------------------------------------------------------- P1: protection

`ifdef PROTECTION
    // The tracked request. Requests reach the data mover in the order they are taken, one
    // verdict each, and the mover moves a verdict's beats after taking it and before taking
    // the next one, or in the clock it takes the next: so the beats on the memory port
    // belong to the request of the last verdict the mover took before this clock.
    wire request_taken_here = request_valid && request_ready;
    wire verdict_taken = formal_verdict_valid && formal_verdict_ready;
    reg [7:0] requests_taken = 8'd0;
    reg [7:0] verdicts_taken = 8'd0;
    reg tracking = 1'b0;
    reg [7:0] tracked_number;
    reg tracked_write;
    reg [31:0] tracked_key;
    reg [15:0] tracked_initiator;
    reg [63:0] tracked_address;
    reg [31:0] tracked_length;
    reg [31:0] tracked_beats;
    wire tracked_access = memory_request_valid && tracking
        && verdicts_taken == tracked_number + 8'd1;
    always @(posedge clock)
        if (reset) begin
            requests_taken <= 8'd0;
            verdicts_taken <= 8'd0;
            tracking <= 1'b0;
        end else begin
            requests_taken <= requests_taken + request_taken_here;
            verdicts_taken <= verdicts_taken + verdict_taken;
            if (request_taken_here && track && !tracking
                && request_context == {{(16 - CONTEXT_TABLE_BITS){1'b0}}, context}) begin
                tracking <= 1'b1;
                tracked_number <= requests_taken;
                tracked_write <= request_write;
                tracked_key <= request_key;
                tracked_initiator <= request_initiator;
                tracked_address <= request_address;
                tracked_length <= request_length;
                tracked_beats <= 32'd0;
            end
            if (tracked_access && memory_request_ready) tracked_beats <= tracked_beats + 1;
        end

    // Where the beat on the port lies in the request, in the virtual address space and in
    // the context. Only the low PAGE_SHIFT + 16 bits of the beat's address are worked out:
    // a sum's low bits need only its operands' low bits, and the request lies inside the
    // context (checked by the BOUNDS assertions below), whose pages number at most 2^16.
    localparam VIRTUAL_BITS = PAGE_SHIFT + 16;
    wire [VIRTUAL_BITS-1:0] first_beat_address =
        tracked_address[VIRTUAL_BITS-1:0] & ~(DATA_BYTES - 1);
    wire [31:0] beat_offset_in_request = tracked_beats << LANE_BITS;
    wire [VIRTUAL_BITS-1:0] beat_address =
        first_beat_address + beat_offset_in_request[VIRTUAL_BITS-1:0];
    // Bases are page aligned: the beat's page in its context is its page less the base's.
    wire [15:0] page_in_context =
        beat_address[PAGE_SHIFT +: 16] - context_base[PAGE_SHIFT +: 16];
    wire [15:0] beat_entry = context_first_entry + page_in_context;
    wire [47:0] physical_page = memory_request_address >> PAGE_SHIFT;
    always @(*) if (!reset && tracked_access) begin
`ifdef CONTEXT_RULES
        assert(memory_request_context == {{(16 - CONTEXT_TABLE_BITS){1'b0}}, context});
        assert(memory_request_write == tracked_write);
        assert(context_valid);
        assert(context_key == tracked_key);
        assert(context_any_initiator || context_initiator == tracked_initiator);
        assert(!tracked_write || context_write);
        assert(tracked_write || context_read);
`endif
`ifdef BOUNDS
        // The request inside the context, both sums 65 bits wide where nothing wraps, and
        // the beat inside the request: so the beat is inside the context.
        assert(tracked_address >= context_base);
        assert({1'b0, tracked_address} + {33'd0, tracked_length} <= context_end);
        assert({1'b0, beat_offset_in_request}
            < {31'd0, tracked_address[LANE_BITS-1:0]} + {1'b0, tracked_length});
`endif
`ifdef PAGES
        // The beat at the physical page of the valid entry that maps its virtual page, at
        // the same offset in the page.
        assert(memory_request_address[PAGE_SHIFT-1:0] == beat_address[PAGE_SHIFT-1:0]);
        if (beat_entry == {{(16 - ENTRY_TABLE_BITS){1'b0}}, entry}) begin
            assert(entry_valid);
            assert(physical_page == {16'd0, entry_page});
        end
`endif
    end

    // Not vacuous: the tracked request reaches memory, a write and a read, the write
    // past its first page; and the response port refuses with every fault code.
    always @(*) if (!reset) begin
        cover(tracked_access && tracked_write && page_in_context != 0
            && tracked_address[PAGE_SHIFT +: 16] != beat_address[PAGE_SHIFT +: 16]);
        cover(tracked_access && !tracked_write);
    end
    genvar fault;
    for (fault = 1; fault <= 8; fault = fault + 1) begin : refusals
        always @(*) if (!reset) cover(response_valid && response_status == fault);
    end
`endif
endmodule
