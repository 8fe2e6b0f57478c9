// TorchScript modules (torch.jit.save files): loaded with torch::jit::load and
// mirrored as a tree of nn modules that share the very same parameter and
// buffer tensors, so namedParameters(), optimizers, stateDict(), train()/eval()
// and to() work as for any module, while forward runs the TorchScript graph.
// A head is swapped by replacing its parameters (registerParameter on the
// head's mirror sets the shared tensor's data, which the graph then uses).
#include "modules.h"
#include <torch/script.h>

namespace ft {
namespace {

std::string shortName(const torch::jit::Module& m) {
  std::string n = m.type()->name() ? m.type()->name()->name() : "TorchScript";
  return n;
}

struct JitModuleImpl : ArchModule {
  torch::jit::Module jit;
  explicit JitModuleImpl(torch::jit::Module m) : ArchModule(shortName(m)), jit(std::move(m)) {
    for (const auto& p : jit.named_parameters(false)) register_parameter(p.name, p.value, p.value.requires_grad());
    for (const auto& b : jit.named_buffers(false)) register_buffer(b.name, b.value);
    for (const auto& c : jit.named_children()) register_module(c.name, std::make_shared<JitModuleImpl>(c.value));
    torch::nn::Module::train(jit.is_training());
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    torch::jit::IValue out = jit.forward({x});
    if (out.isTensor()) return out.toTensor();
    if (out.isTuple() && !out.toTupleRef().elements().empty() && out.toTupleRef().elements()[0].isTensor())
      return out.toTupleRef().elements()[0].toTensor();
    throw std::runtime_error(name() + ".forward returned " + out.tagKind() + ", not a Tensor");
  }
  void train(bool on) override {
    jit.train(on);
    torch::nn::Module::train(on);
  }
};

static Napi::Value JitLoad(const Info& info) {
  std::string path = toString(info[0], "path");
  torch::jit::Module m;
  try {
    m = torch::jit::load(path, torch::kCPU);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": not a loadable TorchScript file: " + e.what_without_backtrace());
  }
  return ModuleWrap::New(info.Env(), std::make_shared<JitModuleImpl>(std::move(m)));
}

static Napi::Value JitSave(const Info& info) {
  auto m = toModule(info[0], "module");
  auto* jm = dynamic_cast<JitModuleImpl*>(m.get());
  if (!jm)
    throw ArgError("jit.save: the module was not loaded with jit.load (only TorchScript modules can be saved as TorchScript)");
  jm->jit.save(toString(info[1], "path"));
  return info.Env().Undefined();
}

static Napi::Value IsJitModule(const Info& info) {
  return Napi::Boolean::New(info.Env(), dynamic_cast<JitModuleImpl*>(toModule(info[0], "module", Access::keep).get()) != nullptr);
}

}  // namespace

void registerJit(Napi::Env env, Napi::Object exports) {
  def(env, exports, "jitLoad", JitLoad);
  def(env, exports, "jitSave", JitSave);
  def(env, exports, "isJitModule", IsJitModule);
}

}  // namespace ft
