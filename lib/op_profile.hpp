// Wall time per op of the forward passes, for `vit bench --ops`: where a pass's time goes, without oneDNN's verbose
// trace (which prints a line per primitive and slows each one down). Off unless enabled; an op then pays one relaxed
// atomic load. Ops run one at a time (each parallelises inside itself), so one table serves the process.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace vit::op_profile {

enum class Kind { Linear, Norm, Attention };

struct Entry {
    std::string op;  // kind and shape, e.g. "linear 768->3072 gelu bf16 [197 rows]"
    Kind kind = Kind::Linear;
    double ms = 0;   // summed wall time
    long calls = 0;  // summed calls
};

namespace detail {
inline std::atomic<bool> on{false};
void record(Kind kind, const std::string& op, double ms);
}  // namespace detail

inline void enable(bool yes) { detail::on.store(yes, std::memory_order_relaxed); }
inline bool enabled() { return detail::on.load(std::memory_order_relaxed); }

// What was recorded since the last call, in the order the ops first ran; the table starts again empty.
std::vector<Entry> take();

// Times its scope as one call of the op that `describe()` names; `describe` runs only while profiling is on.
class Scope {
public:
    template <typename Describe>
    Scope(Kind kind, Describe&& describe) : kind_(kind) {
        if (enabled()) {
            op_ = describe();
            start_ = std::chrono::steady_clock::now();
            active_ = true;
        }
    }
    ~Scope() {
        if (active_)
            detail::record(
                kind_, op_,
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count());
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

private:
    Kind kind_;
    bool active_ = false;
    std::string op_;
    std::chrono::steady_clock::time_point start_;
};

}  // namespace vit::op_profile
