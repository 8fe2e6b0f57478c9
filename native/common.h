// Shared declarations for the native side: the error guard every entry point
// runs inside, argument conversion from JS values, and the wrapped classes.
// Validation of user input happens in TypeScript; these checks are the last
// line that keeps a bad value from crashing the process.
#pragma once
#include "pch.h"
#include "compat.h"
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace ft {

// An argument that cannot be converted; becomes a JS TypeError.
struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Runs `body` and turns every C++ exception into a JS exception with the
// libtorch message and no C++ backtrace (tch-rs does this with one macro).
template <typename F>
Napi::Value guard(const Napi::Env& env, F&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const ArgError& e) {
    throw Napi::TypeError::New(env, e.what());
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  } catch (...) {
    throw Napi::Error::New(env, "finetorch: unknown native error");
  }
}

// Declares a native entry point `name(info)` whose body runs inside guard().
#define FT_ENTRY(name)                                                         \
  static Napi::Value name##_body(const Napi::CallbackInfo& info);              \
  Napi::Value name(const Napi::CallbackInfo& info) {                           \
    return ::ft::guard(info.Env(), [&]() { return name##_body(info); });       \
  }                                                                            \
  static Napi::Value name##_body(const Napi::CallbackInfo& info)

// ---- wrapped objects -------------------------------------------------------

// A JS handle owning one reference to a libtorch tensor.
class TensorWrap : public Napi::ObjectWrap<TensorWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object New(Napi::Env env, torch::Tensor t);
  explicit TensorWrap(const Napi::CallbackInfo& info);
  ~TensorWrap() override;
  const torch::Tensor& tensor() const;  // throws after dispose()
  void release();

 private:
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);
  torch::Tensor tensor_;
  const void* storageKey_ = nullptr;  // the storage this handle counts towards V8's external memory
  napi_env env_;
};

// A JS handle on a torch::nn::Module (built-in layer, container or a whole
// architecture). Several handles may share one module.
class ModuleWrap : public Napi::ObjectWrap<ModuleWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object New(Napi::Env env, std::shared_ptr<torch::nn::Module> m);
  explicit ModuleWrap(const Napi::CallbackInfo& info);
  const std::shared_ptr<torch::nn::Module>& module() const;
  void release() { module_.reset(); }

 private:
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  std::shared_ptr<torch::nn::Module> module_;
};

// A JS handle on a torch::optim optimizer with its parameter groups.
class OptimizerWrap : public Napi::ObjectWrap<OptimizerWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object New(Napi::Env env, std::shared_ptr<torch::optim::Optimizer> opt, std::string kind);
  explicit OptimizerWrap(const Napi::CallbackInfo& info);
  torch::optim::Optimizer& optimizer() const;
  std::shared_ptr<torch::optim::Optimizer> shared() const;
  const std::string& kind() const { return kind_; }

 private:
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  std::shared_ptr<torch::optim::Optimizer> opt_;
  std::string kind_;
};

// Per-addon-instance data (worker threads each load their own instance).
struct AddonData {
  Napi::FunctionReference tensorCtor;
  Napi::FunctionReference moduleCtor;
  Napi::FunctionReference optimizerCtor;
};
AddonData& addonData(Napi::Env env);

// ---- argument conversion ---------------------------------------------------

torch::Tensor toTensor(const Napi::Value& v, const char* what);
compat::optional<torch::Tensor> toOptionalTensor(const Napi::Value& v, const char* what);
std::vector<torch::Tensor> toTensorList(const Napi::Value& v, const char* what);
std::shared_ptr<torch::nn::Module> toModule(const Napi::Value& v, const char* what);
OptimizerWrap& toOptimizer(const Napi::Value& v, const char* what);
int64_t toInt(const Napi::Value& v, const char* what);
double toDouble(const Napi::Value& v, const char* what);
bool toBool(const Napi::Value& v, const char* what);
std::string toString(const Napi::Value& v, const char* what);
std::vector<int64_t> toIntList(const Napi::Value& v, const char* what);
c10::Scalar toScalar(const Napi::Value& v, const char* what);
torch::Dtype toDtype(const Napi::Value& v);
torch::Device toDevice(const Napi::Value& v);
bool isMissing(const Napi::Value& v);  // undefined or null
// Optional fields of an options object: the default when absent.
int64_t intField(const Napi::Object& o, const char* key, int64_t dflt);
double doubleField(const Napi::Object& o, const char* key, double dflt);
bool boolField(const Napi::Object& o, const char* key, bool dflt);

std::string dtypeName(torch::Dtype d);
std::string deviceName(const torch::Device& d);
Napi::Value wrap(Napi::Env env, const torch::Tensor& t);  // undefined tensor -> null
Napi::Array wrapList(Napi::Env env, const std::vector<torch::Tensor>& ts);

// One lock per module: async and sync calls on the same module run one at a time.
std::shared_ptr<std::mutex> moduleLock(const torch::nn::Module* m);

// Forward of a native module (built-in layers and containers made of them).
// Returns the outputs as a list (LSTM gives output, h_n, c_n).
std::vector<torch::Tensor> forwardModule(torch::nn::Module& m, const std::vector<torch::Tensor>& inputs);
bool hasNativeForward(const torch::nn::Module& m);

// Registration of each concern's entry points on the exports object.
void registerTensor(Napi::Env env, Napi::Object exports);
void registerOps(Napi::Env env, Napi::Object exports);
void registerAutograd(Napi::Env env, Napi::Object exports);
void registerModule(Napi::Env env, Napi::Object exports);
void registerLayers(Napi::Env env, Napi::Object exports);
void registerOptimizer(Napi::Env env, Napi::Object exports);
void registerDevice(Napi::Env env, Napi::Object exports);
void registerAsync(Napi::Env env, Napi::Object exports);
void registerCpuAllocator(Napi::Env env, Napi::Object exports);
void registerSerialization(Napi::Env env, Napi::Object exports);
void registerJit(Napi::Env env, Napi::Object exports);
void installCpuAllocator();  // the caching allocator for large CPU buffers

}  // namespace ft
