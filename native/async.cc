// Work off the main thread: forward, backward, optimizer step and a whole
// training step run off the event loop and settle a Promise, so a training
// loop never blocks it. JS values are touched only on the main thread
// (constructor, OnOK, OnError); the worker sees libtorch objects only.
//
// All of that work runs on one thread, the "torch thread"; the libuv worker
// that napi's AsyncWorker runs on only hands the task over and waits. Why:
// OpenMP (libgomp, under libtorch's intra-op parallelism) keeps a team of
// threads per thread that starts parallel regions. With tasks spread over
// libuv's 4 workers, a process had up to 5 teams on 2 cores; libgomp then
// counts more threads than CPUs and cuts its spin-wait to ~100 iterations,
// so a team's workers fall asleep between the thousands of short parallel
// regions of a forward and every region waits for a futex wake-up. Each
// worker also kept its own cold oneDNN caches. One thread, like Python's
// single interpreter thread, gives the same threading as PyTorch: ResNet-18
// batch-1 inference at 2 threads went from 30-35 ms to the 24 ms of a forward
// on the main thread (and of PyTorch). Tasks from different modules now run
// one after another instead of side by side; with intra-op parallelism using
// every core, running them side by side only oversubscribed the cores.
#include "common.h"
#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <atomic>
#include <condition_variable>
#include <dlfcn.h>
#include <deque>
#include <functional>
#include <future>
#include <thread>

namespace ft {

extern std::atomic<int> threadSettingGeneration;  // device.cc

namespace {

// OpenMP's thread count is per thread: the torch thread must apply the count
// set on the main thread. at::init_num_threads() does that, but it also
// recreates libtorch's pthreadpool and clears this thread's oneDNN (ideep)
// computation cache, so calling it before every task rebuilt every
// convolution's primitives each time (ResNet-18 batch-1 inference ran 2x
// slower at 2 threads). Apply it only when the count changed since the last task.
void applyThreadSettings() {
  thread_local int applied = -1;
  int current = threadSettingGeneration.load();
  if (applied != current) {
    at::init_num_threads();
    applied = current;
  }
}

// The one thread that runs every async task, in submission order. Created on
// first use and never joined (it waits on its queue when idle; process exit
// ends it), so it works across Node worker threads and at shutdown.
class TorchThread {
 public:
  static TorchThread& get() {
    static TorchThread* t = new TorchThread();
    return *t;
  }
  // Runs fn on the torch thread; blocks the caller until it has run.
  void run(std::function<void()> fn) {
    std::packaged_task<void()> task(std::move(fn));
    std::future<void> done = task.get_future();
    {
      std::lock_guard<std::mutex> g(mutex_);
      queue_.push_back(std::move(task));
    }
    ready_.notify_one();
    done.get();
  }

 private:
  TorchThread() { std::thread([this] { loop(); }).detach(); }
  void loop() {
    for (;;) {
      std::packaged_task<void()> task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return !queue_.empty(); });
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::packaged_task<void()>> queue_;
};

class TensorWork : public Napi::AsyncWorker {
 public:
  using Fn = std::function<std::vector<torch::Tensor>()>;
  TensorWork(Napi::Env env, Fn fn)
      : Napi::AsyncWorker(env, "finetorch"), deferred_(Napi::Promise::Deferred::New(env)), fn_(std::move(fn)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    std::string error;
    bool failed = true;  // until fn_ returns
    TorchThread::get().run([this, &error, &failed] {
      try {
        // Grad mode and other thread-local settings of the caller apply here too.
        at::ThreadLocalStateGuard tls(state_);
        applyThreadSettings();
        results_ = fn_();
        failed = false;
      } catch (const c10::Error& e) {
        error = e.what_without_backtrace();
      } catch (const std::exception& e) {
        error = e.what();
      } catch (...) {
        error = "finetorch: unknown native error";
      }
    });
    if (failed) SetError(error.empty() ? "finetorch: native error without a message" : error);
  }
  void OnOK() override { deferred_.Resolve(wrapList(Env(), results_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Fn fn_;
  at::ThreadLocalState state_;  // captured on the main thread at construction
  std::vector<torch::Tensor> results_;
};

// A parallel op run synchronously on the main thread gives the main thread an
// OpenMP team of its own, and libgomp keeps it for good: from then on it
// counts more threads than cores and every team, the torch thread's too,
// spins only briefly before sleeping between parallel regions (ResNet-18
// training at 2 threads: 125 instead of 150-160 images/s after a single
// torch.randn([1000, 1000]).add(1) on the main thread). So before handing
// work to the torch thread, the main thread gives its idle team back
// (omp_pause_resource_all frees the calling thread's team only; a no-op when
// it has none). Looked up at run time: a libtorch with another OpenMP runtime
// simply skips it.
void releaseMainThreadTeam() {
  using PauseAll = int (*)(int);
  static PauseAll pauseAll = [] {
    void* gomp = dlopen("libgomp.so.1", RTLD_LAZY | RTLD_NOLOAD);
    void* f = gomp ? dlsym(gomp, "omp_pause_resource_all") : nullptr;
    return reinterpret_cast<PauseAll>(f);
  }();
  constexpr int kPauseSoft = 1;  // omp_pause_soft
  if (pauseAll) pauseAll(kPauseSoft);
}

Napi::Value queue(Napi::Env env, TensorWork::Fn fn) {
  releaseMainThreadTeam();
  auto* work = new TensorWork(env, std::move(fn));
  Napi::Promise p = work->promise();
  work->Queue();  // the worker deletes itself when done
  return p;
}

int64_t lossReduction(const std::string& r) {
  if (r == "mean") return at::Reduction::Mean;
  if (r == "sum") return at::Reduction::Sum;
  throw ArgError("trainStep: reduction must be 'mean' or 'sum'");
}

}  // namespace

FT_ENTRY(ForwardAsync) {
  auto m = toModule(info[0], "module");
  auto inputs = toTensorList(info[1], "inputs");
  if (!hasNativeForward(*m)) throw std::runtime_error("forwardAsync: module '" + m->name() + "' has no native forward");
  return queue(info.Env(), [m, inputs]() {
    auto lock = moduleLock(m.get());
    std::lock_guard<std::mutex> g(*lock);
    return forwardModule(*m, inputs);
  });
}

FT_ENTRY(BackwardAsync) {
  torch::Tensor t = toTensor(info[0], "tensor");
  compat::optional<torch::Tensor> gradient = toOptionalTensor(info[1], "gradient");
  return queue(info.Env(), [t, gradient]() {
    t.backward(gradient.has_value() ? *gradient : torch::Tensor());
    return std::vector<torch::Tensor>{};
  });
}

FT_ENTRY(StepAsync) {
  auto opt = toOptimizer(info[0], "optimizer").shared();
  return queue(info.Env(), [opt]() {
    opt->step();
    return std::vector<torch::Tensor>{};
  });
}

// trainStepAsync(module, optimizer, input, target, {loss, reduction, labelSmoothing, weight})
// One whole supervised step: zero grads, forward, loss, backward, step.
// Resolves to [loss (detached), logits (detached)].
FT_ENTRY(TrainStepAsync) {
  auto m = toModule(info[0], "module");
  auto opt = toOptimizer(info[1], "optimizer").shared();
  torch::Tensor input = toTensor(info[2], "input");
  torch::Tensor target = toTensor(info[3], "target");
  if (!hasNativeForward(*m)) throw std::runtime_error("trainStepAsync: module '" + m->name() + "' has no native forward");
  Napi::Object o = info[4].IsObject() ? info[4].As<Napi::Object>() : Napi::Object::New(info.Env());
  std::string loss = isMissing(o.Get("loss")) ? "crossEntropy" : toString(o.Get("loss"), "loss");
  if (loss != "crossEntropy" && loss != "bceWithLogits" && loss != "mse")
    throw ArgError("trainStep: loss must be 'crossEntropy', 'bceWithLogits' or 'mse'");
  int64_t reduction = lossReduction(isMissing(o.Get("reduction")) ? "mean" : toString(o.Get("reduction"), "reduction"));
  double smoothing = isMissing(o.Get("labelSmoothing")) ? 0.0 : toDouble(o.Get("labelSmoothing"), "labelSmoothing");
  compat::optional<torch::Tensor> weight = toOptionalTensor(o.Get("weight"), "weight");
  return queue(info.Env(), [=]() {
    auto lock = moduleLock(m.get());
    std::lock_guard<std::mutex> g(*lock);
    for (auto& group : opt->param_groups())
      for (auto& p : group.params()) p.mutable_grad().reset();
    torch::Tensor logits = forwardModule(*m, {input}).at(0);
    torch::Tensor l;
    if (loss == "crossEntropy") l = at::cross_entropy_loss(logits, target, weight, reduction, -100, smoothing);
    else if (loss == "bceWithLogits") l = at::binary_cross_entropy_with_logits(logits, target, weight, compat::nullopt, reduction);
    else l = at::mse_loss(logits, target, reduction);
    l.backward();
    opt->step();
    return std::vector<torch::Tensor>{l.detach(), logits.detach()};
  });
}

void registerAsync(Napi::Env env, Napi::Object e) {
  e.Set("forwardAsync", Napi::Function::New(env, ForwardAsync));
  e.Set("backwardAsync", Napi::Function::New(env, BackwardAsync));
  e.Set("stepAsync", Napi::Function::New(env, StepAsync));
  e.Set("trainStepAsync", Napi::Function::New(env, TrainStepAsync));
}

}  // namespace ft
