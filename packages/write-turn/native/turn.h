// A turn to write to one file, queued by the kernel, and a mailbox: the shared file's layout and
// the parts that work on it. See docs/decisions/ for why it is shaped this way; in short:
//
// - The turn file is input from outside: any process that can write it can put any bytes in it,
//   and it can be truncated under the mapping. So it holds integers only (no pointers: glibc's
//   robust mutexes link themselves through the shared memory), every value read from it is
//   bounded before use, and a fault on a truncated mapping is turned into "the turn is broken"
//   (file.c) instead of killing the process.
// - The turn is an order among cooperating writers, never what makes a write correct: SQLite's
//   lock decides who writes, and @repo/metrics-repo's receipts decide whether a posted job was
//   stored. Two holders at once (a damaged lock word) cost time, not rows.
#ifndef WRITE_TURN_H
#define WRITE_TURN_H

#define _GNU_SOURCE
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#ifdef __linux__

#define TURN_MAGIC 0x346e727554ULL /* "Turn4": a futex lock of integers, no pthread mutex */
#define TURN_MAGIC_BEFORE 0x336e727554ULL /* "Turn3": the same file with a pthread mutex, replaced */
#define BOOT_ID_SIZE 40
#define SLOT_COUNT 1024
#define SLOT_SIZE 1024
#define ANSWER_SIZE 256
#define PAYLOAD_SIZE (SLOT_SIZE - ANSWER_SIZE - 16)
#define HEADER_SIZE (8 * 4096)
#define TURN_FILE_SIZE (HEADER_SIZE + SLOT_COUNT * SLOT_SIZE)
/* How often a thread asleep on the turn (or in the mailbox) looks whether its holder is still
   alive: a dead holder is only seen by looking. Each look wakes a thread of a sleeping process. */
#define LIVENESS_RECHECK_NS 1000000000LL

/* ABANDONED: taken by a holder while its poster closed its handle; freed when answered. */
enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_POSTED, SLOT_TAKEN, SLOT_ANSWERED, SLOT_ABANDONED };

typedef struct {
  uint64_t magic;
  char boot_id[BOOT_ID_SIZE];
  /* The turn: 0 when free, else (holder's pid << 32) | holder's tid | LOCK_WAITERS. The low
     32 bits are the futex word that waiters sleep on. */
  uint64_t lock;
  /* The holder's PID namespace: only a process of the same one can tell that it died. */
  uint64_t lock_ns;
  /* Futex word: bumped whenever answers are written or the turn is released. */
  uint32_t generation;
  /* Futex word: bumped at every post, for a holder waiting for one; and how many sleep on it. */
  uint32_t posts;
  uint32_t post_waiters;
  uint32_t reserved;
  uint32_t state[SLOT_COUNT];
  uint32_t serial[SLOT_COUNT];
  /* Who posted: its process and PID namespace, and its handle (closing it frees what it left). */
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
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the lock's futex word is the low half of a 64-bit field: little-endian only"
#endif

enum command { CMD_NONE, CMD_ACQUIRE, CMD_AWAIT, CMD_AWAIT_POST, CMD_STOP };
/* What a wait ends with. */
enum awaited { AWAIT_TIMEOUT, AWAIT_TURN, AWAIT_ANSWER, AWAIT_QUIET, AWAIT_POSTED, AWAIT_BROKEN };

/* One handle: a mapping of the turn file, its waiting thread, and the JavaScript thread it serves. */
typedef struct {
  shared_turn *shared;
  /* The turn file as opened: a later look at its path tells whether it was deleted or replaced. */
  dev_t dev;
  ino_t ino;
  char path[4096];
  int created;
  /* The JavaScript thread: the turn is held in its name, by whichever thread takes it. */
  pid_t tid;
  int held;
  int closed;
  /* Unique among the file's handles: the process and a counter (the namespace tells processes apart). */
  uint64_t id;
  int posted_any;
  int refs;
  /* The mapping's users: the open handle and the running thread. The last one unmaps. */
  int map_refs;
  int cleaned_up;
  /* The waiting thread, started at the first wait. */
  int thread_started;
  pthread_t thread;
  pthread_mutex_t control;
  pthread_cond_t wake;
  pthread_cond_t done;
  enum command command;
  int waiting;
  struct timespec until;
  /* CMD_AWAIT: the ticket whose answer is awaited. */
  uint32_t await_index;
  uint32_t await_serial;
  long long await_quiet_ns;
  enum command pending;
  int post_wait_interrupted;
  napi_threadsafe_function tsfn;
  napi_deferred deferred;
  napi_env env;
} turn;

/* file.c: the shared file. */
typedef enum { OPEN_OK, OPEN_SYSTEM, OPEN_NOT_A_TURN_FILE, OPEN_UNTRUSTED } open_status;
open_status turn_file_open(turn *t, const char *path, const char *database, char *error, size_t size);
int turn_file_stale(const turn *t);
int turn_file_remove_if_created(const turn *t);
void turn_file_unmap(shared_turn *s);
int turn_broken(const shared_turn *s);
uint64_t pid_namespace(void);

/* lock.c: the turn itself. */
int lock_try(shared_turn *s, pid_t tid);
int lock_until(shared_turn *s, pid_t tid, const struct timespec *until, const int *closed);
void lock_release(shared_turn *s, pid_t tid);
void announce(shared_turn *s);
long futex(uint32_t *word, int op, uint32_t value, const struct timespec *timeout);
void add_ns(struct timespec *t, long long ns);
long long ns_until(const struct timespec *until);
#define TURN_CLOCK CLOCK_MONOTONIC

/* mailbox.c: the slots. */
shared_slot *slot_at(shared_turn *s, uint32_t index);
int slot_answered(shared_turn *s, uint32_t index, uint32_t serial);
void wake_slot(shared_turn *s, uint32_t index);
void wake_one_poster(shared_turn *s);
int any_posted(shared_turn *s);
void abandon_posts(turn *t);
int settle_taken(shared_turn *s, uint32_t index, uint32_t serial, uint32_t next);
int slot_taken(shared_turn *s, uint32_t index, uint32_t serial);

/* waiter.c: the thread that sleeps in the kernel for the JavaScript thread. */
int await_answer_or_turn(turn *t, const struct timespec *until);
int await_post(turn *t, const struct timespec *until);
void interrupt_post_wait(turn *t);
void *waiter_main(void *arg);
void drop_map(turn *t);
void release_ref(turn *t);
int change_slice(uint64_t ns, uint64_t *had);

#endif
#endif
