// The --output file: mkstemp temporary + rename, symlinks followed, mode kept, devices written through.
#include "atomic_output.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include "process.hpp"

namespace vit::app {

namespace {

// Temporaries a signal handler may have to remove: fixed storage, no allocation at signal time.
constexpr int kSlots = 8;
char g_tmp_paths[kSlots][PATH_MAX];
volatile std::sig_atomic_t g_tmp_used[kSlots];

std::string err_text(int err) { return std::strerror(err); }

std::string dir_of(const std::string& p) {
    const auto slash = p.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : p.substr(0, slash);
}

std::string base_of(const std::string& p) {
    const auto slash = p.rfind('/');
    return slash == std::string::npos ? p : p.substr(slash + 1);
}

// Follows a chain of symlinks to the path that is finally written (which need not exist yet).
std::string resolve_links(const std::string& path) {
    std::string p = path;
    for (int hops = 0; hops < 40; ++hops) {
        struct stat st {};
        if (::lstat(p.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return p;
        std::vector<char> buf(static_cast<std::size_t>(st.st_size > 0 ? st.st_size : PATH_MAX) + 1);
        const ssize_t n = ::readlink(p.c_str(), buf.data(), buf.size() - 1);
        if (n < 0) throw std::runtime_error(path + ": cannot read the --output symlink: " + err_text(errno));
        std::string to(buf.data(), static_cast<std::size_t>(n));
        p = !to.empty() && to[0] == '/' ? to : dir_of(p) + "/" + to;
    }
    throw std::runtime_error(path + ": --output is a symlink loop");
}

void write_all(int fd, const char* data, std::size_t n, const std::string& what) {
    while (n > 0) {
        const ssize_t w = ::write(fd, data, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            throw std::runtime_error(what + ": write error: " + err_text(errno));
        }
        data += w;
        n -= static_cast<std::size_t>(w);
    }
}

}  // namespace

AtomicOutput::AtomicOutput(const std::string& path, bool append) : path_(path) {
    target_ = resolve_links(path);
    struct stat st {};
    const bool exists = ::stat(target_.c_str(), &st) == 0;
    if (!exists && errno != ENOENT) throw std::runtime_error(path + ": cannot use as --output: " + err_text(errno));
    if (exists && S_ISDIR(st.st_mode)) throw std::runtime_error(path + ": --output is a directory");
    if (exists && !S_ISREG(st.st_mode)) {
        // A FIFO, terminal or device: written as it is, nothing to rename. A FIFO without a reader yet is waited
        // for without blocking in open(), so a signal still ends the run.
        direct_ = true;
        for (;;) {
            fd_ = ::open(target_.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK | (append ? O_APPEND : 0));
            if (fd_ >= 0 || errno != ENXIO || interrupted()) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        if (fd_ < 0) throw std::runtime_error(path + ": cannot write output: " + err_text(errno));
        ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
        return;
    }
    if (exists)
        replaces_ = std::make_pair(static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino));

    // "." + name + ".vit-tmp-XXXXXX", the name shortened so the whole stays within NAME_MAX (255 bytes).
    std::string base = base_of(target_);
    const std::size_t room = 255 - 1 - std::strlen(".vit-tmp-XXXXXX");
    if (base.size() > room) base.resize(room);
    std::string tmpl = dir_of(target_) + "/." + base + ".vit-tmp-XXXXXX";
    std::vector<char> name(tmpl.begin(), tmpl.end());
    name.push_back('\0');
    fd_ = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd_ < 0)
        throw std::runtime_error(path + ": cannot write output (temporary in " + dir_of(target_) +
                                 "): " + err_text(errno));
    tmp_ = name.data();
    for (int i = 0; i < kSlots && slot_ < 0; ++i) {
        if (g_tmp_used[i] || tmp_.size() >= PATH_MAX) continue;
        std::memcpy(g_tmp_paths[i], tmp_.c_str(), tmp_.size() + 1);
        g_tmp_used[i] = 1;
        slot_ = i;
    }
    // The mode (and, where allowed, owner) of the file replaced; a new file gets 0666 less the umask, as any.
    mode_t mode;
    if (exists) {
        mode = st.st_mode & 07777;
        if (::fchown(fd_, st.st_uid, st.st_gid) != 0) { /* not the owner: the file becomes ours, as with cp */
        }
    } else {
        const mode_t mask = ::umask(0);
        ::umask(mask);
        mode = 0666 & ~mask;
    }
    ::fchmod(fd_, mode);
    if (append && exists && st.st_size > 0) {
        const int in = ::open(target_.c_str(), O_RDONLY | O_CLOEXEC);
        if (in < 0) throw std::runtime_error(path + ": cannot read it to append: " + err_text(errno));
        char buf[1 << 16];
        char last = '\n';
        for (;;) {
            const ssize_t n = ::read(in, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                const int e = errno;
                ::close(in);
                throw std::runtime_error(path + ": read error: " + err_text(e));
            }
            if (n == 0) break;
            last = buf[n - 1];
            write_all(fd_, buf, static_cast<std::size_t>(n), path);
        }
        ::close(in);
        if (last != '\n') write_all(fd_, "\n", 1, path);
        continues_ = true;
    }
}

AtomicOutput::~AtomicOutput() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_ && !tmp_.empty()) ::unlink(tmp_.c_str());
    if (slot_ >= 0) g_tmp_used[slot_] = 0;
}

void AtomicOutput::commit() {
    if (committed_) return;
    const int fd = fd_;
    fd_ = -1;
    if (direct_) {
        committed_ = true;
        if (::close(fd) != 0 && errno != EINTR) throw std::runtime_error(path_ + ": write error: " + err_text(errno));
        return;
    }
    if (::fsync(fd) != 0 && errno != EINVAL) {
        const int e = errno;
        ::close(fd);
        throw std::runtime_error(path_ + ": write error: " + err_text(e));
    }
    if (::close(fd) != 0 && errno != EINTR) throw std::runtime_error(path_ + ": write error: " + err_text(errno));
    if (std::rename(tmp_.c_str(), target_.c_str()) != 0)
        throw std::runtime_error(path_ + ": cannot move output into place: " + err_text(errno));
    committed_ = true;
    if (slot_ >= 0) g_tmp_used[slot_] = 0;
    slot_ = -1;
}

void AtomicOutput::remove_temporaries_now() {
    for (int i = 0; i < kSlots; ++i)
        if (g_tmp_used[i]) ::unlink(g_tmp_paths[i]);
}

}  // namespace vit::app
