// Versions of the libraries vit runs on, as loaded at run time (what a bug report needs).
#pragma once

#include <string>

namespace vit {

std::string onednn_version();  // "2.6.3 (commit 0c2...)": dnnl_version() of the loaded library
std::string opencv_version();  // "4.6.0": cv::getVersionString() of the loaded library

}  // namespace vit
