// Multi-tensor (foreach) and fused steps for SGD, Adam and AdamW, as
// PyTorch's `foreach=` and `fused=` options. The optimizers are libtorch's,
// subclassed: the parameter groups, their options and the per-parameter state
// (SGDParamState, AdamParamState, AdamWParamState) are the same objects, so
// state dicts and resume do not depend on how a step ran.
#pragma once
#include "common.h"

namespace ft {

// How an optimizer's step runs: libtorch's per-parameter loop, `_foreach_*`
// kernels over each group's parameters grouped by device and dtype, or the
// fused `_fused_adamw_` / `_fused_adam_` / `_fused_sgd_` kernels.
enum class StepImpl { forLoop, foreach, fused };
const char* stepImplName(StepImpl impl);

// The user's choice. foreach unset: multi-tensor when every parameter is on
// CUDA, the for-loop otherwise (PyTorch 2.x's default), so CPU results stay
// bit-identical to libtorch's own step unless foreach or fused is asked for.
struct StepMode {
  compat::optional<bool> foreach;
  bool fused = false;
};

// kind: "SGD", "Adam" or "AdamW". Throws an ArgError when fused is asked for
// and a parameter's device has no fused kernel in this libtorch.
std::shared_ptr<torch::optim::Optimizer> makeMultiTensorOptimizer(const std::string& kind,
                                                                  std::vector<torch::optim::OptimizerParamGroup> groups,
                                                                  const torch::optim::OptimizerOptions& defaults, StepMode mode);

// What the next step() of `opt` runs (the for-loop for optimizers not made above).
StepImpl nextStepImpl(const torch::optim::Optimizer& opt);
// Throws an ArgError naming the device when `opt` is fused and one of
// `params` (a group about to be added) has no fused kernel here.
void checkFusedParams(const torch::optim::Optimizer& opt, const std::vector<torch::Tensor>& params);
// Whether this libtorch has a fused `kind` kernel for tensors on `device`.
bool hasFusedKernel(const std::string& kind, const torch::Device& device);

}  // namespace ft
