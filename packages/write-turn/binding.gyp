{
  "targets": [
    {
      "target_name": "write_turn",
      "sources": ["native/turn.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lpthread"]
    }
  ]
}
