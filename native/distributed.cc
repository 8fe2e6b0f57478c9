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

#ifdef FT_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
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
// divideBy > 0 divides the results in place on the main thread before they
// settle (all-reduce 'avg'): on the worker, a large tensor's division would
// start another OpenMP team for that thread (see async.cc). `settled(ok)`,
// when given, runs on the main thread just before the Promise settles.
class DistWork : public Napi::AsyncWorker {
 public:
  using Fn = std::function<std::vector<torch::Tensor>()>;
  DistWork(Napi::Env env, const char* task, std::string what, std::vector<const void*> owned, Fn wait, int64_t divideBy,
           std::function<void(bool)> settled)
      : Napi::AsyncWorker(env, task),
        deferred_(Napi::Promise::Deferred::New(env)),
        what_(std::move(what)),
        wait_(std::move(wait)),
        claim_(task, std::move(owned)),
        divideBy_(divideBy),
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
    if (!failed_ && divideBy_ > 0) {
      try {
        for (auto& t : results_) t.div_(divideBy_);
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
  int64_t divideBy_;
  std::function<void(bool)> settled_;
};

[[maybe_unused]] Napi::Value queue(const Info& info, const char* task, std::string what, std::vector<const void*> owned,
                                   DistWork::Fn wait, int64_t divideBy = 0, std::function<void(bool)> settled = nullptr) {
  auto* work = new DistWork(info.Env(), task, std::move(what), std::move(owned), std::move(wait), divideBy, std::move(settled));
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

// Gloo reduces dense, contiguous CPU tensors in place.
void checkCollectiveTensor(const torch::Tensor& t, const char* what, size_t i) {
  std::string where = std::string(what) + ": tensor " + std::to_string(i);
  if (!t.defined()) throw ArgError(where + " is undefined");
  if (!t.device().is_cpu()) throw ArgError(where + " is on " + deviceName(t.device()) + "; the Gloo backend takes CPU tensors");
  if (t.is_sparse()) throw ArgError(where + " is sparse; only dense tensors are supported");
  if (!t.is_contiguous()) throw ArgError(where + " is not contiguous (call contiguous() first)");
}

// Waits for every launched work (each one collective on one tensor).
void waitAll(std::vector<c10::intrusive_ptr<c10d::Work>>& works, std::chrono::milliseconds timeout) {
  for (auto& w : works) w->wait(timeout);
}

Napi::Value DistInit(const Info& info) {
  Napi::Value o = info[0];
  if (!o.IsObject()) throw ArgError("distInit: expected an options object { backend, rank, worldSize, masterAddr, masterPort }");
  std::string backend = optString(field(o, "backend"), "distInit: backend", "gloo");
  if (backend != "gloo") throw ArgError("distInit: backend '" + backend + "' is not supported by this build (only 'gloo')");
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
  s->where = "rank " + std::to_string(rank) + " of " + std::to_string(world) + ", master " + addr + ":" + std::to_string(port);
  std::string what = "distInit (" + s->where + ")";
  auto rendezvous = [s, addr, port]() -> std::vector<torch::Tensor> {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(port);
    so.isServer = s->rank == 0;
    so.numWorkers = static_cast<size_t>(s->worldSize);
    so.waitWorkers = true;
    so.timeout = s->timeout;
    try {
      s->store = c10::make_intrusive<c10d::TCPStore>(addr, so);
    } catch (const std::exception& e) {
      throw std::runtime_error(
          std::string(s->rank == 0 ? "could not serve the TCPStore on " : "could not reach the TCPStore on ") + addr + ":" +
          std::to_string(port) + " within the timeout: " + e.what());
    }
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
  return queue(info, "distInit", what, {}, rendezvous, 0, [s](bool ok) {
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
    checkCollectiveTensor(ts[i], "distAllReduceAsync", i);
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
        waitAll(works, s->timeout);
        return ts;
      },
      op == "avg" ? s->worldSize : 0);
}

Napi::Value DistBroadcast(const Info& info) {
  auto s = requireGroup("distBroadcastAsync");
  std::vector<torch::Tensor> ts = toTensorList(info[0], "distBroadcastAsync: tensors");
  int64_t src = toInt(info[1], "distBroadcastAsync: src");
  if (src < 0 || src >= s->worldSize)
    throw ArgError("distBroadcastAsync: src must be a rank in [0, " + std::to_string(s->worldSize) + "), got " +
                   std::to_string(src));
  for (size_t i = 0; i < ts.size(); i++) checkCollectiveTensor(ts[i], "distBroadcastAsync", i);
  c10d::BroadcastOptions opts;
  opts.rootRank = src;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  for (auto& t : ts) {
    std::vector<torch::Tensor> one{t};
    works.push_back(s->group->broadcast(one, opts));
  }
  return queue(info, "distBroadcastAsync", "broadcast (" + s->where + ")", keysOf(ts), [s, ts, works]() mutable {
    waitAll(works, s->timeout);
    return ts;
  });
}

Napi::Value DistAllGather(const Info& info) {
  auto s = requireGroup("distAllGatherAsync");
  torch::Tensor t = toTensor(info[0], "distAllGatherAsync: tensor");
  checkCollectiveTensor(t, "distAllGatherAsync", 0);
  std::vector<std::vector<torch::Tensor>> outputs(1);
  for (int r = 0; r < s->worldSize; r++) outputs[0].push_back(torch::empty_like(t));
  std::vector<torch::Tensor> inputs{t};
  auto work = s->group->allgather(outputs, inputs);
  return queue(info, "distAllGatherAsync", "allGather (" + s->where + ")", keysOf({t}), [s, outputs, work]() {
    work->wait(s->timeout);
    return outputs[0];
  });
}

Napi::Value DistBarrier(const Info& info) {
  auto s = requireGroup("distBarrierAsync");
  auto work = s->group->barrier();
  return queue(info, "distBarrierAsync", "barrier (" + s->where + ")", {}, [s, work]() -> std::vector<torch::Tensor> {
    work->wait(s->timeout);
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

#else  // without Gloo

Napi::Value DistInit(const Info&) { notBuilt("distInit"); }
Napi::Value DistAllReduce(const Info&) { notBuilt("distAllReduceAsync"); }
Napi::Value DistBroadcast(const Info&) { notBuilt("distBroadcastAsync"); }
Napi::Value DistAllGather(const Info&) { notBuilt("distAllGatherAsync"); }
Napi::Value DistBarrier(const Info&) { notBuilt("distBarrierAsync"); }
Napi::Value DistDestroy(const Info& info) { return info.Env().Undefined(); }
Napi::Value DistRank(const Info& info) { return Napi::Number::New(info.Env(), -1); }
Napi::Value DistWorldSize(const Info& info) { return Napi::Number::New(info.Env(), -1); }

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
}

}  // namespace ft
