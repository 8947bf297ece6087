// The waiting thread: one per handle, started at its first wait. Node has no way to sleep in the
// kernel without blocking the event loop, so this thread sleeps for the JavaScript thread and
// hands each outcome back through a thread-safe function.
#include "turn.h"

#ifdef __linux__
#include <linux/futex.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

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
 * Gives the calling thread the slice `ns` if it is a normal thread: 1 once set, with the slice it
 * had in `had` (0 when that was the kernel's default). The kernel reports the slice in force, its
 * default too: restoring that number would pin the thread to it, so it asks for the default and
 * reads it back, and the same number means the default.
 */
int change_slice(uint64_t ns, uint64_t *had) {
  struct slice_attr current;
  memset(&current, 0, sizeof current);
  if (syscall(SYS_sched_getattr, 0, &current, sizeof current, 0) != 0 ||
      (current.sched_policy != SCHED_OTHER && current.sched_policy != SCHED_BATCH))
    return 0;
  *had = current.sched_runtime;
  struct slice_attr d;
  memset(&d, 0, sizeof d);
  int probed = *had != 0 && set_runtime(&current, 0) == 0;
  if (probed && syscall(SYS_sched_getattr, 0, &d, sizeof d, 0) == 0 && d.sched_runtime == *had) *had = 0;
  if (set_runtime(&current, ns) == 0) return 1;
  if (probed) set_runtime(&current, current.sched_runtime); /* As it was: nothing changed. */
  return 0;
}

/* The waiting thread's slice: the shortest a normal thread may ask for (it only hands each wake-up on). */
#define WAITER_SLICE_NS 100000ULL

/*
 * A follower's wait: until its ticket is answered, the turn is free (then it is held in the
 * JavaScript thread's name), the holder answered nobody for the quiet time, the file broke, or
 * the time is up. Sleeps on its own slot's state word (an answer wakes it); every
 * LIVENESS_RECHECK_NS it tries the turn anyway, the only way to learn that a holder died.
 */
int await_answer_or_turn(turn *t, const struct timespec *until) {
  shared_turn *s = t->shared;
  uint32_t index = t->await_index;
  uint32_t last = __atomic_load_n(&s->generation, __ATOMIC_ACQUIRE);
  struct timespec quiet_until;
  clock_gettime(TURN_CLOCK, &quiet_until);
  add_ns(&quiet_until, t->await_quiet_ns);
  for (;;) {
    if (turn_broken(s)) return AWAIT_BROKEN;
    uint32_t seen = __atomic_load_n(&s->generation, __ATOMIC_ACQUIRE);
    uint32_t state = __atomic_load_n(&s->state[index], __ATOMIC_ACQUIRE);
    if (slot_answered(s, index, t->await_serial)) return AWAIT_ANSWER;
    if (lock_try(s, t->tid)) {
      /* A new holder: the others' patience restarts now, since it opens the database before it answers. */
      announce(s);
      return AWAIT_TURN;
    }
    long long left = ns_until(until);
    if (left <= 0 || __atomic_load_n(&t->closed, __ATOMIC_ACQUIRE)) return AWAIT_TIMEOUT;
    if (seen != last) {
      last = seen;
      clock_gettime(TURN_CLOCK, &quiet_until);
      add_ns(&quiet_until, t->await_quiet_ns);
    }
    long long quiet_left = ns_until(&quiet_until);
    if (quiet_left <= 0) return AWAIT_QUIET;
    if (left > quiet_left) left = quiet_left;
    if (left > LIVENESS_RECHECK_NS) left = LIVENESS_RECHECK_NS;
    struct timespec timeout = {left / 1000000000LL, left % 1000000000LL};
    futex(&s->state[index], FUTEX_WAIT, state, &timeout);
  }
}

/* A holder's wait for the next post: sleeps on the posts word until a post bumps it, the time is up,
   or release/close cut it short. One sleep instead of a poll on timers. */
int await_post(turn *t, const struct timespec *until) {
  shared_turn *s = t->shared;
  for (;;) {
    if (turn_broken(s)) return AWAIT_BROKEN;
    uint32_t seen = __atomic_load_n(&s->posts, __ATOMIC_SEQ_CST);
    if (any_posted(s)) return AWAIT_POSTED;
    if (__atomic_load_n(&t->post_wait_interrupted, __ATOMIC_ACQUIRE)) return AWAIT_TIMEOUT;
    long long left = ns_until(until);
    if (left <= 0) return AWAIT_TIMEOUT;
    if (left > LIVENESS_RECHECK_NS) left = LIVENESS_RECHECK_NS;
    struct timespec timeout = {left / 1000000000LL, left % 1000000000LL};
    /* Counted before the word is checked again (by the kernel): a poster that bumps it after that
       check sees this waiter and wakes it. */
    __atomic_add_fetch(&s->post_waiters, 1, __ATOMIC_SEQ_CST);
    futex(&s->posts, FUTEX_WAIT, seen, &timeout);
    __atomic_sub_fetch(&s->post_waiters, 1, __ATOMIC_SEQ_CST);
  }
}

/* Cuts a pending awaitPost short (it settles false): the word moves, so the sleeper wakes. */
void interrupt_post_wait(turn *t) {
  __atomic_store_n(&t->post_wait_interrupted, 1, __ATOMIC_RELEASE);
  __atomic_add_fetch(&t->shared->posts, 1, __ATOMIC_SEQ_CST);
  futex(&t->shared->posts, FUTEX_WAKE, INT32_MAX, NULL);
}

void drop_map(turn *t) {
  if (__atomic_sub_fetch(&t->map_refs, 1, __ATOMIC_ACQ_REL) == 0) turn_file_unmap(t->shared);
}

/* Dropped by the JavaScript handle (finalizer) and by the thread (exit): the last one frees. */
void release_ref(turn *t) {
  if (__atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  pthread_mutex_destroy(&t->control);
  pthread_cond_destroy(&t->wake);
  pthread_cond_destroy(&t->done);
  free(t);
}

void *waiter_main(void *arg) {
  turn *t = arg;
  pthread_setname_np(pthread_self(), "write-turn"); /* Told apart in `top -H` and /proc. */
  uint64_t had;
  change_slice(WAITER_SLICE_NS, &had);
  pthread_mutex_lock(&t->control);
  for (;;) {
    while (t->command == CMD_NONE) pthread_cond_wait(&t->wake, &t->control);
    enum command command = t->command;
    t->command = CMD_NONE;
    if (command == CMD_STOP) break;
    struct timespec until = t->until;
    t->waiting = 1;
    pthread_mutex_unlock(&t->control);
    int outcome;
    if (command == CMD_AWAIT) outcome = await_answer_or_turn(t, &until);
    else if (command == CMD_AWAIT_POST) outcome = await_post(t, &until);
    else outcome = lock_until(t->shared, t->tid, &until, &t->closed) ? AWAIT_TURN
                   : turn_broken(t->shared)                          ? AWAIT_BROKEN
                                                                     : AWAIT_TIMEOUT;
    pthread_mutex_lock(&t->control);
    t->waiting = 0;
    pthread_cond_broadcast(&t->done);
    if (t->closed) {
      /* Closed while this thread slept: nobody waits for the outcome; a turn it took goes back. */
      if (outcome == AWAIT_TURN) lock_release(t->shared, t->tid);
      pthread_mutex_unlock(&t->control);
      drop_map(t);
      release_ref(t);
      return NULL;
    }
    napi_call_threadsafe_function(t->tsfn, (void *)(intptr_t)outcome, napi_tsfn_nonblocking);
  }
  pthread_mutex_unlock(&t->control);
  drop_map(t);
  release_ref(t);
  return NULL;
}
#endif
