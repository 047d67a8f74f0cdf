# The native kernel pack for the `native` tfjs backend (src/backend/native.ts): an N-API addon in
# C linked against the system OpenBLAS (Debian: libopenblas-dev) and OpenMP. Built by
# scripts/build-native.mjs from the root package's own scripts; optional: without a compiler or
# OpenBLAS headers the build is skipped and `auto` falls back to wasm.
{
  "targets": [
    {
      "target_name": "glassbox_native",
      "sources": ["glassbox_native.c"],
      "cflags": ["-O3", "-march=native", "-fopenmp", "-std=c11", "-Wall", "-Wno-unused-parameter"],
      "cflags!": ["-O2"],
      "ldflags": ["-fopenmp"],
      "include_dirs": ["/usr/include/x86_64-linux-gnu", "/usr/include/openblas"],
      "conditions": [
        ["OS=='mac'", {
          "libraries": ["-framework Accelerate"],
          "defines": ["GLASSBOX_ACCELERATE=1"],
          "xcode_settings": { "OTHER_CFLAGS": ["-O3"] }
        }, {
          "libraries": ["-lopenblas", "-lgomp", "-lm"]
        }]
      ]
    }
  ]
}
