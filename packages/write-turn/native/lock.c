// The turn: a lock made of one 64-bit word in the shared file, (pid << 32) | tid | LOCK_WAITERS,
// 0 when free. Waiters sleep on its low half (a futex) and are woken one at a time by a release.
// A holder that died (process or thread) is noticed by the next one who looks: its thread no
// longer exists (tgkill(pid, tid, 0) fails with ESRCH), and the word is taken over by a CAS, so
// one waiter wins. Whatever bytes another process writes there, the worst outcome is a wrong
// holder: a wait that runs out, or two holders at once, which cost time and never a row (turn.h).
#include "turn.h"

#ifdef __linux__
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LOCK_WAITERS 0x80000000ULL
#define LOCK_TID_MASK 0x3fffffffULL

long futex(uint32_t *word, int op, uint32_t value, const struct timespec *timeout) {
  return syscall(SYS_futex, word, op, value, timeout, NULL, 0);
}

void add_ns(struct timespec *t, long long ns) {
  long long total = t->tv_nsec + ns;
  t->tv_sec += total / 1000000000LL;
  t->tv_nsec = total % 1000000000LL;
}

long long ns_until(const struct timespec *until) {
  struct timespec now;
  clock_gettime(TURN_CLOCK, &now);
  return (until->tv_sec - now.tv_sec) * 1000000000LL + (until->tv_nsec - now.tv_nsec);
}

static uint32_t *lock_word(shared_turn *s) {
  return (uint32_t *)&s->lock; /* The low half (little-endian: see turn.h). */
}

static uint64_t held_by(pid_t tid) {
  return ((uint64_t)(uint32_t)getpid() << 32) | ((uint64_t)tid & LOCK_TID_MASK);
}

/* Counts answers and releases: a follower that sees it still for long enough takes the holder for hung. */
void announce(shared_turn *s) {
  __atomic_add_fetch(&s->generation, 1, __ATOMIC_ACQ_REL);
}

/* Whether the holder named by `word` is known to be gone: only a process of its PID namespace can tell. */
static int holder_gone(shared_turn *s, uint64_t word) {
  long pid = (long)(word >> 32);
  long tid = (long)(word & LOCK_TID_MASK);
  if (pid <= 0 || tid <= 0 || pid > 0x3fffffffL) return 0;
  if (__atomic_load_n(&s->lock_ns, __ATOMIC_ACQUIRE) != pid_namespace() || pid_namespace() == 0) return 0;
  return syscall(SYS_tgkill, (pid_t)pid, (pid_t)tid, 0) != 0 && errno == ESRCH;
}

/* One attempt: free, or held by a thread that is gone. `waiters`: keep the mark that others sleep. */
static int attempt(shared_turn *s, pid_t tid, uint64_t waiters) {
  uint64_t seen = 0;
  uint64_t mine = held_by(tid) | waiters;
  if (!__atomic_compare_exchange_n(&s->lock, &seen, mine, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    if (!holder_gone(s, seen)) return 0;
    /* Taken over from a dead holder; others may sleep on it, so the mark stays. */
    if (!__atomic_compare_exchange_n(&s->lock, &seen, mine | (seen & LOCK_WAITERS), 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
      return 0;
  }
  __atomic_store_n(&s->lock_ns, pid_namespace(), __ATOMIC_RELEASE);
  return 1;
}

int lock_try(shared_turn *s, pid_t tid) {
  if (turn_broken(s)) return 0;
  return attempt(s, tid, 0);
}

/*
 * Sleeps in the kernel until the turn is taken in the name of `tid` (1) or `until` passed, `*closed`
 * became true or the file broke (0). No polling: a release wakes one sleeper; only a holder that
 * stays for LIVENESS_RECHECK_NS makes the sleepers look whether it is still alive.
 */
int lock_until(shared_turn *s, pid_t tid, const struct timespec *until, const int *closed) {
  uint64_t waiters = 0;
  for (;;) {
    if (turn_broken(s) || __atomic_load_n(closed, __ATOMIC_ACQUIRE)) return 0;
    if (attempt(s, tid, waiters)) return 1;
    uint64_t seen = __atomic_load_n(&s->lock, __ATOMIC_ACQUIRE);
    if (seen == 0) continue;
    if (!(seen & LOCK_WAITERS)) {
      uint64_t marked = seen | LOCK_WAITERS;
      if (!__atomic_compare_exchange_n(&s->lock, &seen, marked, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) continue;
      seen = marked;
    }
    /* Having slept here, this thread takes the turn with the mark: others may sleep too. */
    waiters = LOCK_WAITERS;
    long long left = ns_until(until);
    if (left <= 0) return 0;
    if (left > LIVENESS_RECHECK_NS) left = LIVENESS_RECHECK_NS;
    struct timespec timeout = {left / 1000000000LL, left % 1000000000LL};
    futex(lock_word(s), FUTEX_WAIT, (uint32_t)seen, &timeout);
  }
}

/*
 * Hands the turn on, if it is held in the name of `tid` (a turn taken over meanwhile is not
 * touched): to one sleeper on the lock, and to one follower whose post waits (it finds the turn
 * free and takes it). One, not all: a crowd woken at every release costs each of them CPU for nothing.
 */
void lock_release(shared_turn *s, pid_t tid) {
  uint64_t seen = __atomic_load_n(&s->lock, __ATOMIC_ACQUIRE);
  for (;;) {
    if ((seen & ~LOCK_WAITERS) != held_by(tid)) return;
    if (__atomic_compare_exchange_n(&s->lock, &seen, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) break;
  }
  if (seen & LOCK_WAITERS) futex(lock_word(s), FUTEX_WAKE, 1, NULL);
  announce(s);
  wake_one_poster(s);
}
#endif
