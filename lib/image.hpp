// Image decoding: any file OpenCV can read becomes an 8-bit RGB cv::Mat, converted the way PIL's
// Image.open(...).convert("RGB") would, so pixels match the PyTorch reference pipeline.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace vit {

// Images above this many pixels are refused (a decompression-bomb guard; PIL warns at ~89M).
inline constexpr std::size_t kDefaultMaxPixels = 100'000'000;

// Decodes an image file to CV_8UC3 in RGB order. Throws InputError("<path>: <problem>") for a
// missing file, a directory, an unreadable file, an empty file, an unknown or unsupported format,
// truncated JPEG/PNG/PNM data, undecodable data, more
// than `max_pixels` pixels (0 means kDefaultMaxPixels), or a file larger than 32 bytes per allowed
// pixel + 64 MiB (checked before reading it; a file with no image signature is not read past 64 KB).
//
// Conversions (as PIL 9.4's convert("RGB")):
//   gray, gray+alpha        -> gray replicated to R, G, B
//   RGBA, palette (+tRNS)   -> alpha dropped, not composited (PIL drops it too)
//   16-bit colour           -> high byte (v >> 8), as PIL unpacks 16-bit RGB(A) PNGs
//   16-bit gray             -> min(v, 255): PIL opens it as mode "I" and its I->RGB conversion clips,
//                              so most of a real 16-bit gray image saturates to white, as in PIL
//   CMYK JPEG               -> OpenCV's CMYK->RGB, within +-1 of PIL's (not bit-exact)
//   float (EXR, HDR, PFM)   -> [0, 1] scaled to [0, 255], rounded and clipped (PIL cannot read these)
//   other integer depths    -> clipped to [0, 255]
// EXIF orientation is applied (JPEG, PNG eXIf, TIFF by OpenCV; WebP here). Unlike the timm/torchvision
// reference, which ignores it: a rotated photo is classified upright.
// Truncated JPEGs (no end-of-image marker) are refused, as PIL refuses them by default, instead of
// OpenCV's silent grey fill; so are truncated PNG and binary PNM data. The pixel limit is checked from the
// header before decoding for every format OpenCV reads here (JPEG, PNG, BMP, WebP, TIFF, JPEG 2000, PNM/PAM/
// PFM, Sun raster, Radiance HDR, OpenEXR), again after decoding; sides outside OpenCV's 1..2^20 are refused
// from the header too. Data with no known signature never reaches OpenCV.
// PNG structure is checked before libpng sees it (chunk CRCs, as PIL does; chunk types; IHDR; libpng's
// 1,000,000-pixel side limit) so corrupt PNGs fail with a reason instead of a "libpng error: ..." line, and
// the ancillary chunks OpenCV's result does not depend on (all but tRNS and eXIf: iCCP, gAMA, cHRM, text, ...)
// are left out of what libpng reads, so that it prints no "libpng warning: iCCP: known incorrect sRGB profile".
// GIF is decoded here (OpenCV 4.6 has none): the first frame of an animated GIF, as PIL gives it (gif.hpp).
// Radiance HDR is read here, not by OpenCV 4.6 (whose reader leaks a file descriptor and a temporary file
// per malformed file), with OpenCV's exact result; PFM and OpenEXR headers are checked so OpenCV is never
// handed one it would fail on after writing its temporary copy.
// The first call silences OpenCV's logger (OpenJPEG's "[ERROR:...]" lines) unless OPENCV_LOG_LEVEL is set.
// Some lines bypass that logger and still reach stderr: OpenCV 4.6's "imdecode_(''): can't read header/data"
// when a decoder throws (corrupt TIFF, JPEG 2000, BMP, PAM, HDR), libjpeg's warnings for damaged JPEGs that
// still decode ("Corrupt JPEG data: N extraneous bytes before marker 0xd9", as PIL decodes them too), and
// libpng's for PNGs whose chunks are intact but whose compressed data is not; silencing them would need a
// process-wide stderr redirect, which a multi-threaded library must not do.
cv::Mat decode_image_file(const std::filesystem::path& path, std::size_t max_pixels = kDefaultMaxPixels);

// The same for one encoded image on standard input (errors name it "-"), read with the same limits.
cv::Mat decode_image_stdin(std::size_t max_pixels = kDefaultMaxPixels);

// The same for bytes already in memory; `name` is used in error messages.
cv::Mat decode_image_bytes(const std::vector<unsigned char>& bytes, const std::string& name,
                           std::size_t max_pixels = kDefaultMaxPixels);

// OpenCV's decoded gray, BGR or BGRA (CV_8UC1/3/4) as RGB (CV_8UC3): the bytes of cv::cvtColor's GRAY2RGB,
// BGR2RGB and BGRA2RGB (alpha dropped). Ours because the first cv::cvtColor of a process starts OpenCV's thread
// pool (TBB: a library load and worker threads that then spin beside inference; ~2 ms, on a one-image run's
// critical path) for a copy that takes ~0.1 ms. Throws std::invalid_argument for other types.
cv::Mat to_rgb(const cv::Mat& decoded);

// PIL's convert("L") of a CV_8UC3 RGB image (ITU-R 601-2 luma, PIL's integer form:
// L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16, equal to PIL 9.4 on all 2^24 colours).
// A CV_8UC1 image is returned as a copy. Throws std::invalid_argument for other types.
cv::Mat to_gray(const cv::Mat& rgb);

}  // namespace vit
