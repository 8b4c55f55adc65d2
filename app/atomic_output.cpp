// Temporary-file-and-rename output.
#include "atomic_output.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace vit::app {

AtomicOutput::AtomicOutput(const std::string& path) : path_(path) {
    namespace fs = std::filesystem;
    const fs::path p(path);
    std::error_code ec;
    if (fs::is_directory(p, ec)) throw std::runtime_error(path + ": --output is a directory");
    tmp_ = (p.parent_path() / ("." + p.filename().string() + ".vit-tmp-" + std::to_string(::getpid()))).string();
    out_.open(tmp_, std::ios::binary | std::ios::trunc);
    if (!out_) throw std::runtime_error(path + ": cannot write output (" + std::strerror(errno) + ")");
}

AtomicOutput::~AtomicOutput() {
    if (!committed_) {
        out_.close();
        std::remove(tmp_.c_str());
    }
}

void AtomicOutput::commit() {
    out_.flush();
    if (!out_) throw std::runtime_error(path_ + ": error while writing output");
    out_.close();
    int fd = ::open(tmp_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
        throw std::runtime_error(path_ + ": cannot move output into place (" + std::strerror(errno) + ")");
    committed_ = true;
}

}  // namespace vit::app
