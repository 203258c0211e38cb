// hts._core.StopFlag: the stop flag shared between Python and running kernel calls (every binding unit that
// takes `stop=` uses this one type).
#pragma once

#include <atomic>
#include <memory>

namespace hts::bind {

/// Python sets it (from any thread); the kernel reads it at its safe points without the GIL. A call keeps the
/// shared atomic alive for its whole duration (`alive()`), so dropping the Python object mid-call is safe.
struct StopFlag {
  std::shared_ptr<std::atomic<bool>> flag = std::make_shared<std::atomic<bool>>(false);
};

/// The flag's atomic, kept alive by the returned pointer (null when there is no flag).
inline std::shared_ptr<std::atomic<bool>> alive(const StopFlag* stop) { return stop ? stop->flag : nullptr; }

}  // namespace hts::bind
