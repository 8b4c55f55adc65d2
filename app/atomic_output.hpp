// An output file written through a temporary in the same directory and renamed into place on commit, so the
// destination is never half-written, even if the process is killed.
#pragma once

#include <fstream>
#include <string>

namespace vit::app {

class AtomicOutput {
public:
    explicit AtomicOutput(const std::string& path);   // throws std::runtime_error naming the path
    ~AtomicOutput();                                   // removes the temporary unless committed
    std::ostream& stream() { return out_; }
    void commit();                                     // flush, fsync, rename

private:
    std::string path_, tmp_;
    std::ofstream out_;
    bool committed_ = false;
};

}  // namespace vit::app
