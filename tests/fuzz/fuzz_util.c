/* fuzz_util.c: scratch files for fuzz entries whose API takes a path (IDX,
 * HDF5). Files live in /dev/shm when it exists (no disk I/O per input),
 * are made with mkstemp, and are unlinked at exit. */
#include "fuzz_entries.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NSCRATCH 2
static char scratch[NSCRATCH][256];

static void remove_scratch(void) {
    for (int i = 0; i < NSCRATCH; i++)
        if (scratch[i][0]) unlink(scratch[i]);
}

const char *nbf_scratch_path(int which) {
    if (which < 0 || which >= NSCRATCH) return NULL;
    if (scratch[which][0]) return scratch[which];
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    if (!dir) dir = "/tmp";
    snprintf(scratch[which], sizeof scratch[which], "%s/nbfuzz-%d-XXXXXX", dir, which);
    int fd = mkstemp(scratch[which]);
    if (fd < 0) {
        perror("nbf_scratch_path: mkstemp");
        scratch[which][0] = 0;
        return NULL;
    }
    close(fd);
    static int registered;
    if (!registered) registered = atexit(remove_scratch) == 0;
    return scratch[which];
}

int nbf_write_file(const char *path, const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = size ? fwrite(data, 1, size, f) : 0;
    int bad = fclose(f) != 0 || w != size;
    return bad ? -1 : 0;
}
