// hts._core: the only file that knows about Python. NumPy arrays in and out, GIL released around the maths.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "array_views.hpp"
#include "bulge_chasing.hpp"
#include "eigen_batch.hpp"
#include "lapack.hpp"
#include "lapack_two_stage.hpp"
#include "norms.hpp"
#include "powerlaw.hpp"
#include "stop_flag.hpp"

namespace py = pybind11;

void bind_conv(py::module_& m);  // cpp/bind_conv.cpp
void bind_rmt(py::module_& m);  // bind_rmt.cpp
void bind_dequant(py::module_& m);  // cpp/bind_dequant.cpp
void bind_tpl(py::module_& m);  // cpp/bind_tpl.cpp

namespace {

hts::EigenOptions eigen_options(int threads, std::int64_t eigen_solver_max, std::int64_t tiled_gram_min,
                                std::int64_t gram_tile, std::int64_t two_stage_min,
                                std::int64_t chunked_convert_min = -2, std::int64_t chunk_bytes = -1,
                                double slab_min_cost = -2, std::int64_t staged_min = -1,
                                int staged_band = -1) {
  if (threads < 0) throw py::value_error("threads must be >= 0 (0 = all cores)");
  hts::EigenOptions opt;
  opt.threads = threads;
  if (eigen_solver_max >= 0) opt.eigen_solver_max = eigen_solver_max;
  if (tiled_gram_min >= 0) opt.tiled_gram_min = tiled_gram_min;
  if (gram_tile > 0) opt.gram_tile = gram_tile;
  opt.two_stage_min = two_stage_min;
  if (chunked_convert_min >= -1) opt.chunked_convert_min = chunked_convert_min;  // -2: keep the default
  if (chunk_bytes > 0) opt.chunk_bytes = chunk_bytes;
  if (slab_min_cost >= -1) opt.slab_min_cost = slab_min_cost;  // -2: keep the default
  opt.staged_min = staged_min;
  if (staged_band > 0) opt.staged_band = staged_band;
  return opt;
}

template <class T>
py::list gram_eigenvalues_impl(const std::vector<py::array>& arrays, const hts::EigenOptions& opt) {
  std::vector<hts::MatrixView> views;
  for (std::size_t i = 0; i < arrays.size(); ++i) hts::bind::append_views(arrays[i], "array " + std::to_string(i), views);
  // Outputs are allocated up front (GIL held) and filled in place (GIL released): no copy afterwards.
  py::list result;
  std::vector<T*> out;
  for (const py::array& a : arrays) {
    const bool stack = a.ndim() == 3;
    const py::ssize_t k = stack ? a.shape(0) : 1;
    const py::ssize_t m = std::min(a.shape(stack ? 1 : 0), a.shape(stack ? 2 : 1));
    py::array_t<T> o = stack ? py::array_t<T>({k, m}) : py::array_t<T>({m});
    for (py::ssize_t s = 0; s < k; ++s) out.push_back(o.mutable_data() + s * m);
    result.append(o);
  }
  try {
    py::gil_scoped_release release;
    hts::gram_eigenvalues<T>(views, out, opt);
  } catch (const hts::BadMatrix& e) {
    // Name the array and slice in the caller's terms.
    std::size_t array = 0, first = 0;
    for (; array < arrays.size(); ++array) {
      const std::size_t k = arrays[array].ndim() == 3 ? static_cast<std::size_t>(arrays[array].shape(0)) : 1;
      if (e.index < first + k) break;
      first += k;
    }
    std::string where = "array " + std::to_string(array);
    if (array < arrays.size() && arrays[array].ndim() == 3) where += ", slice " + std::to_string(e.index - first);
    throw py::value_error(where + ": " + e.what());
  }
  return result;
}

py::dict fit_to_dict(const hts::PowerLawFit& f) {
  py::dict d;
  d["ok"] = f.ok;
  d["reason"] = f.reason;
  d["alpha"] = f.alpha;
  d["xmin"] = f.xmin;
  d["xmax"] = f.xmax;
  d["D"] = f.D;
  d["sigma"] = f.sigma;
  d["num_pl_spikes"] = f.num_pl_spikes;
  d["n_fit"] = f.n_fit;
  d["tail"] = f.tail;
  d["small_n"] = f.small_n;
  if (!f.curve_xmin.empty() || !f.curve_D.empty()) {
    d["curve_xmin"] = py::array_t<double>(f.curve_xmin.size(), f.curve_xmin.data());
    d["curve_alpha"] = py::array_t<double>(f.curve_alpha.size(), f.curve_alpha.data());
    d["curve_D"] = py::array_t<double>(f.curve_D.size(), f.curve_D.data());
  }
  return d;
}

using hts::bind::Vector;

using hts::bind::StopFlag;

/// What the compiler saw when it built this module (tests/test_build_hardening.py checks it).
py::dict build_hardening() {
  py::dict d;
#ifdef _FORTIFY_SOURCE
  d["fortify_source"] = _FORTIFY_SOURCE;
#else
  d["fortify_source"] = 0;
#endif
#if defined(__SSP_STRONG__)
  d["stack_protector"] = "strong";
#elif defined(__SSP_ALL__)
  d["stack_protector"] = "all";
#elif defined(__SSP__)
  d["stack_protector"] = "basic";
#else
  d["stack_protector"] = "";
#endif
#ifdef __OPTIMIZE__
  d["optimized"] = true;
#else
  d["optimized"] = false;
#endif
  return d;
}

}  // namespace

PYBIND11_MODULE(_core, m, py::mod_gil_not_used()) {
  m.doc() = "hts native kernel (private: use hts.spectra)";
  m.attr("__version__") = HTS_VERSION;
  // hts parallelises over slices itself; its private OpenBLAS copy stays on one thread (see lapack.hpp).
  hts::lapack::use_single_thread();
  bind_rmt(m);
  m.attr("build_hardening") = build_hardening();
  py::register_exception<hts::Stopped>(m, "Stopped", PyExc_RuntimeError);
  py::class_<StopFlag>(m, "StopFlag", "A stop flag the kernel reads at its safe points (set() from any thread).")
      .def(py::init<>())
      .def("set", [](StopFlag& f) { f.flag->store(true, std::memory_order_relaxed); })
      .def("is_set", [](const StopFlag& f) { return f.flag->load(std::memory_order_relaxed); });

  m.def("openblas_config", []() { return std::string(hts::lapack::openblas_config()); },
        "OpenBLAS build and CPU target used by the kernel.");

  m.def(
      "gram_eigenvalues",
      [](const std::vector<py::array>& arrays, const std::string& precision, int threads,
         std::int64_t eigen_solver_max, std::int64_t tiled_gram_min, std::int64_t gram_tile,
         std::int64_t two_stage_min, std::int64_t chunked_convert_min, std::int64_t chunk_bytes,
         double slab_min_cost, std::int64_t staged_min, int staged_band, const StopFlag* stop) {
        hts::EigenOptions opt = eigen_options(threads, eigen_solver_max, tiled_gram_min, gram_tile,
                                              two_stage_min, chunked_convert_min, chunk_bytes, slab_min_cost,
                                              staged_min, staged_band);
        const std::shared_ptr<std::atomic<bool>> keep = hts::bind::alive(stop);  // alive for the whole call
        opt.stop = keep.get();
        if (precision == "float64") return gram_eigenvalues_impl<double>(arrays, opt);
        if (precision == "float32") return gram_eigenvalues_impl<float>(arrays, opt);
        throw py::value_error("precision must be 'float64' or 'float32', got '" + precision + "'");
      },
      py::arg("arrays"), py::arg("precision") = "float64", py::arg("threads") = 0,
      py::arg("eigen_solver_max") = -1, py::arg("tiled_gram_min") = -1, py::arg("gram_tile") = -1,
      py::arg("two_stage_min") = -1, py::arg("chunked_convert_min") = -2, py::arg("chunk_bytes") = -1,
      py::arg("slab_min_cost") = -2.0, py::arg("staged_min") = -1, py::arg("staged_band") = -1,
      py::arg("stop") = nullptr,
      "Ascending eigenvalues of WᵀW for each 2-D array (-> 1-D) or 3-D stack (-> 2-D) in a list; raises "
      "Stopped at the kernel's next safe point once the StopFlag `stop` is set.");

  m.def(
      "_band_eigenvalues",
      [](py::array band, int kd, int threads, bool lapack_serial) {
        // Test hook: eigenvalues of a symmetric band matrix given as `band` (n × (kd + 1): row c holds
        // A(c .. c + kd, c)), by hts's threaded bulge chasing + sterf, or LAPACK's serial sytrd_sb2st + sterf.
        if (band.ndim() != 2 || band.shape(1) != kd + 1 || kd < 0 || band.shape(0) < 1)
          throw py::value_error("band must be n x (kd + 1) with kd >= 0");
        if (threads < 0) throw py::value_error("threads must be >= 0 (0 = all cores)");
        auto solve = [&](auto tag) {
          using T = decltype(tag);
          py::array_t<T, py::array::c_style | py::array::forcecast> ab(band);
          const int n = static_cast<int>(ab.shape(0));
          std::vector<T> copy(ab.data(), ab.data() + ab.size());
          py::array_t<T> w(n);
          T* out = w.mutable_data();
          {
            py::gil_scoped_release release;
            hts::lapack::use_single_thread();
            if (lapack_serial) {
              hts::lapack::band_eigenvalues<T>(n, kd, copy.data(), kd + 1, out);
            } else {
              std::vector<T> e(static_cast<std::size_t>(n));
              hts::band_to_tridiagonal<T>(n, kd, copy.data(), kd + 1, out, e.data(), threads);
              hts::lapack::tridiagonal_eigenvalues<T>(n, out, e.data());
            }
          }
          return py::array(w);
        };
        if (band.dtype().is(py::dtype::of<float>())) return solve(float{});
        return solve(double{});
      },
      py::arg("band"), py::arg("kd"), py::arg("threads") = 1, py::arg("lapack_serial") = false);

  m.def(
      "fit_power_law",
      [](const Vector& evals, double evals_thresh, int threads, std::int64_t small_n, std::int64_t small_n_min_tail,
         std::int64_t max_candidates, bool want_curve) {
        hts::bind::check_vector(evals, "evals");
        if (threads < 0) throw py::value_error("threads must be >= 0 (0 = all cores)");
        hts::PowerLawOptions opt;
        opt.evals_thresh = evals_thresh;
        opt.threads = threads;
        opt.small_n = small_n;
        opt.small_n_min_tail = small_n_min_tail;
        opt.max_candidates = max_candidates;
        opt.want_curve = want_curve;
        hts::PowerLawFit fit;
        {
          py::gil_scoped_release release;
          fit = hts::fit_power_law(evals.data(), static_cast<std::size_t>(evals.shape(0)), opt);
        }
        return fit_to_dict(fit);
      },
      py::arg("evals").noconvert(), py::arg("evals_thresh") = 1e-5, py::arg("threads") = 0,
      py::arg("small_n") = 20, py::arg("small_n_min_tail") = 8, py::arg("max_candidates") = 0,
      py::arg("want_curve") = false, "Power-law fit with xmin by the smallest KS distance (WeightWatcher 0.7.7).");

  m.def(
      "spectrum_stats",
      [](const Vector& evals, double N, double tolerance) {
        hts::bind::check_vector(evals, "evals");
        hts::SpectrumStats st;
        {
          py::gil_scoped_release release;
          st = hts::spectrum_stats(evals.data(), evals.shape(0), N, tolerance);
        }
        py::dict d;
        d["count"] = st.count;
        d["sum"] = st.sum;
        d["lambda_max"] = st.lambda_max;
        d["lambda_min"] = st.lambda_min;
        d["stable_rank"] = st.stable_rank;
        d["matrix_rank"] = st.matrix_rank;
        d["weak_rank_loss"] = st.weak_rank_loss;
        d["entropy"] = st.entropy;
        return d;
      },
      py::arg("evals").noconvert(), py::arg("N"), py::arg("tolerance") = 1e-6,
      "Sum, max, stable rank, matrix rank, weak rank loss and entropy of eigenvalues.");

  m.def(
      "log10_alpha_norm",
      [](const Vector& evals, double alpha) {
        hts::bind::check_vector(evals, "evals");
        py::gil_scoped_release release;
        return hts::log10_alpha_norm(evals.data(), evals.shape(0), alpha);
      },
      py::arg("evals").noconvert(), py::arg("alpha"), "log10 Σ λ^alpha without overflow.");

  m.def(
      "frobenius_norm_sq",
      [](const py::array& a) {
        std::vector<hts::MatrixView> views;
        hts::bind::append_views(a, "array 0", views);
        py::array_t<double> out(static_cast<py::ssize_t>(views.size()));
        double* o = out.mutable_data();
        {
          py::gil_scoped_release release;
          for (std::size_t i = 0; i < views.size(); ++i) o[i] = hts::frobenius_norm_sq(views[i]);
        }
        return out;
      },
      py::arg("w"), "‖W‖_F² per matrix of a 2-D array or 3-D stack, accumulated in float64.");

  bind_conv(m);
  bind_dequant(m);
  bind_tpl(m);
}
