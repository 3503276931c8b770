/*
 * npmu_errors.c: every error of the npmu C API, each checked for its exact pm_status and
 * for changing nothing, on simulated volumes in the directory given as argv[1] (which must
 * exist). tests/c_api.rs builds and runs it; it prints one line per check and exits nonzero
 * if any check failed.
 *
 * Build (from the workspace root, after `cargo build -p npmu`):
 *     cc -Wall -Wextra -o npmu_errors host-lib/examples/c/npmu_errors.c \
 *        -I host-lib/include -L target/debug -lnpmu -Wl,-rpath,$PWD/target/debug
 *     mkdir -p /tmp/npmu-errors && ./npmu_errors /tmp/npmu-errors
 */

#include "npmu.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int checks = 0;
static int failures = 0;

static void expect(pm_status status, pm_status expected, const char *call, int line) {
    checks++;
    if (status == expected) {
        printf("ok   %-24s line %d: %s\n", pm_strerror(status), line, call);
        return;
    }
    failures++;
    printf("FAIL line %d: %s\n     got %s (%s)\n     expected %s\n", line, call,
           pm_strerror(status), status == PM_OK ? "" : pm_last_error(), pm_strerror(expected));
}

static void truth(int condition, const char *what, int line) {
    checks++;
    if (condition) {
        printf("ok   %-24s line %d: %s\n", "true", line, what);
        return;
    }
    failures++;
    printf("FAIL line %d: not true: %s\n", line, what);
}

#define EXPECT(call, expected) expect((call), (expected), #call, __LINE__)
#define TRUE(condition) truth((condition), #condition, __LINE__)

static char *join(const char *directory, const char *name) {
    size_t length = strlen(directory) + strlen(name) + 2;
    char *path = malloc(length);
    snprintf(path, length, "%s/%s", directory, name);
    return path;
}

static int exists(const char *path) {
    struct stat status;
    return stat(path, &status) == 0;
}

static size_t regions(pm_volume *volume) {
    size_t count = 0;
    EXPECT(pm_list_regions(volume, NULL, 0, &count), PM_OK);
    return count;
}

/* A volume that is never a real one: an "unchanged" output sentinel. */
#define SENTINEL_VOLUME ((pm_volume *)(uintptr_t)0x5e471e1)
#define SENTINEL_ATTRS ((pm_attrs *)(uintptr_t)0x5e471e1)
#define SENTINEL_HANDLE UINT64_C(0x5e471e1)

#define BASE UINT64_C(0x10000000)
#define SIZE 4096

static void openers(const char *root) {
    char *never = join(root, "never");
    char *fresh = join(root, "fresh");
    char *other = join(root, "other");
    char *plain = join(root, "plain-file");
    char *under_file = join(plain, "volume");
    char *damaged = join(root, "damaged");
    char long_name[65];
    memset(long_name, 'v', 64);
    long_name[64] = '\0';
    pm_volume *volume = SENTINEL_VOLUME;

    EXPECT(pm_format_simulated_volume(NULL, "v", 0, &volume), PM_ERR_NULL_POINTER);
    EXPECT(pm_format_simulated_volume(never, NULL, 0, &volume), PM_ERR_NULL_POINTER);
    EXPECT(pm_format_simulated_volume(never, "v", 0, NULL), PM_ERR_NULL_POINTER);
    EXPECT(pm_format_simulated_volume(never, "", 0, &volume), PM_ERR_BAD_VOLUME_NAME);
    EXPECT(pm_format_simulated_volume(never, long_name, 0, &volume), PM_ERR_BAD_VOLUME_NAME);
    EXPECT(pm_format_simulated_volume(never, "\xff\xfe", 0, &volume), PM_ERR_INVALID_UTF8);
    EXPECT(pm_open_simulated_volume(NULL, 0, &volume), PM_ERR_NULL_POINTER);
    EXPECT(pm_open_simulated_volume(never, 0, NULL), PM_ERR_NULL_POINTER);
    /* Flags are checked before anything is opened. */
    EXPECT(pm_open_simulated_volume(never, 8, &volume), PM_ERR_BAD_FLAGS);
    EXPECT(pm_open_simulated_volume(never, PM_OPEN_DEGRADED | UINT32_C(0x80000000), &volume),
           PM_ERR_BAD_FLAGS);
    EXPECT(pm_open_simulated_volume(never, PM_OPEN_KEEP_PRIMARY | PM_OPEN_KEEP_MIRROR, &volume),
           PM_ERR_BAD_FLAGS);
    TRUE(!exists(never));
    TRUE(volume == SENTINEL_VOLUME);

    /* Cards that hold no volume. */
    EXPECT(pm_open_simulated_volume(fresh, 0, &volume), PM_ERR_NOT_FORMATTED);
    EXPECT(pm_open_simulated_volume(fresh, PM_OPEN_DEGRADED, &volume), PM_ERR_NOT_FORMATTED);
    TRUE(volume == SENTINEL_VOLUME);
    /* Card files that cannot be made: the directory would be inside a plain file. */
    FILE *file = fopen(plain, "w");
    fclose(file);
    EXPECT(pm_format_simulated_volume(under_file, "v", 0, &volume), PM_ERR_CARDS);
    EXPECT(pm_open_simulated_volume(under_file, 0, &volume), PM_ERR_CARDS);
    /* No VFIO cards here (and none at these addresses anywhere). */
    EXPECT(pm_open_vfio_volume("0000:ff:1f.6", "0000:ff:1f.7", 0, &volume), PM_ERR_CARDS);
    EXPECT(pm_open_vfio_volume("0000:ff:1f.6", "0000:ff:1f.7", PM_OPEN_DEGRADED, &volume),
           PM_ERR_CARDS);
    EXPECT(pm_open_vfio_volume("0000:ff:1f.6", "0000:ff:1f.7", 16, &volume), PM_ERR_BAD_FLAGS);
    EXPECT(pm_format_vfio_volume("0000:ff:1f.6", "0000:ff:1f.7", "v", 0, &volume), PM_ERR_CARDS);
    EXPECT(pm_open_vfio_volume(NULL, "0000:ff:1f.7", 0, &volume), PM_ERR_NULL_POINTER);
    EXPECT(pm_open_vfio_volume("0000:ff:1f.6", NULL, 0, &volume), PM_ERR_NULL_POINTER);
    EXPECT(pm_open_vfio_volume("0000:ff:1f.6", "0000:ff:1f.7", 0, NULL), PM_ERR_NULL_POINTER);
    EXPECT(pm_open_vfio_volume("\xff", "0000:ff:1f.7", 0, &volume), PM_ERR_INVALID_UTF8);
    EXPECT(pm_format_vfio_volume(NULL, "b", "v", 0, &volume), PM_ERR_NULL_POINTER);
    EXPECT(pm_format_vfio_volume("a", NULL, "v", 0, &volume), PM_ERR_NULL_POINTER);
    EXPECT(pm_format_vfio_volume("a", "b", NULL, 0, &volume), PM_ERR_NULL_POINTER);
    EXPECT(pm_format_vfio_volume("a", "b", "v", 0, NULL), PM_ERR_NULL_POINTER);
    EXPECT(pm_format_vfio_volume("a", "b", "", 0, &volume), PM_ERR_BAD_VOLUME_NAME);
    TRUE(volume == SENTINEL_VOLUME);

    /* A volume is formatted once, unless overwritten. */
    EXPECT(pm_format_simulated_volume(other, "first", 0, &volume), PM_OK);
    EXPECT(pm_create_region(volume, "kept", 100, 0), PM_OK);
    pm_close_volume(volume);
    volume = SENTINEL_VOLUME;
    EXPECT(pm_format_simulated_volume(other, "second", 0, &volume), PM_ERR_ALREADY_FORMATTED);
    TRUE(volume == SENTINEL_VOLUME);
    EXPECT(pm_open_simulated_volume(other, 0, &volume), PM_OK);
    pm_volume_info info;
    EXPECT(pm_get_volume_info(volume, &info), PM_OK);
    TRUE(strcmp(info.name, "first") == 0 && info.regions == 1);
    pm_close_volume(volume);
    EXPECT(pm_format_simulated_volume(other, "second", 1, &volume), PM_OK);
    EXPECT(pm_get_volume_info(volume, &info), PM_OK);
    TRUE(strcmp(info.name, "second") == 0 && info.regions == 0);
    pm_close_volume(volume);

    /* Swapped cards: each holds the other role's metadata. */
    char *primary = join(other, "primary.pm");
    char *mirror = join(other, "mirror.pm");
    char *aside = join(other, "aside.pm");
    TRUE(rename(primary, aside) == 0 && rename(mirror, primary) == 0 && rename(aside, mirror) == 0);
    volume = SENTINEL_VOLUME;
    EXPECT(pm_open_simulated_volume(other, 0, &volume), PM_ERR_UNSUITABLE_CARDS);
    TRUE(volume == SENTINEL_VOLUME);

    /* A volume open already: its cards' files are taken. */
    pm_volume *first = NULL;
    EXPECT(pm_format_simulated_volume(damaged, "damaged", 0, &first), PM_OK);
    EXPECT(pm_open_simulated_volume(damaged, 0, &volume), PM_ERR_CARDS);
    TRUE(volume == SENTINEL_VOLUME);
    pm_close_volume(first);

    /* Both metadata copies (64 KiB apart from the bottom of memory) damaged on both cards. */
    static const char *cards[2] = {"primary.pm", "mirror.pm"};
    for (int i = 0; i < 2; i++) {
        char *path = join(damaged, cards[i]);
        FILE *memory = fopen(path, "r+b");
        TRUE(memory != NULL);
        for (long slot = 0; memory != NULL && slot <= 65536; slot += 65536) {
            fseek(memory, slot + 70, SEEK_SET);
            int byte = fgetc(memory);
            fseek(memory, slot + 70, SEEK_SET);
            fputc(~byte & 0xff, memory);
        }
        if (memory != NULL) {
            fclose(memory);
        }
        free(path);
    }
    EXPECT(pm_open_simulated_volume(damaged, 0, &volume), PM_ERR_METADATA_DAMAGED);
    TRUE(volume == SENTINEL_VOLUME);

    pm_close_volume(NULL);
    free(never), free(fresh), free(other), free(plain), free(under_file), free(damaged);
    free(primary), free(mirror), free(aside);
}

/* Closes `count` handles; whether each closed. */
static int close_all(pm_volume *volume, const pm_region_handle *handles, int count) {
    int closed = 0;
    for (int i = 0; i < count; i++) {
        closed += pm_close_region(volume, handles[i]) == PM_OK;
    }
    return closed == count;
}

static void region_verbs(pm_volume *volume, pm_volume *another) {
    char long_name[65], longest_name[64];
    memset(long_name, 'r', 64);
    long_name[64] = '\0';
    memset(longest_name, 'r', 63);
    longest_name[63] = '\0';
    pm_volume_info info;
    EXPECT(pm_get_volume_info(NULL, &info), PM_ERR_NULL_POINTER);
    EXPECT(pm_get_volume_info(volume, NULL), PM_ERR_NULL_POINTER);
    EXPECT(pm_get_volume_info(volume, &info), PM_OK);

    /* Creating: names, sizes, base pointers. */
    EXPECT(pm_create_region(NULL, "r", SIZE, BASE), PM_ERR_NULL_POINTER);
    EXPECT(pm_create_region(volume, NULL, SIZE, BASE), PM_ERR_NULL_POINTER);
    EXPECT(pm_create_region(volume, "", SIZE, BASE), PM_ERR_BAD_NAME);
    EXPECT(pm_create_region(volume, long_name, SIZE, BASE), PM_ERR_BAD_NAME);
    EXPECT(pm_create_region(volume, "\xc3\x28", SIZE, BASE), PM_ERR_INVALID_UTF8);
    EXPECT(pm_create_region(volume, "r", 0, BASE), PM_ERR_BAD_SIZE);
    EXPECT(pm_create_region(volume, "r", info.max_region_bytes + 1, BASE), PM_ERR_BAD_SIZE);
    EXPECT(pm_create_region(volume, "r", UINT64_MAX, BASE), PM_ERR_BAD_SIZE);
    EXPECT(pm_create_region(volume, "r", 2, UINT64_MAX), PM_ERR_BASE_WRAPS);
    TRUE(regions(volume) == 0);
    pm_volume_info after;
    EXPECT(pm_get_volume_info(volume, &after), PM_OK);
    TRUE(after.free_pages == info.free_pages && after.sequence == info.sequence);

    EXPECT(pm_create_region(volume, longest_name, 1, UINT64_MAX), PM_OK);
    EXPECT(pm_delete_region(volume, longest_name), PM_OK);
    EXPECT(pm_create_region(volume, "r", SIZE, BASE), PM_OK);
    EXPECT(pm_create_region(volume, "r", 2 * SIZE, 0), PM_ERR_REGION_EXISTS);
    TRUE(regions(volume) == 1);

    /* Unknown regions, for every verb that names one. */
    pm_region_handle handle = SENTINEL_HANDLE;
    pm_attrs *attrs = SENTINEL_ATTRS;
    EXPECT(pm_open_region(volume, "nope", &handle), PM_ERR_NO_SUCH_REGION);
    EXPECT(pm_delete_region(volume, "nope"), PM_ERR_NO_SUCH_REGION);
    EXPECT(pm_read_attributes(volume, "nope", &attrs), PM_ERR_NO_SUCH_REGION);
    EXPECT(pm_open_region(volume, "", &handle), PM_ERR_BAD_NAME);
    EXPECT(pm_delete_region(volume, ""), PM_ERR_BAD_NAME);
    EXPECT(pm_read_attributes(volume, long_name, &attrs), PM_ERR_BAD_NAME);
    EXPECT(pm_open_region(NULL, "r", &handle), PM_ERR_NULL_POINTER);
    EXPECT(pm_open_region(volume, NULL, &handle), PM_ERR_NULL_POINTER);
    EXPECT(pm_open_region(volume, "r", NULL), PM_ERR_NULL_POINTER);
    EXPECT(pm_delete_region(NULL, "r"), PM_ERR_NULL_POINTER);
    EXPECT(pm_delete_region(volume, NULL), PM_ERR_NULL_POINTER);
    TRUE(handle == SENTINEL_HANDLE && attrs == SENTINEL_ATTRS);

    /* An open region. */
    EXPECT(pm_open_region(volume, "r", &handle), PM_OK);
    TRUE(handle != PM_INVALID_HANDLE && handle != SENTINEL_HANDLE);
    EXPECT(pm_delete_region(volume, "r"), PM_ERR_REGION_OPEN);
    TRUE(regions(volume) == 1);
    pm_region_info region;
    EXPECT(pm_get_region_info(NULL, handle, &region), PM_ERR_NULL_POINTER);
    EXPECT(pm_get_region_info(volume, handle, NULL), PM_ERR_NULL_POINTER);
    EXPECT(pm_get_region_info(volume, handle, &region), PM_OK);
    TRUE(region.base_pointer == BASE && region.size == SIZE && strcmp(region.name, "r") == 0);
    TRUE(region.primary_mapped && region.mirror_mapped);

    unsigned char data[SIZE], back[SIZE];
    for (int i = 0; i < SIZE; i++) {
        data[i] = (unsigned char)(i * 7 + 1);
    }
    EXPECT(pm_write_region(volume, handle, data, SIZE, BASE, PM_BOTH), PM_OK);

    /* Writes that are refused change nothing. */
    unsigned char junk[SIZE + 1];
    memset(junk, 0xee, sizeof junk);
    EXPECT(pm_write_region(NULL, handle, junk, 8, BASE, PM_BOTH), PM_ERR_NULL_POINTER);
    EXPECT(pm_write_region(volume, handle, NULL, 8, BASE, PM_BOTH), PM_ERR_NULL_POINTER);
    EXPECT(pm_write_region(volume, handle, junk, 8, BASE, PM_ANY), PM_ERR_BAD_MIRROR);
    EXPECT(pm_write_region(volume, handle, junk, 8, BASE, 0), PM_ERR_BAD_MIRROR);
    EXPECT(pm_write_region(volume, handle, junk, 8, BASE, 99), PM_ERR_BAD_MIRROR);
    EXPECT(pm_write_region(volume, handle, junk, 2, BASE - 1, PM_BOTH), PM_ERR_OUTSIDE_REGION);
    EXPECT(pm_write_region(volume, handle, junk, 2, BASE + SIZE - 1, PM_BOTH),
           PM_ERR_OUTSIDE_REGION);
    EXPECT(pm_write_region(volume, handle, junk, 1, BASE + SIZE, PM_BOTH), PM_ERR_OUTSIDE_REGION);
    EXPECT(pm_write_region(volume, handle, junk, SIZE + 1, BASE, PM_BOTH), PM_ERR_OUTSIDE_REGION);
    EXPECT(pm_write_region(volume, handle, junk, SIZE_MAX, BASE, PM_BOTH), PM_ERR_OUTSIDE_REGION);
    EXPECT(pm_write_region(volume, handle, junk, 8, UINT64_MAX - 3, PM_BOTH),
           PM_ERR_OUTSIDE_REGION);
    EXPECT(pm_write_region(volume, PM_INVALID_HANDLE, junk, 8, BASE, PM_BOTH), PM_ERR_BAD_HANDLE);
    EXPECT(pm_write_region(volume, 424242, junk, 8, BASE, PM_BOTH), PM_ERR_BAD_HANDLE);
    static const pm_mirror halves[3] = {PM_ANY, PM_PRIMARY, PM_MIRROR};
    for (int i = 0; i < 3; i++) {
        memset(back, 0, sizeof back);
        EXPECT(pm_read_region(volume, handle, back, SIZE, BASE, halves[i]), PM_OK);
        TRUE(memcmp(back, data, SIZE) == 0);
    }

    /* Reads that are refused leave the buffer alone. */
    memset(back, 0xaa, sizeof back);
    EXPECT(pm_read_region(NULL, handle, back, 8, BASE, PM_ANY), PM_ERR_NULL_POINTER);
    EXPECT(pm_read_region(volume, handle, NULL, 8, BASE, PM_ANY), PM_ERR_NULL_POINTER);
    EXPECT(pm_read_region(volume, handle, back, 8, BASE, PM_BOTH), PM_ERR_BAD_MIRROR);
    EXPECT(pm_read_region(volume, handle, back, 8, BASE, 0), PM_ERR_BAD_MIRROR);
    EXPECT(pm_read_region(volume, handle, back, 2, BASE - 1, PM_ANY), PM_ERR_OUTSIDE_REGION);
    EXPECT(pm_read_region(volume, handle, back, 2, BASE + SIZE - 1, PM_ANY),
           PM_ERR_OUTSIDE_REGION);
    EXPECT(pm_read_region(volume, handle, back, SIZE_MAX, BASE, PM_ANY), PM_ERR_OUTSIDE_REGION);
    EXPECT(pm_read_region(volume, 424242, back, 8, BASE, PM_ANY), PM_ERR_BAD_HANDLE);
    int untouched = 1;
    for (int i = 0; i < SIZE; i++) {
        untouched &= back[i] == 0xaa;
    }
    TRUE(untouched);
    EXPECT(pm_read_region(volume, handle, back, 0, BASE + SIZE, PM_ANY), PM_OK);

    /* A handle of another volume is not a handle of this one, and survives the attempt. */
    pm_region_handle foreign = PM_INVALID_HANDLE;
    EXPECT(pm_create_region(another, "r", SIZE, BASE), PM_OK);
    EXPECT(pm_open_region(another, "r", &foreign), PM_OK);
    TRUE(foreign != handle);
    EXPECT(pm_write_region(volume, foreign, junk, 8, BASE, PM_BOTH), PM_ERR_BAD_HANDLE);
    EXPECT(pm_read_region(volume, foreign, back, 8, BASE, PM_ANY), PM_ERR_BAD_HANDLE);
    EXPECT(pm_get_region_info(volume, foreign, &region), PM_ERR_BAD_HANDLE);
    EXPECT(pm_close_region(volume, foreign), PM_ERR_BAD_HANDLE);
    EXPECT(pm_write_region(another, foreign, junk, 8, BASE, PM_BOTH), PM_OK);
    EXPECT(pm_close_region(another, foreign), PM_OK);
    EXPECT(pm_delete_region(another, "r"), PM_OK);

    /* Listing. */
    char names[2][PM_NAME_CAPACITY];
    size_t count = 99;
    EXPECT(pm_list_regions(NULL, names, 2, &count), PM_ERR_NULL_POINTER);
    EXPECT(pm_list_regions(volume, NULL, 2, &count), PM_ERR_NULL_POINTER);
    EXPECT(pm_list_regions(volume, names, 2, NULL), PM_ERR_NULL_POINTER);
    TRUE(count == 99);
    EXPECT(pm_list_regions(volume, names, 2, &count), PM_OK);
    TRUE(count == 1 && strcmp(names[0], "r") == 0);

    /* Attributes. */
    EXPECT(pm_read_attributes(NULL, "r", &attrs), PM_ERR_NULL_POINTER);
    EXPECT(pm_read_attributes(volume, NULL, &attrs), PM_ERR_NULL_POINTER);
    EXPECT(pm_read_attributes(volume, "r", NULL), PM_ERR_NULL_POINTER);
    TRUE(attrs == SENTINEL_ATTRS);
    EXPECT(pm_read_attributes(volume, "r", &attrs), PM_OK);
    uint64_t value64 = 77;
    uint32_t value32 = 77;
    char text[8];
    memset(text, 'x', sizeof text);
    EXPECT(pm_get_attr_u64(NULL, "size", &value64), PM_ERR_NULL_POINTER);
    EXPECT(pm_get_attr_u64(attrs, NULL, &value64), PM_ERR_NULL_POINTER);
    EXPECT(pm_get_attr_u64(attrs, "size", NULL), PM_ERR_NULL_POINTER);
    EXPECT(pm_get_attr_u32(NULL, "owner", &value32), PM_ERR_NULL_POINTER);
    EXPECT(pm_get_attr_u32(attrs, NULL, &value32), PM_ERR_NULL_POINTER);
    EXPECT(pm_get_attr_u32(attrs, "owner", NULL), PM_ERR_NULL_POINTER);
    EXPECT(pm_get_attr_string(NULL, "name", text, sizeof text), PM_ERR_NULL_POINTER);
    EXPECT(pm_get_attr_string(attrs, NULL, text, sizeof text), PM_ERR_NULL_POINTER);
    EXPECT(pm_get_attr_string(attrs, "name", NULL, sizeof text), PM_ERR_NULL_POINTER);
    EXPECT(pm_get_attr_u64(attrs, "colour", &value64), PM_ERR_NO_SUCH_ATTRIBUTE);
    EXPECT(pm_get_attr_u32(attrs, "colour", &value32), PM_ERR_NO_SUCH_ATTRIBUTE);
    EXPECT(pm_get_attr_string(attrs, "colour", text, sizeof text), PM_ERR_NO_SUCH_ATTRIBUTE);
    EXPECT(pm_get_attr_u64(attrs, "\xff", &value64), PM_ERR_INVALID_UTF8);
    EXPECT(pm_get_attr_u32(attrs, "size", &value32), PM_ERR_WRONG_TYPE);
    EXPECT(pm_get_attr_u64(attrs, "owner", &value64), PM_ERR_WRONG_TYPE);
    EXPECT(pm_get_attr_u64(attrs, "name", &value64), PM_ERR_WRONG_TYPE);
    EXPECT(pm_get_attr_string(attrs, "size", text, sizeof text), PM_ERR_WRONG_TYPE);
    TRUE(value64 == 77 && value32 == 77 && text[0] == 'x');
    EXPECT(pm_get_attr_string(attrs, "name", text, 0), PM_ERR_BUFFER_TOO_SMALL);
    TRUE(text[0] == 'x');
    EXPECT(pm_get_attr_string(attrs, "name", text, 1), PM_ERR_BUFFER_TOO_SMALL);
    TRUE(text[0] == '\0' && text[1] == 'x');
    EXPECT(pm_get_attr_string(attrs, "name", text, 2), PM_OK);
    TRUE(strcmp(text, "r") == 0);
    EXPECT(pm_get_attr_u32(attrs, "open_handles", &value32), PM_OK);
    TRUE(value32 == 1);
    pm_free_region_attrs(attrs);
    pm_free_region_attrs(NULL);

    /* A closed handle is no handle. */
    EXPECT(pm_close_region(NULL, handle), PM_ERR_NULL_POINTER);
    EXPECT(pm_close_region(volume, handle), PM_OK);
    EXPECT(pm_close_region(volume, handle), PM_ERR_BAD_HANDLE);
    EXPECT(pm_write_region(volume, handle, junk, 8, BASE, PM_BOTH), PM_ERR_BAD_HANDLE);
    EXPECT(pm_read_region(volume, handle, back, 8, BASE, PM_ANY), PM_ERR_BAD_HANDLE);
    EXPECT(pm_get_region_info(volume, handle, &region), PM_ERR_BAD_HANDLE);
    EXPECT(pm_close_region(volume, PM_INVALID_HANDLE), PM_ERR_BAD_HANDLE);

    /* Every context taken: the next open is refused, and closing one frees it. */
    pm_region_handle open[1024];
    int opened = 0;
    pm_status status = PM_OK;
    while (opened < 1024) {
        status = pm_open_region(volume, "r", &open[opened]);
        if (status != PM_OK) {
            break;
        }
        opened++;
    }
    printf("opened region r %d times\n", opened);
    EXPECT(status, PM_ERR_NO_FREE_CONTEXT);
    TRUE(opened > 1 && opened < 1024);
    EXPECT(pm_close_region(volume, open[--opened]), PM_OK);
    EXPECT(pm_open_region(volume, "r", &open[opened++]), PM_OK);
    TRUE(close_all(volume, open, opened));

    /* Every translation entry taken by mappings of 17 pages, before the contexts run out. */
    EXPECT(pm_create_region(volume, "wide", 17 * 4096, 0), PM_OK);
    opened = 0;
    while (opened < 1024) {
        status = pm_open_region(volume, "wide", &open[opened]);
        if (status != PM_OK) {
            break;
        }
        opened++;
    }
    printf("opened region wide %d times\n", opened);
    EXPECT(status, PM_ERR_NO_FREE_ENTRIES);
    TRUE(opened > 1 && opened < 254);
    TRUE(close_all(volume, open, opened));
    EXPECT(pm_delete_region(volume, "wide"), PM_OK);

    /* Status and resync of a healthy volume; cards are named PM_PRIMARY and PM_MIRROR. */
    pm_card_status card;
    pm_resync_report report;
    EXPECT(pm_get_card_status(NULL, PM_PRIMARY, &card), PM_ERR_NULL_POINTER);
    EXPECT(pm_get_card_status(volume, PM_PRIMARY, NULL), PM_ERR_NULL_POINTER);
    EXPECT(pm_get_card_status(volume, PM_BOTH, &card), PM_ERR_BAD_MIRROR);
    EXPECT(pm_get_card_status(volume, PM_ANY, &card), PM_ERR_BAD_MIRROR);
    EXPECT(pm_get_card_status(volume, PM_MIRROR, &card), PM_OK);
    TRUE(card.state == PM_CARD_IN_SYNC && !card.failed && card.failure[0] == '\0');
    EXPECT(pm_resync(NULL, &report), PM_ERR_NULL_POINTER);
    EXPECT(pm_resync(volume, NULL), PM_ERR_NULL_POINTER);
    EXPECT(pm_resync(volume, &report), PM_ERR_NOTHING_TO_RESYNC);
    EXPECT(pm_simulated_fail_card(NULL, PM_PRIMARY), PM_ERR_NULL_POINTER);
    EXPECT(pm_simulated_fail_card(volume, PM_BOTH), PM_ERR_BAD_MIRROR);

    EXPECT(pm_delete_region(volume, "r"), PM_OK);
    TRUE(regions(volume) == 0);
}

static void failover(const char *root) {
    char *directory = join(root, "failover");
    pm_volume *volume = NULL;
    pm_region_handle handle;
    pm_card_status card;
    pm_resync_report report;
    unsigned char before[256], during[256], back[256];
    memset(before, 1, sizeof before);
    memset(during, 2, sizeof during);

    EXPECT(pm_format_simulated_volume(directory, "failover", 0, &volume), PM_OK);
    EXPECT(pm_create_region(volume, "d", 8192, 0), PM_OK);
    EXPECT(pm_open_region(volume, "d", &handle), PM_OK);
    EXPECT(pm_write_region(volume, handle, before, sizeof before, 0, PM_BOTH), PM_OK);

    /* The mirror dies: the write lands on the primary alone, and says so. */
    EXPECT(pm_simulated_fail_card(volume, PM_MIRROR), PM_OK);
    EXPECT(pm_write_region(volume, handle, during, sizeof during, 256, PM_BOTH), PM_ERR_DEGRADED);
    EXPECT(pm_get_card_status(volume, PM_MIRROR, &card), PM_OK);
    TRUE(card.state == PM_CARD_STALE && card.failed && card.failure[0] != '\0');
    printf("mirror: %s\n", card.failure);
    EXPECT(pm_write_region(volume, handle, during, sizeof during, 0, PM_MIRROR),
           PM_ERR_CARD_UNAVAILABLE);
    EXPECT(pm_read_region(volume, handle, back, sizeof back, 256, PM_MIRROR),
           PM_ERR_CARD_UNAVAILABLE);
    EXPECT(pm_read_region(volume, handle, back, sizeof back, 256, PM_ANY), PM_OK);
    TRUE(memcmp(back, during, sizeof back) == 0);
    /* The dead card cannot be taken over again to be rebuilt. */
    EXPECT(pm_resync(volume, &report), PM_ERR_CARD);
    pm_close_volume(volume);

    /* Its memory survived: it answers again, stale until resynced. */
    EXPECT(pm_open_simulated_volume(directory, 0, &volume), PM_OK);
    EXPECT(pm_get_card_status(volume, PM_MIRROR, &card), PM_OK);
    TRUE(card.state == PM_CARD_STALE && !card.failed);
    EXPECT(pm_open_region(volume, "d", &handle), PM_OK);
    EXPECT(pm_read_region(volume, handle, back, sizeof back, 256, PM_MIRROR), PM_ERR_CARD_STALE);
    EXPECT(pm_resync(volume, &report), PM_OK);
    TRUE(report.card == PM_MIRROR && report.pages == 2 && report.bytes == 8192 && !report.full);
    EXPECT(pm_resync(volume, &report), PM_ERR_NOTHING_TO_RESYNC);
    EXPECT(pm_read_region(volume, handle, back, sizeof back, 256, PM_MIRROR), PM_OK);
    TRUE(memcmp(back, during, sizeof back) == 0);
    EXPECT(pm_get_card_status(volume, PM_MIRROR, &card), PM_OK);
    TRUE(card.state == PM_CARD_IN_SYNC);

    /* Both die. */
    EXPECT(pm_simulated_fail_card(volume, PM_PRIMARY), PM_OK);
    EXPECT(pm_simulated_fail_card(volume, PM_MIRROR), PM_OK);
    EXPECT(pm_read_region(volume, handle, back, sizeof back, 0, PM_ANY), PM_ERR_BOTH_CARDS_FAILED);
    /* And the next read, with no card left to try. */
    EXPECT(pm_read_region(volume, handle, back, sizeof back, 0, PM_ANY), PM_ERR_BOTH_CARDS_FAILED);
    EXPECT(pm_write_region(volume, handle, before, sizeof before, 0, PM_BOTH),
           PM_ERR_BOTH_CARDS_FAILED);
    pm_close_volume(volume);
    free(directory);
}

/* Comparing the cards: its arguments, a difference found and repaired. */
static void checking(pm_volume *volume, pm_region_handle handle) {
    pm_check_report checked, untouched;
    pm_difference differences[2];
    memset(&untouched, 0x5e, sizeof untouched);
    checked = untouched;
    EXPECT(pm_check_volume(NULL, 0, NULL, 0, &checked), PM_ERR_NULL_POINTER);
    EXPECT(pm_check_volume(volume, 0, NULL, 1, &checked), PM_ERR_NULL_POINTER);
    EXPECT(pm_check_volume(volume, 0, differences, 2, NULL), PM_ERR_NULL_POINTER);
    TRUE(memcmp(&checked, &untouched, sizeof checked) == 0);
    EXPECT(pm_check_volume(volume, 0, NULL, 0, &checked), PM_OK);
    TRUE(checked.differences == 0 && checked.metadata_differences == 0 && checked.regions == 1);
    TRUE(checked.bytes_compared == 4096 && !checked.repaired);

    /* A recovery write to the mirror alone: the copies differ in those bytes. */
    EXPECT(pm_write_region(volume, handle, "xy", 2, 1, PM_MIRROR), PM_OK);
    EXPECT(pm_check_volume(volume, 0, differences, 2, &checked), PM_OK);
    TRUE(checked.differences == 1 && checked.bytes_differing == 2 && !checked.repaired);
    TRUE(strcmp(differences[0].region, "d") == 0 && differences[0].offset == 1 &&
         differences[0].length == 2);
    EXPECT(pm_check_volume(volume, 1, NULL, 0, &checked), PM_OK);
    TRUE(checked.differences == 1 && checked.repaired);
    EXPECT(pm_check_volume(volume, 0, NULL, 0, &checked), PM_OK);
    TRUE(checked.differences == 0 && !checked.repaired);
    char back[4];
    EXPECT(pm_read_region(volume, handle, back, 4, 0, PM_MIRROR), PM_OK);
    TRUE(memcmp(back, "AAAA", 4) == 0);
}

/*
 * A card missing, and two cards whose histories forked: each written while the other was
 * away (the primary dies and the mirror goes on alone; later the mirror is away and the
 * primary goes on alone in a degraded open).
 */
static void split_brain(const char *root) {
    char *directory = join(root, "split");
    char *mirror = join(directory, "mirror.pm");
    char *aside = join(directory, "mirror.aside");
    pm_volume *volume = NULL;
    pm_region_handle handle;
    pm_card_status card;
    pm_check_report checked;
    pm_resync_report report;
    char back[4];

    EXPECT(pm_format_simulated_volume(directory, "split", 0, &volume), PM_OK);
    EXPECT(pm_create_region(volume, "d", 4096, 0), PM_OK);
    EXPECT(pm_open_region(volume, "d", &handle), PM_OK);
    EXPECT(pm_write_region(volume, handle, "AAAA", 4, 0, PM_BOTH), PM_OK);
    checking(volume, handle);
    EXPECT(pm_simulated_fail_card(volume, PM_PRIMARY), PM_OK);
    EXPECT(pm_write_region(volume, handle, "BBBB", 4, 0, PM_BOTH), PM_ERR_DEGRADED);
    EXPECT(pm_check_volume(volume, 0, NULL, 0, &checked), PM_ERR_CARD_UNAVAILABLE);
    pm_close_volume(volume);

    /* The mirror is away: a blank card in its place. The primary alone is refused... */
    TRUE(rename(mirror, aside) == 0);
    volume = SENTINEL_VOLUME;
    EXPECT(pm_open_simulated_volume(directory, 0, &volume), PM_ERR_MEMBER_MISSING);
    TRUE(volume == SENTINEL_VOLUME);
    printf("     %s\n", pm_last_error());
    TRUE(strstr(pm_last_error(), "mirror card is missing") != NULL);
    /* ...unless degraded: it holds the data from before the primary died. */
    EXPECT(pm_open_simulated_volume(directory, PM_OPEN_DEGRADED, &volume), PM_OK);
    EXPECT(pm_open_region(volume, "d", &handle), PM_OK);
    EXPECT(pm_read_region(volume, handle, back, 4, 0, PM_ANY), PM_OK);
    TRUE(memcmp(back, "AAAA", 4) == 0);
    EXPECT(pm_write_region(volume, handle, "CCCC", 4, 0, PM_BOTH), PM_OK);
    pm_close_volume(volume);

    /* The mirror comes back: each card went on without the other. */
    TRUE(rename(aside, mirror) == 0);
    volume = SENTINEL_VOLUME;
    EXPECT(pm_open_simulated_volume(directory, 0, &volume), PM_ERR_FORKED);
    printf("     %s\n", pm_last_error());
    EXPECT(pm_open_simulated_volume(directory, PM_OPEN_DEGRADED, &volume), PM_ERR_FORKED);
    EXPECT(pm_open_simulated_volume(directory, PM_OPEN_KEEP_PRIMARY | PM_OPEN_KEEP_MIRROR, &volume),
           PM_ERR_BAD_FLAGS);
    TRUE(volume == SENTINEL_VOLUME);
    EXPECT(pm_open_simulated_volume(directory, PM_OPEN_KEEP_MIRROR, &volume), PM_OK);
    EXPECT(pm_get_card_status(volume, PM_PRIMARY, &card), PM_OK);
    TRUE(card.state == PM_CARD_STALE);
    EXPECT(pm_open_region(volume, "d", &handle), PM_OK);
    EXPECT(pm_read_region(volume, handle, back, 4, 0, PM_ANY), PM_OK);
    TRUE(memcmp(back, "BBBB", 4) == 0);
    EXPECT(pm_check_volume(volume, 0, NULL, 0, &checked), PM_ERR_CARD_STALE);
    EXPECT(pm_resync(volume, &report), PM_OK);
    TRUE(report.card == PM_PRIMARY);
    EXPECT(pm_check_volume(volume, 0, NULL, 0, &checked), PM_OK);
    TRUE(checked.differences == 0 && checked.metadata_differences == 0);
    EXPECT(pm_read_region(volume, handle, back, 4, 0, PM_PRIMARY), PM_OK);
    TRUE(memcmp(back, "BBBB", 4) == 0);
    pm_close_volume(volume);

    /* Resynced: nothing to choose any more. */
    volume = SENTINEL_VOLUME;
    EXPECT(pm_open_simulated_volume(directory, PM_OPEN_KEEP_PRIMARY, &volume), PM_ERR_NOT_FORKED);
    TRUE(volume == SENTINEL_VOLUME);
    EXPECT(pm_open_simulated_volume(directory, 0, &volume), PM_OK);
    pm_close_volume(volume);
    free(directory), free(mirror), free(aside);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
        return 2;
    }
    const char *root = argv[1];
    openers(root);

    char *first = join(root, "first");
    char *second = join(root, "second");
    pm_volume *volume = NULL, *another = NULL;
    EXPECT(pm_format_simulated_volume(first, "first", 0, &volume), PM_OK);
    EXPECT(pm_format_simulated_volume(second, "second", 0, &another), PM_OK);
    if (volume != NULL && another != NULL) {
        region_verbs(volume, another);
    }
    pm_close_volume(volume);
    pm_close_volume(another);
    free(first), free(second);

    failover(root);
    split_brain(root);

    printf("%d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
