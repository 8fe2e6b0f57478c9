// Addon entry point: defines the wrapped classes and registers each concern.
#include "common.h"
#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace ft {

AddonData& addonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

// glibc raises its mmap threshold after the first large free, after which
// tensor buffers come from the heap and the many small allocations of V8 and
// node-api objects fragment it: a loop of 256x256 matmuls grew RSS by 0.25 MB
// per step. A fixed threshold keeps large buffers in mmap, returned on free.
// FINETORCH_MMAP_THRESHOLD (bytes, 0 = leave glibc alone) overrides it.
static void configureAllocator() {
#if defined(__GLIBC__)
  static bool done = false;
  if (done) return;
  done = true;
  long threshold = 128 * 1024;
  if (const char* env = std::getenv("FINETORCH_MMAP_THRESHOLD")) threshold = std::strtol(env, nullptr, 10);
  if (threshold > 0) mallopt(M_MMAP_THRESHOLD, static_cast<int>(threshold));
#endif
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  configureAllocator();
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);  // deleted by node-api at env teardown
  Napi::Function tensorCtor = TensorWrap::Define(env);
  Napi::Function moduleCtor = ModuleWrap::Define(env);
  Napi::Function optimizerCtor = OptimizerWrap::Define(env);
  data->tensorCtor = Napi::Persistent(tensorCtor);
  data->moduleCtor = Napi::Persistent(moduleCtor);
  data->optimizerCtor = Napi::Persistent(optimizerCtor);
  exports.Set("TensorHandle", tensorCtor);
  exports.Set("ModuleHandle", moduleCtor);
  exports.Set("OptimizerHandle", optimizerCtor);
  registerTensor(env, exports);
  registerOps(env, exports);
  registerAutograd(env, exports);
  registerModule(env, exports);
  registerLayers(env, exports);
  registerOptimizer(env, exports);
  registerDevice(env, exports);
  registerAsync(env, exports);
  return exports;
}

}  // namespace ft

static Napi::Object InitFinetorch(Napi::Env env, Napi::Object exports) { return ft::Init(env, exports); }
NODE_API_MODULE(finetorch, InitFinetorch)
