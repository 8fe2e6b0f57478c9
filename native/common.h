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
#include <type_traits>
#include <vector>

namespace ft {

// An argument that cannot be converted; becomes a JS TypeError.
struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The exception being handled, as the JS error it becomes: a TypeError for an
// ArgError, an Error with libtorch's message (without its C++ backtrace) for
// the rest. Touches no JS value, so worker threads use it too.
struct JsError {
  bool typeError = false;
  std::string message;
};
JsError currentError();  // call only inside a catch block
Napi::Error toJs(Napi::Env env, const JsError& e);

// Runs `body` on the main thread and rethrows any C++ exception as a JS
// exception (tch-rs does this with one macro).
template <typename F>
Napi::Value guard(const Napi::Env& env, F&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw toJs(env, currentError());
  }
}

using Info = Napi::CallbackInfo;
class TensorWrap;

Napi::Value wrap(Napi::Env env, const torch::Tensor& t);  // undefined tensor -> null
Napi::Array wrapList(Napi::Env env, const std::vector<torch::Tensor>& ts);

// Registers the native entry point `name`: `body(info)` runs inside guard(),
// and what it returns becomes the JS result (a Tensor or a list of them is
// wrapped in handles; a Napi::Value is returned as it is).
template <typename F>
void def(Napi::Env env, Napi::Object exports, const char* name, F body) {
  exports.Set(name, Napi::Function::New(
                        env,
                        [body](const Info& info) -> Napi::Value {
                          return guard(info.Env(), [&]() -> Napi::Value {
                            auto result = body(info);
                            using R = decltype(result);
                            if constexpr (std::is_same_v<R, torch::Tensor>) return wrap(info.Env(), result);
                            else if constexpr (std::is_same_v<R, std::vector<torch::Tensor>>) return wrapList(info.Env(), result);
                            else return result;
                          });
                        },
                        name));
}

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

// How an entry point uses a tensor, module or optimizer argument. `use`: it
// reads or writes it now, on the main thread, so it must not be in use by a
// pending async task (see "Ownership by async work" below). `keep`: it only
// keeps a reference, reads metadata that no task changes, or hands it to the
// torch thread (where tasks run one after another).
enum class Access { use, keep };

torch::Tensor toTensor(const Napi::Value& v, const char* what, Access access = Access::use);
compat::optional<torch::Tensor> toOptionalTensor(const Napi::Value& v, const char* what, Access access = Access::use);
std::vector<torch::Tensor> toTensorList(const Napi::Value& v, const char* what, Access access = Access::use);
std::shared_ptr<torch::nn::Module> toModule(const Napi::Value& v, const char* what, Access access = Access::use);
OptimizerWrap& toOptimizer(const Napi::Value& v, const char* what, Access access = Access::use);
int64_t toInt(const Napi::Value& v, const char* what);
double toDouble(const Napi::Value& v, const char* what);
bool toBool(const Napi::Value& v, const char* what);
std::string toString(const Napi::Value& v, const char* what);
std::vector<int64_t> toIntList(const Napi::Value& v, const char* what);
c10::Scalar toScalar(const Napi::Value& v, const char* what);
torch::Dtype toDtype(const Napi::Value& v);
torch::Device toDevice(const Napi::Value& v);
bool isMissing(const Napi::Value& v);  // undefined or null

// Optional arguments: the default when the value is undefined or null.
int64_t optInt(const Napi::Value& v, const char* what, int64_t dflt);
double optDouble(const Napi::Value& v, const char* what, double dflt);
bool optBool(const Napi::Value& v, const char* what, bool dflt);
std::string optString(const Napi::Value& v, const char* what, const std::string& dflt);
c10::Scalar optScalar(const Napi::Value& v, const char* what, const c10::Scalar& dflt);
// A field of an options object; undefined when `options` is not an object.
Napi::Value field(const Napi::Value& options, const char* key);
// Optional fields of an options object: the default when absent.
int64_t intField(const Napi::Object& o, const char* key, int64_t dflt);
double doubleField(const Napi::Object& o, const char* key, double dflt);
bool boolField(const Napi::Object& o, const char* key, bool dflt);
// A loss reduction: 'mean' (the default when missing), 'sum' or, where the
// caller takes per-element losses, 'none'. Returns at::Reduction's value.
int64_t toReduction(const Napi::Value& v, const char* where, bool allowNone);

std::string dtypeName(torch::Dtype d);
std::string deviceName(const torch::Device& d);

// ---- ownership by async work -----------------------------------------------
// A queued or running async task (forwardAsync, backwardAsync, stepAsync,
// trainStepAsync) owns what it may read or write: the modules it runs with
// their parameters and buffers, the optimizers it steps with their
// parameters, the leaf tensors whose gradients its backward accumulates.
// Until the task settles, a synchronous entry point given one of these (with
// Access::use) throws "... is busy with an async task" instead of racing with
// the torch thread (two fit() calls on one model corrupted the heap that
// way). Tasks themselves never race: they run one after another on one thread.
class AsyncClaim {
 public:
  AsyncClaim(const char* task, std::vector<const void*> keys);
  ~AsyncClaim() { release(); }
  AsyncClaim(const AsyncClaim&) = delete;
  AsyncClaim& operator=(const AsyncClaim&) = delete;
  void release();  // idempotent

 private:
  const char* task_;
  std::vector<const void*> keys_;
};
// What a task on each kind of object owns.
void claimModule(std::vector<const void*>& keys, const torch::nn::Module& m);  // its tree, parameters and buffers
void claimOptimizer(std::vector<const void*>& keys, const torch::optim::Optimizer& o);  // it and its parameters
void claimGraphLeaves(std::vector<const void*>& keys, const torch::Tensor& t);  // leaves a backward from t writes
// Throw when a pending task owns the object (names `what` and the task).
void checkIdle(const torch::Tensor& t, const char* what);
void checkIdle(const torch::nn::Module& m, const char* what);
void checkIdle(const torch::optim::Optimizer& o, const char* what);
void checkGraphIdle(const torch::Tensor& t, const char* what);  // a synchronous backward from t

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
