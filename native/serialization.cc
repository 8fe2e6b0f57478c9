// Raw tensor bytes to and from files. The checkpoint formats themselves
// (safetensors, torch.save zip + pickle) are parsed in TypeScript (lib/io);
// these primitives read a storage straight from the file into tensor memory
// (one copy, no JS buffer in between) and hand raw bytes back for writing.
#include "common.h"
#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

namespace ft {
namespace {

// fromFile(path, offset, nbytes, dtype): a 1-D tensor holding those bytes.
static Napi::Value FromFile(const Info& info) {
  std::string path = toString(info[0], "path");
  int64_t offset = toInt(info[1], "offset");
  int64_t nbytes = toInt(info[2], "nbytes");
  torch::Dtype dtype = toDtype(info[3]);
  if (offset < 0 || nbytes < 0) throw ArgError("fromFile: offset and nbytes must be >= 0");
  int64_t elem = static_cast<int64_t>(c10::elementSize(dtype));
  if (nbytes % elem != 0)
    throw std::runtime_error(path + ": a " + dtypeName(dtype) + " tensor of " + std::to_string(nbytes) +
                             " bytes is not a whole number of elements");
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(path + ": " + std::strerror(errno));
  torch::Tensor t = torch::empty({nbytes / elem}, torch::TensorOptions().dtype(dtype));
  auto* dst = static_cast<char*>(t.data_ptr());
  int64_t done = 0;
  while (done < nbytes) {
    ssize_t n = pread(fd, dst + done, static_cast<size_t>(nbytes - done), static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      close(fd);
      throw std::runtime_error(path + ": truncated or unreadable: wanted " + std::to_string(nbytes) + " bytes at offset " +
                               std::to_string(offset) + ", got " + std::to_string(done) +
                               (n < 0 ? std::string(" (") + std::strerror(err) + ")" : ""));
    }
    done += n;
  }
  close(fd);
  return wrap(info.Env(), t);
}

// asStrided(t, size, stride, storageOffset): a view on t's storage, as torch.save records tensors.
static Napi::Value AsStrided(const Info& info) {
  torch::Tensor t = toTensor(info[0], "storage");
  std::vector<int64_t> size = toIntList(info[1], "size"), stride = toIntList(info[2], "stride");
  int64_t offset = toInt(info[3], "storageOffset");
  if (size.size() != stride.size()) throw ArgError("asStrided: size and stride differ in length");
  // bounds check: the furthest element must lie inside the storage
  int64_t last = offset;
  for (size_t i = 0; i < size.size(); i++) {
    if (size[i] < 0 || stride[i] < 0) throw ArgError("asStrided: negative size or stride");
    if (size[i] == 0) {
      last = -1;
      break;
    }
    last += (size[i] - 1) * stride[i];
  }
  if (offset < 0 || last >= t.numel())
    throw std::runtime_error("tensor view [size " + c10::str(c10::IntArrayRef(size)) + ", stride " +
                             c10::str(c10::IntArrayRef(stride)) + ", offset " + std::to_string(offset) +
                             "] does not fit in its storage of " + std::to_string(t.numel()) + " elements");
  return wrap(info.Env(), t.as_strided(size, stride, offset));
}

// rawBytes(t): the tensor's bytes in its own dtype, row-major (for writing files).
static Napi::Value RawBytes(const Info& info) {
  torch::Tensor t = toTensor(info[0], "tensor").detach().to(torch::kCPU).contiguous();
  size_t n = static_cast<size_t>(t.numel()) * t.element_size();
  Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::New(info.Env(), n);
  if (n > 0) std::memcpy(buf.Data(), t.data_ptr(), n);
  return buf;
}

}  // namespace

void registerSerialization(Napi::Env env, Napi::Object exports) {
  def(env, exports, "fromFile", FromFile);
  def(env, exports, "asStrided", AsStrided);
  def(env, exports, "rawBytes", RawBytes);
}

}  // namespace ft
