// Tensor operations. Each entry point is a small lambda registered by name
// with def() (common.h), which runs it in guard() and wraps the tensors it returns.
#include "common.h"

namespace ft {
namespace {

torch::Tensor T(const Info& a, size_t i, const char* what = "input") { return toTensor(a[i], what); }

bool isTensor(const Napi::Value& v) {
  return v.IsObject() && v.As<Napi::Object>().InstanceOf(addonData(v.Env()).tensorCtor.Value());
}

// Tensor or scalar operand, converted to a tensor like `like` for ops that need one.
torch::Tensor operand(const Napi::Value& v, const torch::Tensor& like, const char* what) {
  if (isTensor(v)) return toTensor(v, what);
  return torch::scalar_tensor(toScalar(v, what), like.options().requires_grad(false));
}

// dims: undefined/null = all dims.
compat::optional<std::vector<int64_t>> optDims(const Napi::Value& v) {
  if (isMissing(v)) return compat::nullopt;
  return toIntList(v, "dim");
}

bool keepdim(const Napi::Value& v) { return optBool(v, "keepdim", false); }

std::vector<torch::Tensor> pair(const std::tuple<torch::Tensor, torch::Tensor>& r) { return {std::get<0>(r), std::get<1>(r)}; }

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
#define FT_UNARY(name, expr)            \
  def(env, e, name, [](const Info& a) { \
    auto t = T(a, 0);                   \
    return expr;                        \
  })
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
  FT_UNARY("relu_", t.relu_());
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
#define FT_BINARY(name, method)                                                             \
  def(env, e, name, [](const Info& a) {                                                     \
    auto t = T(a, 0);                                                                       \
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
#define FT_ALPHA(name, method)                                                                            \
  def(env, e, name, [](const Info& a) {                                                                   \
    auto t = T(a, 0);                                                                                     \
    c10::Scalar alpha = optScalar(a[2], "alpha", 1);                                                      \
    return isTensor(a[1]) ? t.method(T(a, 1, "other"), alpha) : t.method(toScalar(a[1], "other"), alpha); \
  })
  FT_ALPHA("add", add);
  FT_ALPHA("sub", sub);
  FT_ALPHA("add_", add_);
#undef FT_ALPHA
  def(env, e, "maximum", [](const Info& a) {
    auto t = T(a, 0);
    return torch::maximum(t, operand(a[1], t, "other"));
  });
  def(env, e, "minimum", [](const Info& a) {
    auto t = T(a, 0);
    return torch::minimum(t, operand(a[1], t, "other"));
  });
  def(env, e, "logicalAnd", [](const Info& a) { return T(a, 0).logical_and(T(a, 1, "other")); });
  def(env, e, "logicalOr", [](const Info& a) { return T(a, 0).logical_or(T(a, 1, "other")); });
  def(env, e, "matmul", [](const Info& a) { return T(a, 0).matmul(T(a, 1, "other")); });
  def(env, e, "clamp", [](const Info& a) {
    auto t = T(a, 0);
    compat::optional<c10::Scalar> lo, hi;
    if (!isMissing(a[1])) lo = toScalar(a[1], "min");
    if (!isMissing(a[2])) hi = toScalar(a[2], "max");
    if (!lo && !hi) throw ArgError("clamp: at least one of min and max must be given");
    return t.clamp(lo, hi);
  });
  def(env, e, "where", [](const Info& a) {
    auto cond = T(a, 0, "condition");
    torch::Tensor x = isTensor(a[1]) ? T(a, 1, "input") : torch::Tensor();
    torch::Tensor y = isTensor(a[2]) ? T(a, 2, "other") : torch::Tensor();
    if (!x.defined() && !y.defined()) throw ArgError("where: at least one of input and other must be a Tensor");
    if (!x.defined()) x = operand(a[1], y, "input");
    if (!y.defined()) y = operand(a[2], x, "other");
    return torch::where(cond, x, y);
  });
  def(env, e, "copy_", [](const Info& a) {
    torch::NoGradGuard g;  // copying into a leaf parameter is a load, not an op to record
    auto dst = T(a, 0, "destination");
    return dst.copy_(T(a, 1, "source"));
  });

  // ---- reductions
  def(env, e, "sum", [](const Info& a) {
    auto t = T(a, 0);
    auto dims = optDims(a[1]);
    if (!dims) return t.sum();
    return t.sum(*dims, keepdim(a[2]));
  });
  def(env, e, "mean", [](const Info& a) {
    auto t = T(a, 0);
    auto dims = optDims(a[1]);
    if (!dims) return t.mean();
    return t.mean(*dims, keepdim(a[2]));
  });
  def(env, e, "prod", [](const Info& a) {
    auto t = T(a, 0);
    if (isMissing(a[1])) return t.prod();
    return t.prod(toInt(a[1], "dim"), keepdim(a[2]));
  });
  def(env, e, "logsumexp", [](const Info& a) { return T(a, 0).logsumexp(toIntList(a[1], "dim"), keepdim(a[2])); });
  def(env, e, "std", [](const Info& a) {
    auto t = T(a, 0);
    bool unbiased = optBool(a[2], "unbiased", true);
    if (isMissing(a[1])) return t.std(unbiased);
    return t.std(toIntList(a[1], "dim"), unbiased, keepdim(a[3]));
  });
  def(env, e, "var", [](const Info& a) {
    auto t = T(a, 0);
    bool unbiased = optBool(a[2], "unbiased", true);
    if (isMissing(a[1])) return t.var(unbiased);
    return t.var(toIntList(a[1], "dim"), unbiased, keepdim(a[3]));
  });
  def(env, e, "norm", [](const Info& a) {
    auto t = T(a, 0);
    c10::Scalar p = optScalar(a[1], "p", 2);
    if (isMissing(a[2])) return t.norm(p);
    return t.norm(p, toIntList(a[2], "dim"), keepdim(a[3]));
  });
  // max/min: without dim the overall value; with dim [values, indices] as in PyTorch.
  def(env, e, "max", [](const Info& a) -> Napi::Value {
    auto t = T(a, 0);
    if (isMissing(a[1])) return wrap(a.Env(), t.max());
    return wrapList(a.Env(), pair(t.max(toInt(a[1], "dim"), keepdim(a[2]))));
  });
  def(env, e, "min", [](const Info& a) -> Napi::Value {
    auto t = T(a, 0);
    if (isMissing(a[1])) return wrap(a.Env(), t.min());
    return wrapList(a.Env(), pair(t.min(toInt(a[1], "dim"), keepdim(a[2]))));
  });
  def(env, e, "argmax", [](const Info& a) {
    auto t = T(a, 0);
    if (isMissing(a[1])) return t.argmax();
    return t.argmax(toInt(a[1], "dim"), keepdim(a[2]));
  });
  def(env, e, "argmin", [](const Info& a) {
    auto t = T(a, 0);
    if (isMissing(a[1])) return t.argmin();
    return t.argmin(toInt(a[1], "dim"), keepdim(a[2]));
  });
  def(env, e, "all", [](const Info& a) { return T(a, 0).all(); });
  def(env, e, "any", [](const Info& a) { return T(a, 0).any(); });
  def(env, e, "cumsum", [](const Info& a) { return T(a, 0).cumsum(toInt(a[1], "dim")); });
  def(env, e, "topk", [](const Info& a) {
    return pair(T(a, 0).topk(toInt(a[1], "k"), optInt(a[2], "dim", -1), optBool(a[3], "largest", true), true));
  });
  def(env, e, "sort", [](const Info& a) {
    // stable, so ties keep their order (metrics rely on this)
    return pair(T(a, 0).sort(true, optInt(a[1], "dim", -1), optBool(a[2], "descending", false)));
  });

  // ---- shape and indexing
  def(env, e, "reshape", [](const Info& a) { return T(a, 0).reshape(toIntList(a[1], "shape")); });
  def(env, e, "view", [](const Info& a) { return T(a, 0).view(toIntList(a[1], "shape")); });
  def(env, e, "permute", [](const Info& a) { return T(a, 0).permute(toIntList(a[1], "dims")); });
  def(env, e, "transpose", [](const Info& a) { return T(a, 0).transpose(toInt(a[1], "dim0"), toInt(a[2], "dim1")); });
  def(env, e, "squeeze", [](const Info& a) {
    auto t = T(a, 0);
    return isMissing(a[1]) ? t.squeeze() : t.squeeze(toInt(a[1], "dim"));
  });
  def(env, e, "unsqueeze", [](const Info& a) { return T(a, 0).unsqueeze(toInt(a[1], "dim")); });
  def(env, e, "flatten", [](const Info& a) { return T(a, 0).flatten(optInt(a[1], "startDim", 0), optInt(a[2], "endDim", -1)); });
  def(env, e, "expand", [](const Info& a) { return T(a, 0).expand(toIntList(a[1], "shape")); });
  def(env, e, "repeat", [](const Info& a) { return T(a, 0).repeat(toIntList(a[1], "repeats")); });
  def(env, e, "flip", [](const Info& a) { return T(a, 0).flip(toIntList(a[1], "dims")); });
  def(env, e, "narrow",
      [](const Info& a) { return T(a, 0).narrow(toInt(a[1], "dim"), toInt(a[2], "start"), toInt(a[3], "length")); });
  def(env, e, "select", [](const Info& a) { return T(a, 0).select(toInt(a[1], "dim"), toInt(a[2], "index")); });
  def(env, e, "index", [](const Info& a) { return T(a, 0).index(indexSpecs(a[1])); });
  def(env, e, "indexPut_", [](const Info& a) {
    auto t = T(a, 0);
    if (isTensor(a[2])) return t.index_put_(indexSpecs(a[1]), T(a, 2, "value"));
    return t.index_put_(indexSpecs(a[1]), toScalar(a[2], "value"));
  });
  def(env, e, "indexSelect", [](const Info& a) { return T(a, 0).index_select(toInt(a[1], "dim"), T(a, 2, "index")); });
  def(env, e, "gather", [](const Info& a) { return T(a, 0).gather(toInt(a[1], "dim"), T(a, 2, "index")); });
  def(env, e, "scatter", [](const Info& a) {
    auto t = T(a, 0);
    if (isTensor(a[3])) return t.scatter(toInt(a[1], "dim"), T(a, 2, "index"), T(a, 3, "src"));
    return t.scatter(toInt(a[1], "dim"), T(a, 2, "index"), toScalar(a[3], "value"));
  });
  def(env, e, "maskedFill", [](const Info& a) { return T(a, 0).masked_fill(T(a, 1, "mask"), toScalar(a[2], "value")); });
  def(env, e, "cat", [](const Info& a) { return torch::cat(toTensorList(a[0], "tensors"), optInt(a[1], "dim", 0)); });
  def(env, e, "stack", [](const Info& a) { return torch::stack(toTensorList(a[0], "tensors"), optInt(a[1], "dim", 0)); });
  def(env, e, "chunk", [](const Info& a) { return T(a, 0).chunk(toInt(a[1], "chunks"), optInt(a[2], "dim", 0)); });
  def(env, e, "split", [](const Info& a) { return T(a, 0).split(toInt(a[1], "splitSize"), optInt(a[2], "dim", 0)); });

  // ---- conversion
  def(env, e, "to", [](const Info& a) {
    auto t = T(a, 0);
    torch::Device device = isMissing(a[1]) ? t.device() : toDevice(a[1]);
    torch::Dtype dtype = isMissing(a[2]) ? t.scalar_type() : toDtype(a[2]);
    return t.to(device, dtype);
  });

  // ---- neural-network functions
  def(env, e, "softmax", [](const Info& a) { return T(a, 0).softmax(toInt(a[1], "dim")); });
  def(env, e, "logSoftmax", [](const Info& a) { return T(a, 0).log_softmax(toInt(a[1], "dim")); });
  def(env, e, "oneHot", [](const Info& a) { return torch::one_hot(T(a, 0), optInt(a[1], "numClasses", -1)); });
  def(env, e, "linear", [](const Info& a) { return torch::linear(T(a, 0), T(a, 1, "weight"), toOptionalTensor(a[2], "bias")); });
  def(env, e, "dropout", [](const Info& a) { return torch::dropout(T(a, 0), toDouble(a[1], "p"), toBool(a[2], "training")); });
  // crossEntropy(input [N,C,...], target (class indices or probabilities), {weight, reduction, ignoreIndex, labelSmoothing})
  def(env, e, "crossEntropy", [](const Info& a) {
    Napi::Value o = a[2];
    return at::cross_entropy_loss(T(a, 0), T(a, 1, "target"), toOptionalTensor(field(o, "weight"), "weight"),
                                  toReduction(field(o, "reduction"), "crossEntropy", true),
                                  optInt(field(o, "ignoreIndex"), "ignoreIndex", -100),
                                  optDouble(field(o, "labelSmoothing"), "labelSmoothing", 0.0));
  });
  def(env, e, "nllLoss", [](const Info& a) {
    Napi::Value o = a[2];
    return at::nll_loss_nd(T(a, 0), T(a, 1, "target"), toOptionalTensor(field(o, "weight"), "weight"),
                           toReduction(field(o, "reduction"), "nllLoss", true),
                           optInt(field(o, "ignoreIndex"), "ignoreIndex", -100));
  });
  def(env, e, "bceWithLogits", [](const Info& a) {
    Napi::Value o = a[2];
    return at::binary_cross_entropy_with_logits(T(a, 0), T(a, 1, "target"), toOptionalTensor(field(o, "weight"), "weight"),
                                                toOptionalTensor(field(o, "posWeight"), "posWeight"),
                                                toReduction(field(o, "reduction"), "bceWithLogits", true));
  });
  def(env, e, "mseLoss", [](const Info& a) {
    return at::mse_loss(T(a, 0), T(a, 1, "target"), toReduction(field(a[2], "reduction"), "mseLoss", true));
  });
}

}  // namespace ft
