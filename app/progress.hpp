// A one-line progress bar on stderr: count, images/s and ETA (when the total is known).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace vit::app {

class Progress {
public:
    // mode: "auto" (only when stderr is a terminal), "on", "off".
    Progress(const std::string& mode, std::int64_t total /* -1 if unknown */);
    void tick(std::int64_t done, std::int64_t failed);
    void finish();
    bool enabled() const { return enabled_; }

private:
    void draw(bool force);
    bool enabled_;
    std::int64_t total_, done_ = 0, failed_ = 0;
    std::chrono::steady_clock::time_point start_, last_draw_;
    bool drawn_ = false;
};

}  // namespace vit::app
