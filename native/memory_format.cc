// Memory formats (channels_last): converting a model's 4-D parameters and
// buffers in place, and a tensor's layout and strides. cuDNN and oneDNN pick
// NHWC kernels when the input or weight is channels_last.
#include "common.h"

namespace ft {

namespace {

// 'channelsLast' or 'contiguous' (PyTorch's torch.channels_last and
// torch.contiguous_format).
at::MemoryFormat toMemoryFormat(const Napi::Value& v) {
  std::string name = toString(v, "memoryFormat");
  if (name == "channelsLast") return at::MemoryFormat::ChannelsLast;
  if (name == "contiguous") return at::MemoryFormat::Contiguous;
  throw ArgError("memoryFormat: expected 'channelsLast' or 'contiguous', got '" + name + "'");
}

// `t` in `format` as PyTorch's t.to(memory_format=...) makes it, which
// module.to(memory_format=...) uses: unlike contiguous(), it also gives size-1
// dimensions their channels_last strides (a 1x1 conv weight [O, I, 1, 1] gets
// (I, 1, I, I), not (I, 1, 1, 1)). Only 4-D tensors take channels_last; others
// are returned as they are.
torch::Tensor inFormat(const torch::Tensor& t, at::MemoryFormat format) {
  if (format == at::MemoryFormat::ChannelsLast && t.dim() != 4) return t;
  return t.to(t.scalar_type(), /*non_blocking=*/false, /*copy=*/false, format);
}

// moduleToMemoryFormat(module, format): every 4-D parameter, its gradient and
// every 4-D buffer, in place with set_data, so tensor identity is kept and an
// optimizer made before still holds the parameters.
Napi::Value ModuleToMemoryFormat(const Info& info) {
  auto m = toModule(info[0], "module");
  at::MemoryFormat format = toMemoryFormat(info[1]);
  torch::NoGradGuard noGrad;
  for (auto& p : m->parameters(true)) {
    if (p.dim() != 4) continue;
    p.set_data(inFormat(p, format));
    if (p.grad().defined()) p.mutable_grad().set_data(inFormat(p.grad(), format));
  }
  for (auto& b : m->buffers(true))
    if (b.dim() == 4) b.set_data(inFormat(b, format));
  return info.Env().Undefined();
}

}  // namespace

void registerMemoryFormat(Napi::Env env, Napi::Object e) {
  def(env, e, "moduleToMemoryFormat", ModuleToMemoryFormat);
  // The tensor in `format` (itself when it already is); a 4-D tensor for channelsLast.
  def(env, e, "contiguousAs", [](const Info& a) {
    torch::Tensor t = toTensor(a[0], "tensor");
    at::MemoryFormat format = toMemoryFormat(a[1]);
    if (format == at::MemoryFormat::ChannelsLast && t.dim() != 4)
      throw ArgError("contiguous('channelsLast'): needs a 4-D tensor (N, C, H, W), got " + std::to_string(t.dim()) + "-D");
    return t.contiguous(format);
  });
  // A batch for a channels_last model: 4-D tensors converted, others unchanged.
  def(env, e, "inputInMemoryFormat", [](const Info& a) { return inFormat(toTensor(a[0], "input"), toMemoryFormat(a[1])); });
  def(env, e, "isContiguousAs", [](const Info& a) -> Napi::Value {
    torch::Tensor t = toTensor(a[0], "tensor", Access::keep);
    at::MemoryFormat format = toMemoryFormat(a[1]);
    if (format == at::MemoryFormat::ChannelsLast && t.dim() != 4) return Napi::Boolean::New(a.Env(), false);
    return Napi::Boolean::New(a.Env(), t.is_contiguous(format));
  });
  def(env, e, "strides", [](const Info& a) -> Napi::Value {
    torch::Tensor t = toTensor(a[0], "tensor", Access::keep);
    Napi::Array out = Napi::Array::New(a.Env(), t.dim());
    for (int64_t i = 0; i < t.dim(); i++) out.Set(static_cast<uint32_t>(i), static_cast<double>(t.stride(i)));
    return out;
  });
}

}  // namespace ft
