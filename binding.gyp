# node-gyp build of the same CPU sources as CMakeLists.txt (no CUDA).
# `npm run build:gyp` -> build/Release/gnnbatch.node; load it with GNNBATCH_ADDON=gyp.
# GNN_PORTABLE=ON in the environment drops -march=native (portable binaries).
{
  "variables": {
    "gnn_portable%": "<!(node -p \"process.env.GNN_PORTABLE === 'ON' ? 1 : 0\")"
  },
  "targets": [
    {
      "target_name": "gnnbatch",
      "sources": ["<!@(node scripts/gyp-sources.js)"],
      "include_dirs": [
        "native",
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "GNN_BUILD_FLAVOR=\"node-gyp\""
      ],
      "cflags!": ["-fno-exceptions", "-O2", "-O0"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-O2", "-O0", "-std=gnu++17", "-std=gnu++1y", "-std=gnu++20"],
      "cflags": ["-O3", "-fopenmp"],
      "cflags_cc": ["-std=c++17", "-O3", "-fopenmp", "-fexceptions"],
      "ldflags": ["-fopenmp"],
      "conditions": [
        ["gnn_portable == 0", {
          "cflags": ["-march=native"],
          "cflags_cc": ["-march=native"]
        }]
      ]
    }
  ]
}
