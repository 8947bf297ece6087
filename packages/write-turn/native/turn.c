// A turn to write to one file, queued by the kernel: a robust, process-shared
// pthread mutex in a small memory-mapped file beside the database. Waiters sleep
// in the kernel (a futex), not in Node; an unlock wakes one of them; a holder
// that dies (process or thread) hands the turn on (EOWNERDEAD). It is only an
// order among cooperating writers: SQLite's own lock stays the one that decides.
//
// The same file holds a mailbox: a writer that has not opened the database posts
// its rows (opaque bytes) in a slot and sleeps until the turn's holder has
// committed them with its own and answered, or until the turn is free. A holder
// commits everyone's rows in one transaction instead of handing the lock on once
// per process; the answers are written in the slots before the commit, so that
// the next holder can tell, if this one dies, whether its rows were stored.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/stat.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif
#include <time.h>
#include <unistd.h>

#ifdef __linux__

#define TURN_MAGIC 0x336e727554ULL /* "Turn3" */
#define BOOT_ID_SIZE 40
#define SLOT_COUNT 1024
#define SLOT_SIZE 1024
#define ANSWER_SIZE 256
#define PAYLOAD_SIZE (SLOT_SIZE - ANSWER_SIZE - 16)
#define HEADER_SIZE (8 * 4096)
#define TURN_FILE_SIZE (HEADER_SIZE + SLOT_COUNT * SLOT_SIZE)
/* A follower asleep in the mailbox looks at the turn this often: a holder that died is only seen
   by trying its robust mutex. Each look wakes a thread of a sleeping process (about 0.25 ms of CPU). */
#define MAILBOX_RECHECK_NS 1000000000LL

/* ABANDONED: taken by a holder while its poster closed its handle; freed when answered. */
enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_POSTED, SLOT_TAKEN, SLOT_ANSWERED, SLOT_ABANDONED };

/* The states sit together in the header, so that a holder looking for posted rows reads three
   pages, not the whole mailbox. */
typedef struct {
  uint64_t magic;
  char boot_id[BOOT_ID_SIZE];
  pthread_mutex_t mutex;
  /* Futex word: bumped whenever answers are written or the turn is released. */
  uint32_t generation;
  /* Futex word: bumped at every post, for a holder waiting for one (awaitPost); and how many
     threads sleep on it, so that a poster makes the wake-up call only when someone waits (a holder
     killed in its sleep stays counted: posters then make that call for nothing, which is harmless). */
  uint32_t posts;
  uint32_t post_waiters;
  uint32_t state[SLOT_COUNT];
  uint32_t serial[SLOT_COUNT];
  /* Who posted: its process (and that process's PID namespace: a pid means nothing in another
     one), and the handle, so that closing it frees what it left. */
  int32_t owner[SLOT_COUNT];
  uint64_t owner_ns[SLOT_COUNT];
  uint64_t owner_handle[SLOT_COUNT];
} shared_turn;

typedef struct {
  uint32_t payload_length;
  uint32_t answer_length;
  uint64_t reserved;
  uint8_t answer[ANSWER_SIZE];
  uint8_t payload[PAYLOAD_SIZE];
} shared_slot;

_Static_assert(sizeof(shared_turn) <= HEADER_SIZE, "header too large");
_Static_assert(sizeof(shared_slot) == SLOT_SIZE, "slot size");

static shared_slot *slot_at(shared_turn *s, uint32_t index) {
  return (shared_slot *)((char *)s + HEADER_SIZE + (size_t)index * SLOT_SIZE);
}

enum owner { OWNER_NONE, OWNER_CALLER, OWNER_WAITER };
enum command { CMD_NONE, CMD_ACQUIRE, CMD_AWAIT, CMD_AWAIT_POST, CMD_RELEASE, CMD_STOP };
/* What an await() resolves with. */
enum awaited { AWAIT_TIMEOUT, AWAIT_TURN, AWAIT_ANSWER, AWAIT_QUIET, AWAIT_POSTED };

/* Linux's sched_attr (sched_setattr(2)); for a normal thread, sched_runtime is its slice (6.12+). */
struct slice_attr {
  uint32_t size, sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime, sched_deadline, sched_period;
  uint32_t sched_util_min, sched_util_max;
};

/* The only flag sched_getattr reports for a normal thread. An unprivileged thread may not clear it. */
#ifndef SCHED_FLAG_RESET_ON_FORK
#define SCHED_FLAG_RESET_ON_FORK 0x01
#endif

/* The calling thread's attributes with `runtime` as its slice (0: the kernel's default); 0 on success. */
static int set_runtime(const struct slice_attr *current, uint64_t runtime) {
  struct slice_attr a = *current;
  a.size = sizeof a;
  a.sched_flags = current->sched_flags & SCHED_FLAG_RESET_ON_FORK;
  a.sched_runtime = runtime;
  return (int)syscall(SYS_sched_setattr, 0, &a, 0);
}

/*
 * Gives the calling thread the slice `ns` if it is a normal thread: 1 once set, with its
 * attributes in `current` and the slice it had in `had` (0 when that was the kernel's default).
 * The kernel reports the slice in force, its default too: restoring that number would pin the
 * thread to it (a later change of the system's default would pass it by), so it asks for the
 * default and reads it back, and the same number means the default.
 */
static int change_slice(uint64_t ns, struct slice_attr *current, uint64_t *had) {
  memset(current, 0, sizeof *current);
  if (syscall(SYS_sched_getattr, 0, current, sizeof *current, 0) != 0 ||
      (current->sched_policy != SCHED_OTHER && current->sched_policy != SCHED_BATCH))
    return 0;
  *had = current->sched_runtime;
  struct slice_attr d;
  memset(&d, 0, sizeof d);
  int probed = *had != 0 && set_runtime(current, 0) == 0;
  if (probed && syscall(SYS_sched_getattr, 0, &d, sizeof d, 0) == 0 && d.sched_runtime == *had) *had = 0;
  if (set_runtime(current, ns) == 0) return 1;
  if (probed) set_runtime(current, current->sched_runtime); /* As it was: nothing changed. */
  return 0;
}

/*
 * The waiting thread's slice: the shortest a normal thread may ask for. It runs for microseconds
 * at each wake-up, and the JavaScript thread waits for it; the fair scheduler (EEVDF) runs first
 * the thread whose slice ends soonest, so it runs ahead of threads on the default slice (1.4 ms
 * here), among hundreds of one-row processes on two cores. Its share of the CPU is the same.
 */
#define WAITER_SLICE_NS 100000ULL

typedef struct {
  shared_turn *shared;
  enum owner owner;
  int closed;
  /* Unique among the file's handles: the process and a counter (the namespace tells processes apart). */
  uint64_t id;
  int posted_any;
  int refs;
  /* The mapping's users: the open handle and the running thread. The last one unmaps, so that a
     closed turn keeps no file system busy until garbage collection. */
  int map_refs;
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
  /* The waiting thread holds the turn (a robust mutex is unlocked by the thread that locked it). */
  int thread_holds;
  struct timespec until;
  /* CMD_AWAIT: the ticket whose answer is awaited. */
  uint32_t await_index;
  uint32_t await_serial;
  long long await_quiet_ns;
  int awaiting;
  /* The pending wait is an awaitPost (it settles true or false), and whether it was cut short. */
  int awaiting_post;
  int post_wait_interrupted;
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
  /* Every page allocated now: a page of a sparse file touched later on a full file system
     (a small tmpfs) would raise SIGBUS instead of an error. */
  if (ftruncate(fd, TURN_FILE_SIZE) != 0 || posix_fallocate(fd, 0, TURN_FILE_SIZE) != 0) goto fail;
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


/* This process's PID namespace (the inode of /proc/self/ns/pid), or 0 if unknown. */
static uint64_t pid_namespace(void) {
  static uint64_t cached;
  if (cached == 0) {
    struct stat st;
    if (stat("/proc/self/ns/pid", &st) == 0) cached = (uint64_t)st.st_ino;
  }
  return cached;
}

static long futex(uint32_t *word, int op, uint32_t value, const struct timespec *timeout) {
  return syscall(SYS_futex, word, op, value, timeout, NULL, 0);
}

/* Counts answers: a follower that sees it still for long enough takes the holder for hung. */
static void announce(shared_turn *s) {
  __atomic_add_fetch(&s->generation, 1, __ATOMIC_ACQ_REL);
}

/* Each follower sleeps on its own slot's state word: an answer wakes that follower alone. */
static void wake_slot(shared_turn *s, uint32_t index) {
  futex(&s->state[index], FUTEX_WAKE, 1, NULL);
}

/*
 * Releases the turn: to one waiter on the mutex, and to one follower whose post waits (it finds
 * the turn free and takes it). Waking one, not all: a crowd of processes woken at every release
 * costs each of them CPU for nothing.
 */
static void unlock_turn(shared_turn *s) {
  pthread_mutex_unlock(&s->mutex);
  announce(s);
  static uint32_t next; /* Where the search starts, so that no poster is always the last one woken. */
  uint32_t start = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED) % SLOT_COUNT;
  for (uint32_t k = 0; k < SLOT_COUNT; k++) {
    uint32_t i = (start + k) % SLOT_COUNT;
    if (__atomic_load_n(&s->state[i], __ATOMIC_ACQUIRE) == SLOT_POSTED) {
      wake_slot(s, i);
      return;
    }
  }
}

static int answered(shared_turn *s, uint32_t index, uint32_t serial) {
  return __atomic_load_n(&s->state[index], __ATOMIC_ACQUIRE) == SLOT_ANSWERED &&
         __atomic_load_n(&s->serial[index], __ATOMIC_ACQUIRE) == serial;
}

static long long ns_until(const struct timespec *until) {
  struct timespec now;
  clock_gettime(TURN_CLOCK, &now);
  return (until->tv_sec - now.tv_sec) * 1000000000LL + (until->tv_nsec - now.tv_nsec);
}

/*
 * A follower's wait, on its own thread: until its ticket is answered, the turn is free (then it
 * is held by this thread), the holder answered nobody for the quiet time, or the time is up.
 * Sleeps on its own slot's state word (an answer wakes it); every MAILBOX_RECHECK_NS it tries the
 * turn anyway, the only way to learn that a holder died.
 */
static int await_answer_or_turn(turn *t, const struct timespec *until) {
  shared_turn *s = t->shared;
  uint32_t last = __atomic_load_n(&s->generation, __ATOMIC_ACQUIRE);
  struct timespec quiet_until;
  clock_gettime(TURN_CLOCK, &quiet_until);
  add_ns(&quiet_until, t->await_quiet_ns);
  for (;;) {
    uint32_t seen = __atomic_load_n(&s->generation, __ATOMIC_ACQUIRE);
    uint32_t state = __atomic_load_n(&s->state[t->await_index], __ATOMIC_ACQUIRE);
    if (answered(s, t->await_index, t->await_serial)) return AWAIT_ANSWER;
    if (lock_result(s, pthread_mutex_trylock(&s->mutex))) {
      /* A new holder: the others' patience restarts now, not from the last answer of the one before,
         since this one must open the database before it answers anybody. */
      announce(s);
      return AWAIT_TURN;
    }
    long long left = ns_until(until);
    if (left <= 0 || __atomic_load_n(&t->closed, __ATOMIC_ACQUIRE)) return AWAIT_TIMEOUT;
    /* Quiet: the holder answered nobody for that long; it may hang. Any answer restarts the count. */
    if (seen != last) {
      last = seen;
      clock_gettime(TURN_CLOCK, &quiet_until);
      add_ns(&quiet_until, t->await_quiet_ns);
    }
    long long quiet_left = ns_until(&quiet_until);
    if (quiet_left <= 0) return AWAIT_QUIET;
    if (left > quiet_left) left = quiet_left;
    if (left > MAILBOX_RECHECK_NS) left = MAILBOX_RECHECK_NS;
    struct timespec timeout = {left / 1000000000LL, left % 1000000000LL};
    futex(&s->state[t->await_index], FUTEX_WAIT, state, &timeout);
  }
}

static int any_posted(shared_turn *s) {
  for (uint32_t i = 0; i < SLOT_COUNT; i++)
    if (__atomic_load_n(&s->state[i], __ATOMIC_ACQUIRE) == SLOT_POSTED) return 1;
  return 0;
}

/*
 * A holder's wait for the next post, on its own thread: sleeps on the posts word until a post
 * bumps it, the time is up, or release/close cut it short. One sleep instead of a poll on
 * timers: each timer wake-up costs a process about 0.2 ms of CPU here, and a holder lingering
 * for 1 s polled 100 times (BENCHMARKS.md, "A holder's linger, in the kernel").
 */
static int await_post(turn *t, const struct timespec *until) {
  shared_turn *s = t->shared;
  for (;;) {
    uint32_t seen = __atomic_load_n(&s->posts, __ATOMIC_SEQ_CST);
    if (any_posted(s)) return AWAIT_POSTED;
    if (__atomic_load_n(&t->post_wait_interrupted, __ATOMIC_ACQUIRE)) return AWAIT_TIMEOUT;
    long long left = ns_until(until);
    if (left <= 0) return AWAIT_TIMEOUT;
    struct timespec timeout = {left / 1000000000LL, left % 1000000000LL};
    /* Counted before the word is checked again (by the kernel): a poster that bumps it after
       that check sees this waiter and wakes it. */
    __atomic_add_fetch(&s->post_waiters, 1, __ATOMIC_SEQ_CST);
    futex(&s->posts, FUTEX_WAIT, seen, &timeout);
    __atomic_sub_fetch(&s->post_waiters, 1, __ATOMIC_SEQ_CST);
  }
}

/* Cuts a pending awaitPost short (it settles false): the word moves, so the sleeper wakes. */
static void interrupt_post_wait(turn *t) {
  __atomic_store_n(&t->post_wait_interrupted, 1, __ATOMIC_RELEASE);
  __atomic_add_fetch(&t->shared->posts, 1, __ATOMIC_SEQ_CST);
  futex(&t->shared->posts, FUTEX_WAKE, INT32_MAX, NULL);
}

static void drop_map(turn *t) {
  if (__atomic_sub_fetch(&t->map_refs, 1, __ATOMIC_ACQ_REL) == 0) munmap(t->shared, TURN_FILE_SIZE);
}

/* Dropped by the JavaScript handle (finalizer) and by the thread (exit): the last one frees. */
static void release_ref(turn *t) {
  if (__atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  pthread_mutex_destroy(&t->control);
  pthread_cond_destroy(&t->wake);
  pthread_cond_destroy(&t->done);
  free(t);
}

static void *waiter_main(void *arg) {
  turn *t = arg;
  pthread_setname_np(pthread_self(), "write-turn"); /* Told apart in `top -H` and /proc. */
  struct slice_attr attr;
  uint64_t had;
  change_slice(WAITER_SLICE_NS, &attr, &had);
  pthread_mutex_lock(&t->control);
  for (;;) {
    while (t->command == CMD_NONE) pthread_cond_wait(&t->wake, &t->control);
    enum command command = t->command;
    t->command = CMD_NONE;
    if (command == CMD_STOP) break;
    if (command == CMD_RELEASE) {
      if (t->thread_holds) unlock_turn(t->shared);
      t->thread_holds = 0;
      t->released = 1;
      pthread_cond_broadcast(&t->done);
      continue;
    }
    struct timespec until = t->until;
    t->waiting = 1;
    pthread_mutex_unlock(&t->control);
    int held;
    if (command == CMD_AWAIT) {
      held = await_answer_or_turn(t, &until);
    } else if (command == CMD_AWAIT_POST) {
      held = await_post(t, &until);
    } else {
      /* CMD_ACQUIRE: sleep in the kernel until the turn is ours or the time is up. No polling:
         a sleeping thread woken every few ms costs a cold process about 0.25 ms of CPU each time. */
      held = lock_result(t->shared, lock_until(&t->shared->mutex, &until)) ? AWAIT_TURN : AWAIT_TIMEOUT;
    }
    pthread_mutex_lock(&t->control);
    t->waiting = 0;
    pthread_cond_broadcast(&t->done);
    if (t->closed) {
      /* Closed while this thread slept: nobody waits for the answer, and the thread cleans up
         (letting go of the turn it took, or held while it waited for a post). */
      if (held == AWAIT_TURN || t->thread_holds) unlock_turn(t->shared);
      pthread_mutex_unlock(&t->control);
      drop_map(t);
      release_ref(t);
      return NULL;
    }
    if (command != CMD_AWAIT_POST) t->thread_holds = held == AWAIT_TURN;
    napi_call_threadsafe_function(t->tsfn, (void *)(intptr_t)held, napi_tsfn_nonblocking);
  }
  if (t->thread_holds) unlock_turn(t->shared);
  pthread_mutex_unlock(&t->control);
  drop_map(t);
  release_ref(t);
  return NULL;
}

/* Runs on the JavaScript thread: settles the pending acquire(). */
static void settle_acquire(napi_env env, napi_value js_callback, void *context, void *data) {
  turn *t = context;
  int outcome = (int)(intptr_t)data;
  if (env == NULL || t->closed || t->deferred == NULL) return;
  if (outcome == AWAIT_TURN) t->owner = OWNER_WAITER;
  napi_deferred deferred = t->deferred;
  t->deferred = NULL;
  napi_unref_threadsafe_function(env, t->tsfn);
  napi_value result;
  if (t->awaiting) napi_create_int32(env, outcome, &result);
  else if (t->awaiting_post) napi_get_boolean(env, outcome == AWAIT_POSTED, &result);
  else napi_get_boolean(env, outcome == AWAIT_TURN, &result);
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
/* What a closed handle posted is nobody's any more: waiting posts are withdrawn, answers dropped,
   and posts a holder is committing are freed once answered. */
static void abandon_posts(turn *t) {
  shared_turn *s = t->shared;
  for (uint32_t i = 0; i < SLOT_COUNT; i++) {
    if (__atomic_load_n(&s->owner_handle[i], __ATOMIC_ACQUIRE) != t->id) continue;
    uint32_t state = __atomic_load_n(&s->state[i], __ATOMIC_ACQUIRE);
    uint32_t next = state == SLOT_TAKEN ? SLOT_ABANDONED : SLOT_FREE;
    if (state == SLOT_POSTED || state == SLOT_ANSWERED || state == SLOT_TAKEN)
      __atomic_compare_exchange_n(&s->state[i], &state, next, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
  }
}

static void close_turn(turn *t) {
  if (t->closed) return;
  if (t->posted_any) abandon_posts(t);
  if (t->owner == OWNER_CALLER) unlock_turn(t->shared);
  int handed = 0;
  if (t->thread_started) {
    pthread_mutex_lock(&t->control);
    t->closed = 1;
    if (t->waiting && t->awaiting_post) {
      /* A holder waiting for a post: woken now, it lets go of the turn and exits (joined below),
         so that the turn is free once close returns. */
      interrupt_post_wait(t);
    } else if (t->waiting) {
      handed = 1;
      pthread_detach(t->thread);
    } else {
      t->command = CMD_STOP;
      pthread_cond_signal(&t->wake);
      /* Waited for only when it holds the turn, so that the turn is free once close returns. Otherwise
         it exits on its own: joining it cost a follower's event loop a wait for the scheduler to run
         that thread, 28 ms on average at 50 processes on two cores (a CPU profile of `phases`). */
      if (!t->thread_holds) {
        handed = 1;
        pthread_detach(t->thread);
      }
    }
    pthread_mutex_unlock(&t->control);
    if (!handed) pthread_join(t->thread, NULL);
  }
  t->closed = 1;
  t->owner = OWNER_NONE;
  drop_map(t);
  if (t->deferred != NULL) {
    /* Its own handle scope: an environment's cleanup hooks (a worker thread terminated while it
       waited) run without one, and a value made there aborted the process. */
    napi_handle_scope scope;
    napi_value result;
    napi_open_handle_scope(t->env, &scope);
    if (t->awaiting) napi_create_int32(t->env, AWAIT_TIMEOUT, &result);
    else napi_get_boolean(t->env, 0, &result);
    napi_resolve_deferred(t->env, t->deferred, result);
    napi_close_handle_scope(t->env, scope);
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

/* The call's first `count` arguments into argv (undefined where missing), and the handle that is
   the first: NULL, with an error thrown, when it is not an open one. */
static turn *handle_args(napi_env env, napi_callback_info info, size_t count, napi_value *argv) {
  size_t argc = count;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    napi_throw_error(env, NULL, "write-turn: napi_get_cb_info");
    return NULL;
  }
  return unwrap(env, argv[0]);
}

/* The call's one argument, a path, into `path` with `spare` bytes left over; otherwise throws `usage`. */
static int path_arg(napi_env env, napi_callback_info info, char *path, size_t size, size_t spare, const char *usage) {
  size_t argc = 1;
  napi_value argv[1];
  size_t length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_string_utf8(env, argv[0], path, size, &length) != napi_ok || length >= size - spare) {
    napi_throw_type_error(env, NULL, usage);
    return 0;
  }
  return 1;
}

/* open(path): a handle. */
static napi_value js_open(napi_env env, napi_callback_info info) {
  char path[4096];
  /* Room for the suffix of the temporary file a new turn file is created under. */
  if (!path_arg(env, info, path, sizeof path, 64, "write-turn: open(path) needs a path")) return NULL;
  char error[4400];
  shared_turn *shared = open_turn(path, error, sizeof error);
  if (shared == NULL) {
    napi_throw_error(env, NULL, error);
    return NULL;
  }
  turn *t = calloc(1, sizeof *t);
  t->shared = shared;
  t->env = env;
  static uint32_t handles;
  t->id = ((uint64_t)(uint32_t)getpid() << 32 | __atomic_add_fetch(&handles, 1, __ATOMIC_ACQ_REL)) ^
          (pid_namespace() << 20);
  t->refs = 1;
  t->map_refs = 1;
  pthread_mutex_init(&t->control, NULL);
  pthread_cond_init(&t->wake, NULL);
  pthread_cond_init(&t->done, NULL);
  napi_value handle;
  CHECK(napi_create_external(env, t, finalize_turn, NULL, &handle));
  napi_add_env_cleanup_hook(env, cleanup_hook, t);
  return handle;
}

/* identity(path): [st_dev, st_ino] of the file at path, as doubles (as fs.statSync gives them), or null
   when there is none. One stat(2): Node's statSync builds a Stats object, which a one-row process
   pays for in compilation. */
static napi_value js_identity(napi_env env, napi_callback_info info) {
  char path[4096];
  if (!path_arg(env, info, path, sizeof path, 1, "write-turn: identity(path) needs a path")) return NULL;
  struct stat stats;
  napi_value result;
  if (stat(path, &stats) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      CHECK(napi_get_null(env, &result));
      return result;
    }
    char error[4200];
    snprintf(error, sizeof error, "write-turn: cannot stat %s: %s", path, strerror(errno));
    napi_throw_error(env, NULL, error);
    return NULL;
  }
  napi_value dev, ino;
  CHECK(napi_create_double(env, (double)stats.st_dev, &dev));
  CHECK(napi_create_double(env, (double)stats.st_ino, &ino));
  CHECK(napi_create_array_with_length(env, 2, &result));
  CHECK(napi_set_element(env, result, 0, dev));
  CHECK(napi_set_element(env, result, 1, ino));
  return result;
}

/* tryAcquire(handle): true if the turn is now held by this handle, without waiting. */
static napi_value js_try_acquire(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  turn *t = handle_args(env, info, 1, argv);
  if (t == NULL) return NULL;
  if (!is_idle(env, t)) return NULL;
  int held = lock_result(t->shared, pthread_mutex_trylock(&t->shared->mutex));
  if (held) t->owner = OWNER_CALLER;
  napi_value result;
  CHECK(napi_get_boolean(env, held, &result));
  return result;
}

/* Starts the waiting thread's next wait (`command`); the promise settles from settle_acquire. */
static napi_value start_wait(napi_env env, turn *t, double timeout_ms, enum command command) {
  if (t->tsfn == NULL) {
    napi_value name;
    CHECK(napi_create_string_utf8(env, "write-turn", NAPI_AUTO_LENGTH, &name));
    CHECK(napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, t, settle_acquire, &t->tsfn));
  }
  if (!t->thread_started) {
    __atomic_add_fetch(&t->refs, 1, __ATOMIC_ACQ_REL);
    __atomic_add_fetch(&t->map_refs, 1, __ATOMIC_ACQ_REL);
    if (pthread_create(&t->thread, NULL, waiter_main, t) != 0) {
      __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL);
      __atomic_sub_fetch(&t->map_refs, 1, __ATOMIC_ACQ_REL);
      napi_throw_error(env, NULL, "write-turn: cannot start the waiting thread");
      return NULL;
    }
    t->thread_started = 1;
  }
  napi_value promise;
  CHECK(napi_create_promise(env, &t->deferred, &promise));
  t->awaiting = command == CMD_AWAIT;
  t->awaiting_post = command == CMD_AWAIT_POST;
  t->post_wait_interrupted = 0;
  /* A pending wait keeps the process alive, as a timer would. */
  napi_ref_threadsafe_function(env, t->tsfn);
  struct timespec until;
  clock_gettime(TURN_CLOCK, &until);
  add_ns(&until, (long long)(timeout_ms * 1e6));
  pthread_mutex_lock(&t->control);
  t->until = until;
  t->command = command;
  pthread_cond_signal(&t->wake);
  pthread_mutex_unlock(&t->control);
  return promise;
}

static int timeout_arg(napi_env env, napi_value value, double *timeout_ms) {
  if (napi_get_value_double(env, value, timeout_ms) == napi_ok && *timeout_ms >= 0) {
    /* Longer is forever (and Infinity would overflow the deadline): a year. */
    if (*timeout_ms > 31536000000.0) *timeout_ms = 31536000000.0;
    return 1;
  }
  napi_throw_type_error(env, NULL, "write-turn: needs a timeout >= 0");
  return 0;
}

/* acquire(handle, timeoutMs): a promise of true once held, false if the time ran out or the turn closed. */
static napi_value js_acquire(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  turn *t = handle_args(env, info, 2, argv);
  double timeout_ms;
  if (t == NULL || !timeout_arg(env, argv[1], &timeout_ms) || !is_idle(env, t)) return NULL;
  return start_wait(env, t, timeout_ms, CMD_ACQUIRE);
}

/* awaitPost(handle, timeoutMs): the holder's wait for a post; a promise of true once one is there,
   false if the time ran out or the turn was released or closed meanwhile. */
static napi_value js_await_post(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  turn *t = handle_args(env, info, 2, argv);
  double timeout_ms;
  if (t == NULL || !timeout_arg(env, argv[1], &timeout_ms)) return NULL;
  if (t->owner == OWNER_NONE || t->deferred != NULL) {
    napi_throw_error(env, NULL, "write-turn: awaitPost needs the turn held, and no other wait pending");
    return NULL;
  }
  return start_wait(env, t, timeout_ms, CMD_AWAIT_POST);
}

/* stopAwaitingPost(handle): ends a pending awaitPost at once (it settles false); no-op without one. */
static napi_value js_stop_awaiting_post(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  turn *t = handle_args(env, info, 1, argv);
  if (t == NULL) return NULL;
  if (t->deferred != NULL && t->awaiting_post) interrupt_post_wait(t);
  return NULL;
}

/* A ticket names a slot and its use: index * 2^32 + serial, exact in a double. */
static int ticket_arg(napi_env env, napi_value value, uint32_t *index, uint32_t *serial) {
  double ticket;
  if (napi_get_value_double(env, value, &ticket) == napi_ok && ticket >= 0 && ticket < (double)SLOT_COUNT * 4294967296.0) {
    uint64_t whole = (uint64_t)ticket;
    *index = (uint32_t)(whole >> 32);
    *serial = (uint32_t)whole;
    return 1;
  }
  napi_throw_type_error(env, NULL, "write-turn: not a ticket");
  return 0;
}

static napi_value ticket_value(napi_env env, uint32_t index, uint32_t serial) {
  napi_value result;
  napi_create_double(env, (double)(((uint64_t)index << 32) | serial), &result);
  return result;
}

/*
 * await(handle, ticket, timeoutMs, quietMs): a promise of 2 (answered), 1 (the turn is held),
 * 3 (no answer to anyone for quietMs) or 0 (time up, closed).
 */
static napi_value js_await(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  turn *t = handle_args(env, info, 4, argv);
  uint32_t index, serial;
  double timeout_ms, quiet_ms;
  if (t == NULL || !ticket_arg(env, argv[1], &index, &serial) || !timeout_arg(env, argv[2], &timeout_ms) ||
      !timeout_arg(env, argv[3], &quiet_ms))
    return NULL;
  t->await_quiet_ns = (long long)(quiet_ms * 1e6);
  t->await_index = index;
  t->await_serial = serial;
  if (!is_idle(env, t)) return NULL;
  return start_wait(env, t, timeout_ms, CMD_AWAIT);
}

/* Bytes of a Uint8Array argument. */
static int bytes_arg(napi_env env, napi_value value, void **data, size_t *length) {
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &type, length, data, &buffer, &offset) == napi_ok && type == napi_uint8_array)
    return 1;
  napi_throw_type_error(env, NULL, "write-turn: needs a Uint8Array");
  return 0;
}

static napi_value copy_out(napi_env env, const void *data, size_t length) {
  void *out;
  napi_value result;
  if (napi_create_buffer_copy(env, length, data, &out, &result) != napi_ok) return NULL;
  return result;
}

/* post(handle, payload): a ticket, or -1 when the payload is too large or every slot is taken. */
static napi_value js_post(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  turn *t = handle_args(env, info, 2, argv);
  void *data;
  size_t length;
  if (t == NULL || !bytes_arg(env, argv[1], &data, &length)) return NULL;
  napi_value none;
  CHECK(napi_create_int32(env, -1, &none));
  if (length > PAYLOAD_SIZE) return none;
  shared_turn *s = t->shared;
  uint32_t start = ((uint32_t)getpid() * 2654435761u + (uint32_t)gettid()) % SLOT_COUNT;
  for (uint32_t k = 0; k < SLOT_COUNT; k++) {
    uint32_t i = (start + k) % SLOT_COUNT;
    uint32_t expected = SLOT_FREE;
    if (!__atomic_compare_exchange_n(&s->state[i], &expected, SLOT_FILLING, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
      continue;
    uint32_t serial = __atomic_add_fetch(&s->serial[i], 1, __ATOMIC_ACQ_REL);
    __atomic_store_n(&s->owner[i], (int32_t)getpid(), __ATOMIC_RELEASE);
    __atomic_store_n(&s->owner_ns[i], pid_namespace(), __ATOMIC_RELEASE);
    __atomic_store_n(&s->owner_handle[i], t->id, __ATOMIC_RELEASE);
    t->posted_any = 1;
    shared_slot *slot = slot_at(s, i);
    memcpy(slot->payload, data, length);
    slot->payload_length = (uint32_t)length;
    slot->answer_length = 0;
    __atomic_store_n(&s->state[i], SLOT_POSTED, __ATOMIC_RELEASE);
    __atomic_add_fetch(&s->posts, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&s->post_waiters, __ATOMIC_SEQ_CST) > 0) futex(&s->posts, FUTEX_WAKE, INT32_MAX, NULL);
    return ticket_value(env, i, serial);
  }
  return none;
}

/* withdraw(handle, ticket): true if the ticket was still waiting and is gone; false once a holder took it. */
static napi_value js_withdraw(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  turn *t = handle_args(env, info, 2, argv);
  uint32_t index, serial;
  if (t == NULL || !ticket_arg(env, argv[1], &index, &serial)) return NULL;
  shared_turn *s = t->shared;
  uint32_t expected = SLOT_POSTED;
  int withdrawn = __atomic_load_n(&s->serial[index], __ATOMIC_ACQUIRE) == serial &&
                  __atomic_compare_exchange_n(&s->state[index], &expected, SLOT_FREE, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
  napi_value result;
  CHECK(napi_get_boolean(env, withdrawn, &result));
  return result;
}

/* collect(handle, ticket): the final answer's bytes, freeing the slot; null while there is none. */
static napi_value js_collect(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  turn *t = handle_args(env, info, 2, argv);
  uint32_t index, serial;
  if (t == NULL || !ticket_arg(env, argv[1], &index, &serial)) return NULL;
  shared_turn *s = t->shared;
  napi_value result;
  if (!answered(s, index, serial)) {
    CHECK(napi_get_null(env, &result));
    return result;
  }
  shared_slot *slot = slot_at(s, index);
  result = copy_out(env, slot->answer, slot->answer_length);
  __atomic_store_n(&s->state[index], SLOT_FREE, __ATOMIC_RELEASE);
  return result;
}

/* Only a process of the same PID namespace can tell that a poster is gone. */
static int owner_gone(shared_turn *s, uint32_t index) {
  pid_t pid = (pid_t)__atomic_load_n(&s->owner[index], __ATOMIC_ACQUIRE);
  uint64_t ns = __atomic_load_n(&s->owner_ns[index], __ATOMIC_ACQUIRE);
  return pid > 0 && ns != 0 && ns == pid_namespace() && kill(pid, 0) != 0 && errno == ESRCH;
}

/*
 * take(handle): the posted payloads, now taken by this holder, as [ticket, payload, answer|null]
 * triples. A slot still taken when the turn changes hands was left by a holder that died: it comes
 * with the answer written before that holder's commit (null if none), for the caller to check
 * against the database. Slots whose owner process is gone are freed instead (nobody will collect
 * them, and nobody was told their rows were stored). Only the turn's holder may call it.
 */
static napi_value js_take(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  turn *t = handle_args(env, info, 1, argv);
  if (t == NULL) return NULL;
  if (t->owner == OWNER_NONE) {
    napi_throw_error(env, NULL, "write-turn: take() needs the turn");
    return NULL;
  }
  shared_turn *s = t->shared;
  napi_value list;
  CHECK(napi_create_array(env, &list));
  uint32_t count = 0;
  for (uint32_t i = 0; i < SLOT_COUNT; i++) {
    uint32_t state = __atomic_load_n(&s->state[i], __ATOMIC_ACQUIRE);
    /* A slot being filled is left alone: its owner field may still name the previous poster. */
    if (state == SLOT_FREE || state == SLOT_FILLING) continue;
    if (state == SLOT_ABANDONED) {
      /* Taken by a holder that died, for a poster that no longer waits: nobody needs it. */
      uint32_t expected = state;
      __atomic_compare_exchange_n(&s->state[i], &expected, SLOT_FREE, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
      continue;
    }
    if (owner_gone(s, i)) {
      uint32_t expected = state;
      __atomic_compare_exchange_n(&s->state[i], &expected, SLOT_FREE, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
      continue;
    }
    if (state != SLOT_POSTED && state != SLOT_TAKEN) continue;
    if (state == SLOT_POSTED) {
      uint32_t expected = SLOT_POSTED;
      if (!__atomic_compare_exchange_n(&s->state[i], &expected, SLOT_TAKEN, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        continue; /* withdrawn meanwhile */
    }
    shared_slot *slot = slot_at(s, i);
    napi_value entry, answer;
    CHECK(napi_create_array_with_length(env, 3, &entry));
    CHECK(napi_set_element(env, entry, 0, ticket_value(env, i, __atomic_load_n(&s->serial[i], __ATOMIC_ACQUIRE))));
    CHECK(napi_set_element(env, entry, 1, copy_out(env, slot->payload, slot->payload_length)));
    if (state == SLOT_TAKEN && slot->answer_length > 0) answer = copy_out(env, slot->answer, slot->answer_length);
    else CHECK(napi_get_null(env, &answer));
    if (state == SLOT_POSTED) slot->answer_length = 0;
    CHECK(napi_set_element(env, entry, 2, answer));
    CHECK(napi_set_element(env, list, count++, entry));
  }
  return list;
}

/* A taken slot moves on to `next`, unless its poster abandoned it meanwhile: then it is free. */
static void settle_taken(shared_turn *s, uint32_t index, uint32_t next) {
  uint32_t expected = SLOT_TAKEN;
  if (!__atomic_compare_exchange_n(&s->state[index], &expected, next, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
    __atomic_store_n(&s->state[index], SLOT_FREE, __ATOMIC_RELEASE);
}

/* The slot of a ticket this holder took, or NULL (and a thrown error). */
static shared_slot *taken_slot(napi_env env, turn *t, napi_value ticket, uint32_t *index) {
  uint32_t serial;
  if (!ticket_arg(env, ticket, index, &serial)) return NULL;
  uint32_t state = __atomic_load_n(&t->shared->state[*index], __ATOMIC_ACQUIRE);
  if ((state != SLOT_TAKEN && state != SLOT_ABANDONED) ||
      __atomic_load_n(&t->shared->serial[*index], __ATOMIC_ACQUIRE) != serial) {
    napi_throw_error(env, NULL, "write-turn: that ticket is not taken");
    return NULL;
  }
  return slot_at(t->shared, *index);
}

/*
 * answer(handle, ticket, bytes, final): writes a taken ticket's answer (at most 256 bytes, cut
 * beyond). Not final: written before the commit, for a next holder to check if this one dies.
 * Final: the owner may collect it, and is woken (call announce() once all are written).
 */
static napi_value js_answer(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  turn *t = handle_args(env, info, 4, argv);
  uint32_t index;
  void *data;
  size_t length;
  bool final = false;
  if (t == NULL) return NULL;
  shared_slot *slot = taken_slot(env, t, argv[1], &index);
  if (slot == NULL || !bytes_arg(env, argv[2], &data, &length)) return NULL;
  napi_get_value_bool(env, argv[3], &final);
  if (length > ANSWER_SIZE) length = ANSWER_SIZE;
  memcpy(slot->answer, data, length);
  slot->answer_length = (uint32_t)length;
  if (final) {
    settle_taken(t->shared, index, SLOT_ANSWERED);
    wake_slot(t->shared, index);
  }
  return NULL;
}

/*
 * finish(handle, tickets): makes the answers written to these taken tickets before the commit
 * (answer with final false) final, all of them, then wakes their posters: the holder does not
 * encode and write each answer again after its commit (500 answers: 0.3 to 0.4 ms of its CPU
 * instead of 1.3 to 1.9 ms), and a wake-up that hands the CPU to its poster leaves no answer
 * still unwritten behind it. One answer round: the other posters' patience restarts (announce).
 * Throws, and finishes none, if a ticket is not taken, has no answer or is given twice.
 */
static napi_value js_finish(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  turn *t = handle_args(env, info, 2, argv);
  if (t == NULL) return NULL;
  uint32_t count;
  if (napi_get_array_length(env, argv[1], &count) != napi_ok) {
    napi_throw_type_error(env, NULL, "write-turn: finish needs an array of tickets");
    return NULL;
  }
  /* Each slot once: a ticket given twice would pass the checks below twice, and its second
     settle would free the slot under its poster. So at most SLOT_COUNT tickets. */
  uint32_t indices[SLOT_COUNT];
  uint8_t seen[SLOT_COUNT] = {0};
  if (count > SLOT_COUNT) {
    napi_throw_error(env, NULL, "write-turn: finish was given the same ticket twice");
    return NULL;
  }
  for (uint32_t i = 0; i < count; i++) {
    napi_value ticket;
    shared_slot *slot = NULL;
    if (napi_get_element(env, argv[1], i, &ticket) == napi_ok) slot = taken_slot(env, t, ticket, &indices[i]);
    if (slot == NULL) return NULL;
    if (slot->answer_length == 0) {
      napi_throw_error(env, NULL, "write-turn: that ticket has no answer to finish");
      return NULL;
    }
    if (seen[indices[i]]++) {
      napi_throw_error(env, NULL, "write-turn: finish was given the same ticket twice");
      return NULL;
    }
  }
  for (uint32_t i = 0; i < count; i++) settle_taken(t->shared, indices[i], SLOT_ANSWERED);
  for (uint32_t i = 0; i < count; i++) wake_slot(t->shared, indices[i]);
  if (count > 0) announce(t->shared);
  return NULL;
}

/* untake(handle, ticket): a taken ticket goes back to waiting for a holder (its transaction was not committed). */
static napi_value js_untake(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  turn *t = handle_args(env, info, 2, argv);
  uint32_t index;
  if (t == NULL) return NULL;
  shared_slot *slot = taken_slot(env, t, argv[1], &index);
  if (slot == NULL) return NULL;
  slot->answer_length = 0;
  settle_taken(t->shared, index, SLOT_POSTED);
  return NULL;
}

/* posted(handle): how many payloads wait for a holder. */
static napi_value js_posted(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  turn *t = handle_args(env, info, 1, argv);
  if (t == NULL) return NULL;
  uint32_t count = 0;
  for (uint32_t i = 0; i < SLOT_COUNT; i++)
    if (__atomic_load_n(&t->shared->state[i], __ATOMIC_ACQUIRE) == SLOT_POSTED) count++;
  napi_value result;
  CHECK(napi_create_uint32(env, count, &result));
  return result;
}

/* announce(handle): counts an answer round, after answers were made final (followers' patience restarts). */
static napi_value js_announce(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  turn *t = handle_args(env, info, 1, argv);
  if (t == NULL) return NULL;
  announce(t->shared);
  return NULL;
}

/* release(handle): hands the turn on. No-op when not held. */
static napi_value js_release(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  turn *t = handle_args(env, info, 1, argv);
  if (t == NULL) return NULL;
  if (t->deferred != NULL && t->awaiting_post) {
    /* Waiting for a post is the holder's alone: the wait ends first (it settles false). */
    interrupt_post_wait(t);
    pthread_mutex_lock(&t->control);
    while (t->command == CMD_AWAIT_POST || t->waiting) pthread_cond_wait(&t->done, &t->control);
    pthread_mutex_unlock(&t->control);
  }
  if (t->owner == OWNER_CALLER) {
    unlock_turn(t->shared);
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

/*
 * setSlice(ns): the calling thread's CPU slice under the fair scheduler; returns the one it had
 * (ns; 0 when it had the kernel's default), or -1 when it cannot be set (a real-time thread, a
 * filtered system call). A normal thread needs no privilege; a kernel before 6.12 accepts the
 * value and ignores it.
 */
static napi_value js_set_slice(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  double ns = 0, before = -1;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_double(env, argv[0], &ns) != napi_ok || !(ns >= 0)) {
    napi_throw_type_error(env, NULL, "write-turn: setSlice(ns) needs a number >= 0");
    return NULL;
  }
  struct slice_attr a;
  uint64_t had;
  if (change_slice((uint64_t)ns, &a, &had)) before = (double)had;
  napi_value result;
  CHECK(napi_create_double(env, before, &result));
  return result;
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
#define js_await js_unsupported
#define js_post js_unsupported
#define js_withdraw js_unsupported
#define js_collect js_unsupported
#define js_take js_unsupported
#define js_answer js_unsupported
#define js_finish js_unsupported
#define js_untake js_unsupported
#define js_announce js_unsupported
#define js_posted js_unsupported
#define js_await_post js_unsupported
#define js_stop_awaiting_post js_unsupported
#define js_identity js_unsupported
#define js_set_slice js_unsupported
#endif

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"identity", NULL, js_identity, NULL, NULL, NULL, napi_default, NULL},
      {"tryAcquire", NULL, js_try_acquire, NULL, NULL, NULL, napi_default, NULL},
      {"acquire", NULL, js_acquire, NULL, NULL, NULL, napi_default, NULL},
      {"awaitPost", NULL, js_await_post, NULL, NULL, NULL, napi_default, NULL},
      {"stopAwaitingPost", NULL, js_stop_awaiting_post, NULL, NULL, NULL, napi_default, NULL},
      {"release", NULL, js_release, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"await", NULL, js_await, NULL, NULL, NULL, napi_default, NULL},
      {"post", NULL, js_post, NULL, NULL, NULL, napi_default, NULL},
      {"withdraw", NULL, js_withdraw, NULL, NULL, NULL, napi_default, NULL},
      {"collect", NULL, js_collect, NULL, NULL, NULL, napi_default, NULL},
      {"take", NULL, js_take, NULL, NULL, NULL, napi_default, NULL},
      {"answer", NULL, js_answer, NULL, NULL, NULL, napi_default, NULL},
      {"finish", NULL, js_finish, NULL, NULL, NULL, napi_default, NULL},
      {"untake", NULL, js_untake, NULL, NULL, NULL, napi_default, NULL},
      {"announce", NULL, js_announce, NULL, NULL, NULL, napi_default, NULL},
      {"posted", NULL, js_posted, NULL, NULL, NULL, napi_default, NULL},
      {"setSlice", NULL, js_set_slice, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof *properties, properties);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
