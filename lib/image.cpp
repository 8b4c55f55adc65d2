// Image decoding with PIL-compatible conversions and errors that name the file (see image.hpp): the decode and
// convert steps. The other parts: reading a file within the pixel limit (image_io.cpp), format sniffing and the
// header probes (image_probe.cpp), and the decoders OpenCV 4.6 lacks or gets wrong (gif.cpp, hdr.cpp). This file
// adds what OpenCV lacks around its decoders: PNG chunks libpng would only warn about left out, PIL's 16-bit
// rules, float and other depths to 8 bits, WebP EXIF orientation.
#include "image.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>  // the IMREAD_* flags only: decoding goes through image_codecs.hpp

#include "byte_reader.hpp"
#include "gif.hpp"
#include "hdr.hpp"
#include "image_codecs.hpp"
#include "image_format.hpp"

namespace vit {
namespace {

using bytes::be16;
using bytes::be32;
using bytes::le16;
using bytes::le32;
using image::Bytes;
using image::fail;
using image::Format;
using image::format_name;

// OpenCV logs warnings and errors (OpenJPEG's "[ERROR:0@0.1] ... OpenJPEG2000: ...") for undecodable
// inputs; each of those reaches the caller as an InputError anyway, so its logging is turned off unless
// the user set OPENCV_LOG_LEVEL.
void quiet_opencv_logging() {
    static std::once_flag once;
    std::call_once(once, [] {
        using namespace cv::utils::logging;
        const char* env = std::getenv("OPENCV_LOG_LEVEL");
        if (!env || !*env) setLogLevel(LOG_LEVEL_SILENT);
    });
}

// libpng, which OpenCV 4.6 gives no warning handler, prints "libpng warning: ..." on stderr for ancillary chunks
// it finds fault with: an ordinary photo's "iCCP: known incorrect sRGB profile", a bad gAMA, cHRM or text chunk.
// What OpenCV returns depends only on the critical chunks, tRNS (transparency) and eXIf (orientation): it asks
// libpng for no gamma, colour-space or background handling. So the other ancillary chunks are left out of the
// copy OpenCV decodes, which changes no pixel. probe_png has checked the chunks (whole, CRCs, types) up to IEND.
// Returns an empty vector when there is nothing to leave out.
Bytes png_without_unused_chunks(const Bytes& d) {
    Bytes out;
    bool dropped = false;
    std::size_t pos = 8;
    while (d.size() - pos >= 12) {
        const std::size_t end = pos + 12 + be32(&d[pos]);
        if (end > d.size()) break;
        const unsigned char* type = &d[pos + 4];
        const bool ancillary = (type[0] & 0x20) != 0;  // lower-case first letter
        if (ancillary && std::memcmp(type, "tRNS", 4) != 0 && std::memcmp(type, "eXIf", 4) != 0) {
            if (!dropped) out.assign(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(pos));
            dropped = true;
        } else if (dropped) {
            out.insert(out.end(), d.begin() + static_cast<std::ptrdiff_t>(pos),
                       d.begin() + static_cast<std::ptrdiff_t>(end));
        }
        pos = end;
        if (std::memcmp(type, "IEND", 4) == 0) break;
    }
    if (dropped)
        out.insert(out.end(), d.begin() + static_cast<std::ptrdiff_t>(pos), d.end());  // what follows, as it was
    return out;
}

// EXIF orientation (tag 0x0112) of a WebP's "EXIF" chunk, 1 if absent. OpenCV 4.6 does not read it.
int webp_orientation(const Bytes& d) {
    size_t pos = 12;
    while (pos + 8 <= d.size()) {
        const size_t len = le32(&d[pos + 4]);
        if (len > d.size() - pos - 8) return 1;
        if (std::memcmp(&d[pos], "EXIF", 4) == 0) {
            const unsigned char* t = &d[pos + 8];
            size_t n = len;
            if (n >= 6 && std::memcmp(t, "Exif\0\0", 6) == 0) t += 6, n -= 6;
            if (n < 8) return 1;
            const bool le = t[0] == 'I';
            auto u16 = [&](size_t at) { return le ? le16(t + at) : be16(t + at); };
            auto u32 = [&](size_t at) { return le ? le32(t + at) : be32(t + at); };
            const size_t ifd = u32(4);
            if (ifd + 2 > n) return 1;
            const size_t entries = u16(ifd);
            for (size_t i = 0; i < entries && ifd + 2 + 12 * (i + 1) <= n; ++i) {
                const size_t e = ifd + 2 + 12 * i;
                if (u16(e) == 0x0112) {
                    const int o = static_cast<int>(u16(e + 8));
                    return o >= 1 && o <= 8 ? o : 1;
                }
            }
            return 1;
        }
        pos += 8 + len + (len & 1);
    }
    return 1;
}

// The same geometry as OpenCV's ApplyExifOrientation (and PIL's ImageOps.exif_transpose).
void apply_orientation(cv::Mat& img, int orientation) {
    switch (orientation) {
        case 2: cv::flip(img, img, 1); break;
        case 3: cv::flip(img, img, -1); break;
        case 4: cv::flip(img, img, 0); break;
        case 5: cv::transpose(img, img); break;
        case 6:
            cv::transpose(img, img);
            cv::flip(img, img, 1);
            break;
        case 7:
            cv::flip(img, img, -1);
            cv::transpose(img, img);
            break;
        case 8:
            cv::transpose(img, img);
            cv::flip(img, img, 0);
            break;
        default: break;
    }
}

// OpenCV 4.6's CV_IO_MAX_IMAGE_WIDTH and _HEIGHT.
constexpr uint64_t kOpenCvMaxSide = 1u << 20;

std::string pixel_limit_message(uint64_t w, uint64_t h, size_t max_pixels) {
    return "image is " + std::to_string(w) + "x" + std::to_string(h) + " = " + std::to_string(w * h) +
           " pixels, over the limit of " + std::to_string(max_pixels);
}

cv::Mat imdecode_checked(const Bytes& bytes, int flags, const std::string& name, Format format) {
    try {
        return vit::imdecode(bytes, flags);  // image_codecs.hpp: OpenCV loaded on first use
    } catch (const cv::Exception& e) {
        fail(name, std::string(format_name(format)) + " decoder failed: " + e.err);
    }
}

}  // namespace

cv::Mat decode_image_bytes(const Bytes& bytes, const std::string& name, std::size_t max_pixels) {
    quiet_opencv_logging();
    if (max_pixels == 0) max_pixels = kDefaultMaxPixels;
    if (bytes.empty()) fail(name, "empty file (0 bytes)");
    const Format format = image::sniff(bytes);
    // OpenCV has no decoder for a signature sniff() does not know: no need to let them all try.
    if (format == Format::Unknown) fail(name, "not an image (unrecognised or unsupported format)");

    const image::HeaderInfo header = image::probe(format, bytes);
    if (header.size) {
        // Sides clamped to 2^31 (no decoder takes more) so the product cannot wrap.
        const uint64_t w = std::min<uint64_t>(header.size->first, 1ull << 31);
        const uint64_t h = std::min<uint64_t>(header.size->second, 1ull << 31);
        if (w * h > max_pixels) fail(name, pixel_limit_message(w, h, max_pixels));
        // OpenCV refuses these itself, but only after copying the data of some formats (HDR, EXR) to a
        // temporary file that it then leaves behind.
        if (w == 0 || h == 0 || w > kOpenCvMaxSide || h > kOpenCvMaxSide)
            fail(name, "image is " + std::to_string(w) + "x" + std::to_string(h) + ", outside OpenCV's limits (1 to " +
                           std::to_string(kOpenCvMaxSide) + " pixels per side)");
    }
    if (!header.problem.empty()) fail(name, header.problem);
    if (header.truncated)
        fail(name, format == Format::Jpeg  ? "truncated JPEG data (no end-of-image marker)"
                   : format == Format::Png ? "truncated PNG data (ends inside a chunk or before IEND)"
                                           : std::string("truncated ") + format_name(format) + " data");

    // ANYDEPTH|ANYCOLOR keeps 16-bit data and the gray/colour distinction so PIL's rules can be
    // applied below; OpenCV still applies EXIF orientation with these flags (not with UNCHANGED).
    int flags = cv::IMREAD_ANYDEPTH | cv::IMREAD_ANYCOLOR;
    if (format == Format::WebP) flags |= cv::IMREAD_IGNORE_ORIENTATION;  // applied here instead
    cv::Mat img;
    if (format == Format::Hdr || format == Format::Gif) {
        try {
            // OpenCV 4.6 has no GIF decoder, and its HDR reader leaks a file descriptor per malformed file.
            img = format == Format::Hdr ? decode_hdr(bytes) : decode_gif_first_frame(bytes);
        } catch (const std::runtime_error& e) {
            fail(name, e.what());
        }
    } else if (format == Format::Png) {
        const Bytes trimmed = png_without_unused_chunks(bytes);
        img = imdecode_checked(trimmed.empty() ? bytes : trimmed, flags, name, format);
    } else {
        img = imdecode_checked(bytes, flags, name, format);
    }
    if (img.empty()) fail(name, std::string("corrupt or unsupported ") + format_name(format) + " data");
    if (static_cast<uint64_t>(img.cols) * img.rows > max_pixels)
        fail(name, pixel_limit_message(img.cols, img.rows, max_pixels));

    if (img.depth() == CV_32F || img.depth() == CV_64F) {
        // Float data (EXR, HDR, PFM, float TIFF; PIL reads none of them): [0, 1] -> [0, 255], clipped.
        img.convertTo(img, CV_8U, 255.0);
    } else if (img.depth() != CV_8U && img.depth() != CV_16U) {
        img.convertTo(img, CV_8U);  // signed or 32-bit integers: clipped to [0, 255] like PIL's mode "I"
    }
    if (img.depth() == CV_16U) {
        // Gray: PIL opens it as mode "I" and converts with clipping, min(v, 255).
        // Colour: PIL unpacks 16-bit RGB(A) by keeping the high byte, v >> 8.
        const bool gray = img.channels() == 1;
        cv::Mat img8(img.rows, img.cols, CV_8UC(img.channels()));
        for (int y = 0; y < img.rows; ++y) {
            const uint16_t* in = img.ptr<uint16_t>(y);
            uint8_t* out = img8.ptr<uint8_t>(y);
            const int n = img.cols * img.channels();
            for (int i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(gray ? (in[i] > 255 ? 255 : in[i]) : in[i] >> 8);
        }
        img = img8;
    }

    if (img.channels() != 1 && img.channels() != 3 && img.channels() != 4)
        fail(name, "unsupported channel count " + std::to_string(img.channels()));
    cv::Mat rgb = to_rgb(img);
    if (format == Format::WebP) apply_orientation(rgb, webp_orientation(bytes));
    return rgb;
}

cv::Mat decode_image_file(const std::filesystem::path& path, std::size_t max_pixels) {
    if (max_pixels == 0) max_pixels = kDefaultMaxPixels;
    return decode_image_bytes(image::read_file(path, max_pixels, path.string()), path.string(), max_pixels);
}

cv::Mat decode_image_stdin(std::size_t max_pixels) {
    if (max_pixels == 0) max_pixels = kDefaultMaxPixels;
    return decode_image_bytes(image::read_file("/dev/stdin", max_pixels, "-"), "-", max_pixels);
}

cv::Mat to_rgb(const cv::Mat& decoded) {
    const int ch = decoded.channels();
    if (decoded.depth() != CV_8U || (ch != 1 && ch != 3 && ch != 4))
        throw std::invalid_argument("to_rgb: expected a CV_8UC1, CV_8UC3 or CV_8UC4 image, got " +
                                    cv::typeToString(decoded.type()));
    cv::Mat rgb(decoded.rows, decoded.cols, CV_8UC3);
    for (int y = 0; y < decoded.rows; ++y) {
        const uint8_t* in = decoded.ptr<uint8_t>(y);
        uint8_t* out = rgb.ptr<uint8_t>(y);
        if (ch == 1) {
            for (int x = 0; x < decoded.cols; ++x, out += 3) out[0] = out[1] = out[2] = in[x];
        } else {
            for (int x = 0; x < decoded.cols; ++x, in += ch, out += 3) {
                out[0] = in[2];
                out[1] = in[1];
                out[2] = in[0];
            }
        }
    }
    return rgb;
}

cv::Mat to_gray(const cv::Mat& rgb) {
    if (rgb.type() == CV_8UC1) return rgb.clone();
    if (rgb.type() != CV_8UC3)
        throw std::invalid_argument("to_gray: expected a CV_8UC3 RGB image, got " + cv::typeToString(rgb.type()));
    cv::Mat gray(rgb.rows, rgb.cols, CV_8UC1);
    for (int y = 0; y < rgb.rows; ++y) {
        const uint8_t* in = rgb.ptr<uint8_t>(y);
        uint8_t* out = gray.ptr<uint8_t>(y);
        for (int x = 0; x < rgb.cols; ++x, in += 3)
            out[x] = static_cast<uint8_t>((in[0] * 19595 + in[1] * 38470 + in[2] * 7471 + 0x8000) >> 16);
    }
    return gray;
}

}  // namespace vit
