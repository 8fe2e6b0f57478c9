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
#include "autocast.h"
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
  // Runs fn on the torch thread after what is queued; returns at once.
  void post(std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> g(mutex_);
      queue_.push_back(std::packaged_task<void()>(std::move(fn)));
    }
    ready_.notify_one();
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
  TorchThread() {
    std::thread([this] { loop(); }).detach();
  }
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

// One task: runs `fn` on the torch thread and settles a Promise with its
// tensors. The claim marks what the task owns (common.h) from now until it
// settles; the tensors, modules and optimizers fn captured are kept alive by
// fn itself, so disposing their handles meanwhile frees nothing under it.
class TensorWork : public Napi::AsyncWorker {
 public:
  using Fn = std::function<std::vector<torch::Tensor>()>;
  TensorWork(Napi::Env env, const char* task, std::vector<const void*> owned, Fn fn)
      : Napi::AsyncWorker(env, task),
        deferred_(Napi::Promise::Deferred::New(env)),
        fn_(std::move(fn)),
        claim_(task, std::move(owned)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    TorchThread::get().run([this] {
      try {
        // Grad mode and other thread-local settings of the caller apply here too.
        at::ThreadLocalStateGuard tls(state_);
        // so does the caller's autocast region (ThreadLocalState carries its
        // enabled flags but, in 1.13, not its dtypes, nesting or cache switch)
        AutocastTaskGuard autocast(autocast_);
        applyThreadSettings();
        results_ = fn_();
      } catch (...) {
        error_ = currentError();
        failed_ = true;
      }
    });
  }
  // Execute never calls SetError: the outcome is settled here, on the main
  // thread, after the claim is released (so the Promise's continuation may
  // use everything again).
  void OnOK() override {
    claim_.release();
    if (failed_) deferred_.Reject(toJs(Env(), error_).Value());
    else deferred_.Resolve(wrapList(Env(), results_));
  }

 private:
  Napi::Promise::Deferred deferred_;
  Fn fn_;
  AsyncClaim claim_;  // declared after fn_: released before fn_'s references go
  at::ThreadLocalState state_;  // captured on the main thread at construction
  AutocastState autocast_ = currentAutocast();  // likewise
  std::vector<torch::Tensor> results_;
  bool failed_ = false;
  JsError error_;
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

Napi::Value queue(Napi::Env env, const char* task, std::vector<const void*> owned, TensorWork::Fn fn) {
  releaseMainThreadTeam();
  auto* work = new TensorWork(env, task, std::move(owned), std::move(fn));
  Napi::Promise p = work->promise();
  work->Queue();  // the worker deletes itself when done
  return p;
}

// The arguments of async entry points use Access::keep: they are handed to
// the torch thread, where tasks run one after another, so a task queued
// behind another on the same module is simply serialised.

// forwardAsync(module, inputs)
Napi::Value ForwardAsync(const Info& info) {
  auto m = toModule(info[0], "module", Access::keep);
  auto inputs = toTensorList(info[1], "inputs", Access::keep);
  if (!hasNativeForward(*m)) throw std::runtime_error("forwardAsync: module '" + m->name() + "' has no native forward");
  std::vector<const void*> owned;
  claimModule(owned, *m);
  return queue(info.Env(), "forwardAsync", std::move(owned), [m, inputs]() { return forwardModule(*m, inputs); });
}

// backwardAsync(tensor, gradient?)
Napi::Value BackwardAsync(const Info& info) {
  torch::Tensor t = toTensor(info[0], "tensor", Access::keep);
  compat::optional<torch::Tensor> gradient = toOptionalTensor(info[1], "gradient", Access::keep);
  std::vector<const void*> owned;
  claimGraphLeaves(owned, t);
  return queue(info.Env(), "backwardAsync", std::move(owned), [t, gradient]() {
    t.backward(gradient.has_value() ? *gradient : torch::Tensor());
    return std::vector<torch::Tensor>{};
  });
}

// stepAsync(optimizer)
Napi::Value StepAsync(const Info& info) {
  auto opt = toOptimizer(info[0], "optimizer", Access::keep).shared();
  std::vector<const void*> owned;
  claimOptimizer(owned, *opt);
  return queue(info.Env(), "stepAsync", std::move(owned), [opt]() {
    opt->step();
    return std::vector<torch::Tensor>{};
  });
}

// trainStepAsync(module, optimizer, input, target, {loss, reduction, labelSmoothing, weight})
// One whole supervised step: zero grads, forward, loss, backward, step.
// Called inside an autocast region, the forward and the loss run under it and
// backward and step outside it, as in PyTorch's AMP recipe.
// Resolves to [loss (detached), logits (detached)].
Napi::Value TrainStepAsync(const Info& info) {
  auto m = toModule(info[0], "module", Access::keep);
  auto opt = toOptimizer(info[1], "optimizer", Access::keep).shared();
  torch::Tensor input = toTensor(info[2], "input", Access::keep);
  torch::Tensor target = toTensor(info[3], "target", Access::keep);
  if (!hasNativeForward(*m)) throw std::runtime_error("trainStepAsync: module '" + m->name() + "' has no native forward");
  Napi::Value o = info[4];
  std::string loss = optString(field(o, "loss"), "loss", "crossEntropy");
  if (loss != "crossEntropy" && loss != "bceWithLogits" && loss != "mse")
    throw ArgError("trainStep: loss must be 'crossEntropy', 'bceWithLogits' or 'mse'");
  int64_t reduction = toReduction(field(o, "reduction"), "trainStep", /*allowNone=*/false);
  double smoothing = optDouble(field(o, "labelSmoothing"), "labelSmoothing", 0.0);
  compat::optional<torch::Tensor> weight = toOptionalTensor(field(o, "weight"), "weight", Access::keep);
  std::vector<const void*> owned;
  claimModule(owned, *m);
  claimOptimizer(owned, *opt);
  return queue(info.Env(), "trainStepAsync", std::move(owned), [=]() {
    for (auto& group : opt->param_groups())
      for (auto& p : group.params()) p.mutable_grad().reset();
    torch::Tensor logits = forwardModule(*m, {input}).at(0);
    torch::Tensor l;
    if (loss == "crossEntropy") l = at::cross_entropy_loss(logits, target, weight, reduction, -100, smoothing);
    else if (loss == "bceWithLogits")
      l = at::binary_cross_entropy_with_logits(logits, target, weight, compat::nullopt, reduction);
    else l = at::mse_loss(logits, target, reduction);
    AutocastOff off;
    l.backward();
    opt->step();
    // the step changed the weights in place: casts cached by the forward are stale
    clearAutocastCache();
    return std::vector<torch::Tensor>{l.detach(), logits.detach()};
  });
}

}  // namespace

void postToTorchThread(std::function<void()> fn) {
  TorchThread::get().post([fn = std::move(fn)] {
    try {
      fn();
    } catch (...) {
      // nothing waits for a posted task: its errors have nowhere to go
    }
  });
}

void registerAsync(Napi::Env env, Napi::Object e) {
  def(env, e, "forwardAsync", ForwardAsync);
  def(env, e, "backwardAsync", BackwardAsync);
  def(env, e, "stepAsync", StepAsync);
  def(env, e, "trainStepAsync", TrainStepAsync);
}

}  // namespace ft
