// The torch::nn building blocks finetorch exposes, their construction from a
// plain options object (validated in TypeScript), and native forward.
#include "modules.h"

namespace ft {
namespace {

using ModulePtr = std::shared_ptr<torch::nn::Module>;

Napi::Value get(const Napi::Object& o, const char* key) { return o.Get(key); }
template <size_t D>
torch::ExpandingArray<D> pairOpt(const Napi::Object& o, const char* key, int64_t dflt) {
  Napi::Value v = o.Get(key);
  if (isMissing(v)) return torch::ExpandingArray<D>(dflt);
  std::vector<int64_t> xs = toIntList(v, key);
  if (xs.size() == 1) return torch::ExpandingArray<D>(xs[0]);
  if (xs.size() != D) throw ArgError(std::string(key) + ": expected " + std::to_string(D) + " values");
  return torch::ExpandingArray<D>(xs);
}

ModulePtr create(const std::string& kind, const Napi::Object& o) {
  namespace nn = torch::nn;
  if (kind == "Linear")
    return nn::Linear(nn::LinearOptions(toInt(get(o, "inFeatures"), "inFeatures"), toInt(get(o, "outFeatures"), "outFeatures"))
                          .bias(boolField(o, "bias", true)))
        .ptr();
  if (kind == "Conv2d")
    return nn::Conv2d(nn::Conv2dOptions(toInt(get(o, "inChannels"), "inChannels"), toInt(get(o, "outChannels"), "outChannels"),
                                        pairOpt<2>(o, "kernelSize", 1))
                          .stride(pairOpt<2>(o, "stride", 1))
                          .padding(pairOpt<2>(o, "padding", 0))
                          .dilation(pairOpt<2>(o, "dilation", 1))
                          .groups(intField(o, "groups", 1))
                          .bias(boolField(o, "bias", true)))
        .ptr();
  if (kind == "BatchNorm1d" || kind == "BatchNorm2d") {
    auto opts = nn::BatchNormOptions(toInt(get(o, "numFeatures"), "numFeatures"))
                    .eps(doubleField(o, "eps", 1e-5))
                    .momentum(doubleField(o, "momentum", 0.1))
                    .affine(boolField(o, "affine", true))
                    .track_running_stats(boolField(o, "trackRunningStats", true));
    if (kind == "BatchNorm1d") return nn::BatchNorm1d(opts).ptr();
    return nn::BatchNorm2d(opts).ptr();
  }
  if (kind == "LayerNorm")
    return nn::LayerNorm(nn::LayerNormOptions(toIntList(get(o, "normalizedShape"), "normalizedShape"))
                             .eps(doubleField(o, "eps", 1e-5))
                             .elementwise_affine(boolField(o, "elementwiseAffine", true)))
        .ptr();
  if (kind == "Embedding") {
    auto opts =
        nn::EmbeddingOptions(toInt(get(o, "numEmbeddings"), "numEmbeddings"), toInt(get(o, "embeddingDim"), "embeddingDim"));
    if (!isMissing(get(o, "paddingIdx"))) opts.padding_idx(toInt(get(o, "paddingIdx"), "paddingIdx"));
    return nn::Embedding(opts).ptr();
  }
  if (kind == "Dropout") return nn::Dropout(nn::DropoutOptions(doubleField(o, "p", 0.5))).ptr();
  if (kind == "ReLU") return nn::ReLU().ptr();
  if (kind == "GELU") {
    return nn::GELU(nn::GELUOptions().approximate(optString(get(o, "approximate"), "approximate", "none"))).ptr();
  }
  if (kind == "Tanh") return nn::Tanh().ptr();
  if (kind == "SiLU") return nn::SiLU().ptr();
  if (kind == "Sigmoid") return nn::Sigmoid().ptr();
  if (kind == "MaxPool2d") {
    auto opts = nn::MaxPool2dOptions(pairOpt<2>(o, "kernelSize", 1))
                    .padding(pairOpt<2>(o, "padding", 0))
                    .dilation(pairOpt<2>(o, "dilation", 1))
                    .ceil_mode(boolField(o, "ceilMode", false));
    if (!isMissing(get(o, "stride"))) opts.stride(pairOpt<2>(o, "stride", 1));
    return nn::MaxPool2d(opts).ptr();
  }
  if (kind == "AdaptiveAvgPool2d") {
    std::vector<int64_t> size = toIntList(get(o, "outputSize"), "outputSize");
    if (size.size() == 1) size.push_back(size[0]);
    if (size.size() != 2) throw ArgError("outputSize: expected 1 or 2 values");
    return nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({size[0], size[1]})).ptr();
  }
  if (kind == "Flatten")
    return nn::Flatten(nn::FlattenOptions().start_dim(intField(o, "startDim", 1)).end_dim(intField(o, "endDim", -1))).ptr();
  if (kind == "LSTM")
    return nn::LSTM(nn::LSTMOptions(toInt(get(o, "inputSize"), "inputSize"), toInt(get(o, "hiddenSize"), "hiddenSize"))
                        .num_layers(intField(o, "numLayers", 1))
                        .bias(boolField(o, "bias", true))
                        .batch_first(boolField(o, "batchFirst", false))
                        .dropout(doubleField(o, "dropout", 0.0))
                        .bidirectional(boolField(o, "bidirectional", false)))
        .ptr();
  if (kind == "Sequential") return std::make_shared<SequentialImpl>();
  if (kind == "Identity") return std::make_shared<IdentityImpl>();
  if (kind == "Container") return std::make_shared<ContainerImpl>(optString(get(o, "name"), "name", "Module"));
  if (auto arch = createArchitecture(kind, o)) return arch;
  throw ArgError("unknown module kind '" + kind + "'");
}

static Napi::Value CreateModule(const Info& info) {
  std::string kind = toString(info[0], "kind");
  Napi::Object options = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(info.Env());
  return ModuleWrap::New(info.Env(), create(kind, options));
}

torch::Tensor one(const std::vector<torch::Tensor>& inputs, const torch::nn::Module& m) {
  if (inputs.size() != 1)
    throw std::runtime_error(m.name() + ".forward: expected 1 input tensor, got " + std::to_string(inputs.size()));
  return inputs[0];
}

}  // namespace

torch::Tensor ArchModule::run(const std::string& path, const torch::Tensor& x) {
  torch::nn::Module* m = this;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    auto children = m->named_children();
    auto* found = children.find(part);
    TORCH_CHECK(found, name(), " has no child '", path, "'");
    m = found->get();
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return forwardModule(*m, {x}).at(0);
}

bool ArchModule::hasChild(const std::string& child) const { return named_children().contains(child); }

bool hasNativeForward(const torch::nn::Module& m) {
  if (dynamic_cast<const ContainerImpl*>(&m)) return false;
  if (dynamic_cast<const ArchModule*>(&m)) {
    // an architecture runs natively as long as every child does (a head
    // replaced by a TypeScript-defined module cannot be called from C++)
    for (const auto& c : m.children())
      if (!hasNativeForward(*c)) return false;
    return true;
  }
  if (auto* s = dynamic_cast<const SequentialImpl*>(&m)) {
    for (const auto& c : s->children())
      if (!hasNativeForward(*c)) return false;
    return true;
  }
  return true;
}

// jit.cc: while jit.trace runs, the nodes a module records carry its path.
bool enterTraceScope(const torch::nn::Module& m);
void leaveTraceScope();

std::vector<torch::Tensor> forwardModule(torch::nn::Module& m, const std::vector<torch::Tensor>& inputs) {
  namespace nn = torch::nn;
  struct TraceScope {
    bool entered;
    ~TraceScope() {
      if (entered) leaveTraceScope();
    }
  } scope{enterTraceScope(m)};
  if (auto* a = dynamic_cast<ArchModule*>(&m)) return a->forwardMany(inputs);
  if (auto* s = dynamic_cast<SequentialImpl*>(&m)) {
    std::vector<torch::Tensor> x = inputs;
    for (const auto& c : s->children()) x = {forwardModule(*c, x).at(0)};
    return x;
  }
  if (auto* l = dynamic_cast<nn::LSTMImpl*>(&m)) {
    if (inputs.empty() || inputs.size() == 2 || inputs.size() > 3)
      throw std::runtime_error("LSTM.forward: expected input, or input, h0 and c0");
    compat::optional<std::tuple<torch::Tensor, torch::Tensor>> hx;
    if (inputs.size() == 3) hx = std::make_tuple(inputs[1], inputs[2]);
    auto out = l->forward(inputs[0], hx);
    return {std::get<0>(out), std::get<0>(std::get<1>(out)), std::get<1>(std::get<1>(out))};
  }
  torch::Tensor x = one(inputs, m);
  if (dynamic_cast<IdentityImpl*>(&m)) return {x};
  if (auto* l = dynamic_cast<nn::LinearImpl*>(&m)) return {l->forward(x)};
  if (auto* l = dynamic_cast<nn::Conv2dImpl*>(&m)) return {l->forward(x)};
  if (auto* l = dynamic_cast<nn::BatchNorm1dImpl*>(&m)) return {l->forward(x)};
  if (auto* l = dynamic_cast<nn::BatchNorm2dImpl*>(&m)) return {l->forward(x)};
  if (auto* l = dynamic_cast<nn::LayerNormImpl*>(&m)) return {l->forward(x)};
  if (auto* l = dynamic_cast<nn::EmbeddingImpl*>(&m)) return {l->forward(x)};
  if (auto* l = dynamic_cast<nn::DropoutImpl*>(&m)) return {l->forward(x)};
  if (auto* l = dynamic_cast<nn::ReLUImpl*>(&m)) return {l->forward(x)};
  if (auto* l = dynamic_cast<nn::GELUImpl*>(&m)) return {l->forward(x)};
  if (auto* l = dynamic_cast<nn::TanhImpl*>(&m)) return {l->forward(x)};
  if (auto* l = dynamic_cast<nn::SiLUImpl*>(&m)) return {l->forward(x)};
  if (auto* l = dynamic_cast<nn::SigmoidImpl*>(&m)) return {l->forward(x)};
  if (auto* l = dynamic_cast<nn::MaxPool2dImpl*>(&m)) return {l->forward(x)};
  if (auto* l = dynamic_cast<nn::AdaptiveAvgPool2dImpl*>(&m)) return {l->forward(x)};
  if (auto* l = dynamic_cast<nn::FlattenImpl*>(&m)) return {l->forward(x)};
  throw std::runtime_error("module '" + m.name() + "' has no native forward; its forward() is defined in TypeScript");
}

void registerLayers(Napi::Env env, Napi::Object exports) { def(env, exports, "createModule", CreateModule); }

}  // namespace ft
