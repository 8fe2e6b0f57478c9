// Addon entry point: defines the wrapped classes and registers each concern.
#include "common.h"
#include "autocast.h"

namespace ft {

void registerMemoryFormat(Napi::Env env, Napi::Object exports);  // memory_format.cc
void registerCrf(Napi::Env env, Napi::Object exports);  // crf.cc
void registerDistributed(Napi::Env env, Napi::Object exports);  // distributed.cc
void registerDetection(Napi::Env env, Napi::Object exports);  // detection.cc

AddonData& addonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  installCpuAllocator();
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);  // deleted by node-api at env teardown
  Napi::Function tensorCtor = TensorWrap::Define(env);
  Napi::Function moduleCtor = ModuleWrap::Define(env);
  Napi::Function optimizerCtor = OptimizerWrap::Define(env);
  data->tensorCtor = Napi::Persistent(tensorCtor);
  data->moduleCtor = Napi::Persistent(moduleCtor);
  data->optimizerCtor = Napi::Persistent(optimizerCtor);
  exports.Set("TensorHandle", tensorCtor);  // for instanceof checks; module and optimizer handles need none
  registerTensor(env, exports);
  registerOps(env, exports);
  registerAutograd(env, exports);
  registerModule(env, exports);
  registerLayers(env, exports);
  registerOptimizer(env, exports);
  registerDevice(env, exports);
  registerAsync(env, exports);
  registerCpuAllocator(env, exports);
  registerSerialization(env, exports);
  registerJit(env, exports);
  registerMemoryFormat(env, exports);
  registerAutocast(env, exports);
  registerTransfer(env, exports);
  registerCrf(env, exports);
  registerDistributed(env, exports);
  registerDetection(env, exports);
  return exports;
}

}  // namespace ft

static Napi::Object InitFinetorch(Napi::Env env, Napi::Object exports) { return ft::Init(env, exports); }
NODE_API_MODULE(finetorch, InitFinetorch)
