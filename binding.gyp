# node-gyp source build of the addon, used by scripts/build-native.mjs when
# CMake is missing (CMakeLists.txt is the cmake-js build, used when it is
# there). libtorch comes from the same discovery (scripts/gyp-libtorch.mjs,
# scripts/find-libtorch.mjs); the sources are every native/*.cc, as in CMake.
{
  "targets": [{
    "target_name": "finetorch",
    "sources": ["<!@(node -p \"require('fs').readdirSync('native').filter((f) => f.endsWith('.cc')).map((f) => 'native/' + f).join(' ')\")"],
    "include_dirs": [
      "<!@(node -p \"require('node-addon-api').include_dir\")",
      "<!@(node scripts/gyp-libtorch.mjs include)"
    ],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "FT_WITH_CUDA=<!(node scripts/gyp-libtorch.mjs cuda)"],
    "cflags!": ["-fno-exceptions", "-fno-rtti"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
    "cflags_cc": ["-std=<!(node scripts/gyp-libtorch.mjs std)", "-fexceptions", "-frtti", "-O2", "-D_GLIBCXX_USE_CXX11_ABI=<!(node scripts/gyp-libtorch.mjs abi)", "-Wall", "-Wno-unused-parameter"],
    "libraries": [
      "-L<!(node scripts/gyp-libtorch.mjs libdir)",
      "<!@(node scripts/gyp-libtorch.mjs libs)",
      "-Wl,-rpath,<!(node scripts/gyp-libtorch.mjs libdir)"
    ]
  }]
}
