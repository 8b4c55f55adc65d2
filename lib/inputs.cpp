// Input enumeration: deterministic directory order, lazy list reading (poll-based, so a signal or a stall is
// noticed while the list waits for its writer), sharding and resume filtering.
#include "inputs.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace vit {

namespace fs = std::filesystem;

namespace {

std::string errno_text(int err) {
    if (err == ENOENT) return "no such file";
    if (err == EACCES) return "permission denied";
    return std::error_code(err, std::generic_category()).message();
}

bool is_decimal(const std::string& x) {
    return !x.empty() && x.size() < 12 && std::all_of(x.begin(), x.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

void parse_shard(const std::string& s, std::int64_t& k, std::int64_t& n) {
    const auto slash = s.find('/');
    auto bad = [&] { return std::invalid_argument("--shard \"" + s + "\" is not K/N with 0 <= K < N"); };
    if (slash == std::string::npos) throw bad();
    const std::string a = s.substr(0, slash), b = s.substr(slash + 1);
    if (!is_decimal(a) || !is_decimal(b)) throw bad();
    k = std::stoll(a);
    n = std::stoll(b);
    if (n <= 0 || k >= n) throw bad();
}

std::vector<std::string> parse_extensions(const std::string& s) {
    std::vector<std::string> out;
    std::string cur;
    auto flush = [&] {
        if (cur.empty()) return;
        if (cur[0] != '.') cur = "." + cur;
        std::transform(cur.begin(), cur.end(), cur.begin(), [](unsigned char c) { return std::tolower(c); });
        out.push_back(cur);
        cur.clear();
    };
    for (char c : s) {
        if (c == ',' || c == ' ') flush();
        else cur += c;
    }
    flush();
    return out;
}

InputList::InputList(std::vector<std::string> args, InputOptions opt) : args_(std::move(args)), opt_(std::move(opt)) {
    if (opt_.list.empty()) return;
    list_name_ = opt_.list == "-" ? "stdin" : opt_.list;
    if (opt_.list == "-") {
        list_fd_ = STDIN_FILENO;
    } else {
        // O_NONBLOCK: opening a FIFO that has no writer yet must not block (poll waits for it, cancellable).
        list_fd_ = ::open(opt_.list.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (list_fd_ < 0) throw InputError(opt_.list + ": cannot open the list of paths: " + errno_text(errno));
        own_list_fd_ = true;
        ::fcntl(list_fd_, F_SETFL, ::fcntl(list_fd_, F_GETFL) & ~O_NONBLOCK);
    }
    struct stat st {};
    if (::fstat(list_fd_, &st) != 0) {
        const int err = errno;
        if (own_list_fd_) ::close(list_fd_);
        throw InputError(list_name_ + ": cannot read the list of paths: " + errno_text(err));
    }
    if (S_ISDIR(st.st_mode)) {
        if (own_list_fd_) ::close(list_fd_);
        throw InputError(list_name_ + ": is a directory, expected a file listing paths");
    }
    list_may_stall_ = !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode);
}

InputList::~InputList() {
    if (own_list_fd_) ::close(list_fd_);
}

bool InputList::wanted_ext(const std::string& path) const {
    std::string ext = fs::path(path).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    return std::find(opt_.extensions.begin(), opt_.extensions.end(), ext) != opt_.extensions.end();
}

void InputList::expand_dir(const std::string& dir, std::vector<SourceItem>& out,
                           std::set<std::pair<std::uint64_t, std::uint64_t>>& seen, std::size_t& subdirs_skipped) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0 && !seen.insert({st.st_dev, st.st_ino}).second) {
        if (warn) warn(dir + ": directory already visited (symlink loop?), skipped");
        return;
    }
    std::vector<std::pair<std::string, bool>> entries;  // (path, is_dir)
    std::error_code ec;
    fs::directory_iterator it(dir, ec), end;
    if (ec) {
        // An input the run cannot see: a record says so (exit 2), rather than a silent gap.
        out.push_back({dir, 0, "cannot read directory: " + errno_text(ec.value())});
        return;
    }
    for (; it != end; it.increment(ec)) {
        if (ec) break;
        std::error_code e2;
        const bool is_dir = it->is_directory(e2);  // follows symlinks
        entries.emplace_back(it->path().string(), is_dir);
    }
    const bool listing_failed = static_cast<bool>(ec);
    std::sort(entries.begin(), entries.end());
    for (auto& [p, is_dir] : entries) {
        if (is_dir) {
            if (opt_.recursive) expand_dir(p, out, seen, subdirs_skipped);
            else ++subdirs_skipped;
        } else if (wanted_ext(p)) {
            out.push_back({p, 0, ""});
        }
    }
    if (listing_failed) out.push_back({dir, 0, "error while listing the directory: " + errno_text(ec.value())});
}

bool InputList::next_unfiltered(SourceItem& item) {
    for (;;) {
        if (pending_pos_ < pending_.size()) {
            item = std::move(pending_[pending_pos_++]);
            return true;
        }
        pending_.clear();
        pending_pos_ = 0;
        if (arg_pos_ < args_.size()) {
            const std::string& a = args_[arg_pos_++];
            std::error_code ec;
            if (a != "-" && fs::is_directory(a, ec)) {
                std::set<std::pair<std::uint64_t, std::uint64_t>> seen;
                std::size_t subdirs_skipped = 0;
                expand_dir(a, pending_, seen, subdirs_skipped);
                if (pending_.empty() && warn) {
                    std::string m = a + ": no image files found";
                    if (subdirs_skipped)
                        m += " (" + std::to_string(subdirs_skipped) + " sub-folder" + (subdirs_skipped > 1 ? "s" : "") +
                             " not searched: not recursive)";
                    warn(m);
                }
                continue;
            }
            item = {a, 0, ""};  // a file, "-" (stdin) or something missing: the decoder reports what is wrong
            return true;
        }
        if (list_fd_ >= 0) {
            std::string entry;
            if (next_list_entry(entry)) {
                if (entry == "-" && opt_.list == "-")
                    throw InputError("stdin: list entry " + std::to_string(list_entry_) +
                                     " is \"-\" (stdin), but stdin is the list itself");
                item = {std::move(entry), 0, ""};
                return true;
            }
            if (own_list_fd_) ::close(list_fd_);
            list_fd_ = -1;
        }
        return false;
    }
}

// Reads more of the list into list_buf_: false at the end of the list or when cancelled. Waits in poll() with a
// short timeout so `cancelled` is noticed while a pipe or FIFO has nothing to say.
bool InputList::fill_list_buffer() {
    if (list_eof_) return false;
    if (list_pos_ > 0 && list_pos_ * 2 >= list_buf_.size()) {
        list_buf_.erase(0, list_pos_);
        list_pos_ = 0;
    }
    for (;;) {
        if (opt_.cancelled && opt_.cancelled()) return false;
        pollfd p{list_fd_, POLLIN, 0};
        const int r = ::poll(&p, 1, 100);
        if (r < 0 && errno != EINTR) throw InputError(list_name_ + ": cannot wait for the list: " + errno_text(errno));
        if (r <= 0) continue;
        char buf[1 << 16];
        const ssize_t n = ::read(list_fd_, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            throw InputError(list_name_ + ": read error: " + errno_text(errno));
        }
        if (n == 0) {
            list_eof_ = true;
            return false;
        }
        list_buf_.append(buf, static_cast<std::size_t>(n));
        return true;
    }
}

bool InputList::next_list_entry(std::string& entry) {
    const char delim = opt_.list_delim;
    for (;;) {
        const std::size_t end = list_buf_.find(delim, list_pos_);
        bool last = false;
        if (end == std::string::npos) {
            if (delim != '\0' && list_buf_.find('\0', list_pos_) != std::string::npos)
                throw InputError(list_name_ + ": line " + std::to_string(list_entry_ + 1) +
                                 " contains a NUL byte: a NUL-separated list (find -print0) needs -0");
            if (list_buf_.size() - list_pos_ > kMaxListEntry)
                throw InputError(list_name_ + ": entry " + std::to_string(list_entry_ + 1) + " is longer than " +
                                 std::to_string(kMaxListEntry) + " bytes without a " + (delim ? "newline" : "NUL") +
                                 " (not a list of paths?)");
            if (fill_list_buffer()) continue;
            if (!list_eof_ || list_pos_ == list_buf_.size()) return false;  // cancelled, or the end
            last = true;                                                    // a final entry without a separator
        }
        const std::size_t stop = last ? list_buf_.size() : end;
        entry.assign(list_buf_, list_pos_, stop - list_pos_);
        list_pos_ = last ? stop : stop + 1;
        ++list_entry_;
        if (delim == '\n' && !entry.empty() && entry.back() == '\r') entry.pop_back();
        if (entry.size() > kMaxListEntry)
            throw InputError(list_name_ + ": entry " + std::to_string(list_entry_) + " is longer than " +
                             std::to_string(kMaxListEntry) + " bytes (not a list of paths?)");
        if (delim != '\0' && entry.find('\0') != std::string::npos)
            throw InputError(list_name_ + ": line " + std::to_string(list_entry_) +
                             " contains a NUL byte: a NUL-separated list (find -print0) needs -0");
        if (entry.empty()) {
            if (++empty_run_ >= kMaxEmptyEntries)
                throw InputError(list_name_ + ": " + std::to_string(kMaxEmptyEntries) +
                                 " empty entries in a row (not a list of paths?)");
            continue;
        }
        empty_run_ = 0;
        return true;
    }
}

void InputList::check_refused(const std::string& path) const {
    if (opt_.refuse.empty() || path == "-") return;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return;
    for (const auto& r : opt_.refuse)
        if (static_cast<std::uint64_t>(st.st_dev) == r.dev && static_cast<std::uint64_t>(st.st_ino) == r.ino)
            throw RefusedInput(path + ": " + r.reason);
}

bool InputList::next(SourceItem& item) {
    const auto block_size = static_cast<std::uint64_t>(std::max<std::int64_t>(1, opt_.shard_block));
    const auto shards = static_cast<std::uint64_t>(std::max<std::int64_t>(1, opt_.shard_count));
    while (next_unfiltered(item)) {
        const std::uint64_t pos = position_++;
        if ((pos / block_size) % shards != static_cast<std::uint64_t>(opt_.shard_index)) continue;
        item.position = pos;
        if (opt_.skip && opt_.skip->count(item.path)) continue;
        check_refused(item.path);
        return true;
    }
    return false;
}

}  // namespace vit
