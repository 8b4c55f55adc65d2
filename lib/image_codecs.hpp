// OpenCV's image decoders, loaded on first use: libopencv_imgcodecs pulls in ~140 shared libraries (GDAL and
// its dependencies) and costs ~85 ms at start-up, which `vit --help`, `info` and `bench` never need. They live
// in a small module of ours, libvit_codecs.so (image_codecs_module.cpp), opened with dlopen when the first
// image is decoded, or earlier in the background with preload_image_codecs().
#pragma once

#include <vector>

#include <opencv2/core.hpp>

namespace vit {

// cv::imdecode(bytes, flags) run by the module; OpenCV's exceptions pass through unchanged. Throws
// std::runtime_error naming the places looked in when the module cannot be found or opened.
cv::Mat imdecode(const std::vector<unsigned char>& bytes, int flags);

// cv::imencode(ext, image, out) run by the module (vit explain's PNG overlays); false when OpenCV cannot encode
// the image. Throws as imdecode when the module is missing.
bool imencode(const char* ext, const cv::Mat& image, std::vector<unsigned char>& out);

// Starts opening the module on a background thread and returns at once (a no-op after the first call); the
// first imdecode() waits for it. Call it where images will be decoded soon, e.g. before loading a model.
void preload_image_codecs();

// Waits for a background preload to finish (no-op otherwise). Call before the process exits.
void wait_image_codecs();

// Whether the module has been opened (by a preload or a decode).
bool image_codecs_loaded();

// Whether it was opened with RTLD_DEEPBIND (its libraries bound within their own dependency tree first; see
// image_codecs.cpp): in every build but the sanitizers', unless LD_PRELOAD is set or the executable has copy
// relocations. False before it is opened.
bool image_codecs_deep_bound();

}  // namespace vit
