// libvit_codecs.so: the calls into libopencv_imgcodecs (decode; encode for vit explain's overlays), in a module of its own so that the executable does
// not load imgcodecs' ~140 shared libraries at start-up (image_codecs.hpp opens it on first use).
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>

// Exceptions (cv::Exception) propagate to the caller: both sides share libstdc++ and libopencv_core.
extern "C" __attribute__((visibility("default"))) void vit_codecs_imdecode(const std::vector<unsigned char>* bytes,
                                                                          int flags, cv::Mat* out) {
    *out = cv::imdecode(*bytes, flags);
}

extern "C" __attribute__((visibility("default"))) bool vit_codecs_imencode(const std::string* ext, const cv::Mat* img,
                                                                          std::vector<unsigned char>* out,
                                                                          const std::vector<int>* params) {
    return cv::imencode(*ext, *img, *out, *params);
}
