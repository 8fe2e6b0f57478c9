// The few places where libtorch's C++ API differs between the releases we
// build against: Debian 12's 1.13.1 (CI) and PyTorch 2.x (GPU machines).
#pragma once
#include <torch/torch.h>
#include <torch/version.h>
#include <optional>
#include <string>

#define FT_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace ft::compat {

// Optional arguments: libtorch 1.13 has its own c10::optional; 2.x uses
// std::optional (c10::optional became an alias and is deprecated).
#if FT_TORCH_AT_LEAST(2, 4)
template <class T>
using optional = std::optional<T>;
inline constexpr std::nullopt_t nullopt = std::nullopt;
#else
template <class T>
using optional = c10::optional<T>;
inline constexpr c10::nullopt_t nullopt = c10::nullopt;
#endif

// c10::Allocator::allocate() lost its const and gained a pure copy_data() in 2.3.
#if FT_TORCH_AT_LEAST(2, 3)
#define FT_ALLOCATE_CONST
#define FT_ALLOCATOR_NEEDS_COPY_DATA 1
#else
#define FT_ALLOCATE_CONST const
#define FT_ALLOCATOR_NEEDS_COPY_DATA 0
#endif

// Optimizer::state() is keyed by the parameter's TensorImpl: as a string up
// to 2.0, as the raw pointer since 2.1.
#if FT_TORCH_AT_LEAST(2, 1)
inline void* stateKey(const torch::Tensor& p) { return p.unsafeGetTensorImpl(); }
#else
inline std::string stateKey(const torch::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }
#endif

inline std::string versionString() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

}  // namespace ft::compat
