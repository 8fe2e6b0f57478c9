// Multi-tensor (foreach) and fused optimizer steps; see multi_tensor.h.
// The foreach steps follow PyTorch's _multi_tensor_sgd/_adam/_adamw (1.13
// without `capturable`) op for op, so they agree with Python's foreach=True
// within float32 rounding; the fused steps call the same ATen kernels Python's
// fused=True calls.
#include "multi_tensor.h"
#include <cmath>
#include <map>

namespace ft {

namespace optim = torch::optim;
using torch::Tensor;
using TensorVec = std::vector<Tensor>;

const char* stepImplName(StepImpl impl) {
  switch (impl) {
    case StepImpl::foreach:
      return "foreach";
    case StepImpl::fused:
      return "fused";
    default:
      return "forLoop";
  }
}

// Version boundaries of the fused kernels (PR merge dates; see
// docs/libtorch-gpu-apis.md): CUDA Adam/AdamW 2.0, CUDA SGD 2.3, CPU all 2.4.
bool hasFusedKernel(const std::string& kind, const torch::Device& device) {
  if (device.is_cuda()) return kind == "SGD" ? FT_TORCH_AT_LEAST(2, 3) : FT_TORCH_AT_LEAST(2, 0);
  if (device.is_cpu()) return FT_TORCH_AT_LEAST(2, 4);
  return false;
}

namespace {

// What every optimizer made here knows besides libtorch's own state.
class MultiTensorBase {
 public:
  MultiTensorBase(std::string kind, StepMode mode) : kind_(std::move(kind)), mode_(mode) {}
  virtual ~MultiTensorBase() = default;
  const std::string& kind() const { return kind_; }
  const StepMode& mode() const { return mode_; }

  StepImpl impl(const optim::Optimizer& self) const {
    if (mode_.fused) return StepImpl::fused;
    if (mode_.foreach.has_value()) return *mode_.foreach ? StepImpl::foreach : StepImpl::forLoop;
    bool any = false;  // PyTorch's default: foreach when every parameter is on CUDA
    for (const auto& g : self.param_groups())
      for (const auto& p : g.params()) {
        if (!p.is_cuda()) return StepImpl::forLoop;
        any = true;
      }
    return any ? StepImpl::foreach : StepImpl::forLoop;
  }

  void checkFused(const TensorVec& params) const {
    if (!mode_.fused) return;
    for (const auto& p : params) {
      if (!hasFusedKernel(kind_, p.device()))
        throw ArgError("fused: libtorch " + compat::versionString() + " has no fused " + kind_ + " kernel for parameters on " +
                       deviceName(p.device()) +
                       " (fused kernels: CUDA from libtorch 2.0, SGD 2.3; CPU from 2.4); use foreach: true instead");
      if (!at::isFloatingType(p.scalar_type()))
        throw ArgError("fused: the fused " + kind_ + " kernel needs floating-point parameters, but one is " +
                       dtypeName(p.scalar_type()));
    }
  }

 private:
  std::string kind_;
  StepMode mode_;
};

// The parameters of one group that have a gradient, split by device and
// dtype: a foreach or fused kernel takes lists on one device of one dtype.
struct Bucket {
  TensorVec params, grads;
};

std::vector<Bucket> bucketsOf(const optim::OptimizerParamGroup& group) {
  std::vector<Bucket> out;
  for (const auto& p : group.params()) {
    if (!p.grad().defined()) continue;
    Bucket* b = nullptr;
    for (auto& c : out)
      if (c.params[0].device() == p.device() && c.params[0].scalar_type() == p.scalar_type()) b = &c;
    if (!b) b = &out.emplace_back();
    b->params.push_back(p);
    b->grads.push_back(p.grad());
  }
  return out;
}

// `t` on the parameter's device and dtype with its strides. State made by a
// step already is (zeros_like keeps a channels_last layout); state loaded from
// a checkpoint, or made before the model moved or changed memory format, may
// not be. Fused kernels need it; foreach kernels take their fast path only then.
Tensor likeParam(const Tensor& t, const Tensor& p) {
  if (t.device() == p.device() && t.scalar_type() == p.scalar_type() && t.strides() == p.strides()) return t;
  return torch::empty_like(p, at::MemoryFormat::Preserve).copy_(t);
}

template <class State>
State* findState(optim::Optimizer& opt, const Tensor& p) {
  auto it = opt.state().find(compat::stateKey(p));
  return it == opt.state().end() ? nullptr : dynamic_cast<State*>(it->second.get());
}

template <class State>
State& insertState(optim::Optimizer& opt, const Tensor& p, std::unique_ptr<State> s) {
  State& ref = *s;
  opt.state()[compat::stateKey(p)] = std::move(s);
  return ref;
}

// ---- SGD -------------------------------------------------------------------

void sgdBucket(optim::Optimizer& opt, const optim::SGDOptions& o, const Bucket& b, bool fused) {
  const double lr = o.lr(), momentum = o.momentum(), dampening = o.dampening(), wd = o.weight_decay();
  const bool nesterov = o.nesterov();
  auto bufferOf = [&](const Tensor& p) -> Tensor {
    auto* s = findState<optim::SGDParamState>(opt, p);
    return s ? s->momentum_buffer() : Tensor();
  };
  auto setBuffer = [&](const Tensor& p, const Tensor& buf) {
    auto s = std::make_unique<optim::SGDParamState>();
    s->momentum_buffer(buf);
    insertState(opt, p, std::move(s));
  };

  if (fused) {
#if FT_TORCH_AT_LEAST(2, 3)
    if (momentum == 0) {
      at::_fused_sgd_(b.params, b.grads, {}, wd, momentum, lr, dampening, nesterov, false, false);
      return;
    }
    // Parameters without a momentum buffer take the kernel's first-step path
    // (buffer = gradient), as libtorch's loop and Python's fused SGD do.
    TensorVec ps[2], gs[2], bufs[2];
    for (size_t i = 0; i < b.params.size(); i++) {
      const Tensor& p = b.params[i];
      Tensor buf = bufferOf(p);
      bool first = !buf.defined();
      if (first) setBuffer(p, buf = torch::empty_like(p, at::MemoryFormat::Preserve));
      else if (Tensor laid = likeParam(buf, p); !laid.is_same(buf)) setBuffer(p, buf = laid);
      ps[first].push_back(p);
      gs[first].push_back(likeParam(b.grads[i], p));
      bufs[first].push_back(buf);
    }
    for (int first = 0; first < 2; first++)
      if (!ps[first].empty())
        at::_fused_sgd_(ps[first], gs[first], bufs[first], wd, momentum, lr, dampening, nesterov, false, first == 1);
    return;
#else
    throw std::logic_error("fused SGD: not compiled in");  // checkFused refused it already
#endif
  }

  // PyTorch's _multi_tensor_sgd, without writing into the gradients.
  TensorVec d = b.grads;
  if (wd != 0) d = at::_foreach_add(d, b.params, wd);
  if (momentum != 0) {
    TensorVec bufs;
    bool all = true;
    for (const auto& p : b.params) {
      Tensor buf = bufferOf(p);
      if (!buf.defined()) {
        all = false;
        break;
      }
      if (Tensor laid = likeParam(buf, p); !laid.is_same(buf)) setBuffer(p, buf = laid);
      bufs.push_back(buf);
    }
    if (all) {
      at::_foreach_mul_(bufs, momentum);
      at::_foreach_add_(bufs, d, 1 - dampening);
    } else {
      bufs.clear();
      for (size_t i = 0; i < b.params.size(); i++) {
        Tensor buf = bufferOf(b.params[i]);
        if (!buf.defined()) setBuffer(b.params[i], buf = torch::clone(d[i]).detach());
        else buf.mul_(momentum).add_(d[i], 1 - dampening);
        bufs.push_back(buf);
      }
    }
    d = nesterov ? at::_foreach_add(d, bufs, momentum) : bufs;
  }
  at::_foreach_add_(b.params, d, -lr);
}

// ---- Adam and AdamW ----------------------------------------------------------

// decoupled: AdamW's weight decay (params *= 1 - lr * wd) instead of Adam's L2 term.
template <class State, class Options>
void adamBucket(optim::Optimizer& opt, const Options& o, const Bucket& b, bool fused, bool decoupled) {
  const double lr = o.lr(), wd = o.weight_decay(), eps = o.eps();
  const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
  const bool amsgrad = o.amsgrad();
  TensorVec expAvgs, expAvgSqs, maxExpAvgSqs, grads;
  std::vector<int64_t> steps;
  for (size_t i = 0; i < b.params.size(); i++) {
    const Tensor& p = b.params[i];
    State* s = findState<State>(opt, p);
    if (!s) {  // as libtorch's loop makes it
      auto fresh = std::make_unique<State>();
      fresh->step(0);
      fresh->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
      fresh->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
      s = &insertState(opt, p, std::move(fresh));
    }
    if (amsgrad && !s->max_exp_avg_sq().defined()) s->max_exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
    s->exp_avg(likeParam(s->exp_avg(), p));
    s->exp_avg_sq(likeParam(s->exp_avg_sq(), p));
    if (amsgrad) s->max_exp_avg_sq(likeParam(s->max_exp_avg_sq(), p));
    s->step(s->step() + 1);
    steps.push_back(s->step());
    expAvgs.push_back(s->exp_avg());
    expAvgSqs.push_back(s->exp_avg_sq());
    if (amsgrad) maxExpAvgSqs.push_back(s->max_exp_avg_sq());
    grads.push_back(fused ? likeParam(b.grads[i], p) : b.grads[i]);
  }

  if (fused) {
#if FT_TORCH_AT_LEAST(2, 0)
    // The kernels read each parameter's step from a float32 scalar tensor on
    // its device; parameters at the same step share one.
    TensorVec stateSteps;
    std::map<int64_t, Tensor> made;
    for (int64_t step : steps) {
      auto it = made.find(step);
      if (it == made.end())
        it = made.emplace(step, torch::full({}, static_cast<double>(step), b.params[0].options().dtype(torch::kFloat32))).first;
      stateSteps.push_back(it->second);
    }
    if (decoupled)
      at::_fused_adamw_(b.params, grads, expAvgs, expAvgSqs, maxExpAvgSqs, stateSteps, lr, beta1, beta2, wd, eps, amsgrad, false);
    else
      at::_fused_adam_(b.params, grads, expAvgs, expAvgSqs, maxExpAvgSqs, stateSteps, lr, beta1, beta2, wd, eps, amsgrad, false);
    return;
#else
    throw std::logic_error("fused Adam: not compiled in");  // checkFused refused it already
#endif
  }

  // PyTorch's _multi_tensor_adam / _multi_tensor_adamw.
  if (decoupled) {
    if (wd != 0) at::_foreach_mul_(b.params, 1 - lr * wd);
  } else if (wd != 0) {
    grads = at::_foreach_add(grads, b.params, wd);
  }
  at::_foreach_mul_(expAvgs, beta1);
  at::_foreach_add_(expAvgs, grads, 1 - beta1);
  at::_foreach_mul_(expAvgSqs, beta2);
  at::_foreach_addcmul_(expAvgSqs, grads, grads, 1 - beta2);
  std::vector<c10::Scalar> stepSize, biasCorrection2Sqrt;
  for (int64_t step : steps) {
    double bc1 = 1 - std::pow(beta1, static_cast<double>(step));
    double bc2 = 1 - std::pow(beta2, static_cast<double>(step));
    stepSize.emplace_back(-(lr / bc1));
    biasCorrection2Sqrt.emplace_back(std::sqrt(bc2));
  }
  TensorVec denom;
  if (amsgrad) {
    at::_foreach_maximum_(maxExpAvgSqs, expAvgSqs);
    denom = at::_foreach_sqrt(maxExpAvgSqs);
  } else {
    denom = at::_foreach_sqrt(expAvgSqs);
  }
  at::_foreach_div_(denom, biasCorrection2Sqrt);
  at::_foreach_add_(denom, c10::Scalar(eps));
  at::_foreach_addcdiv_(b.params, expAvgs, denom, stepSize);
}

// libtorch's optimizer with a step that runs as `mode` says.
template <class Base, class Options, class State>
class MultiTensor : public Base, public MultiTensorBase {
 public:
  MultiTensor(std::vector<optim::OptimizerParamGroup> groups, const Options& defaults, std::string kind, StepMode mode)
      : Base(std::move(groups), defaults), MultiTensorBase(std::move(kind), mode) {}

  Tensor step(optim::Optimizer::LossClosure closure = nullptr) override {
    StepImpl how = impl(*this);
    if (how == StepImpl::forLoop) return Base::step(closure);
    Tensor loss;
    if (closure) {
      at::AutoGradMode enableGrad(true);
      loss = closure();
    }
    torch::NoGradGuard noGrad;
    bool fused = how == StepImpl::fused;
    if (fused)
      for (const auto& g : this->param_groups()) checkFused(g.params());  // a parameter may have moved since
    for (auto& group : this->param_groups()) {
      const auto& o = static_cast<const Options&>(group.options());
      for (const auto& bucket : bucketsOf(group)) {
        if constexpr (std::is_same_v<Base, optim::SGD>) sgdBucket(*this, o, bucket, fused);
        else adamBucket<State>(*this, o, bucket, fused, std::is_same_v<Base, optim::AdamW>);
      }
    }
    return loss;
  }
};

using SGD = MultiTensor<optim::SGD, optim::SGDOptions, optim::SGDParamState>;
using Adam = MultiTensor<optim::Adam, optim::AdamOptions, optim::AdamParamState>;
using AdamW = MultiTensor<optim::AdamW, optim::AdamWOptions, optim::AdamWParamState>;

}  // namespace

std::shared_ptr<optim::Optimizer> makeMultiTensorOptimizer(const std::string& kind,
                                                           std::vector<optim::OptimizerParamGroup> groups,
                                                           const optim::OptimizerOptions& defaults, StepMode mode) {
  if (mode.fused && mode.foreach.value_or(false)) throw ArgError("foreach and fused cannot both be true (as in PyTorch)");
  for (const auto& g : groups) MultiTensorBase(kind, mode).checkFused(g.params());
  if (kind == "SGD")
    return std::make_shared<SGD>(std::move(groups), dynamic_cast<const optim::SGDOptions&>(defaults), kind, mode);
  if (kind == "Adam")
    return std::make_shared<Adam>(std::move(groups), dynamic_cast<const optim::AdamOptions&>(defaults), kind, mode);
  if (kind == "AdamW")
    return std::make_shared<AdamW>(std::move(groups), dynamic_cast<const optim::AdamWOptions&>(defaults), kind, mode);
  throw ArgError("unknown optimizer '" + kind + "' (expected SGD, Adam or AdamW)");
}

StepImpl nextStepImpl(const optim::Optimizer& opt) {
  auto* mt = dynamic_cast<const MultiTensorBase*>(&opt);
  return mt ? mt->impl(opt) : StepImpl::forLoop;
}

void checkFusedParams(const optim::Optimizer& opt, const TensorVec& params) {
  if (auto* mt = dynamic_cast<const MultiTensorBase*>(&opt)) mt->checkFused(params);
}

}  // namespace ft
