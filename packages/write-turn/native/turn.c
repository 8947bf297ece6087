// A turn to write to one file, queued by the kernel: a robust, process-shared
// pthread mutex in a small memory-mapped file beside the database. Waiters sleep
// in the kernel (a futex), not in Node; an unlock wakes one of them; a holder
// that dies (process or thread) hands the turn on (EOWNERDEAD). It is only an
// order among cooperating writers: SQLite's own lock stays the one that decides.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__

#define TURN_MAGIC 0x316e727554ULL /* "Turn1" */
#define TURN_FILE_SIZE 4096
#define BOOT_ID_SIZE 40

typedef struct {
  uint64_t magic;
  char boot_id[BOOT_ID_SIZE];
  pthread_mutex_t mutex;
} shared_turn;

enum owner { OWNER_NONE, OWNER_CALLER, OWNER_WAITER };
enum command { CMD_NONE, CMD_ACQUIRE, CMD_RELEASE, CMD_STOP };

typedef struct {
  shared_turn *shared;
  enum owner owner;
  int closed;
  int refs;
  int cleaned_up;
  /* The waiting thread, started at the first wait. */
  int thread_started;
  pthread_t thread;
  pthread_mutex_t control;
  pthread_cond_t wake;
  pthread_cond_t done;
  int released;
  enum command command;
  int waiting;
  struct timespec until;
  napi_threadsafe_function tsfn;
  napi_deferred deferred;
  napi_env env;
} turn;

static void read_boot_id(char out[BOOT_ID_SIZE]) {
  memset(out, 0, BOOT_ID_SIZE);
  int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, out, BOOT_ID_SIZE - 1);
  if (n < 0) out[0] = 0;
  close(fd);
}

/* A new, initialised turn file at a temporary path; returns its fd or -1. */
static int create_initialised(const char *tmp, const char *boot_id) {
  int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  if (ftruncate(fd, TURN_FILE_SIZE) != 0) goto fail;
  shared_turn *s = mmap(NULL, TURN_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (s == MAP_FAILED) goto fail;
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  int rc = pthread_mutex_init(&s->mutex, &attr);
  pthread_mutexattr_destroy(&attr);
  memcpy(s->boot_id, boot_id, BOOT_ID_SIZE);
  __atomic_store_n(&s->magic, TURN_MAGIC, __ATOMIC_RELEASE);
  munmap(s, TURN_FILE_SIZE);
  if (rc != 0) goto fail;
  return fd;
fail:
  close(fd);
  unlink(tmp);
  return -1;
}

static shared_turn *map_fd(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size < TURN_FILE_SIZE) return NULL;
  shared_turn *s = mmap(NULL, TURN_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  return s == MAP_FAILED ? NULL : s;
}

/*
 * Maps the turn file at `path`, creating it if needed. A file is only ever made
 * visible whole (created under a temporary name, then linked or renamed into
 * place), so a process never sees a half-initialised mutex. A file left by an
 * earlier boot may hold the id of a thread that no longer exists: it is replaced.
 */
static shared_turn *open_turn(const char *path, char *error, size_t error_size) {
  char boot_id[BOOT_ID_SIZE];
  read_boot_id(boot_id);
  char tmp[4200];
  for (int attempt = 0; attempt < 8; attempt++) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
      shared_turn *s = map_fd(fd);
      close(fd);
      if (s != NULL && __atomic_load_n(&s->magic, __ATOMIC_ACQUIRE) == TURN_MAGIC &&
          memcmp(s->boot_id, boot_id, BOOT_ID_SIZE) == 0)
        return s;
      if (s != NULL) munmap(s, TURN_FILE_SIZE);
      /* Stale (another boot) or foreign content: put a fresh one in its place. */
      snprintf(tmp, sizeof tmp, "%s.%d.%d.tmp", path, (int)getpid(), (int)gettid());
      int fresh = create_initialised(tmp, boot_id);
      if (fresh < 0) break;
      close(fresh);
      if (rename(tmp, path) != 0) {
        unlink(tmp);
        break;
      }
      continue;
    }
    if (errno != ENOENT) break;
    snprintf(tmp, sizeof tmp, "%s.%d.%d.tmp", path, (int)getpid(), (int)gettid());
    int fresh = create_initialised(tmp, boot_id);
    if (fresh < 0) break;
    close(fresh);
    int linked = link(tmp, path);
    int link_errno = errno;
    unlink(tmp);
    if (linked != 0 && link_errno != EEXIST) {
      errno = link_errno;
      break;
    }
  }
  snprintf(error, error_size, "cannot open the write turn %s: %s", path, strerror(errno));
  return NULL;
}

static int lock_result(shared_turn *s, int rc) {
  if (rc == EOWNERDEAD) {
    /* The previous holder died holding the turn: it is ours now. */
    pthread_mutex_consistent(&s->mutex);
    return 1;
  }
  return rc == 0;
}

/* On the monotonic clock where the C library has it (glibc): a wall-clock step (NTP, a VM
   resumed) then neither cuts nor stretches a wait. */
#ifdef __GLIBC__
#define TURN_CLOCK CLOCK_MONOTONIC
static int lock_until(pthread_mutex_t *mutex, const struct timespec *until) {
  return pthread_mutex_clocklock(mutex, CLOCK_MONOTONIC, until);
}
#else
#define TURN_CLOCK CLOCK_REALTIME
static int lock_until(pthread_mutex_t *mutex, const struct timespec *until) {
  return pthread_mutex_timedlock(mutex, until);
}
#endif

static void add_ns(struct timespec *t, long long ns) {
  long long total = t->tv_nsec + ns;
  t->tv_sec += total / 1000000000LL;
  t->tv_nsec = total % 1000000000LL;
}


/* Dropped by the JavaScript handle (finalizer) and by the thread (exit): the last one frees. */
static void release_ref(turn *t) {
  if (__atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  munmap(t->shared, TURN_FILE_SIZE);
  pthread_mutex_destroy(&t->control);
  pthread_cond_destroy(&t->wake);
  pthread_cond_destroy(&t->done);
  free(t);
}

static void *waiter_main(void *arg) {
  turn *t = arg;
  int holding = 0; /* A robust mutex is unlocked by the thread that locked it: this one. */
  pthread_mutex_lock(&t->control);
  for (;;) {
    while (t->command == CMD_NONE) pthread_cond_wait(&t->wake, &t->control);
    enum command command = t->command;
    t->command = CMD_NONE;
    if (command == CMD_STOP) break;
    if (command == CMD_RELEASE) {
      if (holding) pthread_mutex_unlock(&t->shared->mutex);
      holding = 0;
      t->released = 1;
      pthread_cond_broadcast(&t->done);
      continue;
    }
    /* CMD_ACQUIRE: sleep in the kernel until the turn is ours or the time is up. No polling:
       a sleeping thread woken every few ms costs a cold process about 0.25 ms of CPU each time. */
    struct timespec until = t->until;
    t->waiting = 1;
    pthread_mutex_unlock(&t->control);
    int held = lock_result(t->shared, lock_until(&t->shared->mutex, &until));
    pthread_mutex_lock(&t->control);
    t->waiting = 0;
    if (t->closed) {
      /* Closed while this thread slept: nobody waits for the answer, and the thread cleans up. */
      if (held) pthread_mutex_unlock(&t->shared->mutex);
      pthread_mutex_unlock(&t->control);
      release_ref(t);
      return NULL;
    }
    holding = held;
    napi_call_threadsafe_function(t->tsfn, (void *)(intptr_t)held, napi_tsfn_nonblocking);
  }
  if (holding) pthread_mutex_unlock(&t->shared->mutex);
  pthread_mutex_unlock(&t->control);
  release_ref(t);
  return NULL;
}

/* Runs on the JavaScript thread: settles the pending acquire(). */
static void settle_acquire(napi_env env, napi_value js_callback, void *context, void *data) {
  turn *t = context;
  int held = (int)(intptr_t)data;
  if (env == NULL || t->closed || t->deferred == NULL) return;
  if (held) t->owner = OWNER_WAITER;
  napi_deferred deferred = t->deferred;
  t->deferred = NULL;
  napi_unref_threadsafe_function(env, t->tsfn);
  napi_value result;
  napi_get_boolean(env, held, &result);
  napi_resolve_deferred(env, deferred, result);
}

/* Neither held nor waited for by this handle; otherwise throws. */
static int is_idle(napi_env env, turn *t) {
  if (t->owner == OWNER_NONE && t->deferred == NULL) return 1;
  napi_throw_error(env, NULL, "write-turn: already held or being waited for");
  return 0;
}

/*
 * Releases the turn, settles a pending acquire() as false and stops the thread. A thread
 * asleep in the kernel cannot be woken early: it is detached, and lets go of the turn
 * (and of its reference) when its wait ends.
 */
static void close_turn(turn *t) {
  if (t->closed) return;
  if (t->owner == OWNER_CALLER) pthread_mutex_unlock(&t->shared->mutex);
  int handed = 0;
  if (t->thread_started) {
    pthread_mutex_lock(&t->control);
    t->closed = 1;
    if (t->waiting) {
      handed = 1;
      pthread_detach(t->thread);
    } else {
      t->command = CMD_STOP;
      pthread_cond_signal(&t->wake);
    }
    pthread_mutex_unlock(&t->control);
    if (!handed) pthread_join(t->thread, NULL);
  }
  t->closed = 1;
  t->owner = OWNER_NONE;
  if (t->deferred != NULL) {
    napi_value result;
    napi_get_boolean(t->env, 0, &result);
    napi_resolve_deferred(t->env, t->deferred, result);
    t->deferred = NULL;
  }
  if (t->tsfn != NULL) {
    napi_release_threadsafe_function(t->tsfn, napi_tsfn_abort);
    t->tsfn = NULL;
  }
}

static void cleanup_hook(void *arg) {
  turn *t = arg;
  t->cleaned_up = 1;
  close_turn(t);
}

static void finalize_turn(napi_env env, void *data, void *hint) {
  turn *t = data;
  close_turn(t);
  if (!t->cleaned_up) napi_remove_env_cleanup_hook(env, cleanup_hook, t);
  release_ref(t);
}

#define CHECK(call)                                        \
  do {                                                     \
    if ((call) != napi_ok) {                               \
      napi_throw_error(env, NULL, "write-turn: " #call);   \
      return NULL;                                         \
    }                                                      \
  } while (0)

static turn *unwrap(napi_env env, napi_value value) {
  turn *t = NULL;
  if (napi_get_value_external(env, value, (void **)&t) != napi_ok || t == NULL) {
    napi_throw_type_error(env, NULL, "write-turn: not a turn handle");
    return NULL;
  }
  if (t->closed) {
    napi_throw_error(env, NULL, "write-turn: the turn is closed");
    return NULL;
  }
  return t;
}

/* open(path): a handle. */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char path[4096];
  size_t length;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &length) != napi_ok ||
      length >= sizeof path - 64) {
    napi_throw_type_error(env, NULL, "write-turn: open(path) needs a path");
    return NULL;
  }
  char error[4400];
  shared_turn *shared = open_turn(path, error, sizeof error);
  if (shared == NULL) {
    napi_throw_error(env, NULL, error);
    return NULL;
  }
  turn *t = calloc(1, sizeof *t);
  t->shared = shared;
  t->env = env;
  t->refs = 1;
  pthread_mutex_init(&t->control, NULL);
  pthread_cond_init(&t->wake, NULL);
  pthread_cond_init(&t->done, NULL);
  napi_value handle;
  CHECK(napi_create_external(env, t, finalize_turn, NULL, &handle));
  napi_add_env_cleanup_hook(env, cleanup_hook, t);
  return handle;
}

/* tryAcquire(handle): true if the turn is now held by this handle, without waiting. */
static napi_value js_try_acquire(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  turn *t = unwrap(env, argv[0]);
  if (t == NULL) return NULL;
  if (!is_idle(env, t)) return NULL;
  int held = lock_result(t->shared, pthread_mutex_trylock(&t->shared->mutex));
  if (held) t->owner = OWNER_CALLER;
  napi_value result;
  CHECK(napi_get_boolean(env, held, &result));
  return result;
}

/* acquire(handle, timeoutMs): a promise of true once held, false if the time ran out or the turn closed. */
static napi_value js_acquire(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  turn *t = unwrap(env, argv[0]);
  if (t == NULL) return NULL;
  double timeout_ms = 0;
  if (argc < 2 || napi_get_value_double(env, argv[1], &timeout_ms) != napi_ok || !(timeout_ms >= 0)) {
    napi_throw_type_error(env, NULL, "write-turn: acquire(handle, timeoutMs) needs a timeout >= 0");
    return NULL;
  }
  if (!is_idle(env, t)) return NULL;
  if (t->tsfn == NULL) {
    napi_value name;
    CHECK(napi_create_string_utf8(env, "write-turn", NAPI_AUTO_LENGTH, &name));
    CHECK(napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, t, settle_acquire, &t->tsfn));
  }
  if (!t->thread_started) {
    __atomic_add_fetch(&t->refs, 1, __ATOMIC_ACQ_REL);
    if (pthread_create(&t->thread, NULL, waiter_main, t) != 0) {
      __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL);
      napi_throw_error(env, NULL, "write-turn: cannot start the waiting thread");
      return NULL;
    }
    t->thread_started = 1;
  }
  napi_value promise;
  CHECK(napi_create_promise(env, &t->deferred, &promise));
  /* A pending wait keeps the process alive, as a timer would. */
  napi_ref_threadsafe_function(env, t->tsfn);
  struct timespec until;
  clock_gettime(TURN_CLOCK, &until);
  add_ns(&until, (long long)(timeout_ms * 1e6));
  pthread_mutex_lock(&t->control);
  t->until = until;
  t->command = CMD_ACQUIRE;
  pthread_cond_signal(&t->wake);
  pthread_mutex_unlock(&t->control);
  return promise;
}

/* release(handle): hands the turn on. No-op when not held. */
static napi_value js_release(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  turn *t = unwrap(env, argv[0]);
  if (t == NULL) return NULL;
  if (t->owner == OWNER_CALLER) {
    pthread_mutex_unlock(&t->shared->mutex);
  } else if (t->owner == OWNER_WAITER) {
    /* A robust mutex is released by the thread that holds it; released when this returns. */
    pthread_mutex_lock(&t->control);
    t->released = 0;
    t->command = CMD_RELEASE;
    pthread_cond_signal(&t->wake);
    while (!t->released) pthread_cond_wait(&t->done, &t->control);
    pthread_mutex_unlock(&t->control);
  }
  t->owner = OWNER_NONE;
  return NULL;
}

/* close(handle): releases, cancels a pending wait (it settles false), stops the thread. Idempotent. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  turn *t = NULL;
  if (napi_get_value_external(env, argv[0], (void **)&t) == napi_ok && t != NULL) close_turn(t);
  return NULL;
}

#else
/* Robust process-shared mutexes are a Linux (glibc) facility here: elsewhere, open() refuses,
   and @repo/metrics-repo waits on timers alone. */
static napi_value js_unsupported(napi_env env, napi_callback_info info) {
  napi_throw_error(env, NULL, "write-turn: not supported on this platform (Linux only)");
  return NULL;
}
#define js_open js_unsupported
#define js_try_acquire js_unsupported
#define js_acquire js_unsupported
#define js_release js_unsupported
#define js_close js_unsupported
#endif

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"tryAcquire", NULL, js_try_acquire, NULL, NULL, NULL, napi_default, NULL},
      {"acquire", NULL, js_acquire, NULL, NULL, NULL, napi_default, NULL},
      {"release", NULL, js_release, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof *properties, properties);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
