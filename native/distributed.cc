// Process groups from libtorch's c10d: a TCPStore for the rendezvous (rank 0
// serves it on masterAddr:masterPort) and ProcessGroupGloo for the collectives.
// One group per process, held here as module-level state (like
// torch.distributed's default group). Collectives are launched on the main
// thread, in call order, so every rank queues them in the same order; the
// wait for the other ranks happens on a libuv worker (not the torch thread:
// a collective waiting for a slow peer must not hold up forward passes) and
// settles a Promise. Gloo's own timeout (timeoutMs) ends a wait on a peer that
// died or hangs with an error, which becomes a JS error naming this rank and
// the master's address.
//
// Built without Gloo's headers (FT_WITH_GLOO unset: scripts/get-gloo-headers.mjs
// could not fetch Debian's libgloo-dev), every entry point but the queries
// throws "built without c10d/Gloo".
#include "common.h"
#include <chrono>
#include <functional>
#include <future>
#include <thread>

#ifdef FT_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/autograd/function_hook.h>
#endif
#ifdef FT_WITH_NCCL
#include <torch/cuda.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace ft {
namespace {

#ifdef FT_WITH_GLOO

// The collectives' interface: ProcessGroup in 1.13, Backend in 2.x (where a
// ProcessGroup wraps backends; calling the Gloo backend directly is the same
// work without the dispatcher).
#if FT_TORCH_AT_LEAST(2, 0)
using Group = c10d::Backend;
#else
using Group = c10d::ProcessGroup;
#endif

struct State {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Group> group;
  int rank = -1;
  int worldSize = -1;
  std::string where;  // "rank 1 of 2, master 127.0.0.1:29500", for error messages
  std::chrono::milliseconds timeout{0};
  bool nccl = false;  // ProcessGroupNCCL (CUDA tensors) rather than Gloo (CPU tensors)
  // After the first failed collective: the ranks that did not answer (see unanswered())
  std::mutex faultMutex;
  bool faultChecked = false;
  std::string fault;
};

std::mutex stateMutex;
bool initializing = false;  // a distInit is under way (guarded by stateMutex)
// Never destroyed: at process exit a group's destructor would join Gloo's
// threads, which may be waiting on a dead peer.
std::shared_ptr<State>& current() {
  static auto* s = new std::shared_ptr<State>();
  return *s;
}

std::shared_ptr<State> requireGroup(const char* what) {
  std::lock_guard<std::mutex> g(stateMutex);
  if (!current()) throw std::runtime_error(std::string(what) + ": no process group (call distInit first)");
  return current();
}

#endif  // FT_WITH_GLOO

[[maybe_unused, noreturn]] void notBuilt(const char* what) {
  throw std::runtime_error(std::string(what) +
                           ": finetorch was built without c10d/Gloo (the build could not fetch Gloo's headers, "
                           "Debian's libgloo-dev; rebuild with network access to apt: node scripts/build-native.mjs)");
}

// Waits off the event loop: `wait` runs on a libuv worker and returns the
// tensors the Promise resolves to. Its errors are prefixed with `what`.
// `after`, when given, runs on the main thread on those tensors before the
// Promise settles and returns what it resolves to instead (all-reduce 'avg'
// divides there: on the worker, a large tensor's division would start
// another OpenMP team for that thread, see async.cc; the reducer writes the
// gradients there). `settled(ok)`, when given, runs on the main thread just
// before the Promise settles.
class DistWork : public Napi::AsyncWorker {
 public:
  using Fn = std::function<std::vector<torch::Tensor>()>;
  using After = std::function<std::vector<torch::Tensor>(std::vector<torch::Tensor>)>;
  DistWork(Napi::Env env, const char* task, std::string what, std::vector<const void*> owned, Fn wait, After after,
           std::function<void(bool)> settled)
      : Napi::AsyncWorker(env, task),
        deferred_(Napi::Promise::Deferred::New(env)),
        what_(std::move(what)),
        wait_(std::move(wait)),
        claim_(task, std::move(owned)),
        after_(std::move(after)),
        settled_(std::move(settled)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      results_ = wait_();
    } catch (...) {
      error_ = currentError();
      error_.message = what_ + ": " + error_.message;
      failed_ = true;
    }
  }
  void OnOK() override {
    claim_.release();
    if (!failed_ && after_) {
      try {
        results_ = after_(std::move(results_));
      } catch (...) {
        error_ = currentError();
        error_.message = what_ + ": " + error_.message;
        failed_ = true;
      }
    }
    if (settled_) settled_(!failed_);
    if (failed_) deferred_.Reject(toJs(Env(), error_).Value());
    else deferred_.Resolve(wrapList(Env(), results_));
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string what_;
  Fn wait_;
  AsyncClaim claim_;
  std::vector<torch::Tensor> results_;
  JsError error_;
  bool failed_ = false;
  DistWork::After after_;
  std::function<void(bool)> settled_;
};

[[maybe_unused]] Napi::Value queue(const Info& info, const char* task, std::string what, std::vector<const void*> owned,
                                   DistWork::Fn wait, DistWork::After after = nullptr,
                                   std::function<void(bool)> settled = nullptr) {
  auto* work =
      new DistWork(info.Env(), task, std::move(what), std::move(owned), std::move(wait), std::move(after), std::move(settled));
  Napi::Promise p = work->promise();
  work->Queue();  // deletes itself when done
  return p;
}

#ifdef FT_WITH_GLOO

std::vector<const void*> keysOf(const std::vector<torch::Tensor>& ts) {
  std::vector<const void*> keys;
  for (const auto& t : ts) keys.push_back(t.unsafeGetTensorImpl());
  return keys;
}

// The CUDA device of the first tensor (NCCL), else -1.
int cudaIndex(const std::vector<torch::Tensor>& ts) {
  return !ts.empty() && ts[0].defined() && ts[0].device().is_cuda() ? ts[0].device().index() : -1;
}

// Gloo reduces dense, contiguous CPU tensors in place, NCCL CUDA ones.
void checkCollectiveTensor(const State& s, const torch::Tensor& t, const char* what, size_t i) {
  std::string where = std::string(what) + ": tensor " + std::to_string(i);
  if (!t.defined()) throw ArgError(where + " is undefined");
  if (!s.nccl && !t.device().is_cpu())
    throw ArgError(where + " is on " + deviceName(t.device()) + "; the Gloo backend takes CPU tensors");
  if (s.nccl && !t.device().is_cuda())
    throw ArgError(where + " is on " + deviceName(t.device()) + "; the NCCL backend takes CUDA tensors");
  if (t.is_sparse()) throw ArgError(where + " is sparse; only dense tensors are supported");
  if (!t.is_contiguous()) throw ArgError(where + " is not contiguous (call contiguous() first)");
}

// "rank 1" / "ranks 1, 2", and the verb's number.
std::string ranksDid(const std::vector<int>& ranks, const std::string& singular, const std::string& plural) {
  std::string out = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); i++) out += (i ? ", " : "") + std::to_string(ranks[i]);
  return out + " " + (ranks.size() == 1 ? singular : plural);
}

const char* const kStoreGone = "rank 0 did not answer (it serves the TCPStore): it died or hangs";

// Which ranks did not answer, once a collective failed: this rank sets its
// key in the store and waits a little (half the timeout, at most 3 s) for
// the others' keys; the ranks whose key is missing died or hang (a surviving
// rank fails too and sets its key). A store that cannot be reached means
// rank 0, which serves it, is gone. Empty when every rank answered. Found
// once per group (every later failure has the same cause), on its own
// thread so a store that never replies cannot hold the caller longer.
std::string unanswered(const std::shared_ptr<State>& s) {
  std::lock_guard<std::mutex> g(s->faultMutex);
  if (s->faultChecked) return s->fault;
  auto window = std::min(s->timeout / 2, std::chrono::milliseconds(3000));
  auto found = std::make_shared<std::promise<std::string>>();
  auto future = found->get_future();
  std::thread([s, window, found]() {
    auto key = [](int r) { return "finetorch/answered/" + std::to_string(r); };
    std::string who;
    try {
      s->store->set(key(s->rank), std::vector<uint8_t>{1});
      auto deadline = std::chrono::steady_clock::now() + window;
      std::vector<int> missing;
      for (;;) {
        missing.clear();
        for (int r = 0; r < s->worldSize; r++)
          if (r != s->rank && !s->store->check({key(r)})) missing.push_back(r);
        if (missing.empty() || std::chrono::steady_clock::now() >= deadline) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (!missing.empty()) who = ranksDid(missing, "did not answer: it died or hangs", "did not answer: they died or hang");
    } catch (...) {
      who = s->rank == 0 ? "" : kStoreGone;
    }
    found->set_value(who);
  }).detach();
  bool done = future.wait_for(window + std::chrono::milliseconds(2000)) == std::future_status::ready;
  s->fault = done ? future.get() : s->rank == 0 ? "" : kStoreGone;
  s->faultChecked = true;
  return s->fault;
}

// Waits for every launched work (each one collective on one tensor); a
// failure names the ranks that did not answer, with the original cause.
// NCCL's wait() only orders the streams: the device the tensors are on
// (cudaDevice) is synchronized too, so the results are there when the
// Promise settles and the main thread never blocks on them.
void waitOrName(const std::shared_ptr<State>& s, std::vector<c10::intrusive_ptr<c10d::Work>>& works,
                [[maybe_unused]] int cudaDevice = -1) {
  try {
    for (auto& w : works) w->wait(s->timeout);
#ifdef FT_WITH_NCCL
    if (s->nccl) torch::cuda::synchronize(cudaDevice);
#endif
  } catch (...) {
    JsError cause = currentError();
    std::string who = unanswered(s);
    if (who.empty()) throw;
    throw std::runtime_error(who + " (" + cause.message + ")");
  }
}

Napi::Value DistInit(const Info& info) {
  Napi::Value o = info[0];
  if (!o.IsObject()) throw ArgError("distInit: expected an options object { backend, rank, worldSize, masterAddr, masterPort }");
  std::string backend = optString(field(o, "backend"), "distInit: backend", "gloo");
  if (backend != "gloo" && backend != "nccl") throw ArgError("distInit: backend must be 'gloo' or 'nccl', got '" + backend + "'");
#ifndef FT_WITH_NCCL
  if (backend == "nccl")
    throw ArgError("distInit: backend 'nccl': this build has no NCCL (only CUDA builds of finetorch have it); use 'gloo'");
#endif
  int64_t rank = toInt(field(o, "rank"), "distInit: rank");
  int64_t world = toInt(field(o, "worldSize"), "distInit: worldSize");
  std::string addr = toString(field(o, "masterAddr"), "distInit: masterAddr");
  int64_t port = toInt(field(o, "masterPort"), "distInit: masterPort");
  int64_t timeoutMs = optInt(field(o, "timeoutMs"), "distInit: timeoutMs", 30 * 60 * 1000);
  if (world < 1) throw ArgError("distInit: worldSize must be at least 1, got " + std::to_string(world));
  if (rank < 0 || rank >= world)
    throw ArgError("distInit: rank must be in [0, worldSize), got rank " + std::to_string(rank) + " with worldSize " +
                   std::to_string(world));
  if (port < 1 || port > 65535) throw ArgError("distInit: masterPort must be in 1..65535, got " + std::to_string(port));
  if (addr.empty()) throw ArgError("distInit: masterAddr is empty");
  if (timeoutMs < 1) throw ArgError("distInit: timeoutMs must be positive, got " + std::to_string(timeoutMs));
  {
    std::lock_guard<std::mutex> g(stateMutex);
    if (current())
      throw std::runtime_error("distInit: a process group is already up (" + current()->where + "); call distDestroy first");
    if (initializing) throw std::runtime_error("distInit: another distInit is under way; await it first");
    initializing = true;
  }
  auto s = std::make_shared<State>();
  s->rank = static_cast<int>(rank);
  s->worldSize = static_cast<int>(world);
  s->timeout = std::chrono::milliseconds(timeoutMs);
  s->nccl = backend == "nccl";
  s->where = "rank " + std::to_string(rank) + " of " + std::to_string(world) + ", master " + addr + ":" + std::to_string(port);
  std::string what = "distInit (" + s->where + ")";
  auto rendezvous = [s, addr, port]() -> std::vector<torch::Tensor> {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(port);
    so.isServer = s->rank == 0;
    so.numWorkers = static_cast<size_t>(s->worldSize);
    so.waitWorkers = false;  // the keys below say which ranks did not come
    so.timeout = s->timeout;
    try {
      s->store = c10::make_intrusive<c10d::TCPStore>(addr, so);
    } catch (...) {
      throw std::runtime_error(
          std::string(s->rank == 0 ? "could not serve the TCPStore on " : "could not reach the TCPStore on ") + addr + ":" +
          std::to_string(port) + (s->rank == 0 ? "" : " (rank 0 serves it)") + " within the timeout: " + currentError().message);
    }
    // Every rank says it came, then waits for the others, naming those that did not.
    std::vector<std::string> joined;
    for (int r = 0; r < s->worldSize; r++) joined.push_back("finetorch/joined/" + std::to_string(r));
    try {
      s->store->set(joined[s->rank], std::vector<uint8_t>{1});
      s->store->wait(joined, s->timeout);
    } catch (...) {
      JsError cause = currentError();
      std::vector<int> missing;
      try {
        for (int r = 0; r < s->worldSize; r++)
          if (!s->store->check({joined[r]})) missing.push_back(r);
      } catch (...) {
        throw std::runtime_error(std::string(kStoreGone) + " during the rendezvous (" + cause.message + ")");
      }
      if (missing.empty()) throw;
      throw std::runtime_error(ranksDid(missing, "did not join", "did not join") + " within the timeout (" +
                               std::to_string(s->timeout.count()) + " ms; " + cause.message + ")");
    }
#ifdef FT_WITH_NCCL
    if (s->nccl) {
      // one GPU per rank: the collectives run on the device of their tensors (cuda:LOCAL_RANK by convention)
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = s->timeout;
      s->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(s->store, s->rank, s->worldSize, options);
      return {};
    }
#endif
    auto options = c10d::ProcessGroupGloo::Options::create(s->timeout);
    // On loopback every rank binds 127.0.0.1; otherwise the address this
    // machine's hostname resolves to (PyTorch's default), unless
    // GLOO_SOCKET_IFNAME names an interface.
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    bool loopback = addr == "localhost" || addr.rfind("127.", 0) == 0;
    if (ifname && *ifname) options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (loopback) options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    s->group = c10::make_intrusive<c10d::ProcessGroupGloo>(s->store, s->rank, s->worldSize, options);
    return {};
  };
  // The group is published on the main thread as the Promise settles, so
  // distRank() and a second distInit see it exactly from then on.
  return queue(info, "distInit", what, {}, rendezvous, nullptr, [s](bool ok) {
    std::lock_guard<std::mutex> g(stateMutex);
    initializing = false;
    if (ok) current() = s;
  });
}

Napi::Value DistAllReduce(const Info& info) {
  auto s = requireGroup("distAllReduceAsync");
  std::vector<torch::Tensor> ts = toTensorList(info[0], "distAllReduceAsync: tensors");
  std::string op = toString(info[1], "distAllReduceAsync: op");
  c10d::AllreduceOptions opts;
  if (op == "sum" || op == "avg") opts.reduceOp = c10d::ReduceOp::SUM;
  else if (op == "max") opts.reduceOp = c10d::ReduceOp::MAX;
  else if (op == "min") opts.reduceOp = c10d::ReduceOp::MIN;
  else throw ArgError("distAllReduceAsync: op must be 'sum', 'avg', 'max' or 'min', got '" + op + "'");
  for (size_t i = 0; i < ts.size(); i++) {
    checkCollectiveTensor(*s, ts[i], "distAllReduceAsync", i);
    if (op == "avg" && !at::isFloatingType(ts[i].scalar_type()))
      throw ArgError("distAllReduceAsync: op 'avg' needs floating-point tensors; tensor " + std::to_string(i) + " is " +
                     dtypeName(ts[i].scalar_type()));
  }
  // One collective per tensor: Gloo reads a list as one tensor per device
  // and would also sum the list's tensors together.
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  for (auto& t : ts) {
    std::vector<torch::Tensor> one{t};
    works.push_back(s->group->allreduce(one, opts));
  }
  return queue(
      info, "distAllReduceAsync", "allReduce (" + s->where + ")", keysOf(ts),
      [s, ts, works]() mutable {
        waitOrName(s, works, cudaIndex(ts));
        return ts;
      },
      op == "avg" ? DistWork::After([world = s->worldSize](std::vector<torch::Tensor> ts) {
        for (auto& t : ts) t.div_(world);
        return ts;
      })
                  : DistWork::After());
}

Napi::Value DistBroadcast(const Info& info) {
  auto s = requireGroup("distBroadcastAsync");
  std::vector<torch::Tensor> ts = toTensorList(info[0], "distBroadcastAsync: tensors");
  int64_t src = toInt(info[1], "distBroadcastAsync: src");
  if (src < 0 || src >= s->worldSize)
    throw ArgError("distBroadcastAsync: src must be a rank in [0, " + std::to_string(s->worldSize) + "), got " +
                   std::to_string(src));
  for (size_t i = 0; i < ts.size(); i++) checkCollectiveTensor(*s, ts[i], "distBroadcastAsync", i);
  c10d::BroadcastOptions opts;
  opts.rootRank = src;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  for (auto& t : ts) {
    std::vector<torch::Tensor> one{t};
    works.push_back(s->group->broadcast(one, opts));
  }
  return queue(info, "distBroadcastAsync", "broadcast (" + s->where + ")", keysOf(ts), [s, ts, works]() mutable {
    waitOrName(s, works, cudaIndex(ts));
    return ts;
  });
}

Napi::Value DistAllGather(const Info& info) {
  auto s = requireGroup("distAllGatherAsync");
  torch::Tensor t = toTensor(info[0], "distAllGatherAsync: tensor");
  checkCollectiveTensor(*s, t, "distAllGatherAsync", 0);
  std::vector<std::vector<torch::Tensor>> outputs(1);
  for (int r = 0; r < s->worldSize; r++) outputs[0].push_back(torch::empty_like(t));
  std::vector<torch::Tensor> inputs{t};
  auto work = s->group->allgather(outputs, inputs);
  return queue(info, "distAllGatherAsync", "allGather (" + s->where + ")", keysOf({t}), [s, outputs, work]() {
    std::vector<c10::intrusive_ptr<c10d::Work>> works{work};
    waitOrName(s, works, cudaIndex(outputs[0]));
    return outputs[0];
  });
}

Napi::Value DistBarrier(const Info& info) {
  auto s = requireGroup("distBarrierAsync");
  auto work = s->group->barrier();
  return queue(info, "distBarrierAsync", "barrier (" + s->where + ")", {}, [s, work]() -> std::vector<torch::Tensor> {
    std::vector<c10::intrusive_ptr<c10d::Work>> works{work};
    waitOrName(s, works);
    return {};
  });
}

Napi::Value DistDestroy(const Info& info) {
  std::shared_ptr<State> s;
  {
    std::lock_guard<std::mutex> g(stateMutex);
    s.swap(current());
  }
  // Pending works keep their own reference: the group goes when they settle.
  return info.Env().Undefined();
}

Napi::Value DistRank(const Info& info) {
  std::lock_guard<std::mutex> g(stateMutex);
  return Napi::Number::New(info.Env(), current() ? current()->rank : -1);
}

Napi::Value DistWorldSize(const Info& info) {
  std::lock_guard<std::mutex> g(stateMutex);
  return Napi::Number::New(info.Env(), current() ? current()->worldSize : -1);
}

// ---- the gradient reducer (PyTorch's c10d Reducer) -------------------------
// The parameters that require grad, in reverse order, go into flat buckets of
// up to bucketCapBytes (one dtype and device each). Each bucket's buffer holds
// its gradients, then one had-a-gradient entry per parameter; the last
// bucket's also carries the caller's flags. A post hook on each parameter's
// gradient accumulator (AccumulateGrad, kept alive here so the hook stays)
// copies the accumulated gradient into its bucket once prepare() has armed
// the reducer; a bucket whose gradients are all in is all-reduced at once,
// buckets strictly in order on every rank, so the all-reduces overlap the
// rest of the backward. finish() fills in what the backward did not reach
// (a parameter without a gradient counts as zeros), launches the remaining
// buckets, waits on a libuv worker, and on the main thread writes the
// averages into the gradients. The last bucket always waits for finish(): it
// carries the flags.
using AccumulatorPtr = decltype(torch::autograd::impl::grad_accumulator(std::declval<torch::autograd::Variable>()));

struct Reducer {
  struct Slot {
    torch::Tensor param;
    size_t bucket = 0;
    size_t index = 0;  // within the bucket
    int64_t offset = 0;
    bool filled = false;
  };
  struct Bucket {
    std::vector<size_t> slots;
    int64_t numel = 0;  // of the gradients, without the tail
    torch::Tensor flat;
    size_t pending = 0;
    bool launched = false;
    c10::intrusive_ptr<c10d::Work> work;
  };
  std::shared_ptr<State> s;
  std::mutex mutex;
  std::vector<Slot> slots;
  std::vector<Bucket> buckets;
  std::vector<AccumulatorPtr> accumulators;
  bool armed = false;
  bool disposed = false;
  size_t nextLaunch = 0;
  int launchedDuringBackward = 0;
  std::string error;  // a failure inside a hook, reported by finish()

  // Copies slot i's gradient (or zeros) into its bucket; call with the mutex held.
  void fill(size_t i) {
    Slot& slot = slots[i];
    Bucket& b = buckets[slot.bucket];
    torch::NoGradGuard noGrad;
    torch::Tensor grad = slot.param.grad();
    int64_t n = slot.param.numel();
    auto tail = b.flat.narrow(0, b.numel + static_cast<int64_t>(slot.index), 1);
    if (grad.defined()) {
      b.flat.narrow(0, slot.offset, n).view(slot.param.sizes()).copy_(grad.detach());
      tail.fill_(1);
    } else {
      b.flat.narrow(0, slot.offset, n).zero_();
      tail.fill_(0);
    }
    if (!slot.filled) {
      slot.filled = true;
      b.pending--;
    }
  }

  void launch(Bucket& b) {
    std::vector<torch::Tensor> one{b.flat};
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    b.work = s->group->allreduce(one, opts);
    b.launched = true;
  }

  // Launches the complete buckets that are next in order (never the last: it waits for the flags).
  void launchReady() {
    while (nextLaunch + 1 < buckets.size() && buckets[nextLaunch].pending == 0) {
      launch(buckets[nextLaunch++]);
      launchedDuringBackward++;
    }
  }

  // Nothing filled or launched. Every slot is written before its bucket is
  // sent (fill), so a buffer is reused as it is, unless an all-reduce that
  // was never waited for may still write into it (or it grew by the flags).
  void reset() {
    for (auto& slot : slots) slot.filled = false;
    for (auto& b : buckets) {
      const torch::Tensor& first = slots[b.slots.front()].param;
      int64_t size = b.numel + static_cast<int64_t>(b.slots.size());
      if (!b.flat.defined() || b.flat.numel() != size || b.work)
        b.flat = torch::empty({size}, first.options().requires_grad(false));
      b.pending = b.slots.size();
      b.launched = false;
      b.work.reset();
    }
    nextLaunch = 0;
    launchedDuringBackward = 0;
    error.clear();
  }

  // From a post hook (the thread running the backward).
  void ready(size_t i) {
    std::lock_guard<std::mutex> g(mutex);
    if (!armed || disposed || !error.empty()) return;
    try {
      Slot& slot = slots[i];
      if (slot.filled && buckets[slot.bucket].launched) {
        error =
            "a gradient was accumulated again after its bucket was sent (two backward passes after prepare()? "
            "call prepare() before the last one only)";
        return;
      }
      fill(i);
      launchReady();
    } catch (...) {
      error = currentError().message;
    }
  }
};

struct ReducerHook : torch::autograd::FunctionPostHook {
  ReducerHook(std::weak_ptr<Reducer> reducer, size_t slot) : reducer_(std::move(reducer)), slot_(slot) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list&) override {
    if (auto r = reducer_.lock()) r->ready(slot_);
    return outputs;
  }

 private:
  std::weak_ptr<Reducer> reducer_;
  size_t slot_;
};

// What JS holds: a box, so a stray External is told apart.
struct ReducerBox {
  static constexpr uint32_t kMagic = 0x52454455;  // "REDU"
  uint32_t magic = kMagic;
  std::shared_ptr<Reducer> reducer;
};

std::shared_ptr<Reducer> toReducer(const Napi::Value& v, const char* what) {
  if (!v.IsExternal()) throw ArgError(std::string(what) + ": expected a reducer handle (from distReducerCreate)");
  auto* box = v.As<Napi::External<ReducerBox>>().Data();
  if (!box || box->magic != ReducerBox::kMagic)
    throw ArgError(std::string(what) + ": expected a reducer handle (from distReducerCreate)");
  if (!box->reducer) throw std::runtime_error(std::string(what) + ": the reducer was disposed");
  return box->reducer;
}

// distReducerCreate(params, bucketCapBytes)
Napi::Value DistReducerCreate(const Info& info) {
  auto s = requireGroup("distReducerCreate");
  std::vector<torch::Tensor> params = toTensorList(info[0], "distReducerCreate: params", Access::keep);
  double cap = toDouble(info[1], "distReducerCreate: bucketCapBytes");
  if (!(cap > 0)) throw ArgError("distReducerCreate: bucketCapBytes must be positive, got " + std::to_string(cap));
  for (size_t i = 0; i < params.size(); i++) {
    const auto& p = params[i];
    std::string where = "distReducerCreate: parameter " + std::to_string(i);
    if (!p.defined()) throw ArgError(where + " is undefined");
    if (!p.requires_grad() || !p.is_leaf()) throw ArgError(where + " is not a leaf that requires grad");
    if (!at::isFloatingType(p.scalar_type()))
      throw ArgError(where + " is " + dtypeName(p.scalar_type()) + ", not floating point");
    if (p.is_sparse()) throw ArgError(where + " is sparse");
  }
  auto r = std::make_shared<Reducer>();
  r->s = s;
  // reverse order, as PyTorch buckets: the gradients of the last layers are ready first
  int64_t bytes = 0;
  for (size_t k = params.size(); k-- > 0;) {
    const auto& p = params[k];
    int64_t size = p.numel() * static_cast<int64_t>(p.element_size());
    bool startNew = r->buckets.empty();
    if (!startNew) {
      const auto& first = r->slots[r->buckets.back().slots.front()].param;
      startNew =
          first.scalar_type() != p.scalar_type() || first.device() != p.device() || static_cast<double>(bytes + size) > cap;
    }
    if (startNew) {
      r->buckets.emplace_back();
      bytes = 0;
    }
    auto& b = r->buckets.back();
    Reducer::Slot slot;
    slot.param = p;
    slot.bucket = r->buckets.size() - 1;
    slot.index = b.slots.size();
    slot.offset = b.numel;
    b.slots.push_back(r->slots.size());
    b.numel += p.numel();
    bytes += size;
    r->slots.push_back(slot);
  }
  r->reset();
  std::weak_ptr<Reducer> weak = r;
  for (size_t i = 0; i < r->slots.size(); i++) {
    auto acc = torch::autograd::impl::grad_accumulator(r->slots[i].param);
    if (!acc) throw ArgError("distReducerCreate: parameter has no gradient accumulator");
    acc->add_post_hook(std::make_unique<ReducerHook>(weak, i));
    r->accumulators.push_back(std::move(acc));
  }
  auto* box = new ReducerBox();
  box->reducer = r;
  return Napi::External<ReducerBox>::New(info.Env(), box, [](Napi::Env, ReducerBox* b) { delete b; });
}

// distReducerPrepare(reducer): arms the hooks for the next backward.
Napi::Value DistReducerPrepare(const Info& info) {
  auto r = toReducer(info[0], "distReducerPrepare");
  std::lock_guard<std::mutex> g(r->mutex);
  r->reset();
  r->armed = true;
  return info.Env().Undefined();
}

// distReducerFinishAsync(reducer, flags): resolves to [the flags summed over the ranks].
Napi::Value DistReducerFinish(const Info& info) {
  auto r = toReducer(info[0], "distReducerFinishAsync");
  std::vector<double> flags;
  if (!info[1].IsArray()) throw ArgError("distReducerFinishAsync: flags must be an array of numbers");
  auto list = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); i++) flags.push_back(toDouble(list.Get(i), "distReducerFinishAsync: flags"));
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  std::vector<const void*> owned;
  torch::Tensor flagTensor;  // the flags alone (no parameters), or the last bucket's buffer
  {
    std::lock_guard<std::mutex> g(r->mutex);
    if (!r->armed) r->reset();  // no prepare(): everything is reduced here
    r->armed = false;
    if (!r->error.empty()) throw std::runtime_error("distReducerFinishAsync: " + r->error);
    for (size_t i = 0; i < r->slots.size(); i++) {
      owned.push_back(r->slots[i].param.unsafeGetTensorImpl());
      if (!r->slots[i].filled) r->fill(i);
    }
    auto flagValues = torch::tensor(flags, torch::kFloat64);
    if (r->buckets.empty()) {
      flagTensor = flagValues;
      if (!flags.empty()) {
        std::vector<torch::Tensor> one{flagTensor};
        c10d::AllreduceOptions opts;
        opts.reduceOp = c10d::ReduceOp::SUM;
        works.push_back(r->s->group->allreduce(one, opts));
      }
    } else {
      auto& last = r->buckets.back();
      if (!flags.empty()) last.flat = torch::cat({last.flat, flagValues.to(last.flat.options())});
      for (; r->nextLaunch < r->buckets.size(); r->nextLaunch++) r->launch(r->buckets[r->nextLaunch]);
      for (auto& b : r->buckets) works.push_back(b.work);
      flagTensor = last.flat;
    }
  }
  auto s = r->s;
  size_t nFlags = flags.size();
  return queue(
      info, "distReducerFinishAsync", "GradientReducer.finish (" + s->where + ")", std::move(owned),
      [s, works, device = cudaIndex({flagTensor})]() mutable -> std::vector<torch::Tensor> {
        waitOrName(s, works, device);
        return {};
      },
      [r, flagTensor, nFlags](std::vector<torch::Tensor>) -> std::vector<torch::Tensor> {
        std::lock_guard<std::mutex> g(r->mutex);
        torch::NoGradGuard noGrad;
        int64_t world = r->s->worldSize;
        for (auto& b : r->buckets) {
          auto counts = b.flat.narrow(0, b.numel, static_cast<int64_t>(b.slots.size())).to(torch::kCPU, torch::kFloat64);
          const double* had = counts.data_ptr<double>();
          for (size_t k = 0; k < b.slots.size(); k++) {
            if (had[k] == 0) continue;  // no rank had a gradient: it stays as it is
            auto& slot = r->slots[b.slots[k]];
            auto mean = b.flat.narrow(0, slot.offset, slot.param.numel()).view(slot.param.sizes()).div_(world);
            torch::Tensor grad = slot.param.grad();
            if (grad.defined()) grad.copy_(mean);
            else slot.param.mutable_grad() = mean.clone(at::MemoryFormat::Contiguous);
          }
        }
        auto summed = flagTensor.narrow(0, flagTensor.numel() - static_cast<int64_t>(nFlags), static_cast<int64_t>(nFlags));
        std::vector<torch::Tensor> out{summed.to(torch::kCPU, torch::kFloat64).clone()};
        for (auto& b : r->buckets) b.work.reset();
        return out;
      });
}

Napi::Value DistReducerStats(const Info& info) {
  auto r = toReducer(info[0], "distReducerStats");
  std::lock_guard<std::mutex> g(r->mutex);
  auto o = Napi::Object::New(info.Env());
  o.Set("buckets", Napi::Number::New(info.Env(), static_cast<double>(r->buckets.size())));
  o.Set("launchedDuringBackward", Napi::Number::New(info.Env(), r->launchedDuringBackward));
  return o;
}

// distReducerDispose(reducer): the hooks go quiet, the accumulators and parameters are let go.
Napi::Value DistReducerDispose(const Info& info) {
  if (!info[0].IsExternal()) throw ArgError("distReducerDispose: expected a reducer handle (from distReducerCreate)");
  auto* box = info[0].As<Napi::External<ReducerBox>>().Data();
  if (!box || box->magic != ReducerBox::kMagic)
    throw ArgError("distReducerDispose: expected a reducer handle (from distReducerCreate)");
  std::shared_ptr<Reducer> r;
  r.swap(box->reducer);
  if (r) {
    std::lock_guard<std::mutex> g(r->mutex);
    r->disposed = true;
    r->armed = false;
    r->accumulators.clear();
  }
  return info.Env().Undefined();
}

#else  // without Gloo

Napi::Value DistInit(const Info&) { notBuilt("distInit"); }
Napi::Value DistAllReduce(const Info&) { notBuilt("distAllReduceAsync"); }
Napi::Value DistBroadcast(const Info&) { notBuilt("distBroadcastAsync"); }
Napi::Value DistAllGather(const Info&) { notBuilt("distAllGatherAsync"); }
Napi::Value DistBarrier(const Info&) { notBuilt("distBarrierAsync"); }
Napi::Value DistDestroy(const Info& info) { return info.Env().Undefined(); }
Napi::Value DistRank(const Info& info) { return Napi::Number::New(info.Env(), -1); }
Napi::Value DistWorldSize(const Info& info) { return Napi::Number::New(info.Env(), -1); }
Napi::Value DistReducerCreate(const Info&) { notBuilt("distReducerCreate"); }
Napi::Value DistReducerPrepare(const Info&) { notBuilt("distReducerPrepare"); }
Napi::Value DistReducerFinish(const Info&) { notBuilt("distReducerFinishAsync"); }
Napi::Value DistReducerStats(const Info&) { notBuilt("distReducerStats"); }
Napi::Value DistReducerDispose(const Info& info) { return info.Env().Undefined(); }

#endif

}  // namespace

void registerDistributed(Napi::Env env, Napi::Object e) {
#ifdef FT_WITH_GLOO
  const bool available = true;
#else
  const bool available = false;
#endif
  def(env, e, "distAvailable",
      [available](const Info& info) -> Napi::Value { return Napi::Boolean::New(info.Env(), available); });
  def(env, e, "distInit", DistInit);
  def(env, e, "distAllReduceAsync", DistAllReduce);
  def(env, e, "distBroadcastAsync", DistBroadcast);
  def(env, e, "distAllGatherAsync", DistAllGather);
  def(env, e, "distBarrierAsync", DistBarrier);
  def(env, e, "distDestroy", DistDestroy);
  def(env, e, "distRank", DistRank);
  def(env, e, "distWorldSize", DistWorldSize);
  def(env, e, "distReducerCreate", DistReducerCreate);
  def(env, e, "distReducerPrepare", DistReducerPrepare);
  def(env, e, "distReducerFinishAsync", DistReducerFinish);
  def(env, e, "distReducerStats", DistReducerStats);
  def(env, e, "distReducerDispose", DistReducerDispose);
}

}  // namespace ft
