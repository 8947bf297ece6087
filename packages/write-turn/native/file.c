// The turn file: created the way SQLite creates its -shm (the database's permission bits and,
// for root, its owner), adopted only when it could not have been planted by someone who cannot
// write the database, never renamed over or truncated unless it is a turn file of ours, and
// mapped under a guard that turns a truncation into "broken" instead of SIGBUS.
#include "turn.h"

#ifdef __linux__
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- The guard: a fault on a mapping that was truncated under us. ----
   Truncating a file while it is mapped makes every touch of the lost pages raise SIGBUS (a `cp`
   or `rsync --inplace` over the turn file). The handler replaces such a mapping, in place, with
   zeroed private memory and returns: the faulting access is retried and reads zeros, the magic
   is gone, and every later call sees a broken turn (turn_broken) and says so. A fault anywhere
   else goes to the handler that was there before, or kills the process as it would have. */
#define MAX_GUARDED 16384
static uintptr_t guarded[MAX_GUARDED];
static struct sigaction previous_bus;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;

static void on_sigbus(int signal_number, siginfo_t *info, void *context) {
  uintptr_t address = (uintptr_t)info->si_addr;
  for (int i = 0; i < MAX_GUARDED; i++) {
    uintptr_t start = __atomic_load_n(&guarded[i], __ATOMIC_ACQUIRE);
    if (start == 0 || address < start || address >= start + TURN_FILE_SIZE) continue;
    void *replaced = mmap((void *)start, TURN_FILE_SIZE, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (replaced != MAP_FAILED) return;
    break;
  }
  if (previous_bus.sa_flags & SA_SIGINFO) {
    if (previous_bus.sa_sigaction != NULL) previous_bus.sa_sigaction(signal_number, info, context);
    return;
  }
  if (previous_bus.sa_handler == SIG_DFL || previous_bus.sa_handler == SIG_IGN) {
    /* As before this addon: the default action, at once (a fault, or a signal someone sent). */
    signal(SIGBUS, SIG_DFL);
    raise(SIGBUS);
    return;
  }
  previous_bus.sa_handler(signal_number);
}

static void install_guard(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = on_sigbus;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&action.sa_mask);
  sigaction(SIGBUS, &action, &previous_bus);
}

static void guard(shared_turn *s) {
  pthread_once(&guard_once, install_guard);
  for (int i = 0; i < MAX_GUARDED; i++) {
    uintptr_t expected = 0;
    if (__atomic_compare_exchange_n(&guarded[i], &expected, (uintptr_t)s, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
      return;
  }
  /* More mappings than places: this one is unguarded (a truncation then kills, as SQLite's -shm would). */
}

void turn_file_unmap(shared_turn *s) {
  for (int i = 0; i < MAX_GUARDED; i++) {
    uintptr_t expected = (uintptr_t)s;
    if (__atomic_compare_exchange_n(&guarded[i], &expected, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) break;
  }
  munmap(s, TURN_FILE_SIZE);
}

int turn_broken(const shared_turn *s) {
  return __atomic_load_n(&s->magic, __ATOMIC_ACQUIRE) != TURN_MAGIC;
}

/* This process's PID namespace (the inode of /proc/self/ns/pid), or 0 if unknown. */
uint64_t pid_namespace(void) {
  static uint64_t cached;
  if (cached == 0) {
    struct stat st;
    if (stat("/proc/self/ns/pid", &st) == 0) cached = (uint64_t)st.st_ino;
  }
  return cached;
}

static void read_boot_id(char out[BOOT_ID_SIZE]) {
  memset(out, 0, BOOT_ID_SIZE);
  int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, out, BOOT_ID_SIZE - 1);
  if (n < 0) out[0] = 0;
  close(fd);
}

/* The database's permission bits: the turn file never lets anyone write it who cannot write the database. */
static mode_t turn_mode(const struct stat *database) {
  return database->st_mode & 0666;
}

/* A new, initialised turn file at a temporary path, with the database's mode and (as root) owner; its fd or -1. */
static int create_initialised(const char *tmp, const char *boot_id, const struct stat *database) {
  int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, turn_mode(database));
  if (fd < 0) return -1;
  /* The umask may have taken bits away; never more than the database's. */
  if (fchmod(fd, turn_mode(database)) != 0) goto fail;
  if (geteuid() == 0 && fchown(fd, database->st_uid, database->st_gid) != 0) goto fail;
  /* Every page allocated now: a page of a sparse file touched later on a full file system
     (a small tmpfs) would raise SIGBUS instead of an error. */
  if (ftruncate(fd, TURN_FILE_SIZE) != 0 || posix_fallocate(fd, 0, TURN_FILE_SIZE) != 0) goto fail;
  shared_turn *s = mmap(NULL, TURN_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (s == MAP_FAILED) goto fail;
  memcpy(s->boot_id, boot_id, BOOT_ID_SIZE);
  __atomic_store_n(&s->magic, TURN_MAGIC, __ATOMIC_RELEASE);
  munmap(s, TURN_FILE_SIZE);
  return fd;
fail: {
  int saved = errno;
  close(fd);
  unlink(tmp);
  errno = saved;
  return -1;
}
}

/* Why an existing file at the turn's path may not be used, or NULL when it may. */
static open_status judge(const struct stat *st, const struct stat *database, char *why, size_t size) {
  if (!S_ISREG(st->st_mode)) {
    snprintf(why, size, "it is not a regular file");
    return OPEN_NOT_A_TURN_FILE;
  }
  if (st->st_uid != geteuid() && st->st_uid != database->st_uid) {
    snprintf(why, size, "it belongs to uid %u, neither this process's nor the database's owner", (unsigned)st->st_uid);
    return OPEN_UNTRUSTED;
  }
  if ((st->st_mode & 07777 & ~turn_mode(database)) != 0) {
    snprintf(why, size, "its mode %04o lets users write it who cannot write the database (mode %04o)",
             (unsigned)(st->st_mode & 07777), (unsigned)(database->st_mode & 07777));
    return OPEN_UNTRUSTED;
  }
  if (st->st_nlink != 1) {
    snprintf(why, size, "it has %u names (hard links)", (unsigned)st->st_nlink);
    return OPEN_NOT_A_TURN_FILE;
  }
  if (st->st_size != TURN_FILE_SIZE) {
    snprintf(why, size, "its size (%lld bytes) is not a turn file's", (long long)st->st_size);
    return OPEN_NOT_A_TURN_FILE;
  }
  return OPEN_OK;
}

/*
 * Maps the turn file at `path` for the database at `database`, creating it if needed. A file is
 * only ever made visible whole (created under a temporary name, then linked into place), so a
 * process never sees it half-initialised. A turn file of an earlier boot (its lock may name a
 * thread that is gone) is replaced by a fresh one; anything that is not a turn file is left alone.
 */
open_status turn_file_open(turn *t, const char *path, const char *database, char *error, size_t size) {
  struct stat db;
  if (stat(database, &db) != 0) {
    snprintf(error, size, "cannot examine the database %s: %s", database, strerror(errno));
    return OPEN_SYSTEM;
  }
  char boot_id[BOOT_ID_SIZE];
  read_boot_id(boot_id);
  char tmp[4200];
  char why[256];
  for (int attempt = 0; attempt < 8; attempt++) {
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 && errno == ELOOP) {
      snprintf(error, size, "%s is not a write-turn file: it is a symbolic link", path);
      return OPEN_NOT_A_TURN_FILE;
    }
    if (fd >= 0) {
      struct stat st;
      if (fstat(fd, &st) != 0) {
        close(fd);
        break;
      }
      open_status verdict = judge(&st, &db, why, sizeof why);
      if (verdict != OPEN_OK) {
        close(fd);
        snprintf(error, size, "%s is %s: %s", path,
                 verdict == OPEN_UNTRUSTED ? "not trusted as a write-turn file" : "not a write-turn file", why);
        return verdict;
      }
      shared_turn *s = mmap(NULL, TURN_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      close(fd);
      if (s == MAP_FAILED) break;
      guard(s);
      uint64_t magic = __atomic_load_n(&s->magic, __ATOMIC_ACQUIRE);
      if (magic != TURN_MAGIC && magic != TURN_MAGIC_BEFORE) {
        turn_file_unmap(s);
        snprintf(error, size, "%s is not a write-turn file: its header is not one", path);
        return OPEN_NOT_A_TURN_FILE;
      }
      if (magic == TURN_MAGIC && memcmp(s->boot_id, boot_id, BOOT_ID_SIZE) == 0) {
        t->shared = s;
        t->dev = st.st_dev;
        t->ino = st.st_ino;
        return OPEN_OK;
      }
      turn_file_unmap(s);
      /* A turn file of ours from an earlier boot or version: a fresh one takes its place. */
      snprintf(tmp, sizeof tmp, "%s.%d.%d.tmp", path, (int)getpid(), (int)gettid());
      int fresh = create_initialised(tmp, boot_id, &db);
      if (fresh < 0) break;
      close(fresh);
      if (rename(tmp, path) != 0) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
        break;
      }
      continue;
    }
    if (errno != ENOENT) break;
    snprintf(tmp, sizeof tmp, "%s.%d.%d.tmp", path, (int)getpid(), (int)gettid());
    int fresh = create_initialised(tmp, boot_id, &db);
    if (fresh < 0) break;
    close(fresh);
    int linked = link(tmp, path);
    int link_errno = errno;
    unlink(tmp);
    if (linked == 0) t->created = 1;
    else if (link_errno != EEXIST) {
      errno = link_errno;
      break;
    }
  }
  snprintf(error, size, "cannot open the write turn %s: %s", path, strerror(errno));
  return OPEN_SYSTEM;
}

/* Whether the turn file at the handle's path is no longer the one it mapped (deleted, or replaced). */
int turn_file_stale(const turn *t) {
  struct stat st;
  if (lstat(t->path, &st) != 0) return 1;
  return st.st_dev != t->dev || st.st_ino != t->ino;
}

/* Removes the turn file if this handle created it and it is still the one at its path. */
int turn_file_remove_if_created(const turn *t) {
  if (!t->created || turn_file_stale(t)) return 0;
  return unlink(t->path) == 0;
}
#endif
