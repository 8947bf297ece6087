// The N-API glue: argument checks, handles, promises. Every N-API status and allocation is
// checked; a failure throws in JavaScript rather than going on with a half-made value.
#include "turn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <linux/futex.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#define CHECK(call)                                        \
  do {                                                     \
    if ((call) != napi_ok) {                               \
      napi_throw_error(env, NULL, "write-turn: " #call);   \
      return NULL;                                         \
    }                                                      \
  } while (0)

#ifdef __linux__

/* Runs on the JavaScript thread: settles the pending wait. */
static void settle_wait(napi_env env, napi_value js_callback, void *context, void *data) {
  turn *t = context;
  int outcome = (int)(intptr_t)data;
  if (env == NULL || t->closed || t->deferred == NULL) return;
  if (outcome == AWAIT_TURN) t->held = 1;
  napi_deferred deferred = t->deferred;
  t->deferred = NULL;
  napi_unref_threadsafe_function(env, t->tsfn);
  napi_value result;
  napi_status status;
  if (t->pending == CMD_AWAIT) status = napi_create_int32(env, outcome, &result);
  else if (t->pending == CMD_AWAIT_POST) status = napi_get_boolean(env, outcome == AWAIT_POSTED, &result);
  else status = napi_get_boolean(env, outcome == AWAIT_TURN, &result);
  if (status == napi_ok) napi_resolve_deferred(env, deferred, result);
}

/* Neither held nor waited for by this handle; otherwise throws. */
static int is_idle(napi_env env, turn *t) {
  if (!t->held && t->deferred == NULL) return 1;
  napi_throw_error(env, NULL, "write-turn: already held or being waited for");
  return 0;
}

/*
 * Releases the turn, settles a pending wait as false (or timeout) and stops the thread. A thread
 * asleep in the kernel is detached: it lets go of what it took, and of its reference, when its
 * wait ends (at most LIVENESS_RECHECK_NS later).
 */
static void close_turn(turn *t) {
  if (t->closed) return;
  if (t->posted_any) abandon_posts(t);
  if (t->held) lock_release(t->shared, t->tid);
  t->held = 0;
  int detached = 0;
  if (t->thread_started) {
    pthread_mutex_lock(&t->control);
    __atomic_store_n(&t->closed, 1, __ATOMIC_RELEASE);
    if (t->waiting && t->pending == CMD_AWAIT_POST) interrupt_post_wait(t);
    if (!t->waiting) {
      t->command = CMD_STOP;
      pthread_cond_signal(&t->wake);
    }
    /* Never joined: that would make the event loop wait for the scheduler to run the thread. */
    pthread_detach(t->thread);
    detached = 1;
    pthread_mutex_unlock(&t->control);
  }
  (void)detached;
  __atomic_store_n(&t->closed, 1, __ATOMIC_RELEASE);
  drop_map(t);
  if (t->deferred != NULL) {
    /* Its own handle scope: an environment's cleanup hooks (a worker thread terminated while it
       waited) run without one, and a value made there aborted the process. */
    napi_handle_scope scope;
    napi_value result;
    if (napi_open_handle_scope(t->env, &scope) == napi_ok) {
      napi_status status = t->pending == CMD_AWAIT ? napi_create_int32(t->env, AWAIT_TIMEOUT, &result)
                                                   : napi_get_boolean(t->env, 0, &result);
      if (status == napi_ok) napi_resolve_deferred(t->env, t->deferred, result);
      napi_close_handle_scope(t->env, scope);
    }
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

/* The call's first `count` arguments into argv (undefined where missing), and the handle that is the first. */
static turn *handle_args(napi_env env, napi_callback_info info, size_t count, napi_value *argv) {
  size_t argc = count;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    napi_throw_error(env, NULL, "write-turn: napi_get_cb_info");
    return NULL;
  }
  return unwrap(env, argv[0]);
}

static int string_arg(napi_env env, napi_value value, char *out, size_t size, size_t spare, const char *usage) {
  size_t length;
  if (napi_get_value_string_utf8(env, value, out, size, &length) != napi_ok || length >= size - spare ||
      strlen(out) != length) {
    napi_throw_type_error(env, NULL, usage);
    return 0;
  }
  return 1;
}

static napi_value boolean(napi_env env, int value);

/* open(path, databasePath): a handle. Throws with code NOT_A_TURN_FILE, UNTRUSTED or SYSTEM. */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  const char *usage = "write-turn: open(path, databasePath) needs two paths";
  char database[4096];
  turn *t = calloc(1, sizeof *t);
  if (t == NULL) {
    napi_throw_error(env, "SYSTEM", "write-turn: out of memory");
    return NULL;
  }
  /* Room for the suffix of the temporary file a new turn file is created under. */
  if (argc < 2 || !string_arg(env, argv[0], t->path, sizeof t->path, 64, usage) ||
      !string_arg(env, argv[1], database, sizeof database, 1, usage)) {
    free(t);
    return NULL;
  }
  char error[4400];
  open_status status = turn_file_open(t, t->path, database, error, sizeof error);
  if (status != OPEN_OK) {
    free(t);
    const char *code = status == OPEN_NOT_A_TURN_FILE ? "NOT_A_TURN_FILE" : status == OPEN_UNTRUSTED ? "UNTRUSTED" : "SYSTEM";
    napi_throw_error(env, code, error);
    return NULL;
  }
  t->env = env;
  t->tid = gettid();
  static uint32_t handles;
  t->id = ((uint64_t)(uint32_t)getpid() << 32 | __atomic_add_fetch(&handles, 1, __ATOMIC_ACQ_REL)) ^
          (pid_namespace() << 20);
  t->refs = 1;
  t->map_refs = 1;
  if (pthread_mutex_init(&t->control, NULL) != 0 || pthread_cond_init(&t->wake, NULL) != 0 ||
      pthread_cond_init(&t->done, NULL) != 0) {
    turn_file_unmap(t->shared);
    free(t);
    napi_throw_error(env, "SYSTEM", "write-turn: cannot initialise the handle");
    return NULL;
  }
  napi_value handle;
  if (napi_create_external(env, t, finalize_turn, NULL, &handle) != napi_ok) {
    turn_file_unmap(t->shared);
    free(t);
    napi_throw_error(env, "SYSTEM", "write-turn: napi_create_external");
    return NULL;
  }
  CHECK(napi_add_env_cleanup_hook(env, cleanup_hook, t));
  napi_value result;
  CHECK(napi_create_array_with_length(env, 2, &result));
  CHECK(napi_set_element(env, result, 0, handle));
  CHECK(napi_set_element(env, result, 1, boolean(env, t->created)));
  return result;
}

/* identity(path): [st_dev, st_ino] of the file at path, as doubles (as fs.statSync gives them), or null. */
static napi_value js_identity(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char path[4096];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !string_arg(env, argv[0], path, sizeof path, 1, "write-turn: identity(path) needs a path"))
    return NULL;
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

static napi_value boolean(napi_env env, int value) {
  napi_value result;
  CHECK(napi_get_boolean(env, value, &result));
  return result;
}

/* tryAcquire(handle): true if the turn is now held by this handle, without waiting. */
static napi_value js_try_acquire(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  turn *t = handle_args(env, info, 1, argv);
  if (t == NULL || !is_idle(env, t)) return NULL;
  t->held = lock_try(t->shared, t->tid);
  return boolean(env, t->held);
}

/* Starts the waiting thread's next wait (`command`); the promise settles from settle_wait. */
static napi_value start_wait(napi_env env, turn *t, double timeout_ms, enum command command) {
  if (t->tsfn == NULL) {
    napi_value name;
    CHECK(napi_create_string_utf8(env, "write-turn", NAPI_AUTO_LENGTH, &name));
    CHECK(napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, t, settle_wait, &t->tsfn));
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
  t->pending = command;
  t->post_wait_interrupted = 0;
  /* A pending wait keeps the process alive, as a timer would. */
  CHECK(napi_ref_threadsafe_function(env, t->tsfn));
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

/* acquire(handle, timeoutMs): a promise of true once held, false if the time ran out, the turn closed or broke. */
static napi_value js_acquire(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  turn *t = handle_args(env, info, 2, argv);
  double timeout_ms;
  if (t == NULL || !timeout_arg(env, argv[1], &timeout_ms) || !is_idle(env, t)) return NULL;
  return start_wait(env, t, timeout_ms, CMD_ACQUIRE);
}

/* awaitPost(handle, timeoutMs): the holder's wait for a post; true once one is there. */
static napi_value js_await_post(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  turn *t = handle_args(env, info, 2, argv);
  double timeout_ms;
  if (t == NULL || !timeout_arg(env, argv[1], &timeout_ms)) return NULL;
  if (!t->held || t->deferred != NULL) {
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
  if (t->deferred != NULL && t->pending == CMD_AWAIT_POST) interrupt_post_wait(t);
  return NULL;
}

/* A ticket names a slot and its use: index * 2^32 + serial, exact in a double. */
static int ticket_arg(napi_env env, napi_value value, uint32_t *index, uint32_t *serial) {
  double ticket;
  if (napi_get_value_double(env, value, &ticket) == napi_ok && ticket >= 0 &&
      ticket < (double)SLOT_COUNT * 4294967296.0 && ticket == (double)(uint64_t)ticket) {
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
  CHECK(napi_create_double(env, (double)(((uint64_t)index << 32) | serial), &result));
  return result;
}

/* await(handle, ticket, timeoutMs, quietMs): a promise of 2 (answered), 1 (the turn is held),
   3 (no answer to anyone for quietMs), 5 (the turn file broke) or 0 (time up, closed). */
static napi_value js_await(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  turn *t = handle_args(env, info, 4, argv);
  uint32_t index, serial;
  double timeout_ms, quiet_ms;
  if (t == NULL || !ticket_arg(env, argv[1], &index, &serial) || !timeout_arg(env, argv[2], &timeout_ms) ||
      !timeout_arg(env, argv[3], &quiet_ms) || !is_idle(env, t))
    return NULL;
  t->await_quiet_ns = (long long)(quiet_ms * 1e6);
  t->await_index = index;
  t->await_serial = serial;
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

/* A copy of `length` bytes out of the shared file (the caller has bounded `length`). */
static napi_value copy_out(napi_env env, const void *data, size_t length) {
  void *out;
  napi_value result;
  CHECK(napi_create_buffer_copy(env, length, data, &out, &result));
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
  shared_turn *s = t->shared;
  if (length > PAYLOAD_SIZE || turn_broken(s)) return none;
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
  return boolean(env, withdrawn);
}

/* collect(handle, ticket): the final answer's bytes, freeing the slot; null while there is none;
   an empty buffer when the answer's length in the file is past its field (damaged). */
static napi_value js_collect(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  turn *t = handle_args(env, info, 2, argv);
  uint32_t index, serial;
  if (t == NULL || !ticket_arg(env, argv[1], &index, &serial)) return NULL;
  shared_turn *s = t->shared;
  napi_value result;
  if (!slot_answered(s, index, serial)) {
    CHECK(napi_get_null(env, &result));
    return result;
  }
  shared_slot *slot = slot_at(s, index);
  uint32_t length = __atomic_load_n(&slot->answer_length, __ATOMIC_ACQUIRE);
  result = copy_out(env, slot->answer, length <= ANSWER_SIZE ? length : 0);
  if (result == NULL) return NULL;
  uint32_t expected = SLOT_ANSWERED;
  __atomic_compare_exchange_n(&s->state[index], &expected, SLOT_FREE, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
  return result;
}

/* Only a process of the same PID namespace can tell that a poster is gone. */
static int owner_gone(shared_turn *s, uint32_t index) {
  pid_t pid = (pid_t)__atomic_load_n(&s->owner[index], __ATOMIC_ACQUIRE);
  uint64_t ns = __atomic_load_n(&s->owner_ns[index], __ATOMIC_ACQUIRE);
  return pid > 0 && ns != 0 && ns == pid_namespace() && kill(pid, 0) != 0 && errno == ESRCH;
}

/*
 * take(handle): the posted payloads, now taken by this holder, as [ticket, payload, takenBefore]:
 * `payload` is null when its length in the file is past the slot (damaged: answer it with an
 * error); `takenBefore` when a holder that is gone had taken it (its rows may be stored: the
 * caller's receipts tell). Slots whose poster is gone, abandoned ones and unknown states are freed.
 */
static napi_value js_take(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  turn *t = handle_args(env, info, 1, argv);
  if (t == NULL) return NULL;
  if (!t->held) {
    napi_throw_error(env, NULL, "write-turn: take() needs the turn");
    return NULL;
  }
  shared_turn *s = t->shared;
  napi_value list;
  CHECK(napi_create_array(env, &list));
  uint32_t count = 0;
  for (uint32_t i = 0; i < SLOT_COUNT && !turn_broken(s); i++) {
    uint32_t state = __atomic_load_n(&s->state[i], __ATOMIC_ACQUIRE);
    /* A slot being filled is left alone: its owner field may still name the previous poster. */
    if (state == SLOT_FREE || state == SLOT_FILLING || state == SLOT_ANSWERED) continue;
    if (state > SLOT_ABANDONED || state == SLOT_ABANDONED || owner_gone(s, i)) {
      uint32_t expected = state;
      __atomic_compare_exchange_n(&s->state[i], &expected, SLOT_FREE, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
      continue;
    }
    if (state == SLOT_POSTED) {
      uint32_t expected = SLOT_POSTED;
      if (!__atomic_compare_exchange_n(&s->state[i], &expected, SLOT_TAKEN, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        continue; /* withdrawn meanwhile */
    }
    shared_slot *slot = slot_at(s, i);
    uint32_t length = __atomic_load_n(&slot->payload_length, __ATOMIC_ACQUIRE);
    napi_value entry, payload, ticket;
    CHECK(napi_create_array_with_length(env, 3, &entry));
    ticket = ticket_value(env, i, __atomic_load_n(&s->serial[i], __ATOMIC_ACQUIRE));
    if (ticket == NULL) return NULL;
    if (length <= PAYLOAD_SIZE) {
      payload = copy_out(env, slot->payload, length);
      if (payload == NULL) return NULL;
    } else {
      CHECK(napi_get_null(env, &payload));
    }
    __atomic_store_n(&slot->answer_length, 0, __ATOMIC_RELEASE);
    CHECK(napi_set_element(env, entry, 0, ticket));
    CHECK(napi_set_element(env, entry, 1, payload));
    CHECK(napi_set_element(env, entry, 2, boolean(env, state == SLOT_TAKEN)));
    CHECK(napi_set_element(env, list, count++, entry));
  }
  return list;
}

/* answer(handle, ticket, bytes, final): writes a taken ticket's answer (at most 256 bytes, cut
   beyond); final: the poster may collect it, and is woken. False when the ticket is no longer taken. */
static napi_value js_answer(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  turn *t = handle_args(env, info, 4, argv);
  uint32_t index, serial;
  void *data;
  size_t length;
  bool final = false;
  if (t == NULL || !ticket_arg(env, argv[1], &index, &serial) || !bytes_arg(env, argv[2], &data, &length)) return NULL;
  CHECK(napi_get_value_bool(env, argv[3], &final));
  shared_turn *s = t->shared;
  if (!slot_taken(s, index, serial)) return boolean(env, 0);
  shared_slot *slot = slot_at(s, index);
  if (length > ANSWER_SIZE) length = ANSWER_SIZE;
  memcpy(slot->answer, data, length);
  __atomic_store_n(&slot->answer_length, (uint32_t)length, __ATOMIC_RELEASE);
  if (final && settle_taken(s, index, serial, SLOT_ANSWERED)) wake_slot(s, index);
  return boolean(env, 1);
}

/* finish(handle, tickets): makes the answers written to these taken tickets final, every one before
   the first poster is woken, then wakes them and counts the round. Tickets no longer taken, without
   an answer or given twice are passed over. Returns how many were finished. */
static napi_value js_finish(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  turn *t = handle_args(env, info, 2, argv);
  if (t == NULL) return NULL;
  uint32_t count;
  if (napi_get_array_length(env, argv[1], &count) != napi_ok) {
    napi_throw_type_error(env, NULL, "write-turn: finish needs an array of tickets");
    return NULL;
  }
  shared_turn *s = t->shared;
  uint32_t *finished = malloc(sizeof(uint32_t) * (count > 0 ? count : 1));
  if (finished == NULL) {
    napi_throw_error(env, NULL, "write-turn: out of memory");
    return NULL;
  }
  uint32_t done = 0;
  for (uint32_t i = 0; i < count; i++) {
    napi_value ticket;
    uint32_t index, serial;
    if (napi_get_element(env, argv[1], i, &ticket) != napi_ok || !ticket_arg(env, ticket, &index, &serial)) {
      free(finished);
      return NULL;
    }
    uint32_t length = __atomic_load_n(&slot_at(s, index)->answer_length, __ATOMIC_ACQUIRE);
    if (length == 0 || length > ANSWER_SIZE) continue;
    if (settle_taken(s, index, serial, SLOT_ANSWERED)) finished[done++] = index;
  }
  for (uint32_t i = 0; i < done; i++) wake_slot(s, finished[i]);
  if (done > 0) announce(s);
  free(finished);
  napi_value result;
  CHECK(napi_create_uint32(env, done, &result));
  return result;
}

/* untake(handle, ticket): a taken ticket goes back to waiting for a holder (its transaction did not commit). */
static napi_value js_untake(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  turn *t = handle_args(env, info, 2, argv);
  uint32_t index, serial;
  if (t == NULL || !ticket_arg(env, argv[1], &index, &serial)) return NULL;
  if (slot_taken(t->shared, index, serial)) {
    __atomic_store_n(&slot_at(t->shared, index)->answer_length, 0, __ATOMIC_RELEASE);
    settle_taken(t->shared, index, serial, SLOT_POSTED);
  }
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

/* announce(handle): counts an answer round (followers' patience restarts). */
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
  if (t->deferred != NULL && t->pending == CMD_AWAIT_POST) {
    /* Waiting for a post is the holder's alone: the wait ends first (it settles false). */
    interrupt_post_wait(t);
    pthread_mutex_lock(&t->control);
    while (t->command == CMD_AWAIT_POST || t->waiting) pthread_cond_wait(&t->done, &t->control);
    pthread_mutex_unlock(&t->control);
  }
  if (t->held) lock_release(t->shared, t->tid);
  t->held = 0;
  return NULL;
}

/* close(handle): releases, cancels a pending wait (it settles false), stops the thread. Idempotent. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  turn *t = NULL;
  if (argc >= 1 && napi_get_value_external(env, argv[0], (void **)&t) == napi_ok && t != NULL) close_turn(t);
  return NULL;
}

/* discard(handle): closes, and removes the turn file if this handle created it and it is still
   the one at its path (an open that failed leaves nothing behind). True if removed. */
static napi_value js_discard(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  turn *t = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], (void **)&t) != napi_ok || t == NULL) return boolean(env, 0);
  int removed = !t->closed && turn_file_remove_if_created(t);
  close_turn(t);
  return boolean(env, removed);
}

/* state(handle): 0 usable, 1 broken (the file was truncated or damaged under the mapping), 2 stale
   (another file, or none, is at the turn's path now). */
static napi_value js_state(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  turn *t = handle_args(env, info, 1, argv);
  if (t == NULL) return NULL;
  napi_value result;
  CHECK(napi_create_int32(env, turn_broken(t->shared) ? 1 : turn_file_stale(t) ? 2 : 0, &result));
  return result;
}

/* setSlice(ns): the calling thread's CPU slice under the fair scheduler; returns the one it had
   (ns; 0 when it had the kernel's default), or -1 when it cannot be set. */
static napi_value js_set_slice(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  double ns = 0, before = -1;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_double(env, argv[0], &ns) != napi_ok || !(ns >= 0)) {
    napi_throw_type_error(env, NULL, "write-turn: setSlice(ns) needs a number >= 0");
    return NULL;
  }
  uint64_t had;
  if (change_slice((uint64_t)ns, &had)) before = (double)had;
  napi_value result;
  CHECK(napi_create_double(env, before, &result));
  return result;
}

#else
/* The turn is a Linux facility here: elsewhere open() refuses, and @repo/metrics-repo waits on timers alone. */
static napi_value js_unsupported(napi_env env, napi_callback_info info) {
  napi_throw_error(env, "UNSUPPORTED", "write-turn: not supported on this platform (Linux only)");
  return NULL;
}
#define js_open js_unsupported
#define js_try_acquire js_unsupported
#define js_acquire js_unsupported
#define js_release js_unsupported
#define js_close js_unsupported
#define js_discard js_unsupported
#define js_state js_unsupported
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
      {"discard", NULL, js_discard, NULL, NULL, NULL, napi_default, NULL},
      {"state", NULL, js_state, NULL, NULL, NULL, napi_default, NULL},
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
  if (napi_define_properties(env, exports, sizeof properties / sizeof *properties, properties) != napi_ok) {
    napi_throw_error(env, NULL, "write-turn: napi_define_properties");
    return NULL;
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
