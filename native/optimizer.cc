// Optimizers (SGD, Adam, AdamW) with PyTorch-style parameter groups: each group
// has its own options, readable and writable at any time, and groups can be
// added to a live optimizer (gradual unfreezing).
#include "common.h"
#include "multi_tensor.h"

namespace ft {

Napi::Function OptimizerWrap::Define(Napi::Env env) {
  return DefineClass(env, "OptimizerHandle", {InstanceMethod("dispose", &OptimizerWrap::Dispose)});
}

Napi::Object OptimizerWrap::New(Napi::Env env, std::shared_ptr<torch::optim::Optimizer> opt, std::string kind) {
  auto payload = std::make_pair(std::move(opt), std::move(kind));
  return addonData(env).optimizerCtor.New({Napi::External<decltype(payload)>::New(env, &payload)});
}

OptimizerWrap::OptimizerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<OptimizerWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw Napi::TypeError::New(info.Env(), "Optimizer handles are made by finetorch; use optim.SGD/Adam/AdamW");
  auto* payload = info[0].As<Napi::External<std::pair<std::shared_ptr<torch::optim::Optimizer>, std::string>>>().Data();
  opt_ = payload->first;
  kind_ = payload->second;
}

torch::optim::Optimizer& OptimizerWrap::optimizer() const {
  if (!opt_) throw std::runtime_error("Optimizer has been disposed; it cannot be used any more");
  return *opt_;
}

std::shared_ptr<torch::optim::Optimizer> OptimizerWrap::shared() const {
  optimizer();  // throws when disposed
  return opt_;
}

Napi::Value OptimizerWrap::Dispose(const Napi::CallbackInfo& info) {
  opt_.reset();
  return info.Env().Undefined();
}

namespace {

namespace optim = torch::optim;

std::tuple<double, double> betas(const Napi::Object& o) {
  Napi::Value v = o.Get("betas");
  if (isMissing(v)) return {0.9, 0.999};
  if (!v.IsArray() || v.As<Napi::Array>().Length() != 2) throw ArgError("betas: expected [beta1, beta2]");
  Napi::Array a = v.As<Napi::Array>();
  return {toDouble(a.Get(0u), "betas[0]"), toDouble(a.Get(1u), "betas[1]")};
}

// Complete options for one group (TypeScript has merged the defaults in).
std::unique_ptr<optim::OptimizerOptions> makeOptions(const std::string& kind, const Napi::Value& v) {
  if (!v.IsObject()) throw ArgError("optimizer options: expected an object");
  Napi::Object o = v.As<Napi::Object>();
  if (isMissing(o.Get("lr"))) throw ArgError("optimizer options: lr is required");
  double lr = toDouble(o.Get("lr"), "lr");
  if (kind == "SGD")
    return std::make_unique<optim::SGDOptions>(optim::SGDOptions(lr)
                                                   .momentum(doubleField(o, "momentum", 0))
                                                   .dampening(doubleField(o, "dampening", 0))
                                                   .weight_decay(doubleField(o, "weightDecay", 0))
                                                   .nesterov(boolField(o, "nesterov", false)));
  if (kind == "Adam")
    return std::make_unique<optim::AdamOptions>(optim::AdamOptions(lr)
                                                    .betas(betas(o))
                                                    .eps(doubleField(o, "eps", 1e-8))
                                                    .weight_decay(doubleField(o, "weightDecay", 0))
                                                    .amsgrad(boolField(o, "amsgrad", false)));
  if (kind == "AdamW")
    return std::make_unique<optim::AdamWOptions>(optim::AdamWOptions(lr)
                                                     .betas(betas(o))
                                                     .eps(doubleField(o, "eps", 1e-8))
                                                     .weight_decay(doubleField(o, "weightDecay", 1e-2))
                                                     .amsgrad(boolField(o, "amsgrad", false)));
  throw ArgError("unknown optimizer '" + kind + "' (expected SGD, Adam or AdamW)");
}

// AdamOptions and AdamWOptions are unrelated types with the same fields.
template <typename Options>
void adamOptionsToJs(Napi::Object& o, const Options& a) {
  Napi::Array b = Napi::Array::New(o.Env(), 2);
  b.Set(0u, std::get<0>(a.betas()));
  b.Set(1u, std::get<1>(a.betas()));
  o.Set("lr", a.lr());
  o.Set("betas", b);
  o.Set("eps", a.eps());
  o.Set("weightDecay", a.weight_decay());
  o.Set("amsgrad", a.amsgrad());
}

Napi::Object optionsToJs(Napi::Env env, const optim::OptimizerOptions& base) {
  Napi::Object o = Napi::Object::New(env);
  if (auto* s = dynamic_cast<const optim::SGDOptions*>(&base)) {
    o.Set("lr", s->lr());
    o.Set("momentum", s->momentum());
    o.Set("dampening", s->dampening());
    o.Set("weightDecay", s->weight_decay());
    o.Set("nesterov", s->nesterov());
  } else if (auto* a = dynamic_cast<const optim::AdamOptions*>(&base)) {
    adamOptionsToJs(o, *a);
  } else if (auto* w = dynamic_cast<const optim::AdamWOptions*>(&base)) {
    adamOptionsToJs(o, *w);
  }
  return o;
}

optim::OptimizerParamGroup& group(OptimizerWrap& w, const Napi::Value& index) {
  int64_t i = toInt(index, "group index");
  auto& groups = w.optimizer().param_groups();
  if (i < 0 || i >= static_cast<int64_t>(groups.size()))
    throw ArgError("param group index " + std::to_string(i) + " out of range (" + std::to_string(groups.size()) + " groups)");
  return groups[static_cast<size_t>(i)];
}

// How steps run: {foreach?: boolean | null, fused?: boolean} (multi_tensor.h).
StepMode stepMode(const Napi::Value& v) {
  StepMode mode;
  if (isMissing(v)) return mode;
  if (!v.IsObject()) throw ArgError("optimizer step mode: expected {foreach, fused}");
  Napi::Object o = v.As<Napi::Object>();
  if (!isMissing(o.Get("foreach"))) mode.foreach = toBool(o.Get("foreach"), "foreach");
  mode.fused = boolField(o, "fused", false);
  return mode;
}

// createOptimizer(kind, [{params, options}], defaults, {foreach, fused})
static Napi::Value CreateOptimizer(const Info& info) {
  std::string kind = toString(info[0], "kind");
  if (!info[1].IsArray()) throw ArgError("param groups: expected an array");
  Napi::Array groupsJs = info[1].As<Napi::Array>();
  std::vector<optim::OptimizerParamGroup> groups;
  for (uint32_t i = 0; i < groupsJs.Length(); i++) {
    Napi::Value g = groupsJs.Get(i);
    if (!g.IsObject()) throw ArgError("param groups[" + std::to_string(i) + "]: expected {params, options}");
    groups.emplace_back(toTensorList(g.As<Napi::Object>().Get("params"), "params", Access::keep),
                        makeOptions(kind, g.As<Napi::Object>().Get("options")));
  }
  auto opt = makeMultiTensorOptimizer(kind, std::move(groups), *makeOptions(kind, info[2]), stepMode(info[3]));
  // libtorch 2.x merges a group's options with the optimizer's defaults, taking
  // the default wherever the group's value equals the options constructor's
  // (an explicit weight_decay 0 or AdamW lr 1e-3 became the optimizer's value);
  // TypeScript sends every group complete, so set them as given.
  for (uint32_t i = 0; i < groupsJs.Length(); i++)
    opt->param_groups()[i].set_options(makeOptions(kind, groupsJs.Get(i).As<Napi::Object>().Get("options")));
  return OptimizerWrap::New(info.Env(), opt, kind);
}

// 'forLoop', 'foreach' or 'fused': how the next step() runs.
static Napi::Value StepImplementation(const Info& info) {
  OptimizerWrap& w = toOptimizer(info[0], "optimizer", Access::keep);
  return Napi::String::New(info.Env(), stepImplName(nextStepImpl(w.optimizer())));
}

static Napi::Value AddParamGroup(const Info& info) {
  OptimizerWrap& w = toOptimizer(info[0], "optimizer");
  auto params = toTensorList(info[1], "params", Access::keep);
  checkFusedParams(w.optimizer(), params);
  w.optimizer().add_param_group(optim::OptimizerParamGroup(params, makeOptions(w.kind(), info[2])));
  w.optimizer().param_groups().back().set_options(makeOptions(w.kind(), info[2]));  // as given (see CreateOptimizer)
  return info.Env().Undefined();
}

// Group options and parameter lists are changed only here, on the main
// thread, by entry points that refuse while a step is pending; reading them
// while one runs is safe.
static Napi::Value GroupOptions(const Info& info) {
  OptimizerWrap& w = toOptimizer(info[0], "optimizer", Access::keep);
  return optionsToJs(info.Env(), group(w, info[1]).options());
}

static Napi::Value GroupParams(const Info& info) {
  OptimizerWrap& w = toOptimizer(info[0], "optimizer", Access::keep);
  return wrapList(info.Env(), group(w, info[1]).params());
}

// setGroupOptions(opt, i, {complete options}): replaces the group's options.
static Napi::Value SetGroupOptions(const Info& info) {
  OptimizerWrap& w = toOptimizer(info[0], "optimizer");
  group(w, info[1]).set_options(makeOptions(w.kind(), info[2]));
  return info.Env().Undefined();
}

static Napi::Value Step(const Info& info) {
  OptimizerWrap& w = toOptimizer(info[0], "optimizer");
  w.optimizer().step();
  return info.Env().Undefined();
}

// Clears gradients; setToNone (the default, as PyTorch 2.x) drops them so that
// parameters without a new gradient are skipped by step().
static Napi::Value ZeroGrad(const Info& info) {
  OptimizerWrap& w = toOptimizer(info[0], "optimizer");
  bool setToNone = optBool(info[1], "setToNone", true);
  for (auto& g : w.optimizer().param_groups())
    for (auto& p : g.params()) {
      if (!p.grad().defined()) continue;
      if (setToNone) p.mutable_grad().reset();
      else p.mutable_grad().detach_().zero_();
    }
  return info.Env().Undefined();
}

// AdamParamState and AdamWParamState are unrelated types with the same fields.
template <typename State>
void adamStateToJs(Napi::Object& s, const State& st) {
  Napi::Env env = s.Env();
  s.Set("step", static_cast<double>(st.step()));
  s.Set("expAvg", wrap(env, st.exp_avg()));
  s.Set("expAvgSq", wrap(env, st.exp_avg_sq()));
  if (st.max_exp_avg_sq().defined()) s.Set("maxExpAvgSq", wrap(env, st.max_exp_avg_sq()));
}

// A state tensor for parameter `like`, copied so it does not alias the
// caller's, with the parameter's device, dtype and strides (as a step makes
// it: zeros_like keeps a channels_last layout, which fused kernels need).
torch::Tensor stateTensor(const Napi::Value& v, const torch::Tensor& like, const char* what) {
  torch::Tensor t = toTensor(v, what);
  if (t.sizes() != like.sizes())
    throw ArgError(std::string("state: ") + what + " has shape " + c10::str(t.sizes()) + " but the parameter has " +
                   c10::str(like.sizes()));
  torch::NoGradGuard noGrad;
  return torch::empty_like(like, at::MemoryFormat::Preserve).copy_(t.detach());
}

template <typename State>
std::unique_ptr<State> adamStateFromJs(const Napi::Object& s, const torch::Tensor& p) {
  auto st = std::make_unique<State>();
  st->step(toInt(s.Get("step"), "step"));
  st->exp_avg(stateTensor(s.Get("expAvg"), p, "expAvg"));
  st->exp_avg_sq(stateTensor(s.Get("expAvgSq"), p, "expAvgSq"));
  if (!isMissing(s.Get("maxExpAvgSq"))) st->max_exp_avg_sq(stateTensor(s.Get("maxExpAvgSq"), p, "maxExpAvgSq"));
  return st;
}

// Per-parameter state in PyTorch's layout, one entry per parameter across all
// groups in order (null where no step has run yet).
static Napi::Value OptimizerState(const Info& info) {
  Napi::Env env = info.Env();
  OptimizerWrap& w = toOptimizer(info[0], "optimizer");
  auto& opt = w.optimizer();
  Napi::Array out = Napi::Array::New(env);
  uint32_t index = 0;
  for (auto& g : opt.param_groups())
    for (auto& p : g.params()) {
      auto it = opt.state().find(compat::stateKey(p));
      if (it == opt.state().end()) {
        out.Set(index++, env.Null());
        continue;
      }
      Napi::Object s = Napi::Object::New(env);
      if (auto* sgd = dynamic_cast<optim::SGDParamState*>(it->second.get())) {
        s.Set("momentumBuffer", wrap(env, sgd->momentum_buffer()));
      } else if (auto* adam = dynamic_cast<optim::AdamParamState*>(it->second.get())) {
        adamStateToJs(s, *adam);
      } else if (auto* adamw = dynamic_cast<optim::AdamWParamState*>(it->second.get())) {
        adamStateToJs(s, *adamw);
      }
      out.Set(index++, s);
    }
  return out;
}

// setOptimizerState(opt, [state | null per parameter]): the inverse of the above.
// Tensors are cloned so the loaded state does not alias the caller's tensors.
static Napi::Value SetOptimizerState(const Info& info) {
  OptimizerWrap& w = toOptimizer(info[0], "optimizer");
  auto& opt = w.optimizer();
  if (!info[1].IsArray()) throw ArgError("state: expected an array");
  Napi::Array states = info[1].As<Napi::Array>();
  std::vector<torch::Tensor> params;
  for (auto& g : opt.param_groups())
    for (auto& p : g.params()) params.push_back(p);
  if (states.Length() != params.size())
    throw ArgError("state: the optimizer has " + std::to_string(params.size()) + " parameters but the state has " +
                   std::to_string(states.Length()) + " entries");
  for (uint32_t i = 0; i < states.Length(); i++) {
    Napi::Value v = states.Get(i);
    const torch::Tensor& p = params[i];
    auto key = compat::stateKey(p);
    if (isMissing(v)) {
      opt.state().erase(key);
      continue;
    }
    Napi::Object s = v.As<Napi::Object>();
    if (w.kind() == "SGD") {
      auto st = std::make_unique<optim::SGDParamState>();
      if (!isMissing(s.Get("momentumBuffer"))) st->momentum_buffer(stateTensor(s.Get("momentumBuffer"), p, "momentumBuffer"));
      opt.state()[key] = std::move(st);
    } else if (w.kind() == "Adam") {
      opt.state()[key] = adamStateFromJs<optim::AdamParamState>(s, p);
    } else {
      opt.state()[key] = adamStateFromJs<optim::AdamWParamState>(s, p);
    }
  }
  return info.Env().Undefined();
}

}  // namespace

void registerOptimizer(Napi::Env env, Napi::Object e) {
  def(env, e, "createOptimizer", CreateOptimizer);
  def(env, e, "addParamGroup", AddParamGroup);
  def(env, e, "groupOptions", GroupOptions);
  def(env, e, "groupParams", GroupParams);
  def(env, e, "setGroupOptions", SetGroupOptions);
  def(env, e, "optimizerStep", Step);
  def(env, e, "optimizerStepImplementation", StepImplementation);
  def(env, e, "optimizerZeroGrad", ZeroGrad);
  def(env, e, "optimizerState", OptimizerState);
  def(env, e, "setOptimizerState", SetOptimizerState);
}

}  // namespace ft
