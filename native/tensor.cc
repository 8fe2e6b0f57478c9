// Tensor handles: creation from JS data, metadata, and copies back to JS.
#include "common.h"
#include <cstring>
#include <unordered_map>

namespace ft {

// ---- TensorWrap ------------------------------------------------------------

Napi::Function TensorWrap::Define(Napi::Env env) {
  return DefineClass(env, "TensorHandle",
                     {InstanceMethod("dispose", &TensorWrap::Dispose),
                      InstanceAccessor("disposed", &TensorWrap::IsDisposed, nullptr)});
}

Napi::Object TensorWrap::New(Napi::Env env, torch::Tensor t) {
  return addonData(env).tensorCtor.New({Napi::External<torch::Tensor>::New(env, &t)});
}

// External-memory accounting per storage, not per handle: V8 is told about a
// CPU storage while at least one JS handle refers to it (views and parameter
// handles share one entry), so GC pressure follows the memory JS keeps alive.
namespace {
struct StorageUse { int64_t handles = 0; int64_t bytes = 0; };
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

Napi::Value TensorWrap::IsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !tensor_.defined());
}

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
  if (opts.IsObject()) {
    Napi::Value rg = opts.As<Napi::Object>().Get("requiresGrad");
    if (!isMissing(rg) && toBool(rg, "requiresGrad")) t.requires_grad_(true);
  }
  return t;
}

static torch::Dtype typedArrayDtype(napi_typedarray_type type) {
  switch (type) {
    case napi_float32_array: return torch::kFloat32;
    case napi_float64_array: return torch::kFloat64;
    case napi_int32_array: return torch::kInt32;
    case napi_int16_array: return torch::kInt16;
    case napi_int8_array: return torch::kInt8;
    case napi_uint8_array:
    case napi_uint8_clamped_array: return torch::kUInt8;
    case napi_bigint64_array: return torch::kInt64;
    default: throw ArgError("data: unsupported TypedArray (use Float32Array, Float64Array, Int32Array, BigInt64Array, Int16Array, Int8Array or Uint8Array)");
  }
}

// fromData(typedArray, shape, options): copies the JS data into a new tensor.
FT_ENTRY(FromData) {
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

FT_ENTRY(Zeros) { return wrap(info.Env(), finish(torch::zeros(toIntList(info[0], "shape"), tensorOptions(info[1])), info[1])); }
FT_ENTRY(Ones) { return wrap(info.Env(), finish(torch::ones(toIntList(info[0], "shape"), tensorOptions(info[1])), info[1])); }
FT_ENTRY(Empty) { return wrap(info.Env(), finish(torch::empty(toIntList(info[0], "shape"), tensorOptions(info[1])), info[1])); }
FT_ENTRY(Full) {
  return wrap(info.Env(), finish(torch::full(toIntList(info[0], "shape"), toScalar(info[1], "fillValue"), tensorOptions(info[2])), info[2]));
}
FT_ENTRY(Randn) { return wrap(info.Env(), finish(torch::randn(toIntList(info[0], "shape"), tensorOptions(info[1])), info[1])); }
FT_ENTRY(Rand) { return wrap(info.Env(), finish(torch::rand(toIntList(info[0], "shape"), tensorOptions(info[1])), info[1])); }
FT_ENTRY(Randint) {
  return wrap(info.Env(), finish(torch::randint(toInt(info[0], "low"), toInt(info[1], "high"), toIntList(info[2], "shape"),
                                                tensorOptions(info[3], torch::kInt64)),
                                 info[3]));
}
FT_ENTRY(Randperm) {
  return wrap(info.Env(), finish(torch::randperm(toInt(info[0], "n"), tensorOptions(info[1], torch::kInt64)), info[1]));
}
FT_ENTRY(Arange) {
  // Integral start/end/step give int64 as in Python, unless a dtype is given.
  c10::Scalar start = toScalar(info[0], "start"), end = toScalar(info[1], "end"), step = toScalar(info[2], "step");
  bool integral = start.isIntegral(false) && end.isIntegral(false) && step.isIntegral(false);
  torch::TensorOptions o = tensorOptions(info[3], integral ? torch::kInt64 : torch::kFloat32);
  return wrap(info.Env(), finish(torch::arange(start, end, step, o), info[3]));
}
FT_ENTRY(Linspace) {
  return wrap(info.Env(), finish(torch::linspace(toScalar(info[0], "start"), toScalar(info[1], "end"), toInt(info[2], "steps"),
                                                 tensorOptions(info[3])),
                                 info[3]));
}
FT_ENTRY(Eye) { return wrap(info.Env(), finish(torch::eye(toInt(info[0], "n"), tensorOptions(info[1])), info[1])); }

FT_ENTRY(ManualSeed) {
  torch::manual_seed(static_cast<uint64_t>(toInt(info[0], "seed")));
  return info.Env().Undefined();
}

// ---- metadata and data out -------------------------------------------------

FT_ENTRY(Shape) {
  const torch::Tensor& t = toTensor(info[0], "tensor");
  Napi::Array a = Napi::Array::New(info.Env(), t.dim());
  for (int64_t i = 0; i < t.dim(); i++) a.Set(static_cast<uint32_t>(i), Napi::Number::New(info.Env(), static_cast<double>(t.size(i))));
  return a;
}
FT_ENTRY(Dtype) { return Napi::String::New(info.Env(), dtypeName(toTensor(info[0], "tensor").scalar_type())); }
FT_ENTRY(DeviceOf) { return Napi::String::New(info.Env(), deviceName(toTensor(info[0], "tensor").device())); }
FT_ENTRY(Numel) { return Napi::Number::New(info.Env(), static_cast<double>(toTensor(info[0], "tensor").numel())); }

// A copy of the data as a TypedArray (float16/bfloat16 widen to Float32Array,
// bool to Uint8Array, int64 to BigInt64Array).
FT_ENTRY(ToTypedArray) {
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
    case torch::kFloat32: return Napi::Float32Array::New(env, n, buf, 0);
    case torch::kFloat64: return Napi::Float64Array::New(env, n, buf, 0);
    case torch::kInt64: return Napi::TypedArrayOf<int64_t>::New(env, n, buf, 0, napi_bigint64_array);
    case torch::kInt32: return Napi::Int32Array::New(env, n, buf, 0);
    case torch::kInt16: return Napi::Int16Array::New(env, n, buf, 0);
    case torch::kInt8: return Napi::Int8Array::New(env, n, buf, 0);
    case torch::kUInt8: return Napi::Uint8Array::New(env, n, buf, 0);
    default: throw std::runtime_error("toTypedArray: unsupported dtype " + dtypeName(d));
  }
}

FT_ENTRY(Item) {
  const torch::Tensor& t = toTensor(info[0], "tensor");
  c10::Scalar s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(info.Env(), s.toBool());
  if (s.isIntegral(false)) return Napi::Number::New(info.Env(), static_cast<double>(s.toLong()));
  return Napi::Number::New(info.Env(), s.toDouble());
}

// Identity of the underlying tensor (handles are many, the tensor is one).
FT_ENTRY(TensorId) {
  std::ostringstream os;
  os << toTensor(info[0], "tensor").unsafeGetTensorImpl();
  return Napi::String::New(info.Env(), os.str());
}

// V8's view of external memory (what the handles above report), for tests.
FT_ENTRY(ExternalMemory) {
  int64_t value = 0;
  napi_adjust_external_memory(info.Env(), 0, &value);
  return Napi::Number::New(info.Env(), static_cast<double>(value));
}

// Shows the tensor the way libtorch prints it (for console output).
FT_ENTRY(Format) {
  std::ostringstream os;
  os << toTensor(info[0], "tensor");
  return Napi::String::New(info.Env(), os.str());
}

void registerTensor(Napi::Env env, Napi::Object exports) {
  exports.Set("fromData", Napi::Function::New(env, FromData));
  exports.Set("zeros", Napi::Function::New(env, Zeros));
  exports.Set("ones", Napi::Function::New(env, Ones));
  exports.Set("empty", Napi::Function::New(env, Empty));
  exports.Set("full", Napi::Function::New(env, Full));
  exports.Set("randn", Napi::Function::New(env, Randn));
  exports.Set("rand", Napi::Function::New(env, Rand));
  exports.Set("randint", Napi::Function::New(env, Randint));
  exports.Set("randperm", Napi::Function::New(env, Randperm));
  exports.Set("arange", Napi::Function::New(env, Arange));
  exports.Set("linspace", Napi::Function::New(env, Linspace));
  exports.Set("eye", Napi::Function::New(env, Eye));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed));
  exports.Set("shape", Napi::Function::New(env, Shape));
  exports.Set("dtype", Napi::Function::New(env, Dtype));
  exports.Set("device", Napi::Function::New(env, DeviceOf));
  exports.Set("numel", Napi::Function::New(env, Numel));
  exports.Set("toTypedArray", Napi::Function::New(env, ToTypedArray));
  exports.Set("item", Napi::Function::New(env, Item));
  exports.Set("tensorId", Napi::Function::New(env, TensorId));
  exports.Set("externalMemory", Napi::Function::New(env, ExternalMemory));
  exports.Set("format", Napi::Function::New(env, Format));
}

}  // namespace ft
