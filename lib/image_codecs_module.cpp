// libvit_codecs.so: the one call into libopencv_imgcodecs, in a module of its own so that the executable does
// not load imgcodecs' ~140 shared libraries at start-up (image_codecs.hpp opens it on first use).
#include <vector>

#include <opencv2/imgcodecs.hpp>

// Exceptions (cv::Exception) propagate to the caller: both sides share libstdc++ and libopencv_core.
extern "C" __attribute__((visibility("default"))) void vit_codecs_imdecode(const std::vector<unsigned char>* bytes,
                                                                           int flags, cv::Mat* out) {
    *out = cv::imdecode(*bytes, flags);
}

// cv::imencode(ext, image, out); false when OpenCV cannot encode it.
extern "C" __attribute__((visibility("default"))) bool vit_codecs_imencode(const char* ext, const cv::Mat* image,
                                                                           std::vector<unsigned char>* out) {
    return cv::imencode(ext, *image, *out);
}
