// hts._core bindings of the truncated-power-law kernel (tpl.hpp, incgamma.hpp), GIL released around the maths.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "array_views.hpp"
#include "incgamma.hpp"
#include "tpl.hpp"

namespace py = pybind11;

void bind_tpl(py::module_& m) {
  m.def("log_upper_gamma", &hts::log_upper_gamma, py::arg("a"), py::arg("z"),
        "ln Γ(a, z), the upper incomplete gamma function, for a < 0.5 and z > 0 (NaN outside).");
  m.def(
      "tpl_fit_tail",
      [](const hts::bind::Vector& x, double xmin) {
        hts::bind::check_vector(x, "x");
        hts::TplFit f;
        {
          py::gil_scoped_release release;
          try {
            f = hts::tpl_fit_tail(x.data(), static_cast<std::size_t>(x.shape(0)), xmin);
          } catch (const std::invalid_argument& e) {
            py::gil_scoped_acquire acquire;
            throw py::value_error(e.what());
          }
        }
        return py::make_tuple(f.alpha, f.Lambda, f.loglikelihood, f.in_range);
      },
      py::arg("x").noconvert(), py::arg("xmin"),
      "Truncated power law fitted (powerlaw 1.5's Nelder–Mead) to ascending x >= xmin: (alpha, Lambda, "
      "loglikelihood, in_range).");
  m.def(
      "tpl_scan",
      [](const hts::bind::Vector& x, py::array_t<std::int64_t, py::array::c_style> idx, int threads, bool exact) {
        hts::bind::check_vector(x, "x");
        if (idx.ndim() != 1) throw py::value_error("idx must be 1-D");
        if (threads < 0) throw py::value_error("threads must be >= 0 (0 = all cores)");
        const auto k = static_cast<std::size_t>(idx.shape(0));
        std::vector<hts::TplFit> fits;
        {
          py::gil_scoped_release release;
          try {
            fits = hts::tpl_scan(x.data(), static_cast<std::size_t>(x.shape(0)), idx.data(), k, threads, exact);
          } catch (const std::invalid_argument& e) {
            py::gil_scoped_acquire acquire;
            throw py::value_error(e.what());
          }
        }
        py::array_t<double> alpha(k), Lambda(k), D(k), ll(k);
        py::array_t<bool> in_range(k);
        for (std::size_t c = 0; c < k; ++c) {
          alpha.mutable_at(c) = fits[c].alpha;
          Lambda.mutable_at(c) = fits[c].Lambda;
          D.mutable_at(c) = fits[c].D;
          ll.mutable_at(c) = fits[c].loglikelihood;
          in_range.mutable_at(c) = fits[c].in_range;
        }
        py::dict d;
        d["alpha"] = alpha;
        d["Lambda"] = Lambda;
        d["D"] = D;
        d["loglikelihood"] = ll;
        d["in_range"] = in_range;
        return d;
      },
      py::arg("x").noconvert(), py::arg("idx").noconvert(), py::arg("threads") = 1, py::arg("exact") = true,
      "Truncated power law fitted (powerlaw 1.5's Nelder–Mead) on the tail x[i:] of ascending x for each i in "
      "idx, with its KS distance: dict of arrays alpha, Lambda, D, loglikelihood, in_range. exact=False: only "
      "the D that can be the smallest (in the domain) are exact, the others are lower bounds above it.");
}
