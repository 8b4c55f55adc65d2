// One-line progress bars on stderr: images (count, images/s, ETA) and downloads (bytes, speed, ETA).
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

namespace vit::app {

// A one-line download bar on stderr: file, bytes done/total, speed and ETA.
class DownloadProgress {
public:
    explicit DownloadProgress(bool enabled) : enabled_(enabled) {}
    // Redraws at most ~10 times a second (always when `file` changes); total -1 when unknown.
    void update(const std::string& file, std::int64_t done, std::int64_t total);
    void end_line();  // finishes the current line (before a message or at the end)
    bool enabled() const { return enabled_; }

private:
    bool enabled_;
    std::string file_;
    std::int64_t start_bytes_ = 0;
    std::chrono::steady_clock::time_point start_, last_draw_;
    bool drawn_ = false;
};

std::string human_bytes(std::int64_t n);  // "12.3 MB" (powers of 1000, as the Hub shows sizes)

}  // namespace vit::app
