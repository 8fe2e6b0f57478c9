// TorchScript modules (torch.jit.save files): loaded with torch::jit::load and
// mirrored as a tree of nn modules that share the very same parameter and
// buffer tensors, so namedParameters(), optimizers, stateDict(), train()/eval()
// and to() work as for any module, while forward runs the TorchScript graph.
// A head is swapped by replacing its parameters (registerParameter on the
// head's mirror sets the shared tensor's data, which the graph then uses).
//
// jitTrace records a forward of one of our modules (native or TypeScript: the
// tracer is thread-local state on the main thread, and every op a forward
// calls goes through the dispatcher, which records it) into a
// torch::jit::Module that holds the very same parameter and buffer tensors
// under the same dotted names, with the recorded graph as its forward, as
// Python's torch.jit.trace does (tracer with `self`, then the compilation
// unit's create_function and the type's addMethod). The graph is also handed
// to TypeScript as plain objects for the ONNX converter (lib/io/onnx.ts).
#include "modules.h"
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/script.h>
#include <cctype>
#include <unordered_map>

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
  torch::Tensor forward(const torch::Tensor& x) override { return forwardMany({x}).at(0); }
  std::vector<torch::Tensor> forwardMany(const std::vector<torch::Tensor>& inputs) override {
    torch::jit::IValue out = jit.forward(std::vector<torch::jit::IValue>(inputs.begin(), inputs.end()));
    if (out.isTensor()) return {out.toTensor()};
    if (out.isTuple() && !out.toTupleRef().elements().empty() && out.toTupleRef().elements()[0].isTensor())
      return {out.toTupleRef().elements()[0].toTensor()};
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

// ---- tracing ----------------------------------------------------------------

// The dotted path of every module of the tree being traced, so the nodes a
// module records carry its path as their scope (the ONNX converter names the
// module an unsupported op came from). Set only while jitTrace runs.
thread_local const std::unordered_map<const torch::nn::Module*, std::string>* tracedPaths = nullptr;

// The short class name ("Conv2d", "BasicBlock", a TypeScript class name) as a
// valid TorchScript class name.
std::string className(const torch::nn::Module& m) {
  std::string n = m.name();
  auto colon = n.rfind("::");
  if (colon != std::string::npos) n = n.substr(colon + 2);
  if (n.size() > 4 && n.compare(n.size() - 4, 4, "Impl") == 0) n = n.substr(0, n.size() - 4);
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  if (n.empty() || std::isdigit(static_cast<unsigned char>(n[0]))) n = "M" + n;
  return n;
}

// A TorchScript module mirroring `m`: the same parameter and buffer tensors
// (not copies) under the same names, children likewise, in PyTorch's order.
torch::jit::Module mirror(const torch::nn::Module& m, const std::shared_ptr<torch::jit::CompilationUnit>& cu, bool training) {
  torch::jit::Module out(c10::QualifiedName("__torch__.finetorch." + className(m)), cu, /*shouldMangle=*/true);
  for (const auto& p : m.named_parameters(false)) out.register_parameter(p.key(), p.value(), /*is_buffer=*/false);
  for (const auto& b : m.named_buffers(false)) out.register_buffer(b.key(), b.value());
  for (const auto& c : m.named_children()) out.register_module(c.key(), mirror(*c.value(), cu, training));
  out.register_attribute("training", c10::BoolType::get(), training);
  return out;
}

// A constant's value as a JS value (tensors as handles).
Napi::Value constantValue(Napi::Env env, const torch::jit::Value* v) {
  compat::optional<torch::jit::IValue> iv = torch::jit::toIValue(v);
  if (!iv || iv->isNone()) return env.Null();
  if (iv->isBool()) return Napi::Boolean::New(env, iv->toBool());
  if (iv->isInt()) return Napi::Number::New(env, static_cast<double>(iv->toInt()));
  if (iv->isDouble()) return Napi::Number::New(env, iv->toDouble());
  if (iv->isString()) return Napi::String::New(env, iv->toStringRef());
  if (iv->isTensor()) return wrap(env, iv->toTensor());
  if (iv->isDevice()) return Napi::String::New(env, iv->toDevice().str());
  if (iv->isIntList() || iv->isDoubleList() || iv->isBoolList()) {
    Napi::Array a = Napi::Array::New(env);
    uint32_t i = 0;
    if (iv->isIntList())
      for (int64_t x : iv->toIntVector()) a.Set(i++, Napi::Number::New(env, static_cast<double>(x)));
    else if (iv->isDoubleList())
      for (double x : iv->toDoubleVector()) a.Set(i++, Napi::Number::New(env, x));
    else
      for (bool x : iv->toBoolList()) a.Set(i++, Napi::Boolean::New(env, x));
    return a;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("unsupported", iv->tagKind());
  return o;
}

// A value's dtype and shape as the trace saw them (null when not a tensor).
Napi::Value tensorType(Napi::Env env, const torch::jit::Value* v) {
  auto t = v->type()->cast<c10::TensorType>();
  if (!t) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  if (t->scalarType()) o.Set("dtype", dtypeName(*t->scalarType()));
  if (auto sizes = t->sizes().concrete_sizes()) {
    Napi::Array shape = Napi::Array::New(env, sizes->size());
    for (size_t i = 0; i < sizes->size(); i++)
      shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>((*sizes)[i])));
    o.Set("shape", shape);
  }
  return o;
}

Napi::Array names(Napi::Env env, c10::ArrayRef<torch::jit::Value*> values) {
  Napi::Array a = Napi::Array::New(env, values.size());
  for (size_t i = 0; i < values.size(); i++) a.Set(static_cast<uint32_t>(i), values[i]->debugName());
  return a;
}

// The traced graph as plain objects: inputs and outputs (name, dtype, shape)
// and nodes in order ({ kind, inputs, outputs, types, scope }, constants with
// their `value`, parameters and buffers as kind 'param' with their dotted
// `name` and tensor `value`). The `self` input and its attribute reads are
// resolved here, so the graph is only over tensors and constants.
Napi::Object describeGraph(Napi::Env env, torch::jit::Graph& graph, const torch::jit::Module& self) {
  std::unordered_map<const torch::jit::Value*, std::pair<std::string, torch::jit::IValue>> objects;
  objects[graph.inputs()[0]] = {"", self._ivalue()};
  Napi::Array inputs = Napi::Array::New(env);
  for (size_t i = 1; i < graph.inputs().size(); i++) {
    Napi::Object in = Napi::Object::New(env);
    in.Set("name", graph.inputs()[i]->debugName());
    in.Set("type", tensorType(env, graph.inputs()[i]));
    inputs.Set(static_cast<uint32_t>(i - 1), in);
  }
  Napi::Array nodes = Napi::Array::New(env);
  uint32_t n = 0;
  for (torch::jit::Node* node : graph.nodes()) {
    Napi::Object o = Napi::Object::New(env);
    std::string kind = node->kind().toQualString();
    if (node->kind() == c10::prim::GetAttr) {
      auto found = objects.find(node->input(0));
      if (found == objects.end())
        throw std::runtime_error("jit.trace: attribute read from an unknown object in the traced graph");
      std::string attr = node->s(c10::attr::name);
      std::string path = found->second.first.empty() ? attr : found->second.first + "." + attr;
      torch::jit::IValue value = found->second.second.toObject()->getAttr(attr);
      if (value.isObject()) {
        objects[node->output()] = {path, value};
        continue;
      }
      if (!value.isTensor()) throw std::runtime_error("jit.trace: the graph reads '" + path + "', which is not a tensor");
      kind = "param";
      o.Set("name", path);
      o.Set("value", wrap(env, value.toTensor()));
    } else if (node->kind() == c10::prim::Constant) {
      o.Set("value", constantValue(env, node->output()));
    }
    if (!node->blocks().empty()) throw std::runtime_error("jit.trace: the traced graph has control flow (" + kind + ")");
    o.Set("kind", kind);
    o.Set("inputs", names(env, kind == "param" ? c10::ArrayRef<torch::jit::Value*>() : node->inputs()));
    o.Set("outputs", names(env, node->outputs()));
    Napi::Array types = Napi::Array::New(env, node->outputs().size());
    for (size_t i = 0; i < node->outputs().size(); i++) types.Set(static_cast<uint32_t>(i), tensorType(env, node->outputs()[i]));
    o.Set("types", types);
    o.Set("scope", node->scope() && !node->scope()->isRoot() ? node->scope()->name().toUnqualString() : "");
    nodes.Set(n++, o);
  }
  Napi::Array outputs = Napi::Array::New(env);
  for (size_t i = 0; i < graph.outputs().size(); i++) {
    Napi::Object out = Napi::Object::New(env);
    out.Set("name", graph.outputs()[i]->debugName());
    out.Set("type", tensorType(env, graph.outputs()[i]));
    outputs.Set(static_cast<uint32_t>(i), out);
  }
  Napi::Object g = Napi::Object::New(env);
  g.Set("inputs", inputs);
  g.Set("outputs", outputs);
  g.Set("nodes", nodes);
  return g;
}

// jitTrace(module, inputs, forward, argumentNames): forward(inputHandles)
// runs the module in JS and returns a tensor handle or an array of them.
// Returns { module: the TorchScript module, graph: describeGraph(...) }.
static Napi::Value JitTrace(const Info& info) {
  Napi::Env env = info.Env();
  auto root = toModule(info[0], "module");
  std::vector<torch::Tensor> inputs = toTensorList(info[1], "exampleInputs");
  if (!info[2].IsFunction()) throw ArgError("jitTrace: forward must be a function");
  Napi::Function forward = info[2].As<Napi::Function>();
  std::vector<std::string> argumentNames;
  if (info[3].IsArray())
    for (uint32_t i = 0; i < info[3].As<Napi::Array>().Length(); i++)
      argumentNames.push_back(toString(info[3].As<Napi::Array>().Get(i), "argumentNames"));
  if (torch::jit::tracer::isTracing()) throw std::runtime_error("jit.trace: a trace is already running");

  auto cu = std::make_shared<torch::jit::CompilationUnit>();
  torch::jit::Module self = mirror(*root, cu, root->is_training());
  std::unordered_map<const torch::nn::Module*, std::string> paths;
  for (const auto& m : root->named_modules()) paths[m.value().get()] = m.key();
  tracedPaths = &paths;
  struct Reset {
    ~Reset() { tracedPaths = nullptr; }
  } reset;

  torch::NoGradGuard noGrad;
  auto run = [&](torch::jit::Stack in) -> torch::jit::Stack {
    Napi::Array handles = Napi::Array::New(env, in.size());
    for (size_t i = 0; i < in.size(); i++) handles.Set(static_cast<uint32_t>(i), wrap(env, in[i].toTensor()));
    Napi::Value result = forward.Call({handles});
    torch::jit::Stack out;
    if (result.IsArray()) {
      Napi::Array a = result.As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); i++) out.emplace_back(toTensor(a.Get(i), "forward's output", Access::keep));
    } else {
      out.emplace_back(toTensor(result, "forward's output", Access::keep));
    }
    return out;
  };
  torch::jit::Stack stack(inputs.begin(), inputs.end());
  auto traced = torch::jit::tracer::trace(
      std::move(stack), run, [](const torch::autograd::Variable&) { return std::string(); }, /*strict=*/true,
      /*force_outplace=*/false, &self, argumentNames);
  std::shared_ptr<torch::jit::Graph> graph = traced.first->graph;
  torch::jit::Function* method = cu->create_function(c10::QualifiedName(*self.type()->name(), "forward"), graph);
  self.type()->addMethod(method);

  Napi::Object result = Napi::Object::New(env);
  result.Set("graph", describeGraph(env, *graph, self));
  result.Set("module", ModuleWrap::New(env, std::make_shared<JitModuleImpl>(self)));
  return result;
}

}  // namespace

// Called by forwardModule (layers.cc) around each module's forward: while a
// trace runs, the nodes the module records get its dotted path as scope.
bool enterTraceScope(const torch::nn::Module& m) {
  if (!tracedPaths) return false;
  const auto& state = torch::jit::tracer::getTracingState();
  if (!state) return false;
  auto found = tracedPaths->find(&m);
  if (found == tracedPaths->end() || found->second.empty()) return false;
  // the scope only (Graph::push_scope would also open a TracedModuleForward block)
  state->graph->set_current_scope(state->graph->current_scope()->push(c10::Symbol::scope(found->second)));
  return true;
}

void leaveTraceScope() {
  const auto& state = torch::jit::tracer::getTracingState();
  if (state && !state->graph->current_scope()->isRoot()) state->graph->set_current_scope(state->graph->current_scope()->parent());
}

void registerJit(Napi::Env env, Napi::Object exports) {
  def(env, exports, "jitLoad", JitLoad);
  def(env, exports, "jitSave", JitSave);
  def(env, exports, "isJitModule", IsJitModule);
  def(env, exports, "jitTrace", JitTrace);
}

}  // namespace ft
