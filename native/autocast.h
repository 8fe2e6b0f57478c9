// Autocast state shared by autocast.cc (the JS entry points) and async.cc
// (which carries the caller's state onto the torch thread with each task).
// libtorch keeps the enabled flags, the low-precision dtypes, the nesting
// count, the cache switch and the cast cache per thread.
#pragma once
#include "common.h"
#include <functional>

namespace ft {

struct AutocastState {
  bool cpuEnabled = false;
  at::ScalarType cpuDtype = at::kBFloat16;
  bool cudaEnabled = false;
  at::ScalarType cudaDtype = at::kHalf;
  bool cacheEnabled = true;
  uint64_t region = 0;  // the main thread's outermost region open when captured (0: none)
  bool any() const { return cpuEnabled || cudaEnabled; }
};

AutocastState currentAutocast();  // this thread's state
void applyAutocast(const AutocastState& s);  // sets this thread's state
void clearAutocastCache();  // this thread's cast cache

// What a task on the torch thread runs under: the submitting thread's
// autocast state, as one more nesting level (restored afterwards). The torch
// thread's cast cache is kept between the tasks of one region while it is
// open on the main thread (a region's second forward reuses the casts, as in
// Python) and dropped once that region has ended.
class AutocastTaskGuard {
 public:
  explicit AutocastTaskGuard(const AutocastState& s);
  ~AutocastTaskGuard();
  AutocastTaskGuard(const AutocastTaskGuard&) = delete;
  AutocastTaskGuard& operator=(const AutocastTaskGuard&) = delete;

 private:
  AutocastState saved_;
  bool nested_;
};

// Autocast off until the end of the scope (backward and the optimizer step of
// a one-call training step run outside autocast, as Python's AMP recipe does).
class AutocastOff {
 public:
  AutocastOff();
  ~AutocastOff() { applyAutocast(saved_); }
  AutocastOff(const AutocastOff&) = delete;
  AutocastOff& operator=(const AutocastOff&) = delete;

 private:
  AutocastState saved_;
};

// async.cc: runs fn on the torch thread after the tasks queued so far,
// without waiting for it.
void postToTorchThread(std::function<void()> fn);

void registerAutocast(Napi::Env env, Napi::Object exports);
void registerTransfer(Napi::Env env, Napi::Object exports);

}  // namespace ft
