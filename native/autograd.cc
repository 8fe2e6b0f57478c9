// Autograd: backward, gradients, leaf flags and the global grad mode.
#include "common.h"

namespace ft {

FT_ENTRY(Backward) {
  torch::Tensor t = toTensor(info[0], "tensor");
  compat::optional<torch::Tensor> gradient = toOptionalTensor(info[1], "gradient");
  bool retain = isMissing(info[2]) ? false : toBool(info[2], "retainGraph");
  t.backward(gradient.has_value() ? *gradient : torch::Tensor(), retain);
  return info.Env().Undefined();
}

FT_ENTRY(Grad) { return wrap(info.Env(), toTensor(info[0], "tensor").grad()); }

// setGrad(t, g | null): assign or clear .grad (null = set_to_none).
FT_ENTRY(SetGrad) {
  torch::Tensor t = toTensor(info[0], "tensor");
  if (isMissing(info[1])) t.mutable_grad().reset();
  else t.mutable_grad() = toTensor(info[1], "grad");
  return info.Env().Undefined();
}

FT_ENTRY(RequiresGrad) { return Napi::Boolean::New(info.Env(), toTensor(info[0], "tensor").requires_grad()); }

FT_ENTRY(RequiresGradInplace) {
  torch::Tensor t = toTensor(info[0], "tensor");
  t.requires_grad_(isMissing(info[1]) ? true : toBool(info[1], "requiresGrad"));
  return info.Env().Undefined();
}

FT_ENTRY(IsLeaf) { return Napi::Boolean::New(info.Env(), toTensor(info[0], "tensor").is_leaf()); }

FT_ENTRY(IsGradEnabled) { return Napi::Boolean::New(info.Env(), torch::GradMode::is_enabled()); }

FT_ENTRY(SetGradEnabled) {
  torch::GradMode::set_enabled(toBool(info[0], "enabled"));
  return info.Env().Undefined();
}

void registerAutograd(Napi::Env env, Napi::Object e) {
  e.Set("backward", Napi::Function::New(env, Backward));
  e.Set("grad", Napi::Function::New(env, Grad));
  e.Set("setGrad", Napi::Function::New(env, SetGrad));
  e.Set("requiresGrad", Napi::Function::New(env, RequiresGrad));
  e.Set("requiresGrad_", Napi::Function::New(env, RequiresGradInplace));
  e.Set("isLeaf", Napi::Function::New(env, IsLeaf));
  e.Set("isGradEnabled", Napi::Function::New(env, IsGradEnabled));
  e.Set("setGradEnabled", Napi::Function::New(env, SetGradEnabled));
}

}  // namespace ft
