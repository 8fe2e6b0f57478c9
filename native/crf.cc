// nn.CRF: a linear-chain conditional random field with pytorch-crf's
// semantics. One native call each for the log-likelihood (the forward
// algorithm and the gold path score, with a hand-written backward: the
// forward-backward algorithm's marginals) and for Viterbi decoding.
//
// The log partition runs in float64 whatever the emissions' dtype, and each
// step is a matrix product in probability space rescaled by row and column
// maxima (exp(alpha - max) @ exp(transitions - max)), which costs one small
// GEMM per timestep instead of a [B, K, K] logsumexp. Where that would
// underflow (paths apart by more than ~690 nats, e.g. transitions of -1e4
// used as constraints) the step falls back to the exact logsumexp. Viterbi
// on the CPU is a plain loop per sequence (no [B, K, K] temporaries); on
// other devices, ATen ops per timestep as pytorch-crf.
#include "modules.h"

#include <cmath>

namespace ft {
namespace {

// The module: its parameters are registered in pytorch-crf's order and names.
// A ContainerImpl, so the tree sees a module without a native forward.
struct CRFImpl : ContainerImpl {
  CRFImpl(int64_t numTags, bool batchFirst) : ContainerImpl("CRF"), numTags(numTags), batchFirst(batchFirst) {
    torch::NoGradGuard noGrad;
    register_parameter("start_transitions", torch::empty({numTags}).uniform_(-0.1, 0.1));
    register_parameter("end_transitions", torch::empty({numTags}).uniform_(-0.1, 0.1));
    register_parameter("transitions", torch::empty({numTags, numTags}).uniform_(-0.1, 0.1));
  }
  torch::Tensor param(const char* name) const {
    const torch::Tensor* p = named_parameters(false).find(name);
    if (!p) throw std::runtime_error(std::string("CRF: parameter '") + name + "' is missing");
    return *p;
  }
  int64_t numTags;
  bool batchFirst;
};

CRFImpl& toCrf(const Napi::Value& v, const char* fn) {
  auto m = toModule(v, "crf");
  auto* crf = dynamic_cast<CRFImpl*>(m.get());
  if (!crf) throw ArgError(std::string(fn) + ": the module is not an nn.CRF");
  return *crf;
}

std::string shapeOf(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); i++) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

// Emissions, tags and mask checked and made time-first, the mask as bool and
// each sequence's length (the mask is a left-aligned prefix).
struct Batch {
  torch::Tensor emissions;  // [T, B, K], the caller's dtype
  torch::Tensor tags;  // [T, B] int64, 0 where the mask is off (undefined for decode)
  torch::Tensor mask;  // [T, B] bool
  torch::Tensor lengths;  // [B] int64, on the emissions' device
  std::vector<int64_t> lengthList;
};

Batch prepare(const char* fn, const CRFImpl& crf, torch::Tensor emissions, compat::optional<torch::Tensor> tags,
              compat::optional<torch::Tensor> mask) {
  const int64_t K = crf.numTags;
  const std::string layout = crf.batchFirst ? "[B, T" : "[T, B";
  // (t, b) as the caller indexes it
  auto pos = [&](int64_t t, int64_t b) {
    return crf.batchFirst ? "[" + std::to_string(b) + ", " + std::to_string(t) + "]"
                          : "[" + std::to_string(t) + ", " + std::to_string(b) + "]";
  };
  if (emissions.dim() != 3 || !emissions.is_floating_point())
    throw ArgError(std::string(fn) + ": emissions must be a 3-D float tensor " + layout + ", K], got " +
                   dtypeName(emissions.scalar_type()) + " " + shapeOf(emissions));
  if (emissions.size(2) != K)
    throw ArgError(std::string(fn) + ": emissions have " + std::to_string(emissions.size(2)) + " tags in their last dimension " +
                   shapeOf(emissions) + ", the CRF has " + std::to_string(K));
  torch::Device device = crf.param("transitions").device();
  if (emissions.device() != device)
    throw ArgError(std::string(fn) + ": emissions are on " + deviceName(emissions.device()) +
                   " but the CRF's parameters are on " + deviceName(device) + " (move one with .to())");
  const int64_t d0 = emissions.size(0), d1 = emissions.size(1);
  auto sameLayout = [&](const torch::Tensor& t) { return t.dim() == 2 && t.size(0) == d0 && t.size(1) == d1; };
  const std::string want = "[" + std::to_string(d0) + ", " + std::to_string(d1) + "]";
  if (tags) {
    if (tags->scalar_type() != torch::kLong || !sameLayout(*tags))
      throw ArgError(std::string(fn) + ": tags must be int64 " + layout + "] = " + want +
                     " like the emissions' first two dimensions, got " + dtypeName(tags->scalar_type()) + " " + shapeOf(*tags));
    if (tags->device() != device)
      throw ArgError(std::string(fn) + ": tags are on " + deviceName(tags->device()) + ", the CRF on " + deviceName(device));
  }
  if (mask) {
    if ((mask->scalar_type() != torch::kBool && mask->scalar_type() != torch::kByte) || !sameLayout(*mask))
      throw ArgError(std::string(fn) + ": mask must be bool or uint8 " + layout + "] = " + want + ", got " +
                     dtypeName(mask->scalar_type()) + " " + shapeOf(*mask));
    if (mask->device() != device)
      throw ArgError(std::string(fn) + ": mask is on " + deviceName(mask->device()) + ", the CRF on " + deviceName(device));
  }

  Batch out;
  out.emissions = crf.batchFirst ? emissions.transpose(0, 1) : emissions;
  const int64_t T = out.emissions.size(0), B = out.emissions.size(1);
  if (T == 0) throw ArgError(std::string(fn) + ": emissions have no timesteps " + shapeOf(emissions));
  torch::Tensor m = torch::ones({T, B}, torch::TensorOptions(torch::kBool).device(device));
  if (mask) m = (crf.batchFirst ? mask->transpose(0, 1) : *mask).to(torch::kBool);
  out.mask = m.contiguous();

  // Lengths, the first timestep and the prefix rule, read on the CPU.
  torch::Tensor mc = out.mask.to(torch::kCPU).contiguous();
  const bool* mp = mc.data_ptr<bool>();
  out.lengthList.assign(B, 0);
  for (int64_t b = 0; b < B; b++) {
    if (!mp[b])
      throw std::runtime_error(std::string(fn) + ": mask" + pos(0, b) +
                               " is off; the first timestep of every sequence must be on (sequence " + std::to_string(b) + ")");
    int64_t len = 1;
    for (int64_t t = 1; t < T; t++) {
      bool on = mp[t * B + b];
      if (on && !mp[(t - 1) * B + b])
        throw std::runtime_error(std::string(fn) + ": mask of sequence " + std::to_string(b) +
                                 " is not a left-aligned prefix: mask" + pos(t - 1, b) + " is off but mask" + pos(t, b) +
                                 " is on (each sequence's mask must be 1...1 then 0...0)");
      if (on) len++;
    }
    out.lengthList[b] = len;
  }
  out.lengths = torch::tensor(out.lengthList, torch::kLong).to(device);

  if (tags) {
    torch::Tensor tg = crf.batchFirst ? tags->transpose(0, 1) : *tags;
    torch::Tensor tc = tg.to(torch::kCPU).contiguous();
    const int64_t* tp = tc.data_ptr<int64_t>();
    for (int64_t b = 0; b < B; b++)
      for (int64_t t = 0; t < out.lengthList[b]; t++) {
        int64_t v = tp[t * B + b];
        if (v < 0 || v >= K)
          throw std::runtime_error(std::string(fn) + ": tags" + pos(t, b) + " = " + std::to_string(v) + " is outside 0.." +
                                   std::to_string(K - 1) + " where the mask is on");
      }
    // padding may hold anything (-100); make it a valid index that the mask then ignores
    out.tags = torch::where(out.mask, tg, torch::zeros({}, tg.options())).contiguous();
  }
  return out;
}

// The largest finite value of `x` along `dim` (0 where there is none, so that
// subtracting it never makes a NaN out of -inf).
torch::Tensor finiteMax(const torch::Tensor& x, int64_t dim, bool keepdim) {
  torch::Tensor m = x.amax(dim, keepdim);
  return torch::where(torch::isfinite(m), m, torch::zeros({}, m.options()));
}

// log sum_i exp(x[b, i] + A[i, j]) for all b, j: [B, K] x [K, K] -> [B, K].
// `expA` = exp(A - colMax) and colMax come precomputed; rows where `valid`
// is false are not looked at for the underflow check.
torch::Tensor logMatmulExp(const torch::Tensor& x, const torch::Tensor& A, const torch::Tensor& expA, const torch::Tensor& colMax,
                           const torch::Tensor& valid) {
  torch::Tensor rowMax = finiteMax(x, 1, true);
  torch::Tensor s = (x - rowMax).exp().mm(expA);
  double smallest = s.masked_fill(valid.logical_not().unsqueeze(1), 1.0).min().item<double>();
  if (!(smallest >= 1e-300)) return (x.unsqueeze(2) + A.unsqueeze(0)).logsumexp(1);  // underflow: exact
  return s.log() + rowMax + colMax;
}

struct LogLikelihood : torch::autograd::Function<LogLikelihood> {
  // emissions [T, B, K], tags [T, B] (valid everywhere), mask [T, B] bool, lengths [B].
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor emissions, torch::Tensor start,
                               torch::Tensor end, torch::Tensor transitions, torch::Tensor tags, torch::Tensor mask,
                               torch::Tensor lengths) {
    const auto D = torch::kDouble;
    torch::Tensor E = emissions.detach().to(D), s = start.detach().to(D), e = end.detach().to(D), A = transitions.detach().to(D);
    const int64_t T = E.size(0), B = E.size(1), K = E.size(2);
    torch::Tensor colMax = finiteMax(A, 0, false);  // [K]: over the "from" tag
    torch::Tensor expA = (A - colMax).exp();

    // alpha[t, b, j]: log-sum of the scores of paths ending in j at t (kept
    // from t = length - 1 on, as pytorch-crf does with its mask)
    torch::Tensor alpha = torch::empty({T, B, K}, E.options());
    alpha[0].copy_(s + E[0]);
    for (int64_t t = 1; t < T; t++) {
      torch::Tensor prev = alpha[t - 1];
      torch::Tensor on = mask[t];
      torch::Tensor next = logMatmulExp(prev, A, expA, colMax, on) + E[t];
      alpha[t].copy_(torch::where(on.unsqueeze(1), next, prev));
    }
    torch::Tensor logZ = (alpha[T - 1] + e).logsumexp(1);  // [B]

    // the gold paths' scores
    torch::Tensor maskD = mask.to(D);
    torch::Tensor score = s.index_select(0, tags[0]) + (E.gather(2, tags.unsqueeze(2)).squeeze(2) * maskD).sum(0);
    if (T > 1) score = score + (A.index({tags.slice(0, 0, T - 1), tags.slice(0, 1, T)}) * maskD.slice(0, 1, T)).sum(0);
    torch::Tensor lastTags = tags.gather(0, (lengths - 1).unsqueeze(0)).squeeze(0);
    score = score + e.index_select(0, lastTags);

    auto& saved = ctx->saved_data;
    saved["E"] = E;
    saved["s"] = s;
    saved["e"] = e;
    saved["A"] = A;
    saved["alpha"] = alpha;
    saved["logZ"] = logZ;
    saved["tags"] = tags;
    saved["mask"] = mask;
    saved["lengths"] = lengths;
    // the gradients go back in each input's dtype
    saved["dtypes"] =
        std::vector<int64_t>{static_cast<int64_t>(emissions.scalar_type()), static_cast<int64_t>(start.scalar_type()),
                             static_cast<int64_t>(end.scalar_type()), static_cast<int64_t>(transitions.scalar_type())};
    return (score - logZ).to(emissions.scalar_type());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list gradOutputs) {
    auto& saved = ctx->saved_data;
    torch::Tensor E = saved["E"].toTensor(), s = saved["s"].toTensor(), e = saved["e"].toTensor(), A = saved["A"].toTensor();
    torch::Tensor alpha = saved["alpha"].toTensor(), logZ = saved["logZ"].toTensor(), tags = saved["tags"].toTensor();
    torch::Tensor mask = saved["mask"].toTensor(), lengths = saved["lengths"].toTensor();
    const int64_t T = E.size(0), B = E.size(1), K = E.size(2);
    torch::Tensor g = gradOutputs[0].defined() ? gradOutputs[0].to(torch::kDouble) : torch::zeros({B}, E.options());

    // beta[t, b, i]: log-sum of the scores of path continuations from i at t
    // to the sequence's end (end_transitions included); 0 after the end
    torch::Tensor rowMax = finiteMax(A, 1, false);  // [K]: over the "to" tag
    torch::Tensor expAt = (A - rowMax.unsqueeze(1)).exp().t();
    torch::Tensor At = A.t();
    torch::Tensor beta = torch::empty({T, B, K}, E.options());
    torch::Tensor zero = torch::zeros({}, E.options());
    beta[T - 1].copy_(torch::where((lengths == T).unsqueeze(1), e.expand({B, K}), zero));
    for (int64_t t = T - 2; t >= 0; t--) {
      torch::Tensor inside = lengths > t + 1;  // t + 1 is still in the sequence
      torch::Tensor v = torch::where(inside.unsqueeze(1), E[t + 1] + beta[t + 1], zero);
      torch::Tensor rec = logMatmulExp(v, At, expAt, rowMax, inside);
      torch::Tensor last = (lengths == t + 1).unsqueeze(1);
      beta[t].copy_(torch::where(last, e.expand({B, K}), torch::where(inside.unsqueeze(1), rec, zero)));
    }

    torch::Tensor valid = mask.unsqueeze(2);  // [T, B, 1]
    torch::Tensor logZ3 = logZ.view({1, B, 1});
    // per-token tag marginals, and the gold tags one-hot
    torch::Tensor P = torch::where(valid, (alpha + beta - logZ3).exp(), zero);
    torch::Tensor Y = torch::zeros({T, B, K}, E.options()).scatter_(2, tags.unsqueeze(2), 1.0);
    Y = torch::where(valid, Y, zero);
    torch::Tensor diff = Y - P;  // d llh / d emissions, per sequence
    torch::Tensor gB = g.view({B, 1});

    torch::Tensor gradStart = (diff[0] * gB).sum(0);
    torch::Tensor lastIndex = (lengths - 1).view({1, B, 1}).expand({1, B, K});
    torch::Tensor gradEnd = (diff.gather(0, lastIndex).squeeze(0) * gB).sum(0);

    // transitions: gold transition counts minus expected ones
    torch::Tensor gradTrans = torch::zeros({K * K}, E.options());
    if (T > 1) {
      torch::Tensor pairValid = mask.slice(0, 1, T);  // [T-1, B]: t >= 1 inside the sequence
      torch::Tensor weights = (g.unsqueeze(0) * pairValid.to(torch::kDouble));
      torch::Tensor flat = tags.slice(0, 0, T - 1) * K + tags.slice(0, 1, T);
      gradTrans.index_add_(0, flat.reshape(-1), weights.reshape(-1));
      gradTrans = gradTrans.view({K, K}) - expectedTransitions(alpha, beta, E, A, logZ, pairValid, weights);
    } else {
      gradTrans = gradTrans.view({K, K});
    }

    std::vector<int64_t> dtypes = saved["dtypes"].toIntVector();
    auto as = [&](const torch::Tensor& x, size_t i) { return x.to(static_cast<torch::ScalarType>(dtypes[i])); };
    torch::autograd::variable_list out(7);
    if (ctx->needs_input_grad(0)) out[0] = as(diff * g.view({1, B, 1}), 0);
    out[1] = as(gradStart, 1);
    out[2] = as(gradEnd, 2);
    out[3] = as(gradTrans, 3);
    return out;
  }

  // sum over t >= 1, b of weights[t-1, b] * P(y(t-1) = i, y(t) = j): one GEMM
  // over all (t, b) pairs with per-pair rescaling; the exact [B, K, K] sums
  // per timestep where the rescaling could overflow.
  static torch::Tensor expectedTransitions(const torch::Tensor& alpha, const torch::Tensor& beta, const torch::Tensor& E,
                                           const torch::Tensor& A, const torch::Tensor& logZ, const torch::Tensor& pairValid,
                                           const torch::Tensor& weights) {
    const int64_t T = E.size(0), B = E.size(1), K = E.size(2);
    torch::Tensor zero = torch::zeros({}, E.options());
    torch::Tensor on = pairValid.unsqueeze(2);
    torch::Tensor a = alpha.slice(0, 0, T - 1);  // [T-1, B, K] from
    torch::Tensor c = torch::where(on, E.slice(0, 1, T) + beta.slice(0, 1, T) - logZ.view({1, B, 1}), zero);  // [T-1, B, K] to
    torch::Tensor finiteA = A.masked_select(torch::isfinite(A));
    double tMax = finiteA.numel() ? finiteA.max().item<double>() : 0.0;
    torch::Tensor ma = finiteMax(a, 2, true), mc = finiteMax(c, 2, true);
    // term = exp(a - ma) * exp(c - mc) * exp(A - tMax) * exp(ma + mc + tMax).
    // With the last factor below e^690 (no overflow, even summed over every
    // pair), a term lost to exp(A - tMax) underflowing is below e^-55.
    torch::Tensor logScale = torch::where(on, ma + mc + tMax, zero);  // [T-1, B, 1]
    double largest = logScale.max().item<double>();
    if (largest < 690) {
      torch::Tensor w = logScale.exp() * weights.unsqueeze(2);
      torch::Tensor U = ((a - ma).exp() * w).reshape({-1, K});
      torch::Tensor V = torch::where(on, (c - mc).exp(), zero).reshape({-1, K});
      return U.t().mm(V) * (A - tMax).exp();
    }
    torch::Tensor sum = torch::zeros({K, K}, E.options());
    for (int64_t t = 0; t < T - 1; t++) {
      torch::Tensor pair = (a[t].unsqueeze(2) + A.unsqueeze(0) + c[t].unsqueeze(1)).exp();  // [B, K, K]
      pair = torch::where(on[t].unsqueeze(2), pair, zero);
      sum += (pair * weights[t].view({B, 1, 1})).sum(0);
    }
    return sum;
  }
};

Napi::Value CreateCrf(const Info& a) {
  int64_t numTags = toInt(a[0], "numTags");
  if (numTags < 1) throw ArgError("nn.CRF: numTags must be a positive integer, got " + std::to_string(numTags));
  return ModuleWrap::New(a.Env(), std::make_shared<CRFImpl>(numTags, toBool(a[1], "batchFirst")));
}

Napi::Value CrfOptions(const Info& a) {
  const CRFImpl& crf = toCrf(a[0], "CRF");
  Napi::Object o = Napi::Object::New(a.Env());
  o.Set("numTags", static_cast<double>(crf.numTags));
  o.Set("batchFirst", crf.batchFirst);
  return o;
}

// crfLogLikelihood(crf, emissions, tags, mask | null, reduction)
torch::Tensor CrfLogLikelihood(const Info& a) {
  const char* fn = "CRF.forward";
  CRFImpl& crf = toCrf(a[0], fn);
  std::string reduction = optString(a[4], "reduction", "sum");
  if (reduction != "none" && reduction != "sum" && reduction != "mean" && reduction != "token_mean")
    throw ArgError(std::string(fn) + ": reduction must be 'none', 'sum', 'mean' or 'token_mean', got '" + reduction + "'");
  Batch batch = prepare(fn, crf, toTensor(a[1], "emissions"), toTensor(a[2], "tags"), toOptionalTensor(a[3], "mask"));
  torch::Tensor llh;
  if (batch.emissions.size(1) == 0) {
    llh = batch.emissions.sum(std::vector<int64_t>{0, 2}) * 0;  // [0], still on the graph
  } else {
    llh = LogLikelihood::apply(batch.emissions, crf.param("start_transitions"), crf.param("end_transitions"),
                               crf.param("transitions"), batch.tags, batch.mask, batch.lengths);
  }
  if (reduction == "none") return llh;
  if (reduction == "sum") return llh.sum();
  if (reduction == "mean") return llh.mean();
  return llh.sum() / batch.mask.sum().to(llh.scalar_type());
}

// Viterbi on the CPU, one sequence per task: for each timestep, the best
// previous tag for every tag, in a loop over the previous tag whose inner
// loop runs over contiguous rows of the transitions (vectorised, branch-free),
// then the backtrace. No [B, K, K] temporaries, no per-step dispatch.
template <typename S>
void viterbiCpu(const S* E, const S* start, const S* end, const S* trans, const std::vector<int64_t>& lengths, int64_t T,
                int64_t B, int64_t K, std::vector<std::vector<int64_t>>& paths) {
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    std::vector<S> score(K), next(K);
    std::vector<int32_t> history(T * K);
    for (int64_t b = b0; b < b1; b++) {
      const int64_t L = lengths[b];
      for (int64_t j = 0; j < K; j++) score[j] = start[j] + E[b * K + j];
      for (int64_t t = 1; t < L; t++) {
        int32_t* from = history.data() + t * K;
        S* nx = next.data();
        for (int64_t j = 0; j < K; j++) {
          nx[j] = score[0] + trans[j];
          from[j] = 0;
        }
        for (int64_t i = 1; i < K; i++) {
          const S si = score[i];
          const S* row = trans + i * K;
          const int32_t ii = static_cast<int32_t>(i);
          for (int64_t j = 0; j < K; j++) {
            S v = si + row[j];
            bool better = v > nx[j];  // strict: ties keep the first previous tag, as max() does
            nx[j] = better ? v : nx[j];
            from[j] = better ? ii : from[j];
          }
        }
        const S* e = E + (t * B + b) * K;
        for (int64_t j = 0; j < K; j++) score[j] = nx[j] + e[j];
      }
      int64_t tag = 0;
      S best = score[0] + end[0];
      for (int64_t j = 1; j < K; j++)
        if (score[j] + end[j] > best) best = score[j] + end[j], tag = j;
      std::vector<int64_t>& path = paths[b];
      path.assign(L, 0);
      path[L - 1] = tag;
      for (int64_t t = L - 1; t >= 1; t--) {
        tag = history[t * K + tag];
        path[t - 1] = tag;
      }
    }
  });
}

// The same with ATen ops per timestep (CUDA), as pytorch-crf computes it.
void viterbiAten(const torch::Tensor& E, const torch::Tensor& start, const torch::Tensor& end, const torch::Tensor& A,
                 const torch::Tensor& mask, const std::vector<int64_t>& lengths, std::vector<std::vector<int64_t>>& paths) {
  const int64_t T = E.size(0), B = E.size(1), K = E.size(2);
  torch::Tensor score = start + E[0];
  torch::Tensor history = torch::zeros({T, B, K}, torch::TensorOptions(torch::kLong).device(E.device()));
  for (int64_t t = 1; t < T; t++) {
    auto best = (score.unsqueeze(2) + A.unsqueeze(0)).max(1);  // over the previous tag
    torch::Tensor next = std::get<0>(best) + E[t];
    score = torch::where(mask[t].unsqueeze(1), next, score);
    history[t].copy_(std::get<1>(best));
  }
  torch::Tensor lastTag = (score + end).argmax(1).to(torch::kCPU).contiguous();
  torch::Tensor hist = history.to(torch::kCPU).contiguous();
  const int64_t* hp = hist.data_ptr<int64_t>();
  const int64_t* lp = lastTag.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; b++) {
    const int64_t L = lengths[b];
    std::vector<int64_t>& path = paths[b];
    path.assign(L, 0);
    int64_t tag = lp[b];
    path[L - 1] = tag;
    for (int64_t t = L - 1; t >= 1; t--) {
      tag = hp[(t * B + b) * K + tag];
      path[t - 1] = tag;
    }
  }
}

// crfDecode(crf, emissions, mask | null) -> number[][]
Napi::Value CrfDecode(const Info& a) {
  const char* fn = "CRF.decode";
  CRFImpl& crf = toCrf(a[0], fn);
  Batch batch = prepare(fn, crf, toTensor(a[1], "emissions"), compat::nullopt, toOptionalTensor(a[2], "mask"));
  torch::NoGradGuard noGrad;
  // in the emissions' precision, as pytorch-crf; half precision in float32
  auto dtype = batch.emissions.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  torch::Tensor E = batch.emissions.to(dtype).contiguous();
  torch::Tensor start = crf.param("start_transitions").to(dtype).contiguous();
  torch::Tensor end = crf.param("end_transitions").to(dtype).contiguous();
  torch::Tensor A = crf.param("transitions").to(dtype).contiguous();
  const int64_t T = E.size(0), B = E.size(1), K = E.size(2);
  std::vector<std::vector<int64_t>> paths(B);
  if (E.device().is_cpu() && K < (int64_t(1) << 31)) {
    if (dtype == torch::kDouble)
      viterbiCpu<double>(E.data_ptr<double>(), start.data_ptr<double>(), end.data_ptr<double>(), A.data_ptr<double>(),
                         batch.lengthList, T, B, K, paths);
    else
      viterbiCpu<float>(E.data_ptr<float>(), start.data_ptr<float>(), end.data_ptr<float>(), A.data_ptr<float>(),
                        batch.lengthList, T, B, K, paths);
  } else {
    viterbiAten(E, start, end, A, batch.mask, batch.lengthList, paths);
  }

  Napi::Env env = a.Env();
  Napi::Array out = Napi::Array::New(env, B);
  for (int64_t b = 0; b < B; b++) {
    Napi::Array p = Napi::Array::New(env, paths[b].size());
    for (size_t t = 0; t < paths[b].size(); t++) p.Set(static_cast<uint32_t>(t), static_cast<double>(paths[b][t]));
    out.Set(static_cast<uint32_t>(b), p);
  }
  return out;
}

}  // namespace

void registerCrf(Napi::Env env, Napi::Object exports) {
  def(env, exports, "createCrf", CreateCrf);
  def(env, exports, "crfOptions", CrfOptions);
  def(env, exports, "crfLogLikelihood", CrfLogLikelihood);
  def(env, exports, "crfDecode", CrfDecode);
}

}  // namespace ft
