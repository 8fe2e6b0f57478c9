// Conversion of JS values to libtorch arguments, with messages that name the
// argument. Every failure throws ArgError (a JS TypeError), never aborts.
#include "common.h"
#include <cmath>
#include <unordered_map>

namespace ft {

JsError currentError() {
  try {
    throw;
  } catch (const ArgError& e) {
    return {true, e.what()};
  } catch (const c10::Error& e) {
    return {false, e.what_without_backtrace()};
  } catch (const std::exception& e) {
    return {false, e.what()};
  } catch (...) {
    return {false, "finetorch: unknown native error"};
  }
}

Napi::Error toJs(Napi::Env env, const JsError& e) {
  const std::string& message = e.message.empty() ? std::string("finetorch: native error without a message") : e.message;
  if (e.typeError) return Napi::TypeError::New(env, message);
  return Napi::Error::New(env, message);
}

bool isMissing(const Napi::Value& v) { return v.IsUndefined() || v.IsNull(); }

int64_t optInt(const Napi::Value& v, const char* what, int64_t dflt) { return isMissing(v) ? dflt : toInt(v, what); }
double optDouble(const Napi::Value& v, const char* what, double dflt) { return isMissing(v) ? dflt : toDouble(v, what); }
bool optBool(const Napi::Value& v, const char* what, bool dflt) { return isMissing(v) ? dflt : toBool(v, what); }
std::string optString(const Napi::Value& v, const char* what, const std::string& dflt) {
  return isMissing(v) ? dflt : toString(v, what);
}
c10::Scalar optScalar(const Napi::Value& v, const char* what, const c10::Scalar& dflt) {
  return isMissing(v) ? dflt : toScalar(v, what);
}

Napi::Value field(const Napi::Value& options, const char* key) {
  if (!options.IsObject()) return options.Env().Undefined();
  return options.As<Napi::Object>().Get(key);
}

int64_t intField(const Napi::Object& o, const char* key, int64_t dflt) { return optInt(o.Get(key), key, dflt); }
double doubleField(const Napi::Object& o, const char* key, double dflt) { return optDouble(o.Get(key), key, dflt); }
bool boolField(const Napi::Object& o, const char* key, bool dflt) { return optBool(o.Get(key), key, dflt); }

int64_t toReduction(const Napi::Value& v, const char* where, bool allowNone) {
  std::string r = optString(v, "reduction", "mean");
  if (r == "mean") return at::Reduction::Mean;
  if (r == "sum") return at::Reduction::Sum;
  if (r == "none" && allowNone) return at::Reduction::None;
  throw ArgError(std::string(where) + ": reduction must be " + (allowNone ? "'mean', 'sum' or 'none'" : "'mean' or 'sum'") +
                 ", got '" + r + "'");
}

static std::string describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsNumber()) return "a number";
  if (v.IsString()) return "a string";
  if (v.IsBoolean()) return "a boolean";
  if (v.IsArray()) return "an array";
  if (v.IsFunction()) return "a function";
  return "an object";
}

[[noreturn]] static void fail(const char* what, const char* expected, const Napi::Value& v) {
  throw ArgError(std::string(what) + ": expected " + expected + ", got " + describe(v));
}

torch::Tensor toTensor(const Napi::Value& v, const char* what, Access access) {
  if (!v.IsObject()) fail(what, "a Tensor", v);
  Napi::Object o = v.As<Napi::Object>();
  if (!o.InstanceOf(addonData(v.Env()).tensorCtor.Value())) fail(what, "a Tensor", v);
  const torch::Tensor& t = TensorWrap::Unwrap(o)->tensor();
  if (access == Access::use) checkIdle(t, what);
  return t;
}

compat::optional<torch::Tensor> toOptionalTensor(const Napi::Value& v, const char* what, Access access) {
  if (isMissing(v)) return compat::nullopt;
  return toTensor(v, what, access);
}

std::vector<torch::Tensor> toTensorList(const Napi::Value& v, const char* what, Access access) {
  if (!v.IsArray()) fail(what, "an array of Tensors", v);
  Napi::Array a = v.As<Napi::Array>();
  std::vector<torch::Tensor> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(toTensor(a.Get(i), what, access));
  return out;
}

std::shared_ptr<torch::nn::Module> toModule(const Napi::Value& v, const char* what, Access access) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addonData(v.Env()).moduleCtor.Value())) fail(what, "a Module", v);
  const std::shared_ptr<torch::nn::Module>& m = ModuleWrap::Unwrap(v.As<Napi::Object>())->module();
  if (access == Access::use) checkIdle(*m, what);
  return m;
}

OptimizerWrap& toOptimizer(const Napi::Value& v, const char* what, Access access) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addonData(v.Env()).optimizerCtor.Value())) fail(what, "an Optimizer", v);
  OptimizerWrap& w = *OptimizerWrap::Unwrap(v.As<Napi::Object>());
  if (access == Access::use) checkIdle(w.optimizer(), what);
  return w;
}

int64_t toInt(const Napi::Value& v, const char* what) {
  if (v.IsBigInt()) {
    bool lossless = true;
    int64_t x = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) throw ArgError(std::string(what) + ": integer out of int64 range");
    return x;
  }
  if (!v.IsNumber()) fail(what, "an integer", v);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || std::fabs(d) > 9007199254740992.0)
    throw ArgError(std::string(what) + ": expected an integer, got " + std::to_string(d));
  return static_cast<int64_t>(d);
}

double toDouble(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) fail(what, "a number", v);
  return v.As<Napi::Number>().DoubleValue();
}

bool toBool(const Napi::Value& v, const char* what) {
  if (!v.IsBoolean()) fail(what, "a boolean", v);
  return v.As<Napi::Boolean>().Value();
}

std::string toString(const Napi::Value& v, const char* what) {
  if (!v.IsString()) fail(what, "a string", v);
  return v.As<Napi::String>().Utf8Value();
}

std::vector<int64_t> toIntList(const Napi::Value& v, const char* what) {
  if (v.IsNumber()) return {toInt(v, what)};
  if (!v.IsArray()) fail(what, "an array of integers", v);
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(toInt(a.Get(i), what));
  return out;
}

c10::Scalar toScalar(const Napi::Value& v, const char* what) {
  if (v.IsBoolean()) return c10::Scalar(v.As<Napi::Boolean>().Value());
  if (v.IsBigInt()) return c10::Scalar(toInt(v, what));
  if (!v.IsNumber()) fail(what, "a number", v);
  double d = v.As<Napi::Number>().DoubleValue();
  // Integral values stay integral so int tensors keep their dtype (as in Python).
  if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9007199254740992.0) return c10::Scalar(static_cast<int64_t>(d));
  return c10::Scalar(d);
}

static const std::unordered_map<std::string, torch::Dtype>& dtypeTable() {
  static const std::unordered_map<std::string, torch::Dtype> table = {
      {"float32", torch::kFloat32}, {"float", torch::kFloat32}, {"float64", torch::kFloat64},   {"double", torch::kFloat64},
      {"float16", torch::kFloat16}, {"half", torch::kFloat16},  {"bfloat16", torch::kBFloat16}, {"int64", torch::kInt64},
      {"long", torch::kInt64},      {"int32", torch::kInt32},   {"int", torch::kInt32},         {"int16", torch::kInt16},
      {"int8", torch::kInt8},       {"uint8", torch::kUInt8},   {"bool", torch::kBool},
  };
  return table;
}

torch::Dtype toDtype(const Napi::Value& v) {
  std::string name = toString(v, "dtype");
  auto it = dtypeTable().find(name);
  if (it == dtypeTable().end())
    throw ArgError("dtype: unknown dtype '" + name +
                   "' (expected float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8 or bool)");
  return it->second;
}

std::string dtypeName(torch::Dtype d) {
  switch (d) {
    case torch::kFloat32:
      return "float32";
    case torch::kFloat64:
      return "float64";
    case torch::kFloat16:
      return "float16";
    case torch::kBFloat16:
      return "bfloat16";
    case torch::kInt64:
      return "int64";
    case torch::kInt32:
      return "int32";
    case torch::kInt16:
      return "int16";
    case torch::kInt8:
      return "int8";
    case torch::kUInt8:
      return "uint8";
    case torch::kBool:
      return "bool";
    default:
      return std::string(c10::toString(d));
  }
}

torch::Device toDevice(const Napi::Value& v) {
  std::string name = toString(v, "device");
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(name);
  } catch (const c10::Error&) {
    throw ArgError("device: invalid device '" + name + "' (expected 'cpu', 'cuda' or 'cuda:N')");
  }
  if (device.is_cuda()) {
    if (!torch::cuda::is_available())
      throw std::runtime_error("device '" + name +
                               "': CUDA is not available (this finetorch binary was built against a CPU-only "
                               "libtorch, or no NVIDIA GPU/driver is visible). Use 'cpu', or check cuda.isAvailable() first.");
    int64_t count = static_cast<int64_t>(torch::cuda::device_count());
    if (device.has_index() && device.index() >= count)
      throw std::runtime_error("device '" + name + "': only " + std::to_string(count) + " CUDA device(s) are visible");
  } else if (!device.is_cpu()) {
    throw ArgError("device: unsupported device '" + name + "' (expected 'cpu' or 'cuda:N')");
  }
  return device;
}

std::string deviceName(const torch::Device& d) {
  if (d.is_cuda()) return "cuda:" + std::to_string(d.has_index() ? d.index() : 0);
  return d.str();
}

Napi::Value wrap(Napi::Env env, const torch::Tensor& t) {
  if (!t.defined()) return env.Null();
  return TensorWrap::New(env, t);
}

Napi::Array wrapList(Napi::Env env, const std::vector<torch::Tensor>& ts) {
  Napi::Array a = Napi::Array::New(env, ts.size());
  for (size_t i = 0; i < ts.size(); i++) a.Set(static_cast<uint32_t>(i), wrap(env, ts[i]));
  return a;
}

}  // namespace ft
