// Mixed precision: autocast state (torch.autocast) and the gradient scaler's
// unscale-and-check (GradScaler.unscale_). Autocast itself is libtorch's own
// dispatch key: these functions only set the thread-local state that turns it
// on, as Python's torch.autocast context manager does:
//   enter: save state, set enabled and dtype, increment_nesting()
//   exit:  if (decrement_nesting() == 0) clear_cache(); restore state
// The region's state travels to the torch thread with each async task
// (async.cc, AutocastTaskGuard below).
#include "autocast.h"
#include <ATen/autocast_mode.h>
#include <algorithm>
#include <atomic>

namespace ft {

namespace ac = at::autocast;

namespace {
// The outermost autocast region open on the main thread now (0: none); each
// gets a new number. Tasks carry the number of the region they were started
// in, and the torch thread keeps its cast cache only for the tasks of the
// region still open, so no cast outlives its region (as in Python, where
// leaving the outermost region clears the cache).
std::atomic<uint64_t> openRegion{0};
std::atomic<uint64_t> regionCount{0};
// The region whose casts the torch thread's cache holds (touched only there).
thread_local uint64_t cacheRegion = 0;

// On the torch thread: forget casts made for a region that has ended.
void dropCastsOfEndedRegion() {
  if (cacheRegion != 0 && cacheRegion != openRegion.load()) {
    ac::clear_cache();
    cacheRegion = 0;
  }
}
}  // namespace

// libtorch 2.4 replaced the per-device functions by ones taking a DeviceType.
AutocastState currentAutocast() {
  AutocastState s;
#if FT_TORCH_AT_LEAST(2, 4)
  s.cpuEnabled = ac::is_autocast_enabled(at::kCPU);
  s.cpuDtype = ac::get_autocast_dtype(at::kCPU);
  s.cudaEnabled = ac::is_autocast_enabled(at::kCUDA);
  s.cudaDtype = ac::get_autocast_dtype(at::kCUDA);
#else
  s.cpuEnabled = ac::is_cpu_enabled();
  s.cpuDtype = ac::get_autocast_cpu_dtype();
  s.cudaEnabled = ac::is_enabled();
  s.cudaDtype = ac::get_autocast_gpu_dtype();
#endif
  s.cacheEnabled = ac::is_autocast_cache_enabled();
  s.region = openRegion.load();
  return s;
}

void applyAutocast(const AutocastState& s) {
#if FT_TORCH_AT_LEAST(2, 4)
  ac::set_autocast_enabled(at::kCPU, s.cpuEnabled);
  ac::set_autocast_dtype(at::kCPU, s.cpuDtype);
  ac::set_autocast_enabled(at::kCUDA, s.cudaEnabled);
  ac::set_autocast_dtype(at::kCUDA, s.cudaDtype);
#else
  ac::set_cpu_enabled(s.cpuEnabled);
  ac::set_autocast_cpu_dtype(s.cpuDtype);
  ac::set_enabled(s.cudaEnabled);
  ac::set_autocast_gpu_dtype(s.cudaDtype);
#endif
  ac::set_autocast_cache_enabled(s.cacheEnabled);
}

void clearAutocastCache() { ac::clear_cache(); }

AutocastTaskGuard::AutocastTaskGuard(const AutocastState& s) : saved_(currentAutocast()), nested_(s.any()) {
  if (nested_) {
    if (cacheRegion != s.region) {
      ac::clear_cache();  // casts of another region
      cacheRegion = s.region;
    }
    ac::increment_nesting();
  }
  applyAutocast(s);
}

AutocastTaskGuard::~AutocastTaskGuard() {
  if (nested_) {
    ac::decrement_nesting();
    if (cacheRegion == 0) ac::clear_cache();  // started outside any region (e.g. a task's own)
    else dropCastsOfEndedRegion();
  }
  applyAutocast(saved_);
}

AutocastOff::AutocastOff() : saved_(currentAutocast()) {
  AutocastState off = saved_;
  off.cpuEnabled = false;
  off.cudaEnabled = false;
  applyAutocast(off);
}

namespace {

Napi::Object stateToJs(Napi::Env env, const AutocastState& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("cpuEnabled", s.cpuEnabled);
  o.Set("cpuDtype", dtypeName(s.cpuDtype));
  o.Set("cudaEnabled", s.cudaEnabled);
  o.Set("cudaDtype", dtypeName(s.cudaDtype));
  o.Set("cacheEnabled", s.cacheEnabled);
  return o;
}

// A low-precision dtype autocast can cast to.
at::ScalarType toAutocastDtype(const Napi::Value& v, const char* what) {
  at::ScalarType d = toDtype(v);
  if (d != at::kBFloat16 && d != at::kHalf)
    throw ArgError(std::string("autocast: ") + what + " must be 'bfloat16' or 'float16', got '" + dtypeName(d) + "'");
  return d;
}

// setAutocastState({cpuEnabled, cpuDtype, cudaEnabled, cudaDtype, cacheEnabled})
Napi::Value SetAutocastState(const Info& info) {
  if (!info[0].IsObject()) throw ArgError("setAutocastState: expected a state object");
  AutocastState s;
  s.cpuEnabled = toBool(field(info[0], "cpuEnabled"), "cpuEnabled");
  s.cpuDtype = toAutocastDtype(field(info[0], "cpuDtype"), "cpuDtype");
  s.cudaEnabled = toBool(field(info[0], "cudaEnabled"), "cudaEnabled");
  s.cudaDtype = toAutocastDtype(field(info[0], "cudaDtype"), "cudaDtype");
  s.cacheEnabled = toBool(field(info[0], "cacheEnabled"), "cacheEnabled");
  applyAutocast(s);
  return info.Env().Undefined();
}

// autocastEnter(): one more nesting level on this thread; returns the level.
Napi::Value AutocastEnter(const Info& info) {
  int level = ac::increment_nesting();
  if (level == 1) openRegion.store(++regionCount);
  return Napi::Number::New(info.Env(), level);
}

// autocastExit(): one level less; the outermost exit clears the cast caches
// of this thread and (after the tasks queued so far) of the torch thread.
Napi::Value AutocastExit(const Info& info) {
  int level = ac::decrement_nesting();
  if (level == 0) {
    openRegion.store(0);
    ac::clear_cache();
    postToTorchThread(dropCastsOfEndedRegion);
  }
  return Napi::Number::New(info.Env(), level);
}

// Whether this libtorch runs float16 autocast on the CPU: 1.13 casts only to
// bfloat16 there (its CPU matmul/conv kernels have no float16); 2.x does both.
bool cpuFloat16Autocast() { return FT_TORCH_AT_LEAST(2, 3); }

// Whether this libtorch has a CPU kernel for the gradient scaler's fused ops
// (_amp_foreach_non_finite_check_and_unscale_, _amp_update_scale_): 2.3+.
bool cpuAmpKernels() { return FT_TORCH_AT_LEAST(2, 3); }

// ampUnscale(grads, invScale): multiplies every gradient by invScale in place
// and returns whether any of them held an inf or NaN (GradScaler.unscale_).
// Uses libtorch's fused kernel where the device has it (CUDA; CPU from 2.3),
// else the same arithmetic op by op.
Napi::Value AmpUnscale(const Info& info) {
  std::vector<torch::Tensor> grads = toTensorList(info[0], "grads");
  double inv = toDouble(info[1], "invScale");
  torch::NoGradGuard noGrad;
  AutocastOff off;
  // the fused kernel takes one device and dtype per call
  std::vector<std::vector<torch::Tensor>> groups;
  for (const auto& g : grads) {
    if (!g.defined()) continue;
    if (!g.is_floating_point()) throw ArgError("ampUnscale: gradients must be floating point, got " + dtypeName(g.scalar_type()));
    auto same = [&](const std::vector<torch::Tensor>& grp) {
      return grp[0].device() == g.device() && grp[0].scalar_type() == g.scalar_type();
    };
    auto it = std::find_if(groups.begin(), groups.end(), same);
    if (it == groups.end()) groups.push_back({g});
    else it->push_back(g);
  }
  bool found = false;
  for (auto& grp : groups) {
    auto device = grp[0].device();
    if (device.is_cuda() || (device.is_cpu() && cpuAmpKernels())) {
      auto opts = torch::TensorOptions().dtype(torch::kFloat).device(device);
      torch::Tensor foundInf = torch::zeros({1}, opts);
      torch::Tensor invScale = torch::full({1}, inv, opts);
      at::_amp_foreach_non_finite_check_and_unscale_(grp, foundInf, invScale);
      found = found || foundInf.item<float>() != 0;
    } else {
      for (auto& g : grp) {
        if (!torch::isfinite(g).all().item<bool>()) found = true;
        g.mul_(inv);
      }
    }
  }
  return Napi::Boolean::New(info.Env(), found);
}

}  // namespace

void registerAutocast(Napi::Env env, Napi::Object e) {
  def(env, e, "autocastState", [](const Info& info) -> Napi::Value { return stateToJs(info.Env(), currentAutocast()); });
  def(env, e, "setAutocastState", SetAutocastState);
  def(env, e, "autocastEnter", AutocastEnter);
  def(env, e, "autocastExit", AutocastExit);
  def(env, e, "autocastSupport", [](const Info& info) -> Napi::Value {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("cpuFloat16", cpuFloat16Autocast());
    o.Set("cpuAmpKernels", cpuAmpKernels());
    return o;
  });
  def(env, e, "ampUnscale", AmpUnscale);
}

}  // namespace ft
