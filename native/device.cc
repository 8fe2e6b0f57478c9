// Devices and threads: CUDA discovery, intra-op threads, build information.
#include "common.h"
#include <atomic>
#include <ATen/Parallel.h>
#if FT_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace ft {

static Napi::Value CudaIsAvailable(const Info& info) { return Napi::Boolean::New(info.Env(), torch::cuda::is_available()); }
static Napi::Value CudaDeviceCount(const Info& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(torch::cuda::device_count()));
}

static Napi::Value CudaSynchronize(const Info& info) {
  if (!torch::cuda::is_available()) throw std::runtime_error("cuda.synchronize(): CUDA is not available");
  torch::cuda::synchronize(optInt(info[0], "device", -1));
  return info.Env().Undefined();
}

// Allocated / reserved bytes of the caching allocator on one device.
static Napi::Value CudaMemory(const Info& info) {
  if (!torch::cuda::is_available()) throw std::runtime_error("cuda.memoryStats(): CUDA is not available");
  int64_t device = optInt(info[0], "device", 0);
  Napi::Object out = Napi::Object::New(info.Env());
#if FT_WITH_CUDA
  auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
  // Index 0 of the stats arrays is StatType::AGGREGATE in every release; the
  // enum itself moved (c10::cuda::CUDACachingAllocator in 1.13, c10::CachingAllocator in 2.x).
  constexpr size_t agg = 0;
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

static Napi::Value SetNumThreads(const Info& info) {
  int64_t n = toInt(info[0], "threads");
  if (n < 1 || n > 4096) throw ArgError("setNumThreads: threads must be between 1 and 4096");
  at::set_num_threads(static_cast<int>(n));
  threadSettingGeneration.fetch_add(1);
  return info.Env().Undefined();
}

static Napi::Value GetNumThreads(const Info& info) { return Napi::Number::New(info.Env(), at::get_num_threads()); }

static Napi::Value BuildInfo(const Info& info) {
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

// ---- backend switches (torch.backends): process-wide flags of at::globalContext(),
// present in CPU builds too, with PyTorch's defaults (Python reads the same context).

// flag: 'cudnn.enabled' | 'cudnn.benchmark' | 'cudnn.deterministic' |
// 'cudnn.allowTF32' | 'cuda.matmul.allowTF32'.
static Napi::Value BackendFlag(const Info& info) {
  std::string flag = toString(info[0], "flag");
  auto& ctx = at::globalContext();
  bool value;
  if (flag == "cudnn.enabled") value = ctx.userEnabledCuDNN();
  else if (flag == "cudnn.benchmark") value = ctx.benchmarkCuDNN();
  else if (flag == "cudnn.deterministic") value = ctx.deterministicCuDNN();
  else if (flag == "cudnn.allowTF32") value = ctx.allowTF32CuDNN();
  else if (flag == "cuda.matmul.allowTF32") value = ctx.allowTF32CuBLAS();
  else throw ArgError("torch.backends: unknown flag '" + flag + "'");
  return Napi::Boolean::New(info.Env(), value);
}

static Napi::Value SetBackendFlag(const Info& info) {
  std::string flag = toString(info[0], "flag");
  bool value = toBool(info[1], flag.c_str());
  auto& ctx = at::globalContext();
  if (flag == "cudnn.enabled") ctx.setUserEnabledCuDNN(value);
  else if (flag == "cudnn.benchmark") ctx.setBenchmarkCuDNN(value);
  else if (flag == "cudnn.deterministic") ctx.setDeterministicCuDNN(value);
  else if (flag == "cudnn.allowTF32") ctx.setAllowTF32CuDNN(value);
  else if (flag == "cuda.matmul.allowTF32")
    ctx.setAllowTF32CuBLAS(value);  // also sets the float32 matmul precision, as in PyTorch
  else throw ArgError("torch.backends: unknown flag '" + flag + "'");
  return info.Env().Undefined();
}

static Napi::Value Float32MatmulPrecision(const Info& info) {
  switch (at::globalContext().float32MatmulPrecision()) {
    case at::Float32MatmulPrecision::HIGH:
      return Napi::String::New(info.Env(), "high");
    case at::Float32MatmulPrecision::MEDIUM:
      return Napi::String::New(info.Env(), "medium");
    default:
      return Napi::String::New(info.Env(), "highest");
  }
}

static Napi::Value SetFloat32MatmulPrecision(const Info& info) {
  std::string p = toString(info[0], "precision");
  if (p != "highest" && p != "high" && p != "medium")
    throw ArgError("setFloat32MatmulPrecision: expected 'highest', 'high' or 'medium', got '" + p + "'");
  at::globalContext().setFloat32MatmulPrecision(p);
  return info.Env().Undefined();
}

// cuDNN's version (e.g. 90100), or null where this libtorch has no cuDNN.
static Napi::Value CudnnVersion(const Info& info) {
  if (!at::Context::hasCuDNN()) return info.Env().Null();
  return Napi::Number::New(info.Env(), static_cast<double>(at::Context::versionCuDNN()));
}

void registerDevice(Napi::Env env, Napi::Object e) {
  def(env, e, "cudaIsAvailable", CudaIsAvailable);
  def(env, e, "cudaDeviceCount", CudaDeviceCount);
  def(env, e, "cudaSynchronize", CudaSynchronize);
  def(env, e, "cudaMemory", CudaMemory);
  def(env, e, "setNumThreads", SetNumThreads);
  def(env, e, "getNumThreads", GetNumThreads);
  def(env, e, "buildInfo", BuildInfo);
  def(env, e, "backendFlag", BackendFlag);
  def(env, e, "setBackendFlag", SetBackendFlag);
  def(env, e, "float32MatmulPrecision", Float32MatmulPrecision);
  def(env, e, "setFloat32MatmulPrecision", SetFloat32MatmulPrecision);
  def(env, e, "cudnnVersion", CudnnVersion);
}

}  // namespace ft
