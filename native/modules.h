// Module types of finetorch's own (containers and architecture bases), shared
// by layers.cc (built-in layers) and the architecture files (vision.cc).
#pragma once
#include "common.h"

namespace ft {

// A module whose forward is written in TypeScript (user-defined networks and
// named containers); natively it only holds children and parameters.
struct ContainerImpl : torch::nn::Module {
  explicit ContainerImpl(std::string name) : torch::nn::Module(std::move(name)) {}
};

// Runs its children in registration order. Unlike torch::nn::Sequential it
// reads the children on every call, so replaceChild() takes effect.
struct SequentialImpl : torch::nn::Module {
  SequentialImpl() : torch::nn::Module("finetorch::Sequential") {}
  // Appends a child named by its position, as nn.Sequential does.
  template <typename M>
  void push(M module) {
    register_module(std::to_string(children().size()), module);
  }
};

struct IdentityImpl : torch::nn::Module {
  IdentityImpl() : torch::nn::Module("finetorch::Identity") {}
};

// Base of native architectures and blocks (ResNet, BasicBlock, ...). Their
// forward() reaches children by name through run(), never through member
// pointers, so a child swapped with replaceChild() (a new head) is used.
struct ArchModule : torch::nn::Module {
  explicit ArchModule(std::string name) : torch::nn::Module(std::move(name)) {}
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  // Several inputs (text models: input ids, attention mask, token type ids).
  virtual std::vector<torch::Tensor> forwardMany(const std::vector<torch::Tensor>& inputs) {
    TORCH_CHECK(inputs.size() == 1, name(), ".forward: expected 1 input tensor, got ", inputs.size());
    return {forward(inputs[0])};
  }

 protected:
  // Runs the child at a dotted path ("attention.self.query").
  torch::Tensor run(const std::string& path, const torch::Tensor& x);
  bool hasChild(const std::string& child) const;
};

// A plain holder of children with no forward of its own, inside a native
// architecture (HF's "attention", "output", ... groups).
struct GroupImpl : torch::nn::Module {
  GroupImpl() : torch::nn::Module("finetorch::Group") {}
};

// Native architectures by kind (vision.cc, text.cc); nullptr for an unknown kind.
std::shared_ptr<torch::nn::Module> createArchitecture(const std::string& kind, const Napi::Object& options);
std::shared_ptr<torch::nn::Module> createTextArchitecture(const std::string& kind, const Napi::Object& options);

}  // namespace ft
