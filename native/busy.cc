// Ownership by async work (see common.h): which tensors, modules and
// optimizers pending async tasks own, and the checks synchronous entry points
// make against it. Claims are made and released on the main thread (when a
// task is queued and when it settles); a mutex keeps Node worker threads,
// each with its own addon instance, apart.
#include "common.h"
#include <torch/csrc/autograd/functions/accumulate_grad.h>
#include <atomic>
#include <unordered_map>
#include <unordered_set>

namespace ft {
namespace {

std::mutex registryLock;
// object (module, optimizer or TensorImpl) -> pending tasks that own it, and the latest task's name
struct Owners {
  int count = 0;
  const char* task = "";
};
std::unordered_map<const void*, Owners> owned;
std::atomic<size_t> claims{0};  // nothing to check while no task is pending

// The task owning one of `keys`, or nullptr.
const char* ownerOf(const std::vector<const void*>& keys) {
  std::lock_guard<std::mutex> g(registryLock);
  for (const void* k : keys) {
    auto it = owned.find(k);
    if (it != owned.end()) return it->second.task;
  }
  return nullptr;
}

[[noreturn]] void busy(const char* what, const char* task) {
  throw std::runtime_error(std::string(what) + " is busy with an async task (" + task +
                           ") that has not settled; await it first. One model or optimizer cannot be used by two "
                           "training loops or steps at once (e.g. two fit() calls on the same model).");
}

}  // namespace

AsyncClaim::AsyncClaim(const char* task, std::vector<const void*> keys) : task_(task), keys_(std::move(keys)) {
  std::lock_guard<std::mutex> g(registryLock);
  for (const void* k : keys_) {
    Owners& o = owned[k];
    o.count++;
    o.task = task_;
  }
  claims.fetch_add(1);
}

void AsyncClaim::release() {
  if (!task_) return;
  std::lock_guard<std::mutex> g(registryLock);
  for (const void* k : keys_) {
    auto it = owned.find(k);
    if (it != owned.end() && --it->second.count == 0) owned.erase(it);
  }
  claims.fetch_sub(1);
  task_ = nullptr;
}

void claimModule(std::vector<const void*>& keys, const torch::nn::Module& m) {
  keys.push_back(&m);
  for (const auto& sub : m.modules(/*include_self=*/false)) keys.push_back(sub.get());
  for (const auto& p : m.parameters()) keys.push_back(p.unsafeGetTensorImpl());
  for (const auto& b : m.buffers()) keys.push_back(b.unsafeGetTensorImpl());
}

void claimOptimizer(std::vector<const void*>& keys, const torch::optim::Optimizer& o) {
  keys.push_back(&o);
  for (const auto& group : o.param_groups())
    for (const auto& p : group.params()) keys.push_back(p.unsafeGetTensorImpl());
}

// The leaves whose .grad a backward from t accumulates into: the variables of
// the AccumulateGrad nodes reachable from t's grad_fn (or t itself).
void claimGraphLeaves(std::vector<const void*>& keys, const torch::Tensor& t) {
  if (!t.defined()) return;
  if (!t.grad_fn()) {
    keys.push_back(t.unsafeGetTensorImpl());  // a leaf: backward writes its own .grad
    return;
  }
  std::unordered_set<const torch::autograd::Node*> seen;
  std::vector<torch::autograd::Node*> stack{t.grad_fn().get()};
  while (!stack.empty()) {
    torch::autograd::Node* node = stack.back();
    stack.pop_back();
    if (!node || !seen.insert(node).second) continue;
    if (auto* acc = dynamic_cast<torch::autograd::AccumulateGrad*>(node)) keys.push_back(acc->variable.unsafeGetTensorImpl());
    for (const auto& edge : node->next_edges()) stack.push_back(edge.function.get());
  }
}

void checkIdle(const torch::Tensor& t, const char* what) {
  if (claims.load() == 0 || !t.defined()) return;
  if (const char* task = ownerOf({t.unsafeGetTensorImpl()})) busy(what, task);
}

void checkIdle(const torch::nn::Module& m, const char* what) {
  if (claims.load() == 0) return;
  std::vector<const void*> keys;
  claimModule(keys, m);
  if (const char* task = ownerOf(keys)) busy(what, task);
}

void checkIdle(const torch::optim::Optimizer& o, const char* what) {
  if (claims.load() == 0) return;
  std::vector<const void*> keys;
  claimOptimizer(keys, o);
  if (const char* task = ownerOf(keys)) busy(what, task);
}

void checkGraphIdle(const torch::Tensor& t, const char* what) {
  if (claims.load() == 0) return;
  std::vector<const void*> keys;
  claimGraphLeaves(keys, t);
  if (const char* task = ownerOf(keys)) busy(what, task);
}

}  // namespace ft
