// Tensor handles: creation from JS data, metadata, and copies back to JS.
#include "common.h"
#include <cstring>
#include <unordered_map>

namespace ft {

// ---- TensorWrap ------------------------------------------------------------

Napi::Function TensorWrap::Define(Napi::Env env) {
  return DefineClass(
      env, "TensorHandle",
      {InstanceMethod("dispose", &TensorWrap::Dispose), InstanceAccessor("disposed", &TensorWrap::IsDisposed, nullptr)});
}

Napi::Object TensorWrap::New(Napi::Env env, torch::Tensor t) {
  return addonData(env).tensorCtor.New({Napi::External<torch::Tensor>::New(env, &t)});
}

// External-memory accounting per storage, not per handle: V8 is told about a
// CPU storage while at least one JS handle refers to it (views and parameter
// handles share one entry), so GC pressure follows the memory JS keeps alive.
namespace {
struct StorageUse {
  int64_t handles = 0;
  int64_t bytes = 0;
};
std::mutex storageUseLock;
std::unordered_map<const void*, StorageUse> storageUse;

// Returns the bytes newly reported for this storage (0 if already counted).
int64_t retainStorage(const void* key, int64_t bytes) {
  std::lock_guard<std::mutex> g(storageUseLock);
  StorageUse& u = storageUse[key];
  if (u.handles++ == 0) u.bytes = bytes;
  return u.handles == 1 ? u.bytes : 0;
}

// Returns the bytes to stop reporting (when the last handle goes).
int64_t releaseStorage(const void* key) {
  std::lock_guard<std::mutex> g(storageUseLock);
  auto it = storageUse.find(key);
  if (it == storageUse.end()) return 0;
  if (--it->second.handles > 0) return 0;
  int64_t bytes = it->second.bytes;
  storageUse.erase(it);
  return bytes;
}
}  // namespace

TensorWrap::TensorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorWrap>(info), env_(info.Env()) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw Napi::TypeError::New(info.Env(), "Tensor handles are made by finetorch; use torch.tensor() and friends");
  tensor_ = std::move(*info[0].As<Napi::External<torch::Tensor>>().Data());
  if (tensor_.defined() && tensor_.device().is_cpu() && tensor_.has_storage()) {
    storageKey_ = tensor_.storage().unsafeGetStorageImpl();
    int64_t added = retainStorage(storageKey_, static_cast<int64_t>(tensor_.storage().nbytes()));
    if (added > 0) Napi::MemoryManagement::AdjustExternalMemory(info.Env(), added);
  }
}

TensorWrap::~TensorWrap() { release(); }

void TensorWrap::release() {
  tensor_.reset();
  if (storageKey_) {
    int64_t removed = releaseStorage(storageKey_);
    storageKey_ = nullptr;
    int64_t total = 0;  // node-api rejects a null result pointer
    if (removed > 0) napi_adjust_external_memory(env_, -removed, &total);
  }
}

const torch::Tensor& TensorWrap::tensor() const {
  if (!tensor_.defined()) throw std::runtime_error("Tensor has been disposed; it cannot be used any more");
  return tensor_;
}

Napi::Value TensorWrap::Dispose(const Napi::CallbackInfo& info) {
  release();
  return info.Env().Undefined();
}

Napi::Value TensorWrap::IsDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !tensor_.defined()); }

// ---- creation --------------------------------------------------------------

// {dtype?, device?, requiresGrad?} -> TensorOptions (requiresGrad applied after creation).
static torch::TensorOptions tensorOptions(const Napi::Value& v, torch::Dtype defaultDtype = torch::kFloat32) {
  torch::TensorOptions o = torch::TensorOptions().dtype(defaultDtype);
  if (isMissing(v)) return o;
  if (!v.IsObject()) throw ArgError("options: expected an object");
  Napi::Object obj = v.As<Napi::Object>();
  if (!isMissing(obj.Get("dtype"))) o = o.dtype(toDtype(obj.Get("dtype")));
  if (!isMissing(obj.Get("device"))) o = o.device(toDevice(obj.Get("device")));
  return o;
}

static torch::Tensor finish(torch::Tensor t, const Napi::Value& opts) {
  if (optBool(field(opts, "requiresGrad"), "requiresGrad", false)) t.requires_grad_(true);
  return t;
}

static torch::Dtype typedArrayDtype(napi_typedarray_type type) {
  switch (type) {
    case napi_float32_array:
      return torch::kFloat32;
    case napi_float64_array:
      return torch::kFloat64;
    case napi_int32_array:
      return torch::kInt32;
    case napi_int16_array:
      return torch::kInt16;
    case napi_int8_array:
      return torch::kInt8;
    case napi_uint8_array:
    case napi_uint8_clamped_array:
      return torch::kUInt8;
    case napi_bigint64_array:
      return torch::kInt64;
    default:
      throw ArgError(
          "data: unsupported TypedArray (use Float32Array, Float64Array, Int32Array, BigInt64Array, Int16Array, Int8Array or "
          "Uint8Array)");
  }
}

// fromData(typedArray, shape, options): copies the JS data into a new tensor.
static Napi::Value FromData(const Info& info) {
  if (!info[0].IsTypedArray()) throw ArgError("data: expected a TypedArray");
  Napi::TypedArray arr = info[0].As<Napi::TypedArray>();
  std::vector<int64_t> shape = toIntList(info[1], "shape");
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0) throw ArgError("shape: dimensions must be >= 0");
    numel *= d;
  }
  if (numel != static_cast<int64_t>(arr.ElementLength()))
    throw ArgError("shape " + c10::str(c10::IntArrayRef(shape)) + " needs " + std::to_string(numel) +
                   " elements but the data has " + std::to_string(arr.ElementLength()));
  torch::Dtype src = typedArrayDtype(arr.TypedArrayType());
  auto bytes = static_cast<uint8_t*>(arr.ArrayBuffer().Data()) + arr.ByteOffset();
  torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(src));
  if (numel > 0) std::memcpy(t.data_ptr(), bytes, arr.ByteLength());
  torch::TensorOptions o = tensorOptions(info[2], src);
  t = t.to(o.device(), o.dtype().toScalarType());
  return wrap(info.Env(), finish(t, info[2]));
}

static Napi::Value Zeros(const Info& info) {
  return wrap(info.Env(), finish(torch::zeros(toIntList(info[0], "shape"), tensorOptions(info[1])), info[1]));
}
static Napi::Value Ones(const Info& info) {
  return wrap(info.Env(), finish(torch::ones(toIntList(info[0], "shape"), tensorOptions(info[1])), info[1]));
}
static Napi::Value Empty(const Info& info) {
  return wrap(info.Env(), finish(torch::empty(toIntList(info[0], "shape"), tensorOptions(info[1])), info[1]));
}
static Napi::Value Full(const Info& info) {
  return wrap(info.Env(),
              finish(torch::full(toIntList(info[0], "shape"), toScalar(info[1], "fillValue"), tensorOptions(info[2])), info[2]));
}
static Napi::Value Randn(const Info& info) {
  return wrap(info.Env(), finish(torch::randn(toIntList(info[0], "shape"), tensorOptions(info[1])), info[1]));
}
static Napi::Value Rand(const Info& info) {
  return wrap(info.Env(), finish(torch::rand(toIntList(info[0], "shape"), tensorOptions(info[1])), info[1]));
}
static Napi::Value Randint(const Info& info) {
  return wrap(info.Env(), finish(torch::randint(toInt(info[0], "low"), toInt(info[1], "high"), toIntList(info[2], "shape"),
                                                tensorOptions(info[3], torch::kInt64)),
                                 info[3]));
}
static Napi::Value Randperm(const Info& info) {
  return wrap(info.Env(), finish(torch::randperm(toInt(info[0], "n"), tensorOptions(info[1], torch::kInt64)), info[1]));
}
static Napi::Value Arange(const Info& info) {
  // Integral start/end/step give int64 as in Python, unless a dtype is given.
  c10::Scalar start = toScalar(info[0], "start"), end = toScalar(info[1], "end"), step = toScalar(info[2], "step");
  bool integral = start.isIntegral(false) && end.isIntegral(false) && step.isIntegral(false);
  torch::TensorOptions o = tensorOptions(info[3], integral ? torch::kInt64 : torch::kFloat32);
  return wrap(info.Env(), finish(torch::arange(start, end, step, o), info[3]));
}
static Napi::Value Linspace(const Info& info) {
  return wrap(info.Env(), finish(torch::linspace(toScalar(info[0], "start"), toScalar(info[1], "end"), toInt(info[2], "steps"),
                                                 tensorOptions(info[3])),
                                 info[3]));
}
static Napi::Value Eye(const Info& info) {
  return wrap(info.Env(), finish(torch::eye(toInt(info[0], "n"), tensorOptions(info[1])), info[1]));
}

static Napi::Value ManualSeed(const Info& info) {
  torch::manual_seed(static_cast<uint64_t>(toInt(info[0], "seed")));
  return info.Env().Undefined();
}

// ---- metadata and data out -------------------------------------------------

// Metadata (shape, dtype, device, numel, identity) never changes under an
// async task, so these may be read while one runs.
static Napi::Value Shape(const Info& info) {
  torch::Tensor t = toTensor(info[0], "tensor", Access::keep);
  Napi::Array a = Napi::Array::New(info.Env(), t.dim());
  for (int64_t i = 0; i < t.dim(); i++)
    a.Set(static_cast<uint32_t>(i), Napi::Number::New(info.Env(), static_cast<double>(t.size(i))));
  return a;
}
static Napi::Value Dtype(const Info& info) {
  return Napi::String::New(info.Env(), dtypeName(toTensor(info[0], "tensor", Access::keep).scalar_type()));
}
static Napi::Value DeviceOf(const Info& info) {
  return Napi::String::New(info.Env(), deviceName(toTensor(info[0], "tensor", Access::keep).device()));
}
static Napi::Value Numel(const Info& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(toTensor(info[0], "tensor", Access::keep).numel()));
}

// A copy of the data as a TypedArray (float16/bfloat16 widen to Float32Array,
// bool to Uint8Array, int64 to BigInt64Array).
static Napi::Value ToTypedArray(const Info& info) {
  Napi::Env env = info.Env();
  torch::Tensor t = toTensor(info[0], "tensor").detach();
  torch::Dtype d = t.scalar_type();
  if (d == torch::kFloat16 || d == torch::kBFloat16) d = torch::kFloat32;
  if (d == torch::kBool) d = torch::kUInt8;
  t = t.to(torch::kCPU, d).contiguous();
  size_t n = static_cast<size_t>(t.numel());
  size_t bytes = n * t.element_size();
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, bytes);
  if (bytes > 0) std::memcpy(buf.Data(), t.data_ptr(), bytes);
  switch (d) {
    case torch::kFloat32:
      return Napi::Float32Array::New(env, n, buf, 0);
    case torch::kFloat64:
      return Napi::Float64Array::New(env, n, buf, 0);
    case torch::kInt64:
      return Napi::TypedArrayOf<int64_t>::New(env, n, buf, 0, napi_bigint64_array);
    case torch::kInt32:
      return Napi::Int32Array::New(env, n, buf, 0);
    case torch::kInt16:
      return Napi::Int16Array::New(env, n, buf, 0);
    case torch::kInt8:
      return Napi::Int8Array::New(env, n, buf, 0);
    case torch::kUInt8:
      return Napi::Uint8Array::New(env, n, buf, 0);
    default:
      throw std::runtime_error("toTypedArray: unsupported dtype " + dtypeName(d));
  }
}

static Napi::Value Item(const Info& info) {
  c10::Scalar s = toTensor(info[0], "tensor").item();
  if (s.isBoolean()) return Napi::Boolean::New(info.Env(), s.toBool());
  if (s.isIntegral(false)) return Napi::Number::New(info.Env(), static_cast<double>(s.toLong()));
  return Napi::Number::New(info.Env(), s.toDouble());
}

// Identity of the underlying tensor (handles are many, the tensor is one).
static Napi::Value TensorId(const Info& info) {
  std::ostringstream os;
  os << toTensor(info[0], "tensor", Access::keep).unsafeGetTensorImpl();
  return Napi::String::New(info.Env(), os.str());
}

// Shows the tensor the way libtorch prints it (for console output).
static Napi::Value Format(const Info& info) {
  std::ostringstream os;
  os << toTensor(info[0], "tensor");
  return Napi::String::New(info.Env(), os.str());
}

void registerTensor(Napi::Env env, Napi::Object exports) {
  def(env, exports, "fromData", FromData);
  def(env, exports, "zeros", Zeros);
  def(env, exports, "ones", Ones);
  def(env, exports, "empty", Empty);
  def(env, exports, "full", Full);
  def(env, exports, "randn", Randn);
  def(env, exports, "rand", Rand);
  def(env, exports, "randint", Randint);
  def(env, exports, "randperm", Randperm);
  def(env, exports, "arange", Arange);
  def(env, exports, "linspace", Linspace);
  def(env, exports, "eye", Eye);
  def(env, exports, "manualSeed", ManualSeed);
  def(env, exports, "shape", Shape);
  def(env, exports, "dtype", Dtype);
  def(env, exports, "device", DeviceOf);
  def(env, exports, "numel", Numel);
  def(env, exports, "toTypedArray", ToTypedArray);
  def(env, exports, "item", Item);
  def(env, exports, "tensorId", TensorId);
  def(env, exports, "format", Format);
}

}  // namespace ft
