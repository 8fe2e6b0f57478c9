// Batches on their way to the training device (fit/evaluate/predict's
// `device`): a CPU batch bound for CUDA is copied into pinned (page-locked)
// host memory first, so the host-to-device copy runs asynchronously on the
// current stream and the step queued after it overlaps with it, as PyTorch's
// DataLoader(pin_memory=True) + .to(device, non_blocking=True) do. A CPU-only
// libtorch has no pinned memory: there batches are copied (or kept) as they are.
#include "autocast.h"

namespace ft {

namespace {

// Pinned memory needs the CUDA runtime (libtorch's CUDA host allocator).
bool pinningAvailable() { return at::globalContext().hasCUDA(); }

// moveBatchTensor(t, device, {channelsLast}): t on `device` (the same tensor
// when it is already there in the asked layout). channelsLast applies to 4-D
// tensors only (images), as PyTorch's memory_format does.
torch::Tensor MoveBatchTensor(const Info& info) {
  torch::Tensor t = toTensor(info[0], "tensor");
  torch::Device device = toDevice(info[1]);
  bool channelsLast = optBool(field(info[2], "channelsLast"), "channelsLast", false);
  auto format = channelsLast && t.dim() == 4 ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Preserve;
  bool toCuda = device.is_cuda() && t.is_cpu();
  if (toCuda && pinningAvailable() && !t.is_pinned()) t = t.pin_memory();
  // the pinned buffer stays reserved until the copy is done (the caching host allocator records the stream)
  return t.to(device, t.scalar_type(), /*non_blocking=*/toCuda && t.is_pinned(), /*copy=*/false, format);
}

}  // namespace

void registerTransfer(Napi::Env env, Napi::Object e) {
  def(env, e, "moveBatchTensor", MoveBatchTensor);
  def(env, e, "pinMemoryAvailable",
      [](const Info& info) -> Napi::Value { return Napi::Boolean::New(info.Env(), pinningAvailable()); });
}

}  // namespace ft
