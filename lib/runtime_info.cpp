// Versions of the libraries vit runs on, as loaded at run time.
#include "runtime_info.hpp"

#include <dnnl.hpp>
#include <opencv2/core/utility.hpp>

namespace vit {

std::string onednn_version() {
    const dnnl_version_t* v = dnnl_version();
    std::string s = std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
    if (v->hash && *v->hash && std::string(v->hash) != "N/A") s += std::string(" (commit ") + v->hash + ")";
    return s;
}

std::string opencv_version() { return cv::getVersionString(); }

}  // namespace vit
