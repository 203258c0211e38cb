// Binding-side helper shared by the binding units: NumPy arrays -> strided MatrixViews, without copies.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "eigen_batch.hpp"

namespace hts::bind {

/// float32 / float64 in native byte order, aligned; anything else is the caller's job to convert.
inline DType kernel_dtype(const pybind11::array& a, const std::string& what) {
  const pybind11::dtype dt = a.dtype();
  const std::uint16_t probe = 1;
  const bool little = *reinterpret_cast<const unsigned char*>(&probe) == 1;
  const char order = dt.byteorder();
  const bool native = order == '=' || order == '|' || (order == '<') == little;
  if (dt.kind() == 'f' && native && (dt.itemsize() == 4 || dt.itemsize() == 8)) {
    if (reinterpret_cast<std::uintptr_t>(a.data()) % static_cast<std::uintptr_t>(dt.itemsize()) != 0)
      throw pybind11::type_error(what + ": array data is not aligned");
    return dt.itemsize() == 8 ? DType::f64 : DType::f32;
  }
  throw pybind11::type_error(what + ": expected a float32 or float64 array in native byte order, got " +
                             std::string(pybind11::str(dt)));
}

/// Appends the slices of a 2-D (one) or 3-D (a stack) array as views into its memory.
inline void append_views(const pybind11::array& a, const std::string& what, std::vector<MatrixView>& views) {
  const DType dt = kernel_dtype(a, what);
  if (a.ndim() != 2 && a.ndim() != 3)
    throw pybind11::type_error(what + ": expected a 2-D matrix or a 3-D stack of matrices, got " +
                               std::to_string(a.ndim()) + "-D");
  const pybind11::ssize_t item = a.itemsize();
  for (pybind11::ssize_t d = 0; d < a.ndim(); ++d)
    if (a.strides(d) % item != 0)
      throw pybind11::value_error(what + ": strides are not a multiple of the item size");
  const int off = a.ndim() == 3 ? 1 : 0;
  const pybind11::ssize_t k = a.ndim() == 3 ? a.shape(0) : 1;
  for (pybind11::ssize_t s = 0; s < k; ++s) {
    MatrixView v;
    v.dtype = dt;
    v.rows = a.shape(off);
    v.cols = a.shape(off + 1);
    v.row_stride = a.strides(off) / item;
    v.col_stride = a.strides(off + 1) / item;
    v.data = static_cast<const char*>(a.data()) + (off ? s * a.strides(0) : 0);
    views.push_back(v);
  }
}

/// A 1-D float64 array (eigenvalues, probabilities, grids).
using Vector = pybind11::array_t<double, pybind11::array::c_style>;

inline void check_vector(const Vector& v, const std::string& what) {
  if (v.ndim() != 1) throw pybind11::type_error(what + ": expected a 1-D float64 array");
}

}  // namespace hts::bind
