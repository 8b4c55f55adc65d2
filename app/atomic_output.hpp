// The --output file. A regular file (or a new one) is written through a temporary in the same directory, created
// with mkstemp (O_EXCL: unique across processes and PID namespaces), given the mode and owner of the file it
// replaces, and renamed into place on commit, so the destination is never half-written, even if the process is
// killed. A symlink is followed: the file it points to is replaced and the link stays. A FIFO, a terminal or
// another device (`-o /dev/stdout`) is written directly (nothing to rename). A directory is refused.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace vit::app {

class AtomicOutput {
public:
    // `append`: the temporary starts as a copy of the existing file, so the run adds its records after them.
    // Throws std::runtime_error naming the path.
    AtomicOutput(const std::string& path, bool append);
    ~AtomicOutput();  // removes the temporary unless committed
    AtomicOutput(const AtomicOutput&) = delete;
    AtomicOutput& operator=(const AtomicOutput&) = delete;

    int fd() const { return fd_; }
    const std::string& path() const { return path_; }
    // (device, inode) of the existing regular file that commit() replaces: it must not also be an input.
    std::optional<std::pair<std::uint64_t, std::uint64_t>> replaces() const { return replaces_; }
    // Appending to a file that already has content (a csv/tsv header is not repeated).
    bool continues_existing() const { return continues_; }
    void commit();  // fsync, close, rename (checking each); a direct target is only closed

    // Async-signal-safe: unlinks every temporary not yet committed (a second SIGINT).
    static void remove_temporaries_now();

private:
    std::string path_;    // as given
    std::string target_;  // the file that is replaced (symlinks resolved)
    std::string tmp_;
    int fd_ = -1;
    int slot_ = -1;  // in the signal-time registry of temporaries
    bool direct_ = false, committed_ = false, continues_ = false;
    std::optional<std::pair<std::uint64_t, std::uint64_t>> replaces_;
};

}  // namespace vit::app
