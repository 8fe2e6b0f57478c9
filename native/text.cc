// Hugging Face text encoders with their heads, natively: Bert, Roberta and
// DistilBert ForSequenceClassification, ForTokenClassification and ForMaskedLM
// (chosen by the `task` option). Module and parameter names follow the Hugging
// Face checkpoints exactly ("bert.encoder.layer.0.attention.self.query.weight").
// The masked-LM decoders are tied to the word embeddings as transformers ties
// them: the logits are linear(h, word_embeddings.weight, bias), so the matrix
// is one parameter (an optimizer sees it once) and only the bias is the head's.
// Weights start as transformers initialises them (_init_weights): normal(0,
// initializer_range) for Linear and Embedding weights, zero biases and padding
// rows, LayerNorm 1 and 0.
// Dropout is applied functionally (it has no parameters), active in train mode.
// Attention runs as at::scaled_dot_product_attention on libtorch 2.x (fused
// kernels: flash / memory-efficient / cuDNN on CUDA, a fused CPU kernel), and
// as softmax(QK^T/sqrt(d) + mask) V on 1.13, which has no public SDPA.
#include "modules.h"
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/version.h>
#include <cmath>
#include <limits>

#if TORCH_VERSION_MAJOR >= 2
#define FT_TEXT_SDPA 1
#else
#define FT_TEXT_SDPA 0
#endif

namespace ft {
namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

// FeatureExtraction: the encoder alone (BertModel without its pooler); forward returns the last hidden state.
enum class TextTask { SequenceClassification, TokenClassification, MaskedLM, FeatureExtraction };

struct TextConfig {
  int64_t vocab, hidden, layers, heads, intermediate, maxPositions, typeVocab, padId, numClasses;
  double dropout, attentionDropout, classifierDropout, eps, initStd;
  TextTask task;
};

TextTask readTask(const Napi::Object& o) {
  std::string task = optString(o.Get("task"), "text model config: task", "sequenceClassification");
  if (task == "sequenceClassification") return TextTask::SequenceClassification;
  if (task == "tokenClassification") return TextTask::TokenClassification;
  if (task == "maskedLM") return TextTask::MaskedLM;
  if (task == "featureExtraction") return TextTask::FeatureExtraction;
  throw ArgError(
      "text model config: task must be 'sequenceClassification', 'tokenClassification', 'maskedLM' or 'featureExtraction', got "
      "'" +
      task + "'");
}

// The Hugging Face class name of a family ("Bert") with a task.
std::string className(const std::string& family, TextTask task) {
  switch (task) {
    case TextTask::TokenClassification:
      return family + "ForTokenClassification";
    case TextTask::MaskedLM:
      return family + "ForMaskedLM";
    case TextTask::FeatureExtraction:
      return family + "Model";
    default:
      return family + "ForSequenceClassification";
  }
}

TextConfig readConfig(const Napi::Object& o) {
  TextConfig c;
  c.vocab = intField(o, "vocabSize", 30522);
  c.hidden = intField(o, "hiddenSize", 768);
  c.layers = intField(o, "numHiddenLayers", 12);
  c.heads = intField(o, "numAttentionHeads", 12);
  c.intermediate = intField(o, "intermediateSize", 3072);
  c.maxPositions = intField(o, "maxPositionEmbeddings", 512);
  c.typeVocab = intField(o, "typeVocabSize", 2);
  c.padId = intField(o, "padTokenId", 0);
  c.numClasses = intField(o, "numClasses", 2);
  c.dropout = doubleField(o, "hiddenDropoutProb", 0.1);
  c.attentionDropout = doubleField(o, "attentionProbsDropoutProb", 0.1);
  c.classifierDropout = doubleField(o, "classifierDropout", c.dropout);
  c.eps = doubleField(o, "layerNormEps", 1e-12);
  c.initStd = doubleField(o, "initializerRange", 0.02);
  c.task = readTask(o);
  if (!(c.initStd >= 0)) throw ArgError("text model config: initializerRange must be >= 0");
  for (int64_t v : {c.vocab, c.hidden, c.layers, c.heads, c.intermediate, c.maxPositions, c.typeVocab, c.numClasses})
    if (v < 1) throw ArgError("text model config: sizes must be >= 1");
  if (c.hidden % c.heads != 0) throw ArgError("text model config: hiddenSize must be a multiple of numAttentionHeads");
  return c;
}

template <typename M>
std::shared_ptr<GroupImpl> group(std::initializer_list<std::pair<const char*, std::shared_ptr<M>>> children) {
  auto g = std::make_shared<GroupImpl>();
  for (const auto& [name, m] : children) g->register_module(name, m);
  return g;
}

std::shared_ptr<nn::LinearImpl> linear(int64_t in, int64_t out) { return nn::Linear(in, out).ptr(); }
std::shared_ptr<nn::LayerNormImpl> layerNorm(int64_t d, double eps) {
  return nn::LayerNorm(nn::LayerNormOptions({d}).eps(eps)).ptr();
}
std::shared_ptr<nn::EmbeddingImpl> embedding(int64_t n, int64_t d, int64_t padding = -1) {
  auto o = nn::EmbeddingOptions(n, d);
  if (padding >= 0) o.padding_idx(padding);
  return nn::Embedding(o).ptr();
}

// A child module at a dotted path ("bert.embeddings.word_embeddings").
nn::Module& childAt(nn::Module& root, const std::string& path) {
  nn::Module* m = &root;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    auto children = m->named_children();
    auto* found = children.find(part);
    TORCH_CHECK(found, root.name(), " has no child '", path, "'");
    m = found->get();
    if (dot == std::string::npos) return *m;
    start = dot + 1;
  }
}

// A module's own parameter ("weight", "bias") by name.
torch::Tensor parameterOf(nn::Module& m, const std::string& name) {
  auto params = m.named_parameters(false);
  auto* found = params.find(name);
  TORCH_CHECK(found, m.name(), " has no parameter '", name, "'");
  return *found;
}

// transformers' _init_weights for these models.
void initLikeTransformers(nn::Module& root, double std) {
  torch::NoGradGuard noGrad;
  // include_self=false: this runs in the constructor, before the root is owned by a shared_ptr
  for (const auto& m : root.modules(/*include_self=*/false)) {
    if (auto* l = m->as<nn::Linear>()) {
      l->weight.normal_(0, std);
      if (l->bias.defined()) l->bias.zero_();
    } else if (auto* e = m->as<nn::Embedding>()) {
      e->weight.normal_(0, std);
      if (e->options.padding_idx()) e->weight[*e->options.padding_idx()].zero_();
    } else if (auto* n = m->as<nn::LayerNorm>()) {
      n->weight.fill_(1);
      n->bias.zero_();
    }
  }
}

// A group holding a head's vocabulary bias (HF's cls.predictions.bias, lm_head.bias, vocab_projector.bias).
std::shared_ptr<GroupImpl> withVocabBias(std::shared_ptr<GroupImpl> g, int64_t vocab) {
  g->register_parameter("bias", torch::zeros({vocab}));
  return g;
}

// The [B, T] attention mask (1 = attend, 0 = padding; undefined = no mask) in
// the form attend() takes, computed once per forward for all layers.
// SDPA: bool [B, 1, 1, T], true = attend, as transformers passes it, and none
// at all when nothing is padded (then the flash kernel can run; this costs one
// host sync, as it does in transformers). Old path: additive [B, 1, 1, T] of 0
// or the lowest float, in the dtype of the scores.
torch::Tensor attentionMask(const torch::Tensor& mask, const torch::Tensor& like) {
  if (!mask.defined()) return {};
#if FT_TEXT_SDPA
  torch::Tensor attend = mask.ne(0);
  // (not while jit.trace records: the traced graph must keep the mask for any input)
  if (!torch::jit::tracer::isTracing() && attend.all().item<bool>()) return {};
  return attend.unsqueeze(1).unsqueeze(2);
#else
  torch::Tensor m = mask.to(like.scalar_type()).unsqueeze(1).unsqueeze(2);
  return (1.0 - m) * std::numeric_limits<float>::lowest();
#endif
}

// Scaled dot-product attention over heads; q, k, v are [B, T, H]; mask from attentionMask().
// Old path: BERT scales the scores by 1/sqrt(d); DistilBERT scales the queries first
// (as each does in Hugging Face's eager attention). SDPA scales by 1/sqrt(d) itself.
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& mask,
                     int64_t heads, double dropout, bool training, bool scaleQueries = false) {
  int64_t d = q.size(2) / heads;
  // unflatten/flatten rather than view({B, ...}): a traced graph then takes any batch size
  auto split = [&](const torch::Tensor& x) { return x.unflatten(2, {heads, d}).transpose(1, 2); };
#if FT_TEXT_SDPA
  compat::optional<torch::Tensor> attnMask;
  if (mask.defined()) attnMask = mask;
  torch::Tensor ctx = at::scaled_dot_product_attention(split(q), split(k), split(v), attnMask, training ? dropout : 0.0);
  return ctx.transpose(1, 2).flatten(2);
#else
  double scale = std::sqrt(static_cast<double>(d));
  torch::Tensor scores =
      scaleQueries ? (split(q) / scale).matmul(split(k).transpose(-1, -2)) : split(q).matmul(split(k).transpose(-1, -2)) / scale;
  if (mask.defined()) scores = scores + mask;
  torch::Tensor probs = F::dropout(scores.softmax(-1), F::DropoutFuncOptions().p(dropout).training(training));
  return probs.matmul(split(v)).transpose(1, 2).flatten(2);
#endif
}

// 0, 1, ..., T-1 for each row of ids [B, T]; while jit.trace records, as a
// cumulative sum of ones, so the traced graph takes any sequence length.
torch::Tensor positionIds(const torch::Tensor& ids) {
  auto options = ids.options().dtype(torch::kLong);
  if (torch::jit::tracer::isTracing()) return torch::ones_like(ids, options).cumsum(1) - 1;
  return torch::arange(ids.size(1), options).unsqueeze(0).expand_as(ids);
}

// What the masked-LM head runs on: every position's hidden state, [B, T, H],
// or with maskedPositions (int64 [N], flat indices into the B * T positions,
// as labels.view(-1).ne(-100).nonzero() gives them) only those, [N, H]. The
// head (transform, LayerNorm, the decoder over the vocabulary) acts on each
// position alone, so its logits there are the full forward's; the loss needs
// only the masked ~15%, and at a small hidden size the vocabulary projection
// is most of the compute.
torch::Tensor headInput(const torch::Tensor& x, const torch::Tensor& positions, const std::string& who, TextTask task) {
  if (!positions.defined()) return x;
  TORCH_CHECK(task == TextTask::MaskedLM, who, ".forward: maskedPositions is for the masked-LM head only");
  TORCH_CHECK(positions.dim() == 1 && positions.scalar_type() == torch::kLong, who,
              ".forward: maskedPositions must be int64 [N] (flat indices into batch * sequence), got ", positions.scalar_type(),
              " ", positions.sizes());
  return x.reshape({-1, x.size(-1)}).index_select(0, positions);
}

// One BERT/RoBERTa encoder layer (BertLayer).
struct BertLayerImpl : ArchModule {
  TextConfig c;
  explicit BertLayerImpl(const TextConfig& cfg) : ArchModule("BertLayer"), c(cfg) {
    auto self = group<nn::LinearImpl>(
        {{"query", linear(c.hidden, c.hidden)}, {"key", linear(c.hidden, c.hidden)}, {"value", linear(c.hidden, c.hidden)}});
    auto attnOut = std::make_shared<GroupImpl>();
    attnOut->register_module("dense", linear(c.hidden, c.hidden));
    attnOut->register_module("LayerNorm", layerNorm(c.hidden, c.eps));
    auto attention = std::make_shared<GroupImpl>();
    attention->register_module("self", self);
    attention->register_module("output", attnOut);
    register_module("attention", attention);
    register_module("intermediate", group<nn::LinearImpl>({{"dense", linear(c.hidden, c.intermediate)}}));
    auto out = std::make_shared<GroupImpl>();
    out->register_module("dense", linear(c.intermediate, c.hidden));
    out->register_module("LayerNorm", layerNorm(c.hidden, c.eps));
    register_module("output", out);
  }
  torch::Tensor forward(const torch::Tensor& x) override { return forwardMany({x}).at(0); }
  std::vector<torch::Tensor> forwardMany(const std::vector<torch::Tensor>& in) override {
    const torch::Tensor& x = in.at(0);
    torch::Tensor mask = in.size() > 1 ? in[1] : torch::Tensor();
    auto drop = [&](const torch::Tensor& t) {
      return F::dropout(t, F::DropoutFuncOptions().p(c.dropout).training(is_training()));
    };
    torch::Tensor ctx = attend(run("attention.self.query", x), run("attention.self.key", x), run("attention.self.value", x), mask,
                               c.heads, c.attentionDropout, is_training());
    torch::Tensor a = run("attention.output.LayerNorm", drop(run("attention.output.dense", ctx)) + x);
    torch::Tensor h = torch::gelu(run("intermediate.dense", a));
    return {run("output.LayerNorm", drop(run("output.dense", h)) + a)};
  }
};

// BERT and RoBERTa share everything but position ids, token types and the head.
struct BertFamilyImpl : ArchModule {
  TextConfig c;
  bool roberta;
  std::string base;  // "bert" or "roberta"

  BertFamilyImpl(const TextConfig& cfg, bool isRoberta)
      : ArchModule(className(isRoberta ? "Roberta" : "Bert", cfg.task)), c(cfg), roberta(isRoberta) {
    base = roberta ? "roberta" : "bert";
    auto model = std::make_shared<GroupImpl>();
    auto emb = std::make_shared<GroupImpl>();
    emb->register_module("word_embeddings", embedding(c.vocab, c.hidden, c.padId));
    emb->register_module("position_embeddings", embedding(c.maxPositions, c.hidden, roberta ? c.padId : -1));
    emb->register_module("token_type_embeddings", embedding(c.typeVocab, c.hidden));
    emb->register_module("LayerNorm", layerNorm(c.hidden, c.eps));
    model->register_module("embeddings", emb);
    auto layers = std::make_shared<GroupImpl>();
    for (int64_t i = 0; i < c.layers; i++) layers->register_module(std::to_string(i), std::make_shared<BertLayerImpl>(c));
    auto encoder = std::make_shared<GroupImpl>();
    encoder->register_module("layer", layers);
    model->register_module("encoder", encoder);
    // only BertForSequenceClassification has a pooler (the others build BertModel(add_pooling_layer=False))
    if (!roberta && c.task == TextTask::SequenceClassification)
      model->register_module("pooler", group<nn::LinearImpl>({{"dense", linear(c.hidden, c.hidden)}}));
    register_module(base, model);
    if (c.task == TextTask::MaskedLM) {
      if (roberta) {
        // RobertaLMHead: dense, gelu, layer_norm, decoder (tied) + bias
        auto head = withVocabBias(std::make_shared<GroupImpl>(), c.vocab);
        head->register_module("dense", linear(c.hidden, c.hidden));
        head->register_module("layer_norm", layerNorm(c.hidden, c.eps));
        register_module("lm_head", head);
      } else {
        // BertOnlyMLMHead: cls.predictions.transform (dense, gelu, LayerNorm), decoder (tied) + cls.predictions.bias
        auto transform = std::make_shared<GroupImpl>();
        transform->register_module("dense", linear(c.hidden, c.hidden));
        transform->register_module("LayerNorm", layerNorm(c.hidden, c.eps));
        auto predictions = withVocabBias(std::make_shared<GroupImpl>(), c.vocab);
        predictions->register_module("transform", transform);
        auto cls = std::make_shared<GroupImpl>();
        cls->register_module("predictions", predictions);
        register_module("cls", cls);
      }
    } else if (c.task == TextTask::FeatureExtraction) {
      // no head: other modules (a BiLSTM, a CRF) are put on top in TypeScript
    } else if (roberta && c.task == TextTask::SequenceClassification) {
      register_module("classifier", group<nn::LinearImpl>(
                                        {{"dense", linear(c.hidden, c.hidden)}, {"out_proj", linear(c.hidden, c.numClasses)}}));
    } else {
      register_module("classifier", linear(c.hidden, c.numClasses));
    }
    initLikeTransformers(*this, c.initStd);
  }

  torch::Tensor forward(const torch::Tensor& ids) override { return forwardMany({ids}).at(0); }

  // inputs: input ids [B, T], attention mask [B, T] (optional), token type ids [B, T] (optional),
  // masked positions [N] (optional, masked-LM only: logits [N, V] at those positions, see headInput)
  std::vector<torch::Tensor> forwardMany(const std::vector<torch::Tensor>& in) override {
    TORCH_CHECK(!in.empty() && in.size() <= 4, name(),
                ".forward: expected inputIds, attentionMask?, tokenTypeIds?, maskedPositions?");
    const torch::Tensor& ids = in[0];
    TORCH_CHECK(ids.dim() == 2, name(), ".forward: inputIds must be [batch, sequence], got ", ids.sizes());
    int64_t T = ids.size(1);
    TORCH_CHECK(T <= c.maxPositions - (roberta ? c.padId + 1 : 0), name(), ": sequence of ", T,
                " tokens is longer than the model's positions");
    torch::Tensor mask = in.size() > 1 ? in[1] : torch::Tensor();
    torch::Tensor types = in.size() > 2 && in[2].defined() ? in[2] : torch::zeros_like(ids);
    torch::Tensor positions;
    if (roberta) {
      // positions count non-padding tokens, starting after padding_idx (fairseq's convention)
      torch::Tensor notPad = ids.ne(c.padId).to(torch::kLong);
      positions = notPad.cumsum(1) * notPad + c.padId;
    } else {
      positions = positionIds(ids);
    }
    const std::string e = base + ".embeddings.";
    torch::Tensor x =
        run(e + "word_embeddings", ids) + run(e + "token_type_embeddings", types) + run(e + "position_embeddings", positions);
    x = F::dropout(run(e + "LayerNorm", x), F::DropoutFuncOptions().p(c.dropout).training(is_training()));
    torch::Tensor attnMask = attentionMask(mask, x);
    auto layers = named_children()[base]->named_children()["encoder"]->named_children()["layer"]->children();
    for (auto& layer : layers) x = forwardModule(*layer, {x, attnMask}).at(0);
    auto drop = [&](const torch::Tensor& t, double p) {
      return F::dropout(t, F::DropoutFuncOptions().p(p).training(is_training()));
    };
    if (c.task == TextTask::FeatureExtraction) {
      TORCH_CHECK(in.size() <= 3, name(), ".forward: maskedPositions is for the masked-LM head only");
      return {x};
    }
    torch::Tensor picked = headInput(x, in.size() > 3 ? in[3] : torch::Tensor(), name(), c.task);
    if (c.task == TextTask::MaskedLM) {
      torch::Tensor words = parameterOf(childAt(*this, e + "word_embeddings"), "weight");
      if (roberta) {
        torch::Tensor h = run("lm_head.layer_norm", torch::gelu(run("lm_head.dense", picked)));
        return {torch::linear(h, words, parameterOf(childAt(*this, "lm_head"), "bias"))};
      }
      torch::Tensor h = run("cls.predictions.transform.LayerNorm", torch::gelu(run("cls.predictions.transform.dense", picked)));
      return {torch::linear(h, words, parameterOf(childAt(*this, "cls.predictions"), "bias"))};
    }
    if (c.task == TextTask::TokenClassification) return {run("classifier", drop(x, c.classifierDropout))};
    torch::Tensor first = x.select(1, 0);
    if (roberta) {
      torch::Tensor h = torch::tanh(run("classifier.dense", drop(first, c.classifierDropout)));
      return {run("classifier.out_proj", drop(h, c.classifierDropout))};
    }
    torch::Tensor pooled = torch::tanh(run(base + ".pooler.dense", first));
    return {run("classifier", drop(pooled, c.classifierDropout))};
  }
};

// DistilBERT: its own names (q_lin, sa_layer_norm, ffn.lin1, ...), no token types, no pooler.
struct DistilLayerImpl : ArchModule {
  TextConfig c;
  explicit DistilLayerImpl(const TextConfig& cfg) : ArchModule("TransformerBlock"), c(cfg) {
    register_module("attention", group<nn::LinearImpl>({{"q_lin", linear(c.hidden, c.hidden)},
                                                        {"k_lin", linear(c.hidden, c.hidden)},
                                                        {"v_lin", linear(c.hidden, c.hidden)},
                                                        {"out_lin", linear(c.hidden, c.hidden)}}));
    register_module("sa_layer_norm", layerNorm(c.hidden, c.eps));
    register_module(
        "ffn", group<nn::LinearImpl>({{"lin1", linear(c.hidden, c.intermediate)}, {"lin2", linear(c.intermediate, c.hidden)}}));
    register_module("output_layer_norm", layerNorm(c.hidden, c.eps));
  }
  torch::Tensor forward(const torch::Tensor& x) override { return forwardMany({x}).at(0); }
  std::vector<torch::Tensor> forwardMany(const std::vector<torch::Tensor>& in) override {
    const torch::Tensor& x = in.at(0);
    torch::Tensor mask = in.size() > 1 ? in[1] : torch::Tensor();
    auto drop = [&](const torch::Tensor& t) {
      return F::dropout(t, F::DropoutFuncOptions().p(c.dropout).training(is_training()));
    };
    torch::Tensor ctx = attend(run("attention.q_lin", x), run("attention.k_lin", x), run("attention.v_lin", x), mask, c.heads,
                               c.attentionDropout, is_training(), true);
    torch::Tensor a = run("sa_layer_norm", run("attention.out_lin", ctx) + x);
    torch::Tensor h = run("ffn.lin2", torch::gelu(run("ffn.lin1", a)));
    return {run("output_layer_norm", drop(h) + a)};
  }
};

struct DistilBertImpl : ArchModule {
  TextConfig c;
  explicit DistilBertImpl(const TextConfig& cfg) : ArchModule(className("DistilBert", cfg.task)), c(cfg) {
    auto model = std::make_shared<GroupImpl>();
    auto emb = std::make_shared<GroupImpl>();
    emb->register_module("word_embeddings", embedding(c.vocab, c.hidden, c.padId));
    emb->register_module("position_embeddings", embedding(c.maxPositions, c.hidden));
    emb->register_module("LayerNorm", layerNorm(c.hidden, c.eps));
    model->register_module("embeddings", emb);
    auto layers = std::make_shared<GroupImpl>();
    for (int64_t i = 0; i < c.layers; i++) layers->register_module(std::to_string(i), std::make_shared<DistilLayerImpl>(c));
    auto transformer = std::make_shared<GroupImpl>();
    transformer->register_module("layer", layers);
    model->register_module("transformer", transformer);
    register_module("distilbert", model);
    if (c.task == TextTask::MaskedLM) {
      // vocab_transform, gelu, vocab_layer_norm (eps 1e-12 whatever the config), vocab_projector (weight tied) + its bias
      register_module("vocab_transform", linear(c.hidden, c.hidden));
      register_module("vocab_layer_norm", layerNorm(c.hidden, 1e-12));
      register_module("vocab_projector", withVocabBias(std::make_shared<GroupImpl>(), c.vocab));
    } else if (c.task == TextTask::TokenClassification) {
      register_module("classifier", linear(c.hidden, c.numClasses));
    } else if (c.task == TextTask::FeatureExtraction) {
      // no head (see BertFamilyImpl)
    } else {
      register_module("pre_classifier", linear(c.hidden, c.hidden));
      register_module("classifier", linear(c.hidden, c.numClasses));
    }
    initLikeTransformers(*this, c.initStd);
  }
  torch::Tensor forward(const torch::Tensor& ids) override { return forwardMany({ids}).at(0); }
  std::vector<torch::Tensor> forwardMany(const std::vector<torch::Tensor>& in) override {
    TORCH_CHECK(!in.empty() && in.size() <= 3, name(),
                ".forward: expected inputIds, attentionMask?, maskedPositions? (DistilBERT has no token type ids)");
    const torch::Tensor& ids = in[0];
    TORCH_CHECK(ids.dim() == 2, name(), ".forward: inputIds must be [batch, sequence], got ", ids.sizes());
    int64_t T = ids.size(1);
    TORCH_CHECK(T <= c.maxPositions, name(), ": sequence of ", T, " tokens is longer than the model's positions");
    torch::Tensor mask = in.size() > 1 ? in[1] : torch::Tensor();
    torch::Tensor positions = positionIds(ids);
    torch::Tensor x =
        run("distilbert.embeddings.word_embeddings", ids) + run("distilbert.embeddings.position_embeddings", positions);
    x = F::dropout(run("distilbert.embeddings.LayerNorm", x), F::DropoutFuncOptions().p(c.dropout).training(is_training()));
    torch::Tensor attnMask = attentionMask(mask, x);
    auto layers = named_children()["distilbert"]->named_children()["transformer"]->named_children()["layer"]->children();
    for (auto& layer : layers) x = forwardModule(*layer, {x, attnMask}).at(0);
    auto drop = [&](const torch::Tensor& t) {
      return F::dropout(t, F::DropoutFuncOptions().p(c.classifierDropout).training(is_training()));
    };
    if (c.task == TextTask::FeatureExtraction) {
      TORCH_CHECK(in.size() <= 2, name(), ".forward: maskedPositions is for the masked-LM head only");
      return {x};
    }
    torch::Tensor picked = headInput(x, in.size() > 2 ? in[2] : torch::Tensor(), name(), c.task);
    if (c.task == TextTask::MaskedLM) {
      torch::Tensor h = run("vocab_layer_norm", torch::gelu(run("vocab_transform", picked)));
      torch::Tensor words = parameterOf(childAt(*this, "distilbert.embeddings.word_embeddings"), "weight");
      return {torch::linear(h, words, parameterOf(childAt(*this, "vocab_projector"), "bias"))};
    }
    if (c.task == TextTask::TokenClassification) return {run("classifier", drop(x))};
    torch::Tensor h = torch::relu(run("pre_classifier", x.select(1, 0)));
    return {run("classifier", drop(h))};
  }
};

}  // namespace

std::shared_ptr<torch::nn::Module> createTextArchitecture(const std::string& kind, const Napi::Object& o) {
  if (kind == "Bert") return std::make_shared<BertFamilyImpl>(readConfig(o), false);
  if (kind == "Roberta") return std::make_shared<BertFamilyImpl>(readConfig(o), true);
  if (kind == "DistilBert") return std::make_shared<DistilBertImpl>(readConfig(o));
  return nullptr;
}

}  // namespace ft
