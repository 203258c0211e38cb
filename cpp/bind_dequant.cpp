// hts._core.dequantize_ggml: ggml block-quantised bytes -> float32, in place (cpp/dequant.hpp).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>

#include "dequant.hpp"

namespace py = pybind11;

void bind_dequant(py::module_& m) {
  m.def(
      "dequantize_ggml",
      [](int type, py::array_t<std::uint8_t, py::array::c_style> raw,
         py::array_t<float, py::array::c_style> out, int threads) {
        if (threads < 0) throw py::value_error("threads must be >= 0 (0 = all cores)");
        if (!out.writeable()) throw py::value_error("out is read-only");
        const std::uint8_t* src = raw.data();
        const auto nbytes = static_cast<std::size_t>(raw.size());
        float* dst = out.mutable_data();
        const auto n = static_cast<std::size_t>(out.size());
        py::gil_scoped_release release;
        hts::dequantize(type, src, nbytes, dst, n, threads);
      },
      py::arg("type"), py::arg("raw").noconvert(), py::arg("out").noconvert(), py::arg("threads") = 0,
      "Decode whole ggml blocks of `type` (a ggml type id) from uint8 `raw` into float32 `out`.");
  m.def("ggml_dequant_supported", &hts::dequant_supported, py::arg("type"),
        "True when dequantize_ggml decodes this ggml type id.");
  m.def(
      "ggml_block", [](int type) { return py::make_tuple(hts::dequant_block_size(type), hts::dequant_type_size(type)); },
      py::arg("type"), "(values per block, bytes per block) of a type dequantize_ggml decodes.");
}
