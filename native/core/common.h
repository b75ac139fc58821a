// Shared plain-C++ definitions for the native core: non-owning views and the
// error types the addon maps to JS exceptions. No N-API here (ARCHITECTURE.md).
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace gnn {

// A non-owning view of a contiguous array. `size` counts elements.
template <class T>
struct View {
  T* data = nullptr;
  size_t size = 0;
  View() = default;
  View(T* d, size_t n) : data(d), size(n) {}
  T& operator[](size_t i) const { return data[i]; }
};

// Error kinds, mapped by the addon to RangeError / TypeError / Error.
enum class ErrorKind { Range, Type, Generic };

// An exception carrying a JS error class and a stable string code.
struct Error : std::runtime_error {
  ErrorKind kind;
  std::string code;
  Error(ErrorKind k, std::string c, const std::string& msg)
      : std::runtime_error(msg), kind(k), code(std::move(c)) {}
};

[[noreturn]] inline void throwRange(const std::string& msg,
                                    const char* code = "ERR_GNN_RANGE") {
  throw Error(ErrorKind::Range, code, msg);
}
[[noreturn]] inline void throwType(const std::string& msg,
                                   const char* code = "ERR_GNN_TYPE") {
  throw Error(ErrorKind::Type, code, msg);
}

// Thread count used by every OpenMP region of the core (0 = library default).
void setNumThreads(int n);
int numThreads();

// Work below which a kernel of native/core (pack, gathers, segment sums, small
// products) runs serially: an `if(...)` clause on its parallel region. Opening a
// team costs microseconds on a quiet machine and, on a busy one, as long as the
// scheduler keeps a descheduled team member away (milliseconds); serial and
// parallel paths compute every output element in the same order (same bits).
// Memory-bound copies and reductions: bytes moved (measured on 2 Zen 4 cores:
// packGraphs of 8-512 qm9-like fc graphs, up to 8.8 MB, was as fast or faster
// with 1 thread than with 2). Products: 2*M*N*K flops (~20 us on one core).
constexpr int64_t kParallelMinBytes = int64_t(8) << 20;
constexpr int64_t kParallelMinFlops = int64_t(2) << 20;
// Neighbour lists: atoms of the batch below which structures are built serially
// (a fully connected molecule of ~20 atoms is a few microseconds of work).
constexpr int64_t kParallelMinAtoms = 2048;

}  // namespace gnn
