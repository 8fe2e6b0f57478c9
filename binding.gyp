# node-gyp build of the addon, used by prebuildify to make prebuilt binaries
# (the source build on install uses cmake-js and CMakeLists.txt). libtorch is
# located by scripts/gyp-libtorch.mjs with the same discovery order.
{
  "targets": [{
    "target_name": "finetorch",
    "sources": [
      "native/addon.cc", "native/async.cc", "native/autograd.cc", "native/convert.cc", "native/cpu_allocator.cc", "native/device.cc", "native/jit.cc",
      "native/layers.cc", "native/module.cc", "native/ops.cc", "native/optimizer.cc", "native/serialization.cc", "native/tensor.cc", "native/text.cc", "native/vision.cc"
    ],
    "include_dirs": [
      "<!@(node -p \"require('node-addon-api').include_dir\")",
      "<!@(node scripts/gyp-libtorch.mjs include)"
    ],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "FT_WITH_CUDA=<!(node scripts/gyp-libtorch.mjs cuda)"],
    "cflags!": ["-fno-exceptions", "-fno-rtti"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
    "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-D_GLIBCXX_USE_CXX11_ABI=<!(node scripts/gyp-libtorch.mjs abi)", "-Wno-unused-parameter"],
    "libraries": [
      "-L<!(node scripts/gyp-libtorch.mjs libdir)",
      "<!@(node scripts/gyp-libtorch.mjs libs)",
      "-Wl,-rpath,<!(node scripts/gyp-libtorch.mjs libdir)"
    ]
  }]
}
