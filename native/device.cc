// Devices and threads: CUDA discovery, intra-op threads, build information.
#include "common.h"
#include <atomic>
#include <ATen/Parallel.h>
#if FT_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace ft {

FT_ENTRY(CudaIsAvailable) { return Napi::Boolean::New(info.Env(), torch::cuda::is_available()); }
FT_ENTRY(CudaDeviceCount) { return Napi::Number::New(info.Env(), static_cast<double>(torch::cuda::device_count())); }

FT_ENTRY(CudaSynchronize) {
  if (!torch::cuda::is_available()) throw std::runtime_error("cuda.synchronize(): CUDA is not available");
  torch::cuda::synchronize(isMissing(info[0]) ? -1 : toInt(info[0], "device"));
  return info.Env().Undefined();
}

// Allocated / reserved bytes of the caching allocator on one device.
FT_ENTRY(CudaMemory) {
  if (!torch::cuda::is_available()) throw std::runtime_error("cuda.memoryStats(): CUDA is not available");
  int64_t device = isMissing(info[0]) ? 0 : toInt(info[0], "device");
  Napi::Object out = Napi::Object::New(info.Env());
#if FT_WITH_CUDA
  auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
  using c10::cuda::CUDACachingAllocator::StatType;
  auto agg = static_cast<size_t>(StatType::AGGREGATE);
  out.Set("allocated", static_cast<double>(stats.allocated_bytes[agg].current));
  out.Set("maxAllocated", static_cast<double>(stats.allocated_bytes[agg].peak));
  out.Set("reserved", static_cast<double>(stats.reserved_bytes[agg].current));
  out.Set("maxReserved", static_cast<double>(stats.reserved_bytes[agg].peak));
#else
  (void)device;
  throw std::runtime_error("cuda.memoryStats(): this build has no CUDA support");
#endif
  return out;
}

// Bumped by every setNumThreads: worker threads apply the new intra-op count
// before their next task (async.cc; OpenMP's thread count is per thread).
std::atomic<int> threadSettingGeneration{0};

FT_ENTRY(SetNumThreads) {
  int64_t n = toInt(info[0], "threads");
  if (n < 1 || n > 4096) throw ArgError("setNumThreads: threads must be between 1 and 4096");
  at::set_num_threads(static_cast<int>(n));
  threadSettingGeneration.fetch_add(1);
  return info.Env().Undefined();
}

FT_ENTRY(GetNumThreads) { return Napi::Number::New(info.Env(), at::get_num_threads()); }

FT_ENTRY(BuildInfo) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("libtorchVersion", compat::versionString());
#if FT_WITH_CUDA
  out.Set("cuda", true);
#else
  out.Set("cuda", false);
#endif
  out.Set("parallelInfo", at::get_parallel_info());
  out.Set("config", at::show_config());
  return out;
}

void registerDevice(Napi::Env env, Napi::Object e) {
  e.Set("cudaIsAvailable", Napi::Function::New(env, CudaIsAvailable));
  e.Set("cudaDeviceCount", Napi::Function::New(env, CudaDeviceCount));
  e.Set("cudaSynchronize", Napi::Function::New(env, CudaSynchronize));
  e.Set("cudaMemory", Napi::Function::New(env, CudaMemory));
  e.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  e.Set("getNumThreads", Napi::Function::New(env, GetNumThreads));
  e.Set("buildInfo", Napi::Function::New(env, BuildInfo));
}

}  // namespace ft
