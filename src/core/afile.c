/* Atomic file writes: temp file + fsync + rename + directory fsync. */
#include "genrec/common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int gr_afile_open(gr_afile *a, const char *path)
{
    memset(a, 0, sizeof *a);
    size_t n = strlen(path);
    a->path = gr_strdup(path);
    a->tmp = malloc(n + 16);
    if (!a->path || !a->tmp) {
        free(a->path); free(a->tmp);
        memset(a, 0, sizeof *a);
        return gr_errorf("%s: out of memory", path);
    }
    snprintf(a->tmp, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(a->tmp);
    if (fd < 0) {
        int e = errno;
        free(a->path); free(a->tmp);
        memset(a, 0, sizeof *a);
        return gr_errorf("%s: cannot create a temporary file: %s", path, strerror(e));
    }
    (void)fchmod(fd, 0644); /* mkstemp creates 0600; artifacts are ordinary files */
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        int e = errno;
        close(fd);
        unlink(a->tmp);
        free(a->path); free(a->tmp);
        memset(a, 0, sizeof *a);
        return gr_errorf("%s: %s", path, strerror(e));
    }
    setvbuf(a->f, NULL, _IOFBF, (size_t)1 << 20);
    return GR_OK;
}

static void sync_dir(const char *path)
{
    char *dir = gr_strdup(path);
    if (!dir) return;
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = '\0';
    else if (slash) *slash = '\0';
    else strcpy(dir, ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) { (void)fsync(dfd); close(dfd); }
    free(dir);
}

int gr_afile_commit(gr_afile *a)
{
    if (!a->f) return gr_errorf("%s: file was not open", a->path ? a->path : "(null)");
    int err = 0;
    if (ferror(a->f)) err = EIO;
    if (!err && fflush(a->f)) err = errno;
    if (!err && fsync(fileno(a->f))) err = errno;
    if (fclose(a->f) && !err) err = errno;
    a->f = NULL;
    if (!err && rename(a->tmp, a->path)) err = errno;
    int rc = GR_OK;
    if (err) {
        unlink(a->tmp);
        rc = gr_errorf("%s: write failed: %s", a->path, strerror(err ? err : EIO));
    } else {
        sync_dir(a->path);
    }
    free(a->path); free(a->tmp);
    a->path = a->tmp = NULL;
    return rc;
}

void gr_afile_abort(gr_afile *a)
{
    if (a->f) fclose(a->f);
    if (a->tmp) unlink(a->tmp);
    free(a->path); free(a->tmp);
    memset(a, 0, sizeof *a);
}
