// hts._core.conv_operator_eigenvalues: the convolution operator's spectrum (cpp/conv_fft.hpp).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "conv_fft.hpp"
#include "stop_flag.hpp"

namespace py = pybind11;

namespace {

/// A 4-D float32/float64 array in native byte order, aligned, any strides, as a view (no copy).
hts::KernelView kernel_view(const py::array& a) {
  if (a.ndim() != 4)
    throw py::type_error("expected a 4-D (out, in, kh, kw) kernel, got " + std::to_string(a.ndim()) + "-D");
  const py::dtype dt = a.dtype();
  const std::uint16_t probe = 1;
  const bool little = *reinterpret_cast<const unsigned char*>(&probe) == 1;
  const char order = dt.byteorder();
  const bool native = order == '=' || order == '|' || (order == '<') == little;
  if (dt.kind() != 'f' || !native || (dt.itemsize() != 4 && dt.itemsize() != 8))
    throw py::type_error("expected a float32 or float64 array in native byte order, got " + std::string(py::str(dt)));
  const py::ssize_t item = dt.itemsize();
  if (reinterpret_cast<std::uintptr_t>(a.data()) % static_cast<std::uintptr_t>(item) != 0)
    throw py::type_error("array data is not aligned");
  hts::KernelView k;
  k.data = a.data();
  k.dtype = item == 8 ? hts::DType::f64 : hts::DType::f32;
  k.out = a.shape(0), k.in = a.shape(1), k.kh = a.shape(2), k.kw = a.shape(3);
  for (int d = 0; d < 4; ++d) {
    if (a.strides(d) % item != 0) throw py::value_error("strides are not a multiple of the item size");
    k.stride[d] = a.strides(d) / item;
  }
  return k;
}

template <class T>
py::array_t<T> conv_eigenvalues_impl(const py::array& kernel, std::int64_t n1, std::int64_t n2, int threads,
                                     const hts::bind::StopFlag* stop) {
  const hts::KernelView k = kernel_view(kernel);
  if (n1 <= 0 || n2 <= 0) throw py::value_error("input size must be positive");
  if (n1 > (std::int64_t{1} << 31) / n2) throw py::value_error("input size too large");
  // Allocated with the GIL held, filled in place without it.
  py::array_t<T> out({static_cast<py::ssize_t>(n1 * n2), static_cast<py::ssize_t>(k.small_side())});
  T* o = out.mutable_data();
  const std::shared_ptr<std::atomic<bool>> keep = hts::bind::alive(stop);  // alive for the whole call
  {
    py::gil_scoped_release release;
    hts::conv_operator_eigenvalues<T>(k, n1, n2, threads, o, keep.get());
  }
  return out;
}

}  // namespace

void bind_conv(py::module_& m) {
  m.def(
      "conv_operator_eigenvalues",
      [](const py::array& kernel, std::int64_t n1, std::int64_t n2, const std::string& precision, int threads,
         const hts::bind::StopFlag* stop) {
        if (threads < 0) throw py::value_error("threads must be >= 0 (0 = all cores)");
        if (precision == "float64") return py::array(conv_eigenvalues_impl<double>(kernel, n1, n2, threads, stop));
        if (precision == "float32") return py::array(conv_eigenvalues_impl<float>(kernel, n1, n2, threads, stop));
        throw py::value_error("precision must be 'float64' or 'float32', got '" + precision + "'");
      },
      py::arg("kernel"), py::arg("n1"), py::arg("n2"), py::arg("precision") = "float64", py::arg("threads") = 0,
      py::arg("stop") = nullptr,
      "Ascending eigenvalues of A_uvᴴA_uv per DFT frequency of a 4-D kernel on an n1×n2 periodic input; raises "
      "Stopped before the next frequency or eigensolve once the StopFlag `stop` is set.");
}
