// torchvision's image classifiers, natively: ResNet-18/34/50/101/152, VGG-11/16
// (with and without BatchNorm) and EfficientNet-B0. Children and parameters
// carry torchvision's names and registration order, so torchvision state dicts
// load unchanged; forward is one native call.
#include "modules.h"

namespace ft {
namespace {

namespace nn = torch::nn;
using ModulePtr = std::shared_ptr<torch::nn::Module>;

nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t padding = 0, int64_t groups = 1,
                bool bias = false) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(padding).groups(groups).bias(bias));
}
nn::BatchNorm2d bn(int64_t c) { return nn::BatchNorm2d(nn::BatchNormOptions(c)); }

// ---- ResNet (torchvision v1.5: stride on the 3x3 conv of Bottleneck) -------

struct BasicBlockImpl : ArchModule {
  static constexpr int64_t expansion = 1;
  BasicBlockImpl(int64_t in, int64_t planes, int64_t stride) : ArchModule("BasicBlock") {
    register_module("conv1", conv(in, planes, 3, stride, 1));
    register_module("bn1", bn(planes));
    register_module("relu", nn::ReLU());
    register_module("conv2", conv(planes, planes, 3, 1, 1));
    register_module("bn2", bn(planes));
    if (stride != 1 || in != planes) {
      auto down = std::make_shared<SequentialImpl>();
      down->push(conv(in, planes, 1, stride));
      down->push(bn(planes));
      register_module("downsample", down);
    }
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    torch::Tensor out = run("relu", run("bn1", run("conv1", x)));
    out = run("bn2", run("conv2", out));
    torch::Tensor identity = hasChild("downsample") ? run("downsample", x) : x;
    return run("relu", out + identity);
  }
};

struct BottleneckImpl : ArchModule {
  static constexpr int64_t expansion = 4;
  BottleneckImpl(int64_t in, int64_t planes, int64_t stride) : ArchModule("Bottleneck") {
    register_module("conv1", conv(in, planes, 1));
    register_module("bn1", bn(planes));
    register_module("conv2", conv(planes, planes, 3, stride, 1));
    register_module("bn2", bn(planes));
    register_module("conv3", conv(planes, planes * expansion, 1));
    register_module("bn3", bn(planes * expansion));
    register_module("relu", nn::ReLU());
    if (stride != 1 || in != planes * expansion) {
      auto down = std::make_shared<SequentialImpl>();
      down->push(conv(in, planes * expansion, 1, stride));
      down->push(bn(planes * expansion));
      register_module("downsample", down);
    }
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    torch::Tensor out = run("relu", run("bn1", run("conv1", x)));
    out = run("relu", run("bn2", run("conv2", out)));
    out = run("bn3", run("conv3", out));
    torch::Tensor identity = hasChild("downsample") ? run("downsample", x) : x;
    return run("relu", out + identity);
  }
};

struct ResNetImpl : ArchModule {
  template <typename Block>
  ModulePtr layer(int64_t& in, int64_t planes, int64_t blocks, int64_t stride) {
    auto seq = std::make_shared<SequentialImpl>();
    for (int64_t i = 0; i < blocks; i++) {
      seq->push(std::make_shared<Block>(in, planes, i == 0 ? stride : 1));
      in = planes * Block::expansion;
    }
    return seq;
  }

  // width: channels of layer1 (torchvision: 64; layer2..4 double it).
  // smallStem: a 3x3 stride-1 conv and no max-pool, for 28x28/32x32 images
  // (the CIFAR variant); the module names stay torchvision's.
  template <typename Block>
  void build(const std::array<int64_t, 4>& layers, int64_t numClasses, int64_t width, int64_t inChannels, bool smallStem) {
    int64_t in = width;
    register_module("conv1", smallStem ? conv(inChannels, width, 3, 1, 1) : conv(inChannels, width, 7, 2, 3));
    register_module("bn1", bn(width));
    register_module("relu", nn::ReLU());
    if (!smallStem) register_module("maxpool", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1)));
    register_module("layer1", layer<Block>(in, width, layers[0], 1));
    register_module("layer2", layer<Block>(in, width * 2, layers[1], 2));
    register_module("layer3", layer<Block>(in, width * 4, layers[2], 2));
    register_module("layer4", layer<Block>(in, width * 8, layers[3], 2));
    register_module("avgpool", nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({1, 1})));
    register_module("fc", nn::Linear(width * 8 * Block::expansion, numClasses));
    // torchvision's initialisation: kaiming-normal convs (fan_out, relu), BN weight 1 / bias 0
    torch::NoGradGuard g;
    for (auto& m : modules(false)) {
      if (auto* c = dynamic_cast<nn::Conv2dImpl*>(m.get())) nn::init::kaiming_normal_(c->weight, 0, torch::kFanOut, torch::kReLU);
    }
  }

  ResNetImpl(int64_t depth, int64_t numClasses, int64_t width, int64_t inChannels, bool smallStem) : ArchModule("ResNet") {
    if (width < 1 || width > 4096) throw ArgError("ResNet: width must be in 1..4096");
    if (inChannels < 1 || inChannels > 4096) throw ArgError("ResNet: inChannels must be in 1..4096");
    switch (depth) {
      case 18:
        build<BasicBlockImpl>({2, 2, 2, 2}, numClasses, width, inChannels, smallStem);
        break;
      case 34:
        build<BasicBlockImpl>({3, 4, 6, 3}, numClasses, width, inChannels, smallStem);
        break;
      case 50:
        build<BottleneckImpl>({3, 4, 6, 3}, numClasses, width, inChannels, smallStem);
        break;
      case 101:
        build<BottleneckImpl>({3, 4, 23, 3}, numClasses, width, inChannels, smallStem);
        break;
      case 152:
        build<BottleneckImpl>({3, 8, 36, 3}, numClasses, width, inChannels, smallStem);
        break;
      default:
        throw ArgError("ResNet: depth must be 18, 34, 50, 101 or 152");
    }
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    torch::Tensor y = run("relu", run("bn1", run("conv1", x)));
    if (hasChild("maxpool")) y = run("maxpool", y);
    for (const char* l : {"layer1", "layer2", "layer3", "layer4"}) y = run(l, y);
    return run("fc", torch::flatten(run("avgpool", y), 1));
  }
};

// ---- VGG ------------------------------------------------------------------

struct VGGImpl : ArchModule {
  VGGImpl(int64_t depth, bool batchNorm, int64_t numClasses, double dropout) : ArchModule("VGG") {
    std::vector<int64_t> cfg;  // 0 = max pool
    if (depth == 11) cfg = {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};
    else if (depth == 16) cfg = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};
    else throw ArgError("VGG: depth must be 11 or 16");
    auto features = std::make_shared<SequentialImpl>();
    int64_t in = 3;
    for (int64_t v : cfg) {
      if (v == 0) {
        features->push(nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(2)));
        continue;
      }
      features->push(conv(in, v, 3, 1, 1, 1, true));
      if (batchNorm) features->push(bn(v));
      features->push(nn::ReLU());
      in = v;
    }
    register_module("features", features);
    register_module("avgpool", nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({7, 7})));
    auto classifier = std::make_shared<SequentialImpl>();
    classifier->push(nn::Linear(512 * 7 * 7, 4096));
    classifier->push(nn::ReLU());
    classifier->push(nn::Dropout(dropout));
    classifier->push(nn::Linear(4096, 4096));
    classifier->push(nn::ReLU());
    classifier->push(nn::Dropout(dropout));
    classifier->push(nn::Linear(4096, numClasses));
    register_module("classifier", classifier);
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    return run("classifier", torch::flatten(run("avgpool", run("features", x)), 1));
  }
};

// ---- EfficientNet-B0 -------------------------------------------------------

// torchvision's Conv2dNormActivation: a Sequential of conv ('0'), BatchNorm ('1')
// and optionally SiLU ('2'); the conv has no bias and "same" padding.
ModulePtr convNormAct(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t groups, bool activation) {
  auto seq = std::make_shared<SequentialImpl>();
  seq->push(conv(in, out, k, stride, (k - 1) / 2, groups));
  seq->push(bn(out));
  if (activation) seq->push(nn::SiLU());
  return seq;
}

struct SqueezeExcitationImpl : ArchModule {
  SqueezeExcitationImpl(int64_t channels, int64_t squeeze) : ArchModule("SqueezeExcitation") {
    register_module("avgpool", nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({1, 1})));
    register_module("fc1", conv(channels, squeeze, 1, 1, 0, 1, true));
    register_module("fc2", conv(squeeze, channels, 1, 1, 0, 1, true));
    register_module("activation", nn::SiLU());
    register_module("scale_activation", nn::Sigmoid());
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    torch::Tensor scale = run("scale_activation", run("fc2", run("activation", run("fc1", run("avgpool", x)))));
    return scale * x;
  }
};

// Randomly drops whole samples of the residual branch in training (torchvision's
// StochasticDepth, mode "row"); the identity in eval mode.
struct StochasticDepthImpl : ArchModule {
  double p;
  explicit StochasticDepthImpl(double p) : ArchModule("StochasticDepth"), p(p) {}
  torch::Tensor forward(const torch::Tensor& x) override {
    if (!is_training() || p == 0.0) return x;
    std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
    shape[0] = x.size(0);
    torch::Tensor keep = torch::empty(shape, x.options()).bernoulli_(1.0 - p);
    if (p < 1.0) keep.div_(1.0 - p);
    return x * keep;
  }
};

struct MBConvImpl : ArchModule {
  bool residual;
  MBConvImpl(int64_t expandRatio, int64_t kernel, int64_t stride, int64_t in, int64_t out, double sdProb) : ArchModule("MBConv") {
    residual = stride == 1 && in == out;
    int64_t expanded = in * expandRatio;  // a multiple of 8 for every B0 stage
    auto block = std::make_shared<SequentialImpl>();
    if (expanded != in) block->push(convNormAct(in, expanded, 1, 1, 1, true));
    block->push(convNormAct(expanded, expanded, kernel, stride, expanded, true));
    block->push(std::make_shared<SqueezeExcitationImpl>(expanded, std::max<int64_t>(1, in / 4)));
    block->push(convNormAct(expanded, out, 1, 1, 1, false));
    register_module("block", block);
    register_module("stochastic_depth", std::make_shared<StochasticDepthImpl>(sdProb));
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    torch::Tensor y = run("block", x);
    if (residual) y = run("stochastic_depth", y) + x;
    return y;
  }
};

struct EfficientNetImpl : ArchModule {
  EfficientNetImpl(int64_t numClasses, double dropout, double stochasticDepthProb) : ArchModule("EfficientNet") {
    // expand ratio, kernel, stride, in, out, layers (EfficientNet-B0, Table 1)
    const int64_t stages[7][6] = {{1, 3, 1, 32, 16, 1},  {6, 3, 2, 16, 24, 2},   {6, 5, 2, 24, 40, 2},  {6, 3, 2, 40, 80, 3},
                                  {6, 5, 1, 80, 112, 3}, {6, 5, 2, 112, 192, 4}, {6, 3, 1, 192, 320, 1}};
    int64_t total = 0;
    for (auto& s : stages) total += s[5];
    auto features = std::make_shared<SequentialImpl>();
    features->push(convNormAct(3, 32, 3, 2, 1, true));
    int64_t id = 0;
    for (auto& s : stages) {
      auto stage = std::make_shared<SequentialImpl>();
      for (int64_t i = 0; i < s[5]; i++) {
        double sd = stochasticDepthProb * static_cast<double>(id++) / static_cast<double>(total);
        stage->push(std::make_shared<MBConvImpl>(s[0], s[1], i == 0 ? s[2] : 1, i == 0 ? s[3] : s[4], s[4], sd));
      }
      features->push(stage);
    }
    features->push(convNormAct(320, 1280, 1, 1, 1, true));
    register_module("features", features);
    register_module("avgpool", nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({1, 1})));
    auto classifier = std::make_shared<SequentialImpl>();
    classifier->push(nn::Dropout(dropout));
    classifier->push(nn::Linear(1280, numClasses));
    register_module("classifier", classifier);
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    return run("classifier", torch::flatten(run("avgpool", run("features", x)), 1));
  }
};

}  // namespace

std::shared_ptr<torch::nn::Module> createArchitecture(const std::string& kind, const Napi::Object& o) {
  int64_t numClasses = intField(o, "numClasses", 1000);
  if (numClasses < 1) throw ArgError(kind + ": numClasses must be >= 1");
  if (kind == "ResNet")
    return std::make_shared<ResNetImpl>(intField(o, "depth", 50), numClasses, intField(o, "width", 64),
                                        intField(o, "inChannels", 3), boolField(o, "smallStem", false));
  if (kind == "VGG")
    return std::make_shared<VGGImpl>(intField(o, "depth", 16), boolField(o, "batchNorm", false), numClasses,
                                     doubleField(o, "dropout", 0.5));
  if (kind == "EfficientNetB0")
    return std::make_shared<EfficientNetImpl>(numClasses, doubleField(o, "dropout", 0.2),
                                              doubleField(o, "stochasticDepthProb", 0.2));
  return createTextArchitecture(kind, o);
}

}  // namespace ft
