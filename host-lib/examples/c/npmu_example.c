/*
 * npmu_example.c: the PMU library verbs of seed 001 from C, on a volume of two simulated
 * cards kept in the directory given as argv[1].
 *
 * It formats a volume, creates a region whose base pointer is the address a program would
 * keep its data structure at, stores a linked list in it whose `next` fields are region
 * pointers (seed 001 [0069], [0074]: pointers inside the region stay valid without
 * marshalling), closes everything, opens it again and follows the list; checks that the
 * two cards hold the same bytes; then lists the regions into a too-small array, reads the attributes with every accessor (a wrong-type
 * call and a too-small string buffer included) and deletes the region. It prints what it
 * does and exits nonzero on any unexpected result.
 *
 * Build (from the workspace root, after `cargo build -p npmu`):
 *     cc -Wall -Wextra -o npmu_example host-lib/examples/c/npmu_example.c \
 *        -I host-lib/include -L target/debug -lnpmu -Wl,-rpath,$PWD/target/debug
 *     ./npmu_example /tmp/npmu-example
 */

#include "npmu.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where the list lives in the client's address space, and so its region's base pointer. */
#define BASE_POINTER UINT64_C(0x7f0000000000)
#define REGION_SIZE UINT64_C(8192)
#define NODES 5

/* A list node as stored in the region: `next` is a region pointer, 0 at the end. */
struct node {
    uint64_t next;
    uint32_t value;
    char label[12];
};

/* The region starts with a header pointing at the first node. */
struct header {
    uint64_t magic;
    uint64_t head;
};

#define MAGIC UINT64_C(0x6e706d756c697374) /* "npmulist" */

static int failures = 0;

/* Checks a verb returned `expected`; prints the detailed error if not. */
static int check(pm_status status, pm_status expected, const char *what) {
    if (status == expected) {
        return 1;
    }
    fprintf(stderr, "FAILED %s: got %s (%s), expected %s\n", what, pm_strerror(status),
            pm_last_error(), pm_strerror(expected));
    failures++;
    return 0;
}

#define OK(call) check((call), PM_OK, #call)

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
        return 2;
    }
    const char *directory = argv[1];

    /* A new volume on two simulated cards. */
    pm_volume *volume = NULL;
    if (!OK(pm_format_simulated_volume(directory, "example", 1, &volume))) {
        return 1;
    }
    pm_volume_info info;
    OK(pm_get_volume_info(volume, &info));
    printf("formatted volume %s: %" PRIu64 " pages of %" PRIu64 " bytes, regions up to %" PRIu64
           " bytes\n",
           info.name, info.data_pages, info.page_bytes, info.max_region_bytes);

    /* A region addressed from the base pointer, as if it were memory at that address. */
    OK(pm_create_region(volume, "list", REGION_SIZE, BASE_POINTER));
    pm_region_handle region = PM_INVALID_HANDLE;
    OK(pm_open_region(volume, "list", &region));
    pm_region_info region_info;
    OK(pm_get_region_info(volume, region, &region_info));
    printf("opened region %s: handle %" PRIu64 ", %" PRIu64 " bytes at base pointer 0x%" PRIx64
           ", context %u, network base 0x%" PRIx64 " on the primary and 0x%" PRIx64
           " on the mirror\n",
           region_info.name, region, region_info.size, region_info.base_pointer,
           (unsigned)region_info.context, region_info.primary_network_base,
           region_info.mirror_network_base);

    /* The nodes go to scattered slots, linked in value order by region pointers. */
    static const unsigned slots[NODES] = {7, 2, 5, 1, 4};
    static const char *labels[NODES] = {"alpha", "bravo", "charlie", "delta", "echo"};
    uint64_t pointers[NODES];
    for (int i = 0; i < NODES; i++) {
        pointers[i] = BASE_POINTER + 64 * slots[i];
    }
    for (int i = 0; i < NODES; i++) {
        struct node node;
        memset(&node, 0, sizeof node);
        node.next = i + 1 < NODES ? pointers[i + 1] : 0;
        node.value = 100 * (uint32_t)(i + 1);
        strncpy(node.label, labels[i], sizeof node.label - 1);
        OK(pm_write_region(volume, region, &node, sizeof node, pointers[i], PM_BOTH));
    }
    struct header header = {MAGIC, pointers[0]};
    OK(pm_write_region(volume, region, &header, sizeof header, BASE_POINTER, PM_BOTH));
    printf("wrote a list of %d nodes, head at 0x%" PRIx64 "\n", NODES, header.head);

    OK(pm_close_region(volume, region));
    pm_close_volume(volume);
    volume = NULL;
    printf("closed the region and the volume\n");

    /* Everything again from the cards alone. */
    if (!OK(pm_open_simulated_volume(directory, 0, &volume))) {
        return 1;
    }
    OK(pm_open_region(volume, "list", &region));
    memset(&header, 0, sizeof header);
    OK(pm_read_region(volume, region, &header, sizeof header, BASE_POINTER, PM_ANY));
    if (header.magic != MAGIC) {
        fprintf(stderr, "FAILED: the header's magic is 0x%" PRIx64 "\n", header.magic);
        failures++;
    }
    printf("reopened: head at 0x%" PRIx64 "\n", header.head);
    int followed = 0;
    uint32_t sum = 0;
    /* Alternate the halves read from: both hold the list. */
    static const pm_mirror halves[3] = {PM_ANY, PM_PRIMARY, PM_MIRROR};
    for (uint64_t pointer = header.head; pointer != 0 && followed <= NODES; followed++) {
        struct node node;
        if (!OK(pm_read_region(volume, region, &node, sizeof node, pointer, halves[followed % 3]))) {
            break;
        }
        node.label[sizeof node.label - 1] = '\0';
        printf("node at 0x%" PRIx64 ": value %" PRIu32 ", label %s, next 0x%" PRIx64 "\n",
               pointer, node.value, node.label, node.next);
        if (node.value != 100 * (uint32_t)(followed + 1) ||
            strcmp(node.label, labels[followed]) != 0) {
            fprintf(stderr, "FAILED: node %d is not what was written\n", followed);
            failures++;
        }
        sum += node.value;
        pointer = node.next;
    }
    printf("followed %d nodes, values summing to %" PRIu32 "\n", followed, sum);
    if (followed != NODES || sum != 1500) {
        fprintf(stderr, "FAILED: expected %d nodes summing to 1500\n", NODES);
        failures++;
    }
    OK(pm_close_region(volume, region));

    /* The two cards compared byte for byte (no repair): they hold the same list. */
    pm_difference differences[4];
    pm_check_report checked;
    OK(pm_check_volume(volume, 0, differences, 4, &checked));
    printf("checked %" PRIu64 " region, %" PRIu64 " bytes on each card: %" PRIu64
           " differences, %" PRIu32 " in the metadata\n",
           checked.regions, checked.bytes_compared, checked.differences,
           checked.metadata_differences);
    if (checked.differences != 0 || checked.metadata_differences != 0 ||
        checked.bytes_compared != REGION_SIZE) {
        fprintf(stderr, "FAILED: the cards should agree\n");
        failures++;
    }

    /* Listing into an array too small for every region: filled, and the real count. */
    OK(pm_create_region(volume, "spare-a", 100, 0));
    OK(pm_create_region(volume, "spare-b", 100, 0));
    char names[2][PM_NAME_CAPACITY];
    size_t count = 0;
    OK(pm_list_regions(volume, names, 2, &count));
    printf("listed %zu of %zu regions: %s, %s\n", (size_t)2, count, names[0], names[1]);
    if (count != 3 || strcmp(names[0], "list") != 0 || strcmp(names[1], "spare-a") != 0) {
        fprintf(stderr, "FAILED: expected 3 regions, list and spare-a first\n");
        failures++;
    }
    count = 0;
    OK(pm_list_regions(volume, NULL, 0, &count));
    printf("counted %zu regions without a list\n", count);
    OK(pm_delete_region(volume, "spare-a"));
    OK(pm_delete_region(volume, "spare-b"));

    /* The attribute cache, with every accessor. */
    pm_attrs *attrs = NULL;
    OK(pm_read_attributes(volume, "list", &attrs));
    char name[PM_NAME_CAPACITY];
    uint64_t size = 0, base_pointer = 0, created = 0, last_open = 0, pages = 0;
    uint32_t owner = 0, extents = 0, open_handles = 0;
    OK(pm_get_attr_string(attrs, "name", name, sizeof name));
    OK(pm_get_attr_u64(attrs, "size", &size));
    OK(pm_get_attr_u64(attrs, "base_pointer", &base_pointer));
    OK(pm_get_attr_u64(attrs, "creation_time", &created));
    OK(pm_get_attr_u64(attrs, "last_open_time", &last_open));
    OK(pm_get_attr_u64(attrs, "pages", &pages));
    OK(pm_get_attr_u32(attrs, "owner", &owner));
    OK(pm_get_attr_u32(attrs, "extents", &extents));
    OK(pm_get_attr_u32(attrs, "open_handles", &open_handles));
    printf("attributes: name %s, size %" PRIu64 ", base_pointer 0x%" PRIx64 ", pages %" PRIu64
           ", extents %" PRIu32 ", owner %" PRIu32 ", open_handles %" PRIu32 "\n",
           name, size, base_pointer, pages, extents, owner, open_handles);
    if (strcmp(name, "list") != 0 || size != REGION_SIZE || base_pointer != BASE_POINTER ||
        pages != 2 || open_handles != 0 || created == 0 || last_open < created) {
        fprintf(stderr, "FAILED: unexpected attributes\n");
        failures++;
    }
    uint32_t wrong = 12345;
    pm_status status = pm_get_attr_u32(attrs, "size", &wrong);
    check(status, PM_ERR_WRONG_TYPE, "pm_get_attr_u32 of a 64-bit attribute");
    printf("size as u32: %s (%s); the value is untouched: %" PRIu32 "\n", pm_strerror(status),
           pm_last_error(), wrong);
    char shorter[3];
    status = pm_get_attr_string(attrs, "name", shorter, sizeof shorter);
    check(status, PM_ERR_BUFFER_TOO_SMALL, "pm_get_attr_string into 3 bytes");
    printf("name into 3 bytes: \"%s\", %s (%s)\n", shorter, pm_strerror(status), pm_last_error());
    if (strcmp(shorter, "li") != 0) {
        fprintf(stderr, "FAILED: expected the first bytes, \"li\"\n");
        failures++;
    }
    pm_free_region_attrs(attrs);

    OK(pm_delete_region(volume, "list"));
    OK(pm_list_regions(volume, NULL, 0, &count));
    printf("deleted the region: %zu regions left\n", count);
    if (count != 0) {
        failures++;
    }
    pm_close_volume(volume);

    if (failures != 0) {
        fprintf(stderr, "%d unexpected results\n", failures);
        return 1;
    }
    printf("example done\n");
    return 0;
}
