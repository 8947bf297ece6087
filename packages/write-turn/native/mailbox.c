// The mailbox's slots: a state word per slot in the header (so that a holder looking for posts
// reads a few pages, not the whole file) and 1 KiB of payload and answer. Every state, serial
// and length is read as data from outside: an unknown state is a slot nobody uses, a length
// past its field makes the entry damaged, never a copy past the slot.
#include "turn.h"

#ifdef __linux__
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>

shared_slot *slot_at(shared_turn *s, uint32_t index) {
  return (shared_slot *)((char *)s + HEADER_SIZE + (size_t)(index % SLOT_COUNT) * SLOT_SIZE);
}

int slot_answered(shared_turn *s, uint32_t index, uint32_t serial) {
  return __atomic_load_n(&s->state[index], __ATOMIC_ACQUIRE) == SLOT_ANSWERED &&
         __atomic_load_n(&s->serial[index], __ATOMIC_ACQUIRE) == serial;
}

int slot_taken(shared_turn *s, uint32_t index, uint32_t serial) {
  uint32_t state = __atomic_load_n(&s->state[index], __ATOMIC_ACQUIRE);
  return (state == SLOT_TAKEN || state == SLOT_ABANDONED) &&
         __atomic_load_n(&s->serial[index], __ATOMIC_ACQUIRE) == serial;
}

/* Each follower sleeps on its own slot's state word: an answer wakes that follower alone. */
void wake_slot(shared_turn *s, uint32_t index) {
  futex(&s->state[index], FUTEX_WAKE, 1, NULL);
}

/* One follower whose post waits, so that it finds the turn free; the search starts elsewhere each time. */
void wake_one_poster(shared_turn *s) {
  static uint32_t next;
  uint32_t start = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED) % SLOT_COUNT;
  for (uint32_t k = 0; k < SLOT_COUNT; k++) {
    uint32_t i = (start + k) % SLOT_COUNT;
    if (__atomic_load_n(&s->state[i], __ATOMIC_ACQUIRE) == SLOT_POSTED) {
      wake_slot(s, i);
      return;
    }
  }
}

int any_posted(shared_turn *s) {
  for (uint32_t i = 0; i < SLOT_COUNT; i++)
    if (__atomic_load_n(&s->state[i], __ATOMIC_ACQUIRE) == SLOT_POSTED) return 1;
  return 0;
}

/* A taken slot of this serial moves on to `next`, unless its poster abandoned it: then it is free. 0 if not taken. */
int settle_taken(shared_turn *s, uint32_t index, uint32_t serial, uint32_t next) {
  if (__atomic_load_n(&s->serial[index], __ATOMIC_ACQUIRE) != serial) return 0;
  uint32_t expected = SLOT_TAKEN;
  if (__atomic_compare_exchange_n(&s->state[index], &expected, next, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) return 1;
  expected = SLOT_ABANDONED;
  return __atomic_compare_exchange_n(&s->state[index], &expected, SLOT_FREE, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

/* What a closed handle posted is nobody's any more: waiting posts are withdrawn, answers dropped,
   and posts a holder is committing are freed once answered. */
void abandon_posts(turn *t) {
  shared_turn *s = t->shared;
  for (uint32_t i = 0; i < SLOT_COUNT; i++) {
    if (__atomic_load_n(&s->owner_handle[i], __ATOMIC_ACQUIRE) != t->id) continue;
    uint32_t state = __atomic_load_n(&s->state[i], __ATOMIC_ACQUIRE);
    uint32_t next = state == SLOT_TAKEN ? SLOT_ABANDONED : SLOT_FREE;
    if (state == SLOT_POSTED || state == SLOT_ANSWERED || state == SLOT_TAKEN)
      __atomic_compare_exchange_n(&s->state[i], &state, next, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
  }
}
#endif
