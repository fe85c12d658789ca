/* Temporary files of killed checkpoint writers (nabla/checkpoint.h):
 * nb_hdf5_save writes path.tmp.<pid> and renames it over path; a writer
 * killed in between leaves the temporary behind. Only that exact pattern is
 * touched, and only when process pid no longer exists (kill(pid, 0) fails
 * with ESRCH): a live writer's file, or one of another user (EPERM), stays. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "train/train_internal.h"

/* The pid of "<base>.tmp.<digits>", or 0 if name is not of that form. */
static long tmp_pid(const char *name, const char *base) {
    const size_t n = strlen(base);
    if (strncmp(name, base, n) != 0 || strncmp(name + n, ".tmp.", 5) != 0) return 0;
    const char *d = name + n + 5;
    if (*d < '1' || *d > '9' || strlen(d) > 9) return 0; /* pids fit in 9 digits (Linux: at most 2^22) */
    for (const char *c = d; *c; c++)
        if (*c < '0' || *c > '9') return 0;
    return strtol(d, NULL, 10);
}

void nbi_remove_stale_tmp(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!*base) return;
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else return;
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        const long pid = tmp_pid(e->d_name, base);
        if (pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours to judge */
        char file[8192];
        if ((size_t)snprintf(file, sizeof file, "%s/%s", dir, e->d_name) < sizeof file) unlink(file);
    }
    closedir(d);
}
