// The fuzz targets decode in-process: vit::imdecode (lib/image_codecs.hpp) straight on OpenCV's imgcodecs, without
// the lazily opened libvit_codecs.so of the main build.
#include <opencv2/imgcodecs.hpp>

#include "image_codecs.hpp"

namespace vit {

cv::Mat imdecode(const std::vector<unsigned char>& bytes, int flags) { return cv::imdecode(bytes, flags); }

bool imencode(const std::string& ext, const cv::Mat& img, std::vector<unsigned char>& out,
              const std::vector<int>& params) {
    return cv::imencode(ext, img, out, params);
}

void preload_image_codecs() {}
void wait_image_codecs() {}

}  // namespace vit
