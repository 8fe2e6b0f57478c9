// A caching allocator for large CPU tensor buffers.
//
// Why: with glibc's malloc, tensor buffers freed from JS were not reused once
// the many small node-api/V8 allocations between them fragmented the heap; a
// loop of 256x256 matmuls grew RSS by one buffer (0.25 MB) per step. Forcing
// such buffers into mmap fixes the growth but makes every allocation fault in
// fresh pages (a 256x256 matmul loop ran 1.6x slower). So large buffers come
// from mmap and, once freed, wait in per-size free lists for reuse (as
// PyTorch's CUDA caching allocator does), up to a cap; small ones go to
// libtorch's default allocator.
#include "common.h"
#include <c10/core/CPUAllocator.h>
#include <sys/mman.h>
#include <unistd.h>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

namespace ft {
namespace {

constexpr size_t kMinCached = 128 * 1024;  // below this, libtorch's allocator

// Rounds up to one of 8 classes per power of two (<= 12.5% waste), page multiple.
size_t sizeClass(size_t n) {
  size_t p = 4096;
  while (p < n) p <<= 1;
  size_t step = std::max<size_t>(p / 8, 4096);
  return (n + step - 1) / step * step;
}

class CachingCpuAllocator final : public c10::Allocator {
 public:
  CachingCpuAllocator(c10::Allocator* fallback, size_t cap) : fallback_(fallback), cap_(cap) {}

  at::DataPtr allocate(size_t n) FT_ALLOCATE_CONST override { return doAllocate(n); }
#if FT_ALLOCATOR_NEEDS_COPY_DATA
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }
#endif

  // raw_allocate/raw_deallocate (used inside libtorch) need a raw deleter;
  // it frees our blocks and hands any other pointer to the fallback's.
  c10::DeleterFnPtr raw_deleter() const override { return &CachingCpuAllocator::releaseAny; }

  struct Stats {
    size_t cachedBytes, liveBytes, hits, misses;
  };
  Stats stats() {
    std::lock_guard<std::mutex> g(mutex_);
    return {cached_, live_, hits_, misses_};
  }

  void emptyCache() {
    std::lock_guard<std::mutex> g(mutex_);
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) unmap(p, size);
    free_.clear();
    cached_ = 0;
  }

  static CachingCpuAllocator* instance;

 private:
  at::DataPtr doAllocate(size_t n) const {
    if (n < kMinCached) return fallback_->allocate(n);
    auto* self = const_cast<CachingCpuAllocator*>(this);
    void* p = self->take(sizeClass(n));
    return {p, p, &CachingCpuAllocator::release, at::Device(at::DeviceType::CPU)};
  }

  void* take(size_t size) {
    {
      std::lock_guard<std::mutex> g(mutex_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= size;
        live_ += size;
        hits_++;
        sizes_[p] = size;
        return p;
      }
      misses_++;
    }
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      emptyCache();  // give back what is cached and try once more
      p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      TORCH_CHECK(p != MAP_FAILED, "finetorch: out of memory: could not allocate ", size, " bytes for a CPU tensor");
    }
    std::lock_guard<std::mutex> g(mutex_);
    sizes_[p] = size;
    live_ += size;
    return p;
  }

  static void release(void* p) { instance->give(p); }

  static void releaseAny(void* p) {
    if (!instance->give(p)) {
      c10::DeleterFnPtr d = instance->fallback_->raw_deleter();
      TORCH_INTERNAL_ASSERT(d, "finetorch: CPU allocator cannot free a foreign pointer");
      d(p);
    }
  }

  // Returns false when p is not one of our blocks.
  bool give(void* p) {
    size_t size;
    {
      std::lock_guard<std::mutex> g(mutex_);
      auto it = sizes_.find(p);
      if (it == sizes_.end()) return false;
      size = it->second;
      sizes_.erase(it);
      live_ -= size;
      if (cached_ + size <= cap_) {
        free_[size].push_back(p);
        cached_ += size;
        return true;
      }
    }
    unmap(p, size);
    return true;
  }

  static void unmap(void* p, size_t size) { munmap(p, size); }

  c10::Allocator* fallback_;
  size_t cap_;
  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // size class -> free blocks
  std::unordered_map<void*, size_t> sizes_;  // live block -> size class
  size_t cached_ = 0, live_ = 0, hits_ = 0, misses_ = 0;
};

CachingCpuAllocator* CachingCpuAllocator::instance = nullptr;

// FINETORCH_CPU_CACHE_MB caps the cache (0 turns the caching allocator off);
// the default is 1 GiB or an eighth of physical memory, whichever is smaller.
size_t cacheCap() {
  if (const char* env = std::getenv("FINETORCH_CPU_CACHE_MB")) return static_cast<size_t>(std::strtoull(env, nullptr, 10)) << 20;
  size_t physical = static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return std::min<size_t>(size_t(1) << 30, physical / 8);
}

static Napi::Value CpuCacheStats(const Info& info) {
  Napi::Object out = Napi::Object::New(info.Env());
  if (!CachingCpuAllocator::instance) {
    out.Set("enabled", false);
    return out;
  }
  auto s = CachingCpuAllocator::instance->stats();
  out.Set("enabled", true);
  out.Set("cachedBytes", static_cast<double>(s.cachedBytes));
  out.Set("liveBytes", static_cast<double>(s.liveBytes));
  out.Set("hits", static_cast<double>(s.hits));
  out.Set("misses", static_cast<double>(s.misses));
  return out;
}

static Napi::Value EmptyCpuCache(const Info& info) {
  if (CachingCpuAllocator::instance) CachingCpuAllocator::instance->emptyCache();
  return info.Env().Undefined();
}

}  // namespace

// Installed once per process (worker threads share it); never destroyed, since
// tensors may be freed during process exit.
void installCpuAllocator() {
  static std::once_flag once;
  std::call_once(once, [] {
    size_t cap = cacheCap();
    if (cap == 0) return;
    CachingCpuAllocator::instance = new CachingCpuAllocator(c10::GetCPUAllocator(), cap);
    c10::SetCPUAllocator(CachingCpuAllocator::instance, /*priority=*/100);
  });
}

void registerCpuAllocator(Napi::Env env, Napi::Object exports) {
  def(env, exports, "cpuCacheStats", CpuCacheStats);
  def(env, exports, "emptyCpuCache", EmptyCpuCache);
}

}  // namespace ft
