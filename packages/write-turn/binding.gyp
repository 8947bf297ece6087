{
  "targets": [
    {
      "target_name": "write_turn",
      "sources": ["native/addon.c", "native/file.c", "native/lock.c", "native/mailbox.c", "native/waiter.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lpthread"],
      "conditions": [
        ["OS=='linux'", {
          # Never unloaded: close() can leave a waiting thread asleep in the kernel, detached, and
          # Node unloads an addon when the last environment that loaded it ends (a worker thread's,
          # where the main thread never loads it). That thread then woke up in unmapped code:
          # SIGSEGV. Elsewhere the addon is a stub without threads (see native/addon.c).
          "ldflags": ["-Wl,-z,nodelete"]
        }]
      ]
    }
  ]
}
