// Progress bar drawn with carriage returns on stderr, at most ~10 times a second.
#include "progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace vit::app {

Progress::Progress(const std::string& mode, std::int64_t total)
    : enabled_(mode == "on" || (mode == "auto" && ::isatty(STDERR_FILENO))), total_(total),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

void Progress::tick(std::int64_t done, std::int64_t failed) {
    done_ = done;
    failed_ = failed;
    if (enabled_) draw(false);
}

void Progress::finish() {
    if (!enabled_ || !drawn_) return;
    draw(true);
    std::fputc('\n', stderr);
    std::fflush(stderr);
}

void Progress::draw(bool force) {
    const auto now = std::chrono::steady_clock::now();
    if (!force && drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    drawn_ = true;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? done_ / secs : 0;
    char line[256];
    if (total_ >= 0) {
        const int width = 30;
        const double frac = total_ > 0 ? static_cast<double>(done_) / total_ : 1.0;
        const int fill = static_cast<int>(frac * width);
        std::string bar(fill, '#');
        bar.resize(width, '-');
        const double eta = rate > 0 ? (total_ - done_) / rate : 0;
        std::snprintf(line, sizeof line, "\r[%s] %lld/%lld  %.1f img/s  ETA %02d:%02d  failed %lld", bar.c_str(),
                      static_cast<long long>(done_), static_cast<long long>(total_), rate, static_cast<int>(eta) / 60,
                      static_cast<int>(eta) % 60, static_cast<long long>(failed_));
    } else {
        std::snprintf(line, sizeof line, "\r%lld done  %.1f img/s  failed %lld", static_cast<long long>(done_), rate,
                      static_cast<long long>(failed_));
    }
    std::fputs(line, stderr);
    std::fflush(stderr);
}

}  // namespace vit::app
