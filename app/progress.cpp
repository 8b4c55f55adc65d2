// Progress bars drawn with carriage returns on stderr (images classified, bytes downloaded), ~10 times a second.
#include "progress.hpp"

#include <unistd.h>

#include <algorithm>
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
    const double rate = secs > 0 ? static_cast<double>(done_) / secs : 0;
    char line[256];
    if (total_ >= 0) {
        const int width = 30;
        const double frac = total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
        const int fill = static_cast<int>(frac * width);
        std::string bar(fill, '#');
        bar.resize(width, '-');
        const double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : 0;
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

namespace vit::app {

std::string human_bytes(std::int64_t n) {
    const char* units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = static_cast<double>(n);
    int u = 0;
    while (v >= 1000 && u < 4) {
        v /= 1000;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
    return buf;
}

void DownloadProgress::update(const std::string& file, std::int64_t done, std::int64_t total) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (file != file_) {
        end_line();
        file_ = file;
        start_ = now;
        start_bytes_ = done;  // a resumed file: speed counts this run's bytes only
    } else if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100) && done != total) {
        return;
    }
    last_draw_ = now;
    drawn_ = true;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0.05 ? static_cast<double>(done - start_bytes_) / secs : 0;
    std::string line = "\r" + file + "  ";
    if (total > 0) {
        const int width = 24;
        const int fill = static_cast<int>(static_cast<double>(done) / static_cast<double>(total) * width);
        std::string bar(std::min(fill, width), '#');
        bar.resize(width, '-');
        line += "[" + bar + "] " + human_bytes(done) + " / " + human_bytes(total);
    } else {
        line += human_bytes(done);
    }
    line += "  " + human_bytes(static_cast<std::int64_t>(rate)) + "/s";
    if (total > 0 && rate > 0) {
        const int eta = static_cast<int>(static_cast<double>(total - done) / rate);
        char buf[32];
        std::snprintf(buf, sizeof buf, "  ETA %02d:%02d", eta / 60, eta % 60);
        line += buf;
    }
    line += "\x1b[K";  // clear what a longer previous line left
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
}

void DownloadProgress::end_line() {
    if (!enabled_ || !drawn_) return;
    std::fputc('\n', stderr);
    std::fflush(stderr);
    drawn_ = false;
    file_.clear();
}

}  // namespace vit::app
