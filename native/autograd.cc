// Autograd: backward, gradients, leaf flags and the global grad mode.
#include "common.h"

namespace ft {

static Napi::Value Backward(const Info& info) {
  torch::Tensor t = toTensor(info[0], "tensor");
  compat::optional<torch::Tensor> gradient = toOptionalTensor(info[1], "gradient");
  bool retain = optBool(info[2], "retainGraph", false);
  checkGraphIdle(t, "backward: a tensor whose gradient this backward writes");
  t.backward(gradient.has_value() ? *gradient : torch::Tensor(), retain);
  return info.Env().Undefined();
}

static Napi::Value Grad(const Info& info) { return wrap(info.Env(), toTensor(info[0], "tensor").grad()); }

// setGrad(t, g | null): assign or clear .grad (null = set_to_none).
static Napi::Value SetGrad(const Info& info) {
  torch::Tensor t = toTensor(info[0], "tensor");
  if (isMissing(info[1])) t.mutable_grad().reset();
  else t.mutable_grad() = toTensor(info[1], "grad");
  return info.Env().Undefined();
}

// requires_grad and is_leaf of a tensor never change under an async task.
static Napi::Value RequiresGrad(const Info& info) {
  return Napi::Boolean::New(info.Env(), toTensor(info[0], "tensor", Access::keep).requires_grad());
}

static Napi::Value RequiresGradInplace(const Info& info) {
  torch::Tensor t = toTensor(info[0], "tensor");
  t.requires_grad_(optBool(info[1], "requiresGrad", true));
  return info.Env().Undefined();
}

static Napi::Value IsLeaf(const Info& info) {
  return Napi::Boolean::New(info.Env(), toTensor(info[0], "tensor", Access::keep).is_leaf());
}

static Napi::Value IsGradEnabled(const Info& info) { return Napi::Boolean::New(info.Env(), torch::GradMode::is_enabled()); }

static Napi::Value SetGradEnabled(const Info& info) {
  torch::GradMode::set_enabled(toBool(info[0], "enabled"));
  return info.Env().Undefined();
}

void registerAutograd(Napi::Env env, Napi::Object e) {
  def(env, e, "backward", Backward);
  def(env, e, "grad", Grad);
  def(env, e, "setGrad", SetGrad);
  def(env, e, "requiresGrad", RequiresGrad);
  def(env, e, "requiresGrad_", RequiresGradInplace);
  def(env, e, "isLeaf", IsLeaf);
  def(env, e, "isGradEnabled", IsGradEnabled);
  def(env, e, "setGradEnabled", SetGradEnabled);
}

}  // namespace ft
