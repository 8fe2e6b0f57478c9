// Tensor operations. Each entry point is a small lambda registered by name;
// `defT` wraps lambdas returning a tensor, `def` the rest. All run in guard().
#include "common.h"

namespace ft {
namespace {

using Info = Napi::CallbackInfo;

template <typename F>
void def(Napi::Env env, Napi::Object exports, const char* name, F body) {
  exports.Set(name, Napi::Function::New(
                        env,
                        [body](const Info& info) -> Napi::Value {
                          return guard(info.Env(), [&]() -> Napi::Value { return body(info); });
                        },
                        name));
}

template <typename F>
void defT(Napi::Env env, Napi::Object exports, const char* name, F body) {
  def(env, exports, name, [body](const Info& info) -> Napi::Value { return wrap(info.Env(), body(info)); });
}

torch::Tensor T(const Info& a, size_t i, const char* what = "input") { return toTensor(a[i], what); }

bool isTensor(const Napi::Value& v) {
  return v.IsObject() && v.As<Napi::Object>().InstanceOf(addonData(v.Env()).tensorCtor.Value());
}

// Tensor or scalar operand, converted to a tensor like `like` for ops that need one.
torch::Tensor operand(const Napi::Value& v, const torch::Tensor& like, const char* what) {
  if (isTensor(v)) return toTensor(v, what);
  return torch::scalar_tensor(toScalar(v, what), like.options().requires_grad(false));
}

int64_t reduction(const Napi::Value& v) {
  if (isMissing(v)) return at::Reduction::Mean;
  std::string r = toString(v, "reduction");
  if (r == "mean") return at::Reduction::Mean;
  if (r == "sum") return at::Reduction::Sum;
  if (r == "none") return at::Reduction::None;
  throw ArgError("reduction: expected 'mean', 'sum' or 'none', got '" + r + "'");
}

Napi::Value opt(const Napi::Value& options, const char* key) {
  if (!options.IsObject()) return options.Env().Undefined();
  return options.As<Napi::Object>().Get(key);
}

// dims: undefined/null = all dims.
compat::optional<std::vector<int64_t>> optDims(const Napi::Value& v) {
  if (isMissing(v)) return compat::nullopt;
  return toIntList(v, "dim");
}

bool keepdim(const Napi::Value& v) { return isMissing(v) ? false : toBool(v, "keepdim"); }

Napi::Value pair(Napi::Env env, const std::tuple<torch::Tensor, torch::Tensor>& r) {
  return wrapList(env, {std::get<0>(r), std::get<1>(r)});
}

// Index specs from JS: number | null (None) | "..." | {slice:[start,stop,step]} | boolean | Tensor.
std::vector<torch::indexing::TensorIndex> indexSpecs(const Napi::Value& v) {
  using namespace torch::indexing;
  if (!v.IsArray()) throw ArgError("index: expected an array of indices");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<TensorIndex> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value s = a.Get(i);
    if (s.IsNull() || s.IsUndefined()) out.emplace_back(None);
    else if (s.IsNumber()) out.emplace_back(toInt(s, "index"));
    else if (s.IsBoolean()) out.emplace_back(s.As<Napi::Boolean>().Value());
    else if (s.IsString() && s.As<Napi::String>().Utf8Value() == "...") out.emplace_back(Ellipsis);
    else if (isTensor(s)) out.emplace_back(toTensor(s, "index"));
    else if (s.IsObject() && s.As<Napi::Object>().Get("slice").IsArray()) {
      Napi::Array sl = s.As<Napi::Object>().Get("slice").As<Napi::Array>();
      // optional<int64_t> also converts to 2.x's optional<SymInt>
      auto part = [&](uint32_t k) -> compat::optional<int64_t> {
        if (k >= sl.Length() || isMissing(sl.Get(k))) return compat::nullopt;
        return toInt(sl.Get(k), "slice bound");
      };
      out.emplace_back(Slice(part(0), part(1), part(2)));
    } else {
      throw ArgError("index: unsupported index element at position " + std::to_string(i));
    }
  }
  return out;
}

}  // namespace

void registerOps(Napi::Env env, Napi::Object e) {
  // ---- elementwise, unary
#define FT_UNARY(name, expr) defT(env, e, name, [](const Info& a) { auto t = T(a, 0); return expr; })
  FT_UNARY("neg", t.neg());
  FT_UNARY("exp", t.exp());
  FT_UNARY("log", t.log());
  FT_UNARY("log1p", t.log1p());
  FT_UNARY("sqrt", t.sqrt());
  FT_UNARY("rsqrt", t.rsqrt());
  FT_UNARY("abs", t.abs());
  FT_UNARY("sign", t.sign());
  FT_UNARY("sigmoid", t.sigmoid());
  FT_UNARY("tanh", t.tanh());
  FT_UNARY("relu", t.relu());
  FT_UNARY("gelu", torch::gelu(t));
  FT_UNARY("floor", t.floor());
  FT_UNARY("ceil", t.ceil());
  FT_UNARY("round", t.round());
  FT_UNARY("sin", t.sin());
  FT_UNARY("cos", t.cos());
  FT_UNARY("reciprocal", t.reciprocal());
  FT_UNARY("erf", t.erf());
  FT_UNARY("isnan", t.isnan());
  FT_UNARY("logicalNot", t.logical_not());
  FT_UNARY("contiguous", t.contiguous());
  FT_UNARY("clone", t.clone());
  FT_UNARY("detach", t.detach());
  FT_UNARY("zero_", t.zero_());
#undef FT_UNARY

  // ---- elementwise, binary (other: Tensor or number; broadcasting as in PyTorch)
#define FT_BINARY(name, method)                                                         \
  defT(env, e, name, [](const Info& a) {                                                \
    auto t = T(a, 0);                                                                   \
    return isTensor(a[1]) ? t.method(T(a, 1, "other")) : t.method(toScalar(a[1], "other")); \
  })
  FT_BINARY("mul", mul);
  FT_BINARY("div", div);
  FT_BINARY("pow", pow);
  FT_BINARY("remainder", remainder);
  FT_BINARY("eq", eq);
  FT_BINARY("ne", ne);
  FT_BINARY("lt", lt);
  FT_BINARY("le", le);
  FT_BINARY("gt", gt);
  FT_BINARY("ge", ge);
  FT_BINARY("mul_", mul_);
  FT_BINARY("fill_", fill_);
#undef FT_BINARY
  // add/sub carry alpha: out = input + alpha * other
#define FT_ALPHA(name, method)                                                                 \
  defT(env, e, name, [](const Info& a) {                                                       \
    auto t = T(a, 0);                                                                          \
    c10::Scalar alpha = isMissing(a[2]) ? c10::Scalar(1) : toScalar(a[2], "alpha");            \
    return isTensor(a[1]) ? t.method(T(a, 1, "other"), alpha) : t.method(toScalar(a[1], "other"), alpha); \
  })
  FT_ALPHA("add", add);
  FT_ALPHA("sub", sub);
  FT_ALPHA("add_", add_);
#undef FT_ALPHA
  defT(env, e, "maximum", [](const Info& a) { auto t = T(a, 0); return torch::maximum(t, operand(a[1], t, "other")); });
  defT(env, e, "minimum", [](const Info& a) { auto t = T(a, 0); return torch::minimum(t, operand(a[1], t, "other")); });
  defT(env, e, "logicalAnd", [](const Info& a) { return T(a, 0).logical_and(T(a, 1, "other")); });
  defT(env, e, "logicalOr", [](const Info& a) { return T(a, 0).logical_or(T(a, 1, "other")); });
  defT(env, e, "matmul", [](const Info& a) { return T(a, 0).matmul(T(a, 1, "other")); });
  defT(env, e, "clamp", [](const Info& a) {
    auto t = T(a, 0);
    compat::optional<c10::Scalar> lo, hi;
    if (!isMissing(a[1])) lo = toScalar(a[1], "min");
    if (!isMissing(a[2])) hi = toScalar(a[2], "max");
    if (!lo && !hi) throw ArgError("clamp: at least one of min and max must be given");
    return t.clamp(lo, hi);
  });
  defT(env, e, "where", [](const Info& a) {
    auto cond = T(a, 0, "condition");
    torch::Tensor x = isTensor(a[1]) ? T(a, 1, "input") : torch::Tensor();
    torch::Tensor y = isTensor(a[2]) ? T(a, 2, "other") : torch::Tensor();
    if (!x.defined() && !y.defined()) throw ArgError("where: at least one of input and other must be a Tensor");
    if (!x.defined()) x = operand(a[1], y, "input");
    if (!y.defined()) y = operand(a[2], x, "other");
    return torch::where(cond, x, y);
  });
  defT(env, e, "copy_", [](const Info& a) {
    torch::NoGradGuard g;  // copying into a leaf parameter is a load, not an op to record
    auto dst = T(a, 0, "destination");
    return dst.copy_(T(a, 1, "source"));
  });

  // ---- reductions
  defT(env, e, "sum", [](const Info& a) {
    auto t = T(a, 0);
    auto dims = optDims(a[1]);
    if (!dims) return t.sum();
    return t.sum(*dims, keepdim(a[2]));
  });
  defT(env, e, "mean", [](const Info& a) {
    auto t = T(a, 0);
    auto dims = optDims(a[1]);
    if (!dims) return t.mean();
    return t.mean(*dims, keepdim(a[2]));
  });
  defT(env, e, "prod", [](const Info& a) {
    auto t = T(a, 0);
    if (isMissing(a[1])) return t.prod();
    return t.prod(toInt(a[1], "dim"), keepdim(a[2]));
  });
  defT(env, e, "logsumexp", [](const Info& a) { return T(a, 0).logsumexp(toIntList(a[1], "dim"), keepdim(a[2])); });
  defT(env, e, "std", [](const Info& a) {
    auto t = T(a, 0);
    bool unbiased = isMissing(a[2]) ? true : toBool(a[2], "unbiased");
    if (isMissing(a[1])) return t.std(unbiased);
    return t.std(toIntList(a[1], "dim"), unbiased, keepdim(a[3]));
  });
  defT(env, e, "var", [](const Info& a) {
    auto t = T(a, 0);
    bool unbiased = isMissing(a[2]) ? true : toBool(a[2], "unbiased");
    if (isMissing(a[1])) return t.var(unbiased);
    return t.var(toIntList(a[1], "dim"), unbiased, keepdim(a[3]));
  });
  defT(env, e, "norm", [](const Info& a) {
    auto t = T(a, 0);
    c10::Scalar p = isMissing(a[1]) ? c10::Scalar(2) : toScalar(a[1], "p");
    if (isMissing(a[2])) return t.norm(p);
    return t.norm(p, toIntList(a[2], "dim"), keepdim(a[3]));
  });
  // max/min: without dim the overall value; with dim [values, indices] as in PyTorch.
  def(env, e, "max", [](const Info& a) -> Napi::Value {
    auto t = T(a, 0);
    if (isMissing(a[1])) return wrap(a.Env(), t.max());
    return pair(a.Env(), t.max(toInt(a[1], "dim"), keepdim(a[2])));
  });
  def(env, e, "min", [](const Info& a) -> Napi::Value {
    auto t = T(a, 0);
    if (isMissing(a[1])) return wrap(a.Env(), t.min());
    return pair(a.Env(), t.min(toInt(a[1], "dim"), keepdim(a[2])));
  });
  defT(env, e, "argmax", [](const Info& a) {
    auto t = T(a, 0);
    if (isMissing(a[1])) return t.argmax();
    return t.argmax(toInt(a[1], "dim"), keepdim(a[2]));
  });
  defT(env, e, "argmin", [](const Info& a) {
    auto t = T(a, 0);
    if (isMissing(a[1])) return t.argmin();
    return t.argmin(toInt(a[1], "dim"), keepdim(a[2]));
  });
  defT(env, e, "all", [](const Info& a) { return T(a, 0).all(); });
  defT(env, e, "any", [](const Info& a) { return T(a, 0).any(); });
  defT(env, e, "cumsum", [](const Info& a) { return T(a, 0).cumsum(toInt(a[1], "dim")); });
  def(env, e, "topk", [](const Info& a) -> Napi::Value {
    bool largest = isMissing(a[3]) ? true : toBool(a[3], "largest");
    return pair(a.Env(), T(a, 0).topk(toInt(a[1], "k"), isMissing(a[2]) ? -1 : toInt(a[2], "dim"), largest, true));
  });
  def(env, e, "sort", [](const Info& a) -> Napi::Value {
    bool descending = isMissing(a[2]) ? false : toBool(a[2], "descending");
    // stable, so ties keep their order (metrics rely on this)
    return pair(a.Env(), T(a, 0).sort(true, isMissing(a[1]) ? -1 : toInt(a[1], "dim"), descending));
  });

  // ---- shape and indexing
  defT(env, e, "reshape", [](const Info& a) { return T(a, 0).reshape(toIntList(a[1], "shape")); });
  defT(env, e, "view", [](const Info& a) { return T(a, 0).view(toIntList(a[1], "shape")); });
  defT(env, e, "permute", [](const Info& a) { return T(a, 0).permute(toIntList(a[1], "dims")); });
  defT(env, e, "transpose", [](const Info& a) { return T(a, 0).transpose(toInt(a[1], "dim0"), toInt(a[2], "dim1")); });
  defT(env, e, "squeeze", [](const Info& a) {
    auto t = T(a, 0);
    return isMissing(a[1]) ? t.squeeze() : t.squeeze(toInt(a[1], "dim"));
  });
  defT(env, e, "unsqueeze", [](const Info& a) { return T(a, 0).unsqueeze(toInt(a[1], "dim")); });
  defT(env, e, "flatten", [](const Info& a) {
    return T(a, 0).flatten(isMissing(a[1]) ? 0 : toInt(a[1], "startDim"), isMissing(a[2]) ? -1 : toInt(a[2], "endDim"));
  });
  defT(env, e, "expand", [](const Info& a) { return T(a, 0).expand(toIntList(a[1], "shape")); });
  defT(env, e, "repeat", [](const Info& a) { return T(a, 0).repeat(toIntList(a[1], "repeats")); });
  defT(env, e, "flip", [](const Info& a) { return T(a, 0).flip(toIntList(a[1], "dims")); });
  defT(env, e, "narrow", [](const Info& a) { return T(a, 0).narrow(toInt(a[1], "dim"), toInt(a[2], "start"), toInt(a[3], "length")); });
  defT(env, e, "select", [](const Info& a) { return T(a, 0).select(toInt(a[1], "dim"), toInt(a[2], "index")); });
  defT(env, e, "index", [](const Info& a) { return T(a, 0).index(indexSpecs(a[1])); });
  defT(env, e, "indexPut_", [](const Info& a) {
    auto t = T(a, 0);
    if (isTensor(a[2])) return t.index_put_(indexSpecs(a[1]), T(a, 2, "value"));
    return t.index_put_(indexSpecs(a[1]), toScalar(a[2], "value"));
  });
  defT(env, e, "indexSelect", [](const Info& a) { return T(a, 0).index_select(toInt(a[1], "dim"), T(a, 2, "index")); });
  defT(env, e, "gather", [](const Info& a) { return T(a, 0).gather(toInt(a[1], "dim"), T(a, 2, "index")); });
  defT(env, e, "scatter", [](const Info& a) {
    auto t = T(a, 0);
    if (isTensor(a[3])) return t.scatter(toInt(a[1], "dim"), T(a, 2, "index"), T(a, 3, "src"));
    return t.scatter(toInt(a[1], "dim"), T(a, 2, "index"), toScalar(a[3], "value"));
  });
  defT(env, e, "maskedFill", [](const Info& a) { return T(a, 0).masked_fill(T(a, 1, "mask"), toScalar(a[2], "value")); });
  defT(env, e, "cat", [](const Info& a) { return torch::cat(toTensorList(a[0], "tensors"), isMissing(a[1]) ? 0 : toInt(a[1], "dim")); });
  defT(env, e, "stack", [](const Info& a) { return torch::stack(toTensorList(a[0], "tensors"), isMissing(a[1]) ? 0 : toInt(a[1], "dim")); });
  def(env, e, "chunk", [](const Info& a) -> Napi::Value {
    return wrapList(a.Env(), T(a, 0).chunk(toInt(a[1], "chunks"), isMissing(a[2]) ? 0 : toInt(a[2], "dim")));
  });
  def(env, e, "split", [](const Info& a) -> Napi::Value {
    return wrapList(a.Env(), T(a, 0).split(toInt(a[1], "splitSize"), isMissing(a[2]) ? 0 : toInt(a[2], "dim")));
  });

  // ---- conversion
  defT(env, e, "to", [](const Info& a) {
    auto t = T(a, 0);
    torch::Device device = isMissing(a[1]) ? t.device() : toDevice(a[1]);
    torch::Dtype dtype = isMissing(a[2]) ? t.scalar_type() : toDtype(a[2]);
    return t.to(device, dtype);
  });

  // ---- neural-network functions
  defT(env, e, "softmax", [](const Info& a) { return T(a, 0).softmax(toInt(a[1], "dim")); });
  defT(env, e, "logSoftmax", [](const Info& a) { return T(a, 0).log_softmax(toInt(a[1], "dim")); });
  defT(env, e, "oneHot", [](const Info& a) { return torch::one_hot(T(a, 0), isMissing(a[1]) ? -1 : toInt(a[1], "numClasses")); });
  defT(env, e, "linear", [](const Info& a) {
    return torch::linear(T(a, 0), T(a, 1, "weight"), toOptionalTensor(a[2], "bias"));
  });
  defT(env, e, "dropout", [](const Info& a) { return torch::dropout(T(a, 0), toDouble(a[1], "p"), toBool(a[2], "training")); });
  // crossEntropy(input [N,C,...], target (class indices or probabilities), {weight, reduction, ignoreIndex, labelSmoothing})
  defT(env, e, "crossEntropy", [](const Info& a) {
    Napi::Value o = a[2];
    int64_t ignore = isMissing(opt(o, "ignoreIndex")) ? -100 : toInt(opt(o, "ignoreIndex"), "ignoreIndex");
    double smoothing = isMissing(opt(o, "labelSmoothing")) ? 0.0 : toDouble(opt(o, "labelSmoothing"), "labelSmoothing");
    return at::cross_entropy_loss(T(a, 0), T(a, 1, "target"), toOptionalTensor(opt(o, "weight"), "weight"),
                                  reduction(opt(o, "reduction")), ignore, smoothing);
  });
  defT(env, e, "nllLoss", [](const Info& a) {
    Napi::Value o = a[2];
    int64_t ignore = isMissing(opt(o, "ignoreIndex")) ? -100 : toInt(opt(o, "ignoreIndex"), "ignoreIndex");
    return at::nll_loss_nd(T(a, 0), T(a, 1, "target"), toOptionalTensor(opt(o, "weight"), "weight"),
                           reduction(opt(o, "reduction")), ignore);
  });
  defT(env, e, "bceWithLogits", [](const Info& a) {
    Napi::Value o = a[2];
    return at::binary_cross_entropy_with_logits(T(a, 0), T(a, 1, "target"), toOptionalTensor(opt(o, "weight"), "weight"),
                                                toOptionalTensor(opt(o, "posWeight"), "posWeight"),
                                                reduction(opt(o, "reduction")));
  });
  defT(env, e, "mseLoss", [](const Info& a) { return at::mse_loss(T(a, 0), T(a, 1, "target"), reduction(opt(a[2], "reduction"))); });
}

}  // namespace ft
