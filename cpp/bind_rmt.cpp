// hts._core bindings of the RMT kernel (rmt.hpp): NumPy arrays in and out, GIL released around the maths.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "array_views.hpp"
#include "randomized.hpp"
#include "rmt.hpp"
#include "stop_flag.hpp"

namespace py = pybind11;

namespace {

using hts::bind::check_vector;
using hts::bind::Vector;

/// The slices of a native-order float32/float64 2-D matrix or 3-D stack as strided views (no copy).
std::vector<hts::MatrixView> slice_views(const py::array& a) {
  std::vector<hts::MatrixView> views;
  hts::bind::append_views(a, "array", views);
  return views;
}

hts::MPFitOptions mp_options(int threads, bool polish) {
  if (threads < 0) throw py::value_error("threads must be >= 0 (0 = all cores)");
  hts::MPFitOptions opt;
  opt.threads = threads;
  opt.polish = polish;
  return opt;
}

}  // namespace

template <class T>
py::list randomized_impl(const std::vector<py::array>& arrays, const std::vector<std::uint64_t>& seeds,
                         const std::vector<std::int64_t>& replicas, int threads,
                         const hts::bind::StopFlag* stop) {
  if (seeds.size() != arrays.size() || replicas.size() != arrays.size())
    throw py::value_error("randomized_gram_eigenvalues: one seed and one replica count per array");
  if (threads < 0) throw py::value_error("threads must be >= 0 (0 = all cores)");
  std::vector<hts::ShuffleRequest> requests(arrays.size());
  py::list result;
  std::vector<T*> out;
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    hts::bind::append_views(arrays[i], "array " + std::to_string(i), requests[i].slices);
    if (replicas[i] < 1) throw py::value_error("array " + std::to_string(i) + ": replicas must be >= 1");
    requests[i].replicas = replicas[i];
    requests[i].seed = seeds[i];
    const hts::MatrixView& v = requests[i].slices[0];
    if (v.rows == 0 || v.cols == 0) throw py::value_error("array " + std::to_string(i) + ": empty matrix");
    const py::ssize_t count = static_cast<py::ssize_t>(replicas[i] * static_cast<std::int64_t>(requests[i].slices.size()));
    py::array_t<T> o({count, static_cast<py::ssize_t>(v.small_side())});
    out.push_back(o.mutable_data());
    result.append(o);
  }
  hts::EigenOptions opt;
  opt.threads = threads;
  const std::shared_ptr<std::atomic<bool>> keep = hts::bind::alive(stop);  // alive for the whole call
  opt.stop = keep.get();
  try {
    py::gil_scoped_release release;
    hts::randomized_gram_eigenvalues<T>(requests, out, opt);
  } catch (const hts::BadMatrix& e) {
    throw py::value_error("array " + std::to_string(e.index) + ": " + e.what());
  }
  return result;
}

void bind_rmt(py::module_& m) {
  m.def(
      "randomized_gram_eigenvalues",
      [](const std::vector<py::array>& arrays, const std::vector<std::uint64_t>& seeds,
         const std::vector<std::int64_t>& replicas, const std::string& precision, int threads,
         const hts::bind::StopFlag* stop) {
        if (precision == "float64") return randomized_impl<double>(arrays, seeds, replicas, threads, stop);
        if (precision == "float32") return randomized_impl<float>(arrays, seeds, replicas, threads, stop);
        throw py::value_error("precision must be 'float64' or 'float32', got '" + precision + "'");
      },
      py::arg("arrays"), py::arg("seeds"), py::arg("replicas"), py::arg("precision") = "float64",
      py::arg("threads") = 0, py::arg("stop") = nullptr,
      "Eigenvalues of WᵀW for every shuffle_elements(array, seed, replicas) matrix: a (replicas·k, m) array each; "
      "raises Stopped at the next safe point once the StopFlag `stop` is set.");

  m.def(
      "marchenko_pastur_fit",
      [](const Vector& evals, double Q, double M, int threads, bool polish) {
        check_vector(evals, "marchenko_pastur_fit");
        const hts::MPFitOptions opt = mp_options(threads, polish);
        hts::MPFit f;
        {
          py::gil_scoped_release release;
          f = hts::marchenko_pastur_fit(evals.data(), static_cast<std::size_t>(evals.shape(0)), Q, M, opt);
        }
        py::dict d;
        d["ok"] = f.ok;
        d["reason"] = f.reason;
        d["quarter_circle"] = f.quarter_circle;
        d["num_spikes"] = f.num_spikes;
        d["sigma_mp"] = f.sigma_mp;
        d["mp_softrank"] = f.mp_softrank;
        d["W_scale"] = f.W_scale;
        d["bulk_max"] = f.bulk_max;
        d["bulk_min"] = f.bulk_min;
        d["objective"] = f.objective;
        d["evaluations"] = f.evaluations;
        return d;
      },
      py::arg("evals").noconvert(), py::arg("Q"), py::arg("M"), py::arg("threads") = 1, py::arg("polish") = true,
      "Marchenko-Pastur (Q == 1: quarter-circle) bulk fit of eigenvalues, as WeightWatcher 0.7.7's mp_fit.");

  m.def(
      "marchenko_pastur_objective",
      [](const Vector& rescaled, double Q, const Vector& sigmas, int threads) {
        check_vector(rescaled, "marchenko_pastur_objective");
        check_vector(sigmas, "marchenko_pastur_objective");
        const hts::MPFitOptions opt = mp_options(threads, true);
        std::vector<double> out;
        {
          py::gil_scoped_release release;
          out = hts::marchenko_pastur_objective(rescaled.data(), static_cast<std::size_t>(rescaled.shape(0)), Q,
                                                sigmas.data(), static_cast<std::size_t>(sigmas.shape(0)), opt);
        }
        return py::array_t<double>(static_cast<py::ssize_t>(out.size()), out.data());
      },
      py::arg("rescaled").noconvert(), py::arg("Q"), py::arg("sigmas").noconvert(), py::arg("threads") = 1,
      "Squared-residual objective of the MP fit at each sigma, for eigenvalues rescaled to mean 1.");

  m.def(
      "jensen_shannon_distance",
      [](const Vector& p, const Vector& q) {
        check_vector(p, "jensen_shannon_distance");
        check_vector(q, "jensen_shannon_distance");
        if (p.shape(0) != q.shape(0))
          throw py::value_error("jensen_shannon_distance: vectors differ in length (" + std::to_string(p.shape(0)) +
                                " and " + std::to_string(q.shape(0)) + ")");
        py::gil_scoped_release release;
        return hts::jensen_shannon_distance(p.data(), q.data(), static_cast<std::size_t>(p.shape(0)));
      },
      py::arg("p").noconvert(), py::arg("q").noconvert(),
      "Jensen-Shannon distance (natural log) between two non-negative vectors, position by position.");

  m.def(
      "shuffle_elements",
      [](const py::array& w, py::array out, std::uint64_t seed, std::int64_t replicas, int threads,
         std::int64_t bucket_size) {
        if (threads < 0) throw py::value_error("threads must be >= 0 (0 = all cores)");
        if (replicas < 1) throw py::value_error("replicas must be >= 1");
        if (bucket_size < 1) throw py::value_error("bucket_size must be >= 1");
        const std::vector<hts::MatrixView> views = slice_views(w);
        const py::ssize_t rows = views[0].rows, cols = views[0].cols;
        const py::ssize_t want = static_cast<py::ssize_t>(replicas) * static_cast<py::ssize_t>(views.size());
        if (!out.dtype().is(w.dtype()) || out.ndim() != 3 || out.shape(0) != want || out.shape(1) != rows ||
            out.shape(2) != cols || !(out.flags() & py::array::c_style) || !out.writeable())
          throw py::value_error("shuffle_elements: out must be a writeable C-contiguous array of shape (" +
                                std::to_string(want) + ", " + std::to_string(rows) + ", " + std::to_string(cols) +
                                ") and the input's dtype");
        if (rows == 0 || cols == 0) throw py::value_error("shuffle_elements: empty matrix");
        void* dst = out.mutable_data();
        py::gil_scoped_release release;
        if (views[0].dtype == hts::DType::f64)
          hts::shuffle_elements<double>(views, replicas, seed, static_cast<double*>(dst), threads, bucket_size);
        else
          hts::shuffle_elements<float>(views, replicas, seed, static_cast<float*>(dst), threads, bucket_size);
      },
      py::arg("w"), py::arg("out"), py::arg("seed"), py::arg("replicas") = 1, py::arg("threads") = 0,
      py::arg("bucket_size") = hts::kShuffleBucketSize,
      "Element shuffle of each slice, replicas times (splitmix64; random buckets + Fisher-Yates), written into out.");
}
