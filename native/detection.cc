// Detection ops that libtorch lacks (torchvision.ops' C++ ops, with their
// semantics): RoIAlign forward and backward, NMS and batched NMS, and the box
// helpers (area, IoU, clipping, small-box removal) as ATen expressions.
//
// RoIAlign has two implementations: plain loops for CPU tensors (torchvision's
// CPU kernel, sample for sample, parallel over rois in the forward and over
// channels in the backward so each gradient element sums in torchvision's
// order), and one made of ATen ops (grid_sampler with border padding, which
// clamps exactly as torchvision's bilinear sampling does) for other devices,
// differentiated by autograd. NMS: a sorted greedy loop on the CPU; elsewhere
// the IoU matrix is computed on the device in row blocks, packed into 32-bit
// masks and the greedy pass runs on the CPU (torchvision's CUDA kernel does
// the same split). Everything here is device agnostic: no CUDA-only code.
//
// Inputs are checked here, since a bad box index or a NaN coordinate would
// otherwise read outside the feature map.
#include "common.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace ft {
namespace {

std::string shapeOf(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); i++) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

std::string describe(const torch::Tensor& t) { return dtypeName(t.scalar_type()) + " " + shapeOf(t); }

// Coordinates and scores: any real dtype (integers are converted), not bool or complex.
bool isReal(const torch::Tensor& t) { return t.scalar_type() != torch::kBool && !t.is_complex(); }

// 'auto' (loops on the CPU, tensor ops elsewhere), 'loops' (CPU only) or
// 'tensorOps' (any device; what CUDA tensors use, selectable on the CPU to check it).
bool useLoops(const Napi::Value& v, const char* fn, const torch::Tensor& t) {
  std::string impl = optString(v, "implementation", "auto");
  if (impl == "auto") return t.device().is_cpu();
  if (impl == "tensorOps") return false;
  if (impl == "loops") {
    if (!t.device().is_cpu())
      throw ArgError(std::string(fn) + ": implementation 'loops' runs on the CPU only, the tensors are on " +
                     deviceName(t.device()));
    return true;
  }
  throw ArgError(std::string(fn) + ": implementation must be 'auto', 'loops' or 'tensorOps', got '" + impl + "'");
}

// ---- RoIAlign --------------------------------------------------------------

struct RoiAlignParams {
  double spatialScale;
  int64_t pooledH, pooledW;
  int64_t samplingRatio;
  bool aligned;
};

// One roi's geometry, computed in the input's precision exactly as
// torchvision's kernel does (so sampling points agree to the last bit).
template <typename T>
struct RoiGeometry {
  int64_t batch;
  T startH, startW, binH, binW;
  int64_t gridH, gridW;
  T count;
};

template <typename T>
RoiGeometry<T> geometry(const T* roi, const RoiAlignParams& p) {
  const T scale = static_cast<T>(p.spatialScale);
  const T offset = p.aligned ? static_cast<T>(0.5) : static_cast<T>(0.0);
  RoiGeometry<T> g;
  g.batch = static_cast<int64_t>(roi[0]);
  g.startW = roi[1] * scale - offset;
  g.startH = roi[2] * scale - offset;
  T endW = roi[3] * scale - offset;
  T endH = roi[4] * scale - offset;
  T roiW = endW - g.startW, roiH = endH - g.startH;
  if (!p.aligned) {
    roiW = std::max(roiW, static_cast<T>(1.));
    roiH = std::max(roiH, static_cast<T>(1.));
  }
  g.binH = roiH / static_cast<T>(p.pooledH);
  g.binW = roiW / static_cast<T>(p.pooledW);
  g.gridH = p.samplingRatio > 0 ? p.samplingRatio : static_cast<int64_t>(std::ceil(roiH / static_cast<T>(p.pooledH)));
  g.gridW = p.samplingRatio > 0 ? p.samplingRatio : static_cast<int64_t>(std::ceil(roiW / static_cast<T>(p.pooledW)));
  g.count = static_cast<T>(std::max<int64_t>(g.gridH * g.gridW, 1));
  return g;
}

// The four neighbours of (y, x) and their weights; all weights 0 (and
// positions -1) outside [-1, height] x [-1, width], as torchvision.
template <typename T>
struct Bilinear {
  int64_t yLow = -1, yHigh = -1, xLow = -1, xHigh = -1;
  T w1 = 0, w2 = 0, w3 = 0, w4 = 0;
};

template <typename T>
Bilinear<T> bilinear(int64_t height, int64_t width, T y, T x) {
  Bilinear<T> b;
  if (y < -1.0 || y > height || x < -1.0 || x > width) return b;
  if (y <= 0) y = 0;
  if (x <= 0) x = 0;
  b.yLow = static_cast<int64_t>(y);
  b.xLow = static_cast<int64_t>(x);
  if (b.yLow >= height - 1) {
    b.yHigh = b.yLow = height - 1;
    y = static_cast<T>(b.yLow);
  } else {
    b.yHigh = b.yLow + 1;
  }
  if (b.xLow >= width - 1) {
    b.xHigh = b.xLow = width - 1;
    x = static_cast<T>(b.xLow);
  } else {
    b.xHigh = b.xLow + 1;
  }
  T ly = y - b.yLow, lx = x - b.xLow;
  T hy = static_cast<T>(1.) - ly, hx = static_cast<T>(1.) - lx;
  b.w1 = hy * hx;
  b.w2 = hy * lx;
  b.w3 = ly * hx;
  b.w4 = ly * lx;
  return b;
}

template <typename T>
T sampleY(const RoiGeometry<T>& g, int64_t ph, int64_t iy) {
  return g.startH + static_cast<T>(ph) * g.binH + static_cast<T>(iy + .5f) * g.binH / static_cast<T>(g.gridH);
}
template <typename T>
T sampleX(const RoiGeometry<T>& g, int64_t pw, int64_t ix) {
  return g.startW + static_cast<T>(pw) * g.binW + static_cast<T>(ix + .5f) * g.binW / static_cast<T>(g.gridW);
}

// Every sampling point of every bin of one roi, bin by bin (ph, pw), then iy, ix.
template <typename T>
void samplePoints(const RoiGeometry<T>& g, int64_t H, int64_t W, int64_t PH, int64_t PW, std::vector<Bilinear<T>>& samples) {
  samples.clear();
  samples.reserve(PH * PW * std::max<int64_t>(g.gridH, 0) * std::max<int64_t>(g.gridW, 0));
  for (int64_t ph = 0; ph < PH; ph++)
    for (int64_t pw = 0; pw < PW; pw++)
      for (int64_t iy = 0; iy < g.gridH; iy++) {
        const T y = sampleY(g, ph, iy);
        for (int64_t ix = 0; ix < g.gridW; ix++) samples.push_back(bilinear(H, W, y, sampleX(g, pw, ix)));
      }
}

// input [N, C, H, W] and rois [K, 5] contiguous, output [K, C, PH, PW].
template <typename T>
void roiAlignForwardLoops(const T* input, const T* rois, T* output, int64_t K, int64_t C, int64_t H, int64_t W,
                          const RoiAlignParams& p) {
  const int64_t PH = p.pooledH, PW = p.pooledW;
  at::parallel_for(0, K, 1, [&](int64_t k0, int64_t k1) {
    std::vector<Bilinear<T>> samples;
    for (int64_t k = k0; k < k1; k++) {
      RoiGeometry<T> g = geometry(rois + k * 5, p);
      samplePoints(g, H, W, PH, PW, samples);  // shared by the channels
      for (int64_t c = 0; c < C; c++) {
        const T* plane = input + (g.batch * C + c) * H * W;
        T* out = output + (k * C + c) * PH * PW;
        const Bilinear<T>* s = samples.data();
        const int64_t perBin = std::max<int64_t>(g.gridH, 0) * std::max<int64_t>(g.gridW, 0);
        for (int64_t bin = 0; bin < PH * PW; bin++) {
          T sum = 0.;
          for (int64_t i = 0; i < perBin; i++, s++) {
            if (s->yLow < 0) continue;  // outside: all weights 0 (torchvision adds 0 * plane[0])
            sum += s->w1 * plane[s->yLow * W + s->xLow] + s->w2 * plane[s->yLow * W + s->xHigh] +
                   s->w3 * plane[s->yHigh * W + s->xLow] + s->w4 * plane[s->yHigh * W + s->xHigh];
          }
          out[bin] = sum / g.count;
        }
      }
    }
  });
}

// gradOutput [K, C, PH, PW] and rois contiguous; gradInput [N, C, H, W] zeroed.
// One roi after another, its sampling points computed once and its channels
// in parallel: each gradient element sums its contributions in torchvision's
// order (roi, bin, sample), so the result is the same to the last bit.
template <typename T>
void roiAlignBackwardLoops(const T* gradOutput, const T* rois, T* gradInput, int64_t K, int64_t C, int64_t H, int64_t W,
                           const RoiAlignParams& p) {
  const int64_t PH = p.pooledH, PW = p.pooledW;
  std::vector<Bilinear<T>> samples;
  for (int64_t k = 0; k < K; k++) {
    const RoiGeometry<T> g = geometry(rois + k * 5, p);
    samplePoints(g, H, W, PH, PW, samples);
    const int64_t perBin = std::max<int64_t>(g.gridH, 0) * std::max<int64_t>(g.gridW, 0);
    if (perBin == 0) continue;
    at::parallel_for(0, C, 16, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; c++) {
        T* plane = gradInput + (g.batch * C + c) * H * W;
        const T* gOut = gradOutput + (k * C + c) * PH * PW;
        const Bilinear<T>* s = samples.data();
        for (int64_t bin = 0; bin < PH * PW; bin++) {
          const T gBin = gOut[bin];
          for (int64_t i = 0; i < perBin; i++, s++) {
            if (s->yLow < 0) continue;
            plane[s->yLow * W + s->xLow] += gBin * s->w1 / g.count;
            plane[s->yLow * W + s->xHigh] += gBin * s->w2 / g.count;
            plane[s->yHigh * W + s->xLow] += gBin * s->w3 / g.count;
            plane[s->yHigh * W + s->xHigh] += gBin * s->w4 / g.count;
          }
        }
      }
    });
  }
}

// The CPU loops as an autograd function (gradient for the input only, as torchvision).
struct RoiAlignFunction : torch::autograd::Function<RoiAlignFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor input, torch::Tensor rois,
                               double spatialScale, int64_t pooledH, int64_t pooledW, int64_t samplingRatio, bool aligned) {
    RoiAlignParams p{spatialScale, pooledH, pooledW, samplingRatio, aligned};
    torch::Tensor x = input.detach().contiguous(), r = rois.detach().contiguous();
    const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), K = r.size(0);
    torch::Tensor out = torch::zeros({K, C, pooledH, pooledW}, x.options());
    if (K > 0 && C > 0) {
      if (x.scalar_type() == torch::kDouble)
        roiAlignForwardLoops<double>(x.data_ptr<double>(), r.data_ptr<double>(), out.data_ptr<double>(), K, C, H, W, p);
      else roiAlignForwardLoops<float>(x.data_ptr<float>(), r.data_ptr<float>(), out.data_ptr<float>(), K, C, H, W, p);
    }
    ctx->save_for_backward({r});
    ctx->saved_data["shape"] = std::vector<int64_t>{N, C, H, W};
    ctx->saved_data["scale"] = spatialScale;
    ctx->saved_data["pooled"] = std::vector<int64_t>{pooledH, pooledW, samplingRatio, aligned ? 1 : 0};
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list gradOutputs) {
    torch::Tensor r = ctx->get_saved_variables()[0];
    std::vector<int64_t> shape = ctx->saved_data["shape"].toIntVector();
    std::vector<int64_t> pooled = ctx->saved_data["pooled"].toIntVector();
    RoiAlignParams p{ctx->saved_data["scale"].toDouble(), pooled[0], pooled[1], pooled[2], pooled[3] != 0};
    const int64_t C = shape[1], H = shape[2], W = shape[3], K = r.size(0);
    torch::Tensor gradInput = torch::zeros(shape, r.options());
    torch::Tensor g = gradOutputs[0];
    if (g.defined() && K > 0 && C > 0) {
      g = g.to(r.scalar_type()).contiguous();
      if (r.scalar_type() == torch::kDouble)
        roiAlignBackwardLoops<double>(g.data_ptr<double>(), r.data_ptr<double>(), gradInput.data_ptr<double>(), K, C, H, W, p);
      else roiAlignBackwardLoops<float>(g.data_ptr<float>(), r.data_ptr<float>(), gradInput.data_ptr<float>(), K, C, H, W, p);
    }
    return {gradInput, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// The same with ATen ops, for any device; autograd differentiates it. Each
// image's sampling points go through one grid_sampler call (bilinear, border
// padding: coordinates clamped to [0, size - 1], as torchvision clamps them);
// points outside [-1, size] and those beyond a roi's own adaptive grid are
// masked out before the average.
torch::Tensor roiAlignTensorOps(const torch::Tensor& input, const torch::Tensor& rois, const RoiAlignParams& p) {
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3), K = rois.size(0);
  const int64_t PH = p.pooledH, PW = p.pooledW;
  if (K == 0) return input.new_zeros({0, C, PH, PW}) + input.sum() * 0;  // empty, still on the graph
  torch::Tensor r = rois.detach();
  torch::Tensor batch = r.select(1, 0).to(torch::kLong);
  const double offset = p.aligned ? 0.5 : 0.0;
  torch::Tensor x1 = r.select(1, 1) * p.spatialScale - offset, y1 = r.select(1, 2) * p.spatialScale - offset;
  torch::Tensor x2 = r.select(1, 3) * p.spatialScale - offset, y2 = r.select(1, 4) * p.spatialScale - offset;
  torch::Tensor roiW = x2 - x1, roiH = y2 - y1;
  if (!p.aligned) {
    roiW = roiW.clamp_min(1.);
    roiH = roiH.clamp_min(1.);
  }
  torch::Tensor binH = roiH / static_cast<double>(PH), binW = roiW / static_cast<double>(PW);
  torch::Tensor gridH, gridW;
  int64_t GH, GW;
  if (p.samplingRatio > 0) {
    gridH = gridW = torch::full({K}, p.samplingRatio, r.options().dtype(torch::kLong));
    GH = GW = p.samplingRatio;
  } else {
    gridH = (roiH / static_cast<double>(PH)).ceil().to(torch::kLong);
    gridW = (roiW / static_cast<double>(PW)).ceil().to(torch::kLong);
    GH = std::max<int64_t>(gridH.max().item<int64_t>(), 1);
    GW = std::max<int64_t>(gridW.max().item<int64_t>(), 1);
  }
  torch::Tensor count = (gridH * gridW).clamp_min(1).to(r.scalar_type());
  auto opts = r.options();
  torch::Tensor iy = torch::arange(GH, opts), ix = torch::arange(GW, opts);
  torch::Tensor ph = torch::arange(PH, opts), pw = torch::arange(PW, opts);
  auto col = [](const torch::Tensor& t) { return t.view({-1, 1, 1}); };
  // sampling points [K, PH, GH] and [K, PW, GW], as torchvision computes them
  torch::Tensor ys =
      col(y1) + ph.view({1, -1, 1}) * col(binH) + (iy.view({1, 1, -1}) + 0.5) * col(binH) / col(gridH.to(r.scalar_type()));
  torch::Tensor xs =
      col(x1) + pw.view({1, -1, 1}) * col(binW) + (ix.view({1, 1, -1}) + 0.5) * col(binW) / col(gridW.to(r.scalar_type()));
  torch::Tensor yOk = (iy.view({1, 1, -1}) < col(gridH)).logical_and(ys >= -1).logical_and(ys <= static_cast<double>(H));
  torch::Tensor xOk = (ix.view({1, 1, -1}) < col(gridW)).logical_and(xs >= -1).logical_and(xs <= static_cast<double>(W));
  // grid_sampler's normalised coordinates (align_corners false): pixel = ((g + 1) * size - 1) / 2;
  // computed in float64 so that only grid_sampler's own arithmetic rounds. Points masked
  // out (a grid of 0 gives NaN coordinates) sample the centre instead.
  torch::Tensor gy = torch::where(yOk, (ys.to(torch::kDouble) * 2 + 1) / static_cast<double>(H) - 1, 0.0);
  torch::Tensor gx = torch::where(xOk, (xs.to(torch::kDouble) * 2 + 1) / static_cast<double>(W) - 1, 0.0);

  std::vector<torch::Tensor> parts, order;
  torch::Tensor batchCpu = batch.to(torch::kCPU);
  for (int64_t n = 0; n < N; n++) {
    torch::Tensor sel = (batchCpu == n).nonzero().view(-1);
    const int64_t Kn = sel.numel();
    if (Kn == 0) continue;
    sel = sel.to(r.device());
    torch::Tensor gyN = gy.index_select(0, sel).view({Kn, PH, GH, 1, 1}).expand({Kn, PH, GH, PW, GW});
    torch::Tensor gxN = gx.index_select(0, sel).view({Kn, 1, 1, PW, GW}).expand({Kn, PH, GH, PW, GW});
    torch::Tensor grid = torch::stack({gxN, gyN}, -1).reshape({1, Kn * PH * GH, PW * GW, 2}).to(input.scalar_type());
    torch::Tensor samples = at::grid_sampler(input.narrow(0, n, 1), grid, /*bilinear*/ 0, /*border*/ 1, /*align_corners*/ false);
    torch::Tensor mask =
        yOk.index_select(0, sel).view({Kn, PH, GH, 1, 1}).logical_and(xOk.index_select(0, sel).view({Kn, 1, 1, PW, GW}));
    samples = samples.view({C, Kn, PH, GH, PW, GW}) * mask.to(input.scalar_type()).unsqueeze(0);
    torch::Tensor pooled =
        samples.sum(std::vector<int64_t>{3, 5}) / count.index_select(0, sel).to(input.scalar_type()).view({1, Kn, 1, 1});
    parts.push_back(pooled.permute({1, 0, 2, 3}));
    order.push_back(sel);
  }
  torch::Tensor out = torch::cat(parts, 0);
  torch::Tensor inverse = torch::argsort(torch::cat(order, 0));
  return out.index_select(0, inverse);
}

torch::Tensor runRoiAlign(const torch::Tensor& input, const torch::Tensor& rois, const RoiAlignParams& p, bool loops) {
  if (!loops) return roiAlignTensorOps(input, rois, p);
  return RoiAlignFunction::apply(input, rois, p.spatialScale, p.pooledH, p.pooledW, p.samplingRatio, p.aligned);
}

// The boxes argument as [K, 5] rois in `dtype`: a [K, 5] tensor (batch
// index, x1, y1, x2, y2) or a list of [Ki, 4] tensors, one per image.
torch::Tensor toRois(const Napi::Value& v, const torch::Tensor& input, torch::Dtype dtype, const char* fn) {
  if (v.IsArray()) {
    std::vector<torch::Tensor> list = toTensorList(v, "boxes");
    if (static_cast<int64_t>(list.size()) != input.size(0))
      throw ArgError(std::string(fn) + ": boxes is a list of " + std::to_string(list.size()) +
                     " tensors, one per image, but input " + shapeOf(input) + " holds " + std::to_string(input.size(0)) +
                     " images");
    std::vector<torch::Tensor> rows;
    for (size_t i = 0; i < list.size(); i++) {
      const torch::Tensor& b = list[i];
      if (b.dim() != 2 || b.size(1) != 4 || !isReal(b))
        throw ArgError(std::string(fn) + ": boxes[" + std::to_string(i) + "] must be a [Ki, 4] tensor (x1, y1, x2, y2), got " +
                       describe(b));
      if (b.device() != input.device())
        throw ArgError(std::string(fn) + ": boxes[" + std::to_string(i) + "] is on " + deviceName(b.device()) + ", input on " +
                       deviceName(input.device()));
      torch::Tensor bb = b.detach().to(dtype);
      rows.push_back(torch::cat({torch::full({b.size(0), 1}, static_cast<double>(i), bb.options()), bb}, 1));
    }
    if (rows.empty()) return torch::zeros({0, 5}, input.options().dtype(dtype));
    return torch::cat(rows, 0);
  }
  torch::Tensor b = toTensor(v, "boxes");
  if (b.dim() != 2 || b.size(1) != 5 || !isReal(b))
    throw ArgError(std::string(fn) +
                   ": boxes must be a [K, 5] tensor (batch index, x1, y1, x2, y2) or a list of [Ki, 4] tensors, got " +
                   describe(b));
  if (b.device() != input.device())
    throw ArgError(std::string(fn) + ": boxes are on " + deviceName(b.device()) + ", input on " + deviceName(input.device()));
  return b.detach().to(dtype);
}

// Rows with a non-finite coordinate, a batch index that is no image of the
// input, or an adaptive grid too large to sample are errors naming the row.
void checkRois(const torch::Tensor& rois, const torch::Tensor& input, const RoiAlignParams& p, const char* fn) {
  const int64_t K = rois.size(0), N = input.size(0);
  if (K == 0) return;
  if (input.size(2) < 1 || input.size(3) < 1)
    throw ArgError(std::string(fn) + ": input " + shapeOf(input) + " has an empty feature map, so no box can be sampled");
  torch::Tensor r = rois.to(torch::kCPU, torch::kDouble).contiguous();
  const double* d = r.data_ptr<double>();
  for (int64_t k = 0; k < K; k++) {
    const double* row = d + k * 5;
    const std::string where = std::string(fn) + ": boxes row " + std::to_string(k);
    for (int j = 0; j < 5; j++)
      if (!std::isfinite(row[j])) throw ArgError(where + " holds a non-finite value (" + std::to_string(row[j]) + ")");
    for (int j = 1; j < 5; j++)  // so that no coordinate on the feature map overflows float32
      if (std::abs(row[j] * p.spatialScale) > 1e30)
        throw ArgError(where + ": coordinate " + std::to_string(row[j]) + " times spatialScale is beyond 1e30");
    if (row[0] != std::floor(row[0]) || row[0] < 0 || row[0] >= N)
      throw ArgError(where + ": batch index " + std::to_string(row[0]) + " is not an image of input " + shapeOf(input) + " (0.." +
                     std::to_string(N - 1) + ")");
    if (p.samplingRatio <= 0) {
      // the grid as geometry() computes it (a negative one samples nothing)
      double h = std::max((row[4] - row[2]) * p.spatialScale, p.aligned ? -1e300 : 1.0) / p.pooledH;
      double w = std::max((row[3] - row[1]) * p.spatialScale, p.aligned ? -1e300 : 1.0) / p.pooledW;
      double samples = std::max(std::ceil(h), 0.0) * std::max(std::ceil(w), 0.0);
      if (!(samples <= double(1 << 20)))
        throw ArgError(where + " spans " + std::to_string(h * p.pooledH) + " x " + std::to_string(w * p.pooledW) +
                       " feature-map cells: with samplingRatio <= 0 (adaptive) each output cell would average " +
                       std::to_string(std::ceil(h)) + " x " + std::to_string(std::ceil(w)) +
                       " samples; pass a positive samplingRatio or check the boxes and spatialScale");
    }
  }
}

// roiAlign(input, boxes | boxes[], outputH, outputW, spatialScale, samplingRatio, aligned, implementation)
torch::Tensor RoiAlign(const Info& a) {
  const char* fn = "ops.roiAlign";
  torch::Tensor input = toTensor(a[0], "input");
  if (input.dim() != 4 || !input.is_floating_point())
    throw ArgError(std::string(fn) + ": input must be a float [N, C, H, W] tensor, got " + describe(input));
  RoiAlignParams p;
  p.pooledH = toInt(a[2], "outputSize");
  p.pooledW = toInt(a[3], "outputSize");
  if (p.pooledH < 1 || p.pooledW < 1)
    throw ArgError(std::string(fn) + ": outputSize must be positive, got [" + std::to_string(p.pooledH) + ", " +
                   std::to_string(p.pooledW) + "]");
  p.spatialScale = optDouble(a[4], "spatialScale", 1.0);
  if (!std::isfinite(p.spatialScale) || p.spatialScale <= 0)
    throw ArgError(std::string(fn) + ": spatialScale must be a positive finite number, got " + std::to_string(p.spatialScale));
  p.samplingRatio = optInt(a[5], "samplingRatio", -1);
  if (p.samplingRatio > 1024)
    throw ArgError(std::string(fn) + ": samplingRatio " + std::to_string(p.samplingRatio) +
                   " is more than 1024 sampling points per output cell and direction");
  p.aligned = optBool(a[6], "aligned", false);
  bool loops = useLoops(a[7], fn, input);

  // half precision: computed in float32 (boxes too), the gradient flowing back through the cast
  const auto dtype = input.scalar_type();
  const bool upcast = dtype != torch::kFloat && dtype != torch::kDouble;
  torch::Tensor x = upcast ? input.to(torch::kFloat) : input;
  torch::Tensor r = toRois(a[1], input, x.scalar_type(), fn);
  checkRois(r, input, p, fn);
  torch::Tensor out = runRoiAlign(x, r, p, loops);
  return upcast ? out.to(dtype) : out;
}

// multiScaleRoiAlign(features[], boxes[], scales[], outputH, outputW, samplingRatio, canonicalScale,
//                    canonicalLevel, implementation)
// torchvision.ops.MultiScaleRoIAlign: each box pooled from one feature map,
// the level chosen by its size (FPN's eq. 1, torchvision's LevelMapper) among
// the levels -log2(scales[0]) .. -log2(scales[last]). The caller infers the
// scales (lib/ops/roi-align.ts, once, as torchvision caches them).
torch::Tensor MultiScaleRoiAlign(const Info& a) {
  const std::string fn = "ops.MultiScaleRoIAlign";
  std::vector<torch::Tensor> features = toTensorList(a[0], "features");
  if (features.empty()) throw ArgError(fn + ": no feature maps (featmapNames selected none)");
  const torch::Tensor& f0 = features[0];
  for (size_t l = 0; l < features.size(); l++) {
    const torch::Tensor& f = features[l];
    const std::string name = fn + ": feature map " + std::to_string(l);
    if (f.dim() != 4 || !f.is_floating_point()) throw ArgError(name + " must be a float [N, C, H, W] tensor, got " + describe(f));
    if (f.scalar_type() != f0.scalar_type() || f.device() != f0.device() || f.size(0) != f0.size(0) || f.size(1) != f0.size(1))
      throw ArgError(name + " is " + describe(f) + " on " + deviceName(f.device()) + ", feature map 0 " + describe(f0) + " on " +
                     deviceName(f0.device()) + ": they must agree in dtype, device, images and channels");
    if (f.size(2) < 1 || f.size(3) < 1) throw ArgError(name + " " + shapeOf(f) + " is empty");
  }
  if (!a[1].IsArray()) throw ArgError(fn + ": boxes must be a list of [Ki, 4] tensors, one per image");
  if (!a[2].IsArray() || a[2].As<Napi::Array>().Length() != features.size())
    throw ArgError(fn + ": scales must hold one number per feature map (" + std::to_string(features.size()) + ")");
  std::vector<double> scales;
  for (size_t l = 0; l < features.size(); l++) {
    double sc = toDouble(a[2].As<Napi::Array>().Get(static_cast<uint32_t>(l)), "scales");
    if (!(sc > 0) || !std::isfinite(sc)) throw ArgError(fn + ": scales[" + std::to_string(l) + "] must be a positive number");
    scales.push_back(sc);
  }
  RoiAlignParams p;
  p.pooledH = toInt(a[3], "outputSize");
  p.pooledW = toInt(a[4], "outputSize");
  if (p.pooledH < 1 || p.pooledW < 1) throw ArgError(fn + ": outputSize must be positive");
  p.samplingRatio = toInt(a[5], "samplingRatio");
  if (p.samplingRatio > 1024) throw ArgError(fn + ": samplingRatio " + std::to_string(p.samplingRatio) + " is more than 1024");
  p.aligned = false;
  const double canonicalScale = optDouble(a[6], "canonicalScale", 224);
  const int64_t canonicalLevel = optInt(a[7], "canonicalLevel", 4);
  if (!(canonicalScale > 0) || !std::isfinite(canonicalScale))
    throw ArgError(fn + ": canonicalScale must be a positive number, got " + std::to_string(canonicalScale));
  const bool loops = useLoops(a[8], fn.c_str(), f0);

  // the levels as torchvision: int() of -log2 of the scales in float32
  const int64_t kMin = static_cast<int64_t>(-std::log2(static_cast<float>(scales.front())));
  const int64_t kMax = static_cast<int64_t>(-std::log2(static_cast<float>(scales.back())));

  const auto dtype = f0.scalar_type();
  const bool upcast = dtype != torch::kFloat && dtype != torch::kDouble;
  const auto work = upcast ? torch::kFloat : dtype;
  torch::Tensor rois = toRois(a[1], f0, work, fn.c_str());
  RoiAlignParams coarsest = p;  // finite coordinates and batch indices first: a NaN box would match no level
  coarsest.spatialScale = *std::min_element(scales.begin(), scales.end());
  checkRois(rois, f0, coarsest, fn.c_str());
  const int64_t K = rois.size(0);
  torch::Tensor levels;
  {
    torch::NoGradGuard noGrad;
    torch::Tensor s = ((rois.select(1, 3) - rois.select(1, 1)) * (rois.select(1, 4) - rois.select(1, 2))).sqrt();  // box_area
    torch::Tensor target =
        torch::floor(torch::log2(s / canonicalScale) + static_cast<double>(canonicalLevel) + torch::tensor(1e-6, s.options()));
    levels = target.clamp(static_cast<double>(kMin), static_cast<double>(kMax)).to(torch::kLong) - kMin;
  }
  // each level's boxes pooled in one call; the outputs concatenated, then put
  // back in box order with one gather (copying a [K, C, h, w] result per level
  // would cost as much as the pooling)
  std::vector<torch::Tensor> outputs, order;
  for (size_t l = 0; l < features.size(); l++) {
    torch::Tensor idx =
        features.size() == 1 ? torch::arange(K, levels.options()) : (levels == static_cast<int64_t>(l)).nonzero().view(-1);
    torch::Tensor levelRois = rois.index_select(0, idx);
    RoiAlignParams pl = p;
    pl.spatialScale = scales[l];
    checkRois(levelRois, features[l], pl, (fn + " (feature map " + std::to_string(l) + ")").c_str());
    torch::Tensor x = upcast ? features[l].to(torch::kFloat) : features[l];
    outputs.push_back(runRoiAlign(x, levelRois, pl, loops));
    order.push_back(idx);
  }
  if (features.size() > 1) {
    // boxes whose level has no feature map (levels between the maps' scales, as
    // featmapNames ['1', '3'] leave) stay zeros, as in torchvision
    torch::Tensor unpooled = (levels < 0).logical_or(levels >= static_cast<int64_t>(features.size())).nonzero().view(-1);
    outputs.push_back(torch::zeros({unpooled.numel(), f0.size(1), p.pooledH, p.pooledW}, outputs[0].options()));
    order.push_back(unpooled);
  }
  torch::Tensor result = torch::cat(outputs, 0);
  if (features.size() > 1) result = result.index_select(0, torch::argsort(torch::cat(order, 0)));
  return upcast ? result.to(dtype) : result;
}

// ---- NMS ---------------------------------------------------------------------

void checkBoxes(const torch::Tensor& boxes, const char* fn, const char* name = "boxes") {
  if (boxes.dim() != 2 || boxes.size(1) != 4 || !isReal(boxes))
    throw ArgError(std::string(fn) + ": " + name + " must be a [K, 4] tensor (x1, y1, x2, y2), got " + describe(boxes));
}

void checkNmsInputs(const torch::Tensor& boxes, const torch::Tensor& scores, double iouThreshold, const char* fn) {
  checkBoxes(boxes, fn);
  if (scores.dim() != 1 || scores.size(0) != boxes.size(0) || !isReal(scores))
    throw ArgError(std::string(fn) + ": scores must be a [K] tensor with one score per box (K = " +
                   std::to_string(boxes.size(0)) + "), got " + describe(scores));
  if (scores.device() != boxes.device())
    throw ArgError(std::string(fn) + ": scores are on " + deviceName(scores.device()) + ", boxes on " +
                   deviceName(boxes.device()));
  if (std::isnan(iouThreshold)) throw ArgError(std::string(fn) + ": iouThreshold is NaN");
}

// Indices of the boxes kept, by decreasing score; ties in score keep the
// lower index first (a stable sort, as torchvision's CPU kernel).
template <typename T>
torch::Tensor nmsLoops(const torch::Tensor& boxes, const torch::Tensor& scores, double iouThreshold) {
  const int64_t K = boxes.size(0);
  torch::Tensor b = boxes.contiguous();
  torch::Tensor order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true)).contiguous();
  const T* d = b.data_ptr<T>();
  const int64_t* o = order.data_ptr<int64_t>();
  std::vector<T> areas(K);
  for (int64_t i = 0; i < K; i++) areas[i] = (d[i * 4 + 2] - d[i * 4 + 0]) * (d[i * 4 + 3] - d[i * 4 + 1]);
  std::vector<char> suppressed(K, 0);
  std::vector<int64_t> keep;
  for (int64_t a = 0; a < K; a++) {
    const int64_t i = o[a];
    if (suppressed[i]) continue;
    keep.push_back(i);
    const T ix1 = d[i * 4], iy1 = d[i * 4 + 1], ix2 = d[i * 4 + 2], iy2 = d[i * 4 + 3], iarea = areas[i];
    for (int64_t z = a + 1; z < K; z++) {
      const int64_t j = o[z];
      if (suppressed[j]) continue;
      const T xx1 = std::max(ix1, d[j * 4]), yy1 = std::max(iy1, d[j * 4 + 1]);
      const T xx2 = std::min(ix2, d[j * 4 + 2]), yy2 = std::min(iy2, d[j * 4 + 3]);
      const T w = std::max(static_cast<T>(0), xx2 - xx1), h = std::max(static_cast<T>(0), yy2 - yy1);
      const T inter = w * h;
      const T ovr = inter / (iarea + areas[j] - inter);
      if (ovr > iouThreshold) suppressed[j] = 1;
    }
  }
  return torch::tensor(keep, torch::kLong);
}

// The device version: IoU rows against all boxes (sorted) computed on the
// device in blocks, thresholded and packed into 32-bit words there; the greedy
// pass over the packed masks on the CPU.
torch::Tensor nmsTensorOps(const torch::Tensor& boxes, const torch::Tensor& scores, double iouThreshold) {
  const int64_t K = boxes.size(0);
  torch::NoGradGuard noGrad;
  torch::Tensor order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  torch::Tensor b = boxes.index_select(0, order);
  torch::Tensor x1 = b.select(1, 0), y1 = b.select(1, 1), x2 = b.select(1, 2), y2 = b.select(1, 3);
  torch::Tensor area = (x2 - x1) * (y2 - y1);
  const int64_t words = (K + 31) / 32;
  torch::Tensor bits = torch::pow(2, torch::arange(32, b.options().dtype(torch::kLong)));
  std::vector<torch::Tensor> blocks;
  const int64_t rowsPerBlock = std::max<int64_t>(1, (int64_t(1) << 22) / std::max<int64_t>(K, 1));
  for (int64_t r0 = 0; r0 < K; r0 += rowsPerBlock) {
    const int64_t R = std::min(rowsPerBlock, K - r0);
    auto rows = [&](const torch::Tensor& t) { return t.narrow(0, r0, R).unsqueeze(1); };
    torch::Tensor w = (torch::min(rows(x2), x2) - torch::max(rows(x1), x1)).clamp_min(0);
    torch::Tensor h = (torch::min(rows(y2), y2) - torch::max(rows(y1), y1)).clamp_min(0);
    torch::Tensor inter = w * h;
    torch::Tensor over = (inter / (rows(area) + area - inter)) > iouThreshold;  // [R, K]
    over = torch::constant_pad_nd(over.to(torch::kLong), {0, words * 32 - K});
    blocks.push_back((over.view({R, words, 32}) * bits).sum(2).to(torch::kCPU));
  }
  torch::Tensor masks = torch::cat(blocks, 0).contiguous();  // [K, words]
  const int64_t* m = masks.data_ptr<int64_t>();
  std::vector<uint32_t> removed(words, 0);
  std::vector<int64_t> keepSorted;
  for (int64_t i = 0; i < K; i++) {
    if ((removed[i / 32] >> (i % 32)) & 1u) continue;
    keepSorted.push_back(i);
    const int64_t* row = m + i * words;
    for (int64_t w = i / 32; w < words; w++) removed[w] |= static_cast<uint32_t>(row[w]);
  }
  torch::Tensor keep = torch::tensor(keepSorted, torch::kLong).to(order.device());
  return order.index_select(0, keep);
}

torch::Tensor runNms(const torch::Tensor& boxes, const torch::Tensor& scoresIn, double iouThreshold, bool loops) {
  if (boxes.size(0) == 0) return torch::empty({0}, boxes.options().dtype(torch::kLong));
  torch::NoGradGuard noGrad;
  const auto dtype = boxes.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  torch::Tensor b = boxes.detach().to(dtype), s = scoresIn.detach().to(dtype);
  if (!loops) return nmsTensorOps(b, s, iouThreshold);
  return dtype == torch::kDouble ? nmsLoops<double>(b, s, iouThreshold) : nmsLoops<float>(b, s, iouThreshold);
}

// nms(boxes, scores, iouThreshold, implementation)
torch::Tensor Nms(const Info& a) {
  const char* fn = "ops.nms";
  torch::Tensor boxes = toTensor(a[0], "boxes"), scores = toTensor(a[1], "scores");
  double iouThreshold = toDouble(a[2], "iouThreshold");
  checkNmsInputs(boxes, scores, iouThreshold, fn);
  return runNms(boxes, scores, iouThreshold, useLoops(a[3], fn, boxes));
}

// batchedNms(boxes, scores, idxs, iouThreshold, implementation): NMS within
// each category. As torchvision: up to 1000 boxes on the CPU (5000 elsewhere)
// in one NMS after offsetting each category's boxes by idx * (max + 1);
// beyond that one NMS per category, the kept indices sorted by score.
torch::Tensor BatchedNms(const Info& a) {
  const char* fn = "ops.batchedNms";
  torch::Tensor boxes = toTensor(a[0], "boxes"), scores = toTensor(a[1], "scores"), idxs = toTensor(a[2], "idxs");
  double iouThreshold = toDouble(a[3], "iouThreshold");
  checkNmsInputs(boxes, scores, iouThreshold, fn);
  if (idxs.dim() != 1 || idxs.size(0) != boxes.size(0) || idxs.is_floating_point() || idxs.is_complex() ||
      idxs.scalar_type() == torch::kBool)
    throw ArgError(std::string(fn) + ": idxs must be an integer [K] tensor with one category per box (K = " +
                   std::to_string(boxes.size(0)) + "), got " + describe(idxs));
  if (idxs.device() != boxes.device())
    throw ArgError(std::string(fn) + ": idxs are on " + deviceName(idxs.device()) + ", boxes on " + deviceName(boxes.device()));
  bool loops = useLoops(a[4], fn, boxes);
  if (boxes.numel() == 0) return torch::empty({0}, boxes.options().dtype(torch::kLong));
  torch::NoGradGuard noGrad;
  torch::Tensor b = boxes.detach(), s = scores.detach();
  if (boxes.numel() <= (boxes.device().is_cpu() ? 4000 : 20000)) {
    torch::Tensor maxCoordinate = b.max();
    torch::Tensor offsets = idxs.to(b.scalar_type()) * (maxCoordinate + torch::ones({}, b.options()));
    return runNms(b + offsets.unsqueeze(1), s, iouThreshold, loops);
  }
  torch::Tensor keepMask = torch::zeros({b.size(0)}, b.options().dtype(torch::kBool));
  torch::Tensor categories = std::get<0>(at::_unique(idxs, /*sorted=*/true));
  torch::Tensor categoriesCpu = categories.to(torch::kCPU, torch::kLong).contiguous();
  const int64_t* cp = categoriesCpu.data_ptr<int64_t>();
  for (int64_t i = 0; i < categoriesCpu.numel(); i++) {
    torch::Tensor current = (idxs == cp[i]).nonzero().view(-1);
    torch::Tensor kept = runNms(b.index_select(0, current), s.index_select(0, current), iouThreshold, loops);
    keepMask.index_fill_(0, current.index_select(0, kept), true);
  }
  torch::Tensor keep = keepMask.nonzero().view(-1);
  return keep.index_select(0, std::get<1>(s.index_select(0, keep).sort(/*stable=*/true, 0, /*descending=*/true)));
}

// ---- box helpers (ATen expressions, differentiable) ---------------------------

// torchvision's _upcast: float32/64 and int32/64 stay, other floats become
// float32 and other integers int32 (so products do not overflow).
torch::Tensor upcast(const torch::Tensor& t) {
  if (t.is_floating_point())
    return t.scalar_type() == torch::kFloat || t.scalar_type() == torch::kDouble ? t : t.to(torch::kFloat);
  return t.scalar_type() == torch::kInt || t.scalar_type() == torch::kLong ? t : t.to(torch::kInt);
}

torch::Tensor area(const torch::Tensor& boxes) {
  torch::Tensor b = upcast(boxes);
  return (b.select(1, 2) - b.select(1, 0)) * (b.select(1, 3) - b.select(1, 1));
}

torch::Tensor BoxArea(const Info& a) {
  torch::Tensor boxes = toTensor(a[0], "boxes");
  checkBoxes(boxes, "ops.boxArea");
  return area(boxes);
}

torch::Tensor BoxIou(const Info& a) {
  const char* fn = "ops.boxIou";
  torch::Tensor boxes1 = toTensor(a[0], "boxes1"), boxes2 = toTensor(a[1], "boxes2");
  checkBoxes(boxes1, fn, "boxes1");
  checkBoxes(boxes2, fn, "boxes2");
  if (boxes1.device() != boxes2.device())
    throw ArgError(std::string(fn) + ": boxes1 are on " + deviceName(boxes1.device()) + ", boxes2 on " +
                   deviceName(boxes2.device()));
  torch::Tensor area1 = area(boxes1), area2 = area(boxes2);
  torch::Tensor lt = torch::max(boxes1.slice(1, 0, 2).unsqueeze(1), boxes2.slice(1, 0, 2));  // [N, M, 2]
  torch::Tensor rb = torch::min(boxes1.slice(1, 2, 4).unsqueeze(1), boxes2.slice(1, 2, 4));
  torch::Tensor wh = upcast(rb - lt).clamp_min(0);
  torch::Tensor inter = wh.select(2, 0) * wh.select(2, 1);
  torch::Tensor unionArea = area1.unsqueeze(1) + area2 - inter;
  return inter / unionArea;
}

// clipBoxesToImage(boxes [..., 4], height, width)
torch::Tensor ClipBoxesToImage(const Info& a) {
  const char* fn = "ops.clipBoxesToImage";
  torch::Tensor boxes = toTensor(a[0], "boxes");
  if (boxes.dim() < 1 || boxes.size(-1) != 4)
    throw ArgError(std::string(fn) + ": boxes must be a [..., 4] tensor (x1, y1, x2, y2), got " + describe(boxes));
  double height = toDouble(a[1], "size"), width = toDouble(a[2], "size");
  torch::Tensor xs = boxes.slice(-1, 0, 4, 2).clamp(0, width);
  torch::Tensor ys = boxes.slice(-1, 1, 4, 2).clamp(0, height);
  return torch::stack({xs, ys}, boxes.dim()).reshape(boxes.sizes());
}

// removeSmallBoxes(boxes, minSize): indices of the boxes at least minSize wide and high
torch::Tensor RemoveSmallBoxes(const Info& a) {
  torch::Tensor boxes = toTensor(a[0], "boxes");
  checkBoxes(boxes, "ops.removeSmallBoxes");
  double minSize = toDouble(a[1], "minSize");
  torch::NoGradGuard noGrad;
  torch::Tensor ws = boxes.select(1, 2) - boxes.select(1, 0), hs = boxes.select(1, 3) - boxes.select(1, 1);
  return (ws >= minSize).logical_and(hs >= minSize).nonzero().view(-1);
}

}  // namespace

void registerDetection(Napi::Env env, Napi::Object exports) {
  def(env, exports, "roiAlign", RoiAlign);
  def(env, exports, "multiScaleRoiAlign", MultiScaleRoiAlign);
  def(env, exports, "nms", Nms);
  def(env, exports, "batchedNms", BatchedNms);
  def(env, exports, "boxArea", BoxArea);
  def(env, exports, "boxIou", BoxIou);
  def(env, exports, "clipBoxesToImage", ClipBoxesToImage);
  def(env, exports, "removeSmallBoxes", RemoveSmallBoxes);
}

}  // namespace ft
