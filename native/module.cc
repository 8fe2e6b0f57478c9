// Module handles and the module tree: parameters, buffers, children, modes,
// devices, state dicts and forward. Recipes (freezing, head swap) build on these
// in TypeScript.
#include "common.h"

namespace ft {

Napi::Function ModuleWrap::Define(Napi::Env env) {
  return DefineClass(env, "ModuleHandle", {InstanceMethod("dispose", &ModuleWrap::Dispose)});
}

Napi::Object ModuleWrap::New(Napi::Env env, std::shared_ptr<torch::nn::Module> m) {
  return addonData(env).moduleCtor.New({Napi::External<std::shared_ptr<torch::nn::Module>>::New(env, &m)});
}

ModuleWrap::ModuleWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModuleWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw Napi::TypeError::New(info.Env(), "Module handles are made by finetorch; use the nn classes");
  module_ = *info[0].As<Napi::External<std::shared_ptr<torch::nn::Module>>>().Data();
}

const std::shared_ptr<torch::nn::Module>& ModuleWrap::module() const {
  if (!module_) throw std::runtime_error("Module has been disposed; it cannot be used any more");
  return module_;
}

Napi::Value ModuleWrap::Dispose(const Napi::CallbackInfo& info) {
  release();
  return info.Env().Undefined();
}

namespace {

using ModulePtr = std::shared_ptr<torch::nn::Module>;

// The module argument, for an entry point that runs or changes it (refused
// while an async task uses it) or, with Access::keep, one that only reads the
// tree's names, kinds and handles, which no task changes.
ModulePtr M(const Info& a, size_t i = 0, Access access = Access::use) { return toModule(a[i], "module", access); }
ModulePtr readM(const Info& a, size_t i = 0) { return M(a, i, Access::keep); }

Napi::Array tensorPairs(Napi::Env env, const std::vector<std::pair<std::string, torch::Tensor>>& items) {
  Napi::Array out = Napi::Array::New(env, items.size());
  for (size_t i = 0; i < items.size(); i++) {
    Napi::Array p = Napi::Array::New(env, 2);
    p.Set(0u, items[i].first);
    p.Set(1u, wrap(env, items[i].second));
    out.Set(static_cast<uint32_t>(i), p);
  }
  return out;
}

Napi::Array modulePairs(Napi::Env env, const torch::OrderedDict<std::string, ModulePtr>& items) {
  Napi::Array out = Napi::Array::New(env, items.size());
  uint32_t i = 0;
  for (const auto& item : items) {
    Napi::Array p = Napi::Array::New(env, 2);
    p.Set(0u, item.key());
    p.Set(1u, ModuleWrap::New(env, item.value()));
    out.Set(i++, p);
  }
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> items(const torch::OrderedDict<std::string, torch::Tensor>& d) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& it : d) out.emplace_back(it.key(), it.value());
  return out;
}

// PyTorch's state_dict order: for each module in pre-order, its own parameters
// then its own buffers, under the dotted path of the module.
std::vector<std::pair<std::string, torch::Tensor>> stateDict(const ModulePtr& root) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& mod : root->named_modules()) {
    std::string prefix = mod.key().empty() ? "" : mod.key() + ".";
    for (const auto& p : mod.value()->named_parameters(false)) out.emplace_back(prefix + p.key(), p.value());
    for (const auto& b : mod.value()->named_buffers(false)) out.emplace_back(prefix + b.key(), b.value());
  }
  return out;
}

// The short class name PyTorch users know ("Linear", "Conv2d", ...).
std::string kindOf(const torch::nn::Module& m) {
  std::string n = m.name();
  auto colon = n.rfind("::");
  if (colon != std::string::npos) n = n.substr(colon + 2);
  if (n.size() > 4 && n.compare(n.size() - 4, 4, "Impl") == 0) n = n.substr(0, n.size() - 4);
  return n;
}

}  // namespace

void registerModule(Napi::Env env, Napi::Object e) {
  def(env, e, "moduleKind", [](const Info& a) -> Napi::Value { return Napi::String::New(a.Env(), kindOf(*readM(a))); });
  def(env, e, "moduleHasNativeForward",
      [](const Info& a) -> Napi::Value { return Napi::Boolean::New(a.Env(), hasNativeForward(*readM(a))); });
  def(env, e, "moduleSame",
      [](const Info& a) -> Napi::Value { return Napi::Boolean::New(a.Env(), readM(a, 0).get() == readM(a, 1).get()); });
  def(env, e, "namedParameters", [](const Info& a) -> Napi::Value {
    return tensorPairs(a.Env(), items(readM(a)->named_parameters(optBool(a[1], "recurse", true))));
  });
  def(env, e, "namedBuffers", [](const Info& a) -> Napi::Value {
    return tensorPairs(a.Env(), items(readM(a)->named_buffers(optBool(a[1], "recurse", true))));
  });
  def(env, e, "namedChildren", [](const Info& a) -> Napi::Value { return modulePairs(a.Env(), readM(a)->named_children()); });
  def(env, e, "stateDict", [](const Info& a) -> Napi::Value { return tensorPairs(a.Env(), stateDict(readM(a))); });
  def(env, e, "registerModule", [](const Info& a) -> Napi::Value {
    auto m = M(a);
    std::string name = toString(a[1], "name");
    auto child = toModule(a[2], "child");
    if (m->named_children().contains(name))
      throw ArgError("registerModule: a child named '" + name + "' already exists; use replaceChild");
    m->register_module(name, child);
    return a.Env().Undefined();
  });
  def(env, e, "replaceChild", [](const Info& a) -> Napi::Value {
    auto m = M(a);
    std::string name = toString(a[1], "name");
    if (!m->named_children().contains(name)) throw ArgError("replaceChild: no child named '" + name + "'");
    m->replace_module(name, toModule(a[2], "child"));
    return a.Env().Undefined();
  });
  def(env, e, "registerParameter", [](const Info& a) -> Napi::Value {
    auto m = M(a);
    torch::Tensor t = toTensor(a[2], "parameter");
    bool requiresGrad = optBool(a[3], "requiresGrad", true);
    // A parameter must be a leaf; a tensor with history is detached first (as nn.Parameter does).
    if (!t.is_leaf()) t = t.detach();
    std::string name = toString(a[1], "name");
    if (m->named_parameters(false).contains(name)) {
      // replacing keeps the registration slot (used for head swaps on TorchScript-like modules)
      m->named_parameters(false)[name].set_data(t);
      m->named_parameters(false)[name].set_requires_grad(requiresGrad);
      return wrap(a.Env(), m->named_parameters(false)[name]);
    }
    return wrap(a.Env(), m->register_parameter(name, t, requiresGrad));
  });
  def(env, e, "registerBuffer",
      [](const Info& a) { return M(a)->register_buffer(toString(a[1], "name"), toTensor(a[2], "buffer")); });
  def(env, e, "moduleTrain", [](const Info& a) -> Napi::Value {
    M(a)->train(optBool(a[1], "mode", true));
    return a.Env().Undefined();
  });
  // Sets the mode of this module only, not its children (for frozen BatchNorm).
  def(env, e, "moduleSetTrainingFlat", [](const Info& a) -> Napi::Value {
    auto m = M(a);
    bool on = toBool(a[1], "mode");
    // Module::train() recurses; keep children as they were.
    std::vector<std::pair<ModulePtr, bool>> kids;
    for (const auto& c : m->modules(false)) kids.emplace_back(c, c->is_training());
    m->train(on);
    for (auto& k : kids) k.first->train(k.second);
    return a.Env().Undefined();
  });
  def(env, e, "moduleIsTraining",
      [](const Info& a) -> Napi::Value { return Napi::Boolean::New(a.Env(), readM(a)->is_training()); });
  def(env, e, "moduleTo", [](const Info& a) -> Napi::Value {
    auto m = M(a);
    if (!isMissing(a[1]) && !isMissing(a[2])) m->to(toDevice(a[1]), toDtype(a[2]));
    else if (!isMissing(a[1])) m->to(toDevice(a[1]));
    else if (!isMissing(a[2])) m->to(toDtype(a[2]));
    return a.Env().Undefined();
  });
  def(env, e, "moduleForward", [](const Info& a) { return forwardModule(*M(a), toTensorList(a[1], "inputs")); });
}

}  // namespace ft
