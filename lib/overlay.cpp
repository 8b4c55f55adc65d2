// Overlay rendering and atomic PNG output (see overlay.hpp). Legend: G grid cells per side, S crop side,
// w x h original image, rw x rh resized image.
#include "overlay.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include <opencv2/imgproc.hpp>

#include "image_codecs.hpp"
#include "preprocess.hpp"

namespace vit {

namespace {

// Cubic convolution kernel, a = -0.75 (OpenCV's INTER_CUBIC, torch's bicubic).
double cubic(double x) {
    const double a = -0.75;
    x = std::fabs(x);
    if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0;
}

// [n, G] weights taking G grid values to the n original pixels of one axis: output pixel i sits at crop pixel
// (i + 0.5) * resized / n - offset; rows outside the crop [0, S) stay zero.
cv::Mat axis_weights(int n, int resized, int offset, int S, int G) {
    cv::Mat w = cv::Mat::zeros(n, G, CV_32F);
    for (int i = 0; i < n; ++i) {
        const double u = (i + 0.5) * resized / n - offset;
        if (u < 0 || u >= S) continue;
        const double g = u * G / S - 0.5;
        const int g0 = static_cast<int>(std::floor(g));
        for (int k = g0 - 1; k <= g0 + 2; ++k)
            w.at<float>(i, std::clamp(k, 0, G - 1)) += static_cast<float>(cubic(g - k));
    }
    return w;
}

std::string ascii(const std::string& s) {
    std::string o = s;
    for (char& c : o)
        if (static_cast<unsigned char>(c) >= 0x80 || static_cast<unsigned char>(c) < 0x20) c = '?';
    return o;
}

}  // namespace

cv::Mat heat_on_original(const std::vector<float>& map, int grid, cv::Size original, const PreprocessConfig& pp) {
    if (grid <= 0 || map.size() != static_cast<std::size_t>(grid) * grid)
        throw std::invalid_argument("heat_on_original: map has " + std::to_string(map.size()) + " values, expected " +
                                    std::to_string(grid) + "x" + std::to_string(grid));
    const CropGeometry geo = crop_geometry(original.width, original.height, pp);
    const cv::Mat wx = axis_weights(original.width, geo.resized.width, geo.left, geo.crop, grid);   // [w, G]
    const cv::Mat wy = axis_weights(original.height, geo.resized.height, geo.top, geo.crop, grid);  // [h, G]
    const cv::Mat m(grid, grid, CV_32F, const_cast<float*>(map.data()));
    cv::Mat heat = wy * (m * wx.t());        // [h, w]
    cv::min(cv::max(heat, 0.0), 1.0, heat);  // bicubic overshoots a little near peaks
    return heat;
}

cv::Mat render_overlay(const cv::Mat& rgb, const cv::Mat& heat, const OverlayStyle& style) {
    if (rgb.type() != CV_8UC3 || heat.type() != CV_32F || rgb.size() != heat.size())
        throw std::invalid_argument("render_overlay: expected an RGB CV_8UC3 image and a CV_32F heat map of its size");
    cv::Mat heat8, colour, bgr, out;
    heat.convertTo(heat8, CV_8U, 255.0);
    cv::applyColorMap(heat8, colour, style.colormap ? style.colormap : cv::COLORMAP_INFERNO);
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    cv::addWeighted(bgr, 1.0 - style.alpha, colour, style.alpha, 0.0, out);
    return out;
}

cv::Mat side_by_side(const cv::Mat& rgb, const cv::Mat& overlay, const std::string& caption) {
    cv::Mat bgr, out;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    cv::hconcat(bgr, overlay, out);
    const std::string text = ascii(caption);
    const int font = cv::FONT_HERSHEY_SIMPLEX;
    const double scale = std::max(0.35, overlay.cols / 600.0);
    const int thick = std::max(1, static_cast<int>(std::lround(scale * 1.5)));
    int base = 0;
    const cv::Size ts = cv::getTextSize(text, font, scale, thick, &base);
    const int pad = std::max(2, ts.height / 3);
    const cv::Point org(overlay.cols + pad, pad + ts.height);
    cv::rectangle(out, cv::Rect(overlay.cols, 0, ts.width + 2 * pad, ts.height + base + 2 * pad), cv::Scalar(0, 0, 0),
                  cv::FILLED);
    cv::putText(out, text, org, font, scale, cv::Scalar(255, 255, 255), thick, cv::LINE_AA);
    return out;
}

bool write_png_atomic(const cv::Mat& image, const std::filesystem::path& path, bool replace) {
    std::vector<uchar> png;
    if (!imencode(".png", image, png)) throw std::runtime_error(path.string() + ": cannot encode the PNG");
    const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
    std::string tmp = (dir / ("." + path.filename().string() + ".vit-tmp-XXXXXX")).string();
    const int fd = ::mkstemp(tmp.data());
    if (fd < 0)
        throw std::runtime_error(path.string() + ": cannot create a temporary file (" + std::strerror(errno) + ")");
    auto fail = [&](const char* what) {
        const int err = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        throw std::runtime_error(path.string() + ": " + what + " (" + std::strerror(err) + ")");
    };
    ::fchmod(
        fd, 0644 & ~[] {
            const mode_t m = ::umask(0);
            ::umask(m);
            return m;
        }());
    for (std::size_t off = 0; off < png.size();) {
        const ssize_t n = ::write(fd, png.data() + off, png.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail("write error");
        off += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) fail("write error");
    if (::close(fd) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        throw std::runtime_error(path.string() + ": write error (" + std::strerror(err) + ")");
    }
    if (replace) {
        if (std::rename(tmp.c_str(), path.c_str()) != 0) {
            const int err = errno;
            ::unlink(tmp.c_str());
            throw std::runtime_error(path.string() + ": cannot move the PNG into place (" + std::strerror(err) + ")");
        }
        return true;
    }
    // link() fails with EEXIST when the name is taken, atomically: an existing file is never replaced.
    int rc = ::link(tmp.c_str(), path.c_str());
    int err = errno;
    if (rc != 0 && (err == EPERM || err == ENOTSUP || err == EOPNOTSUPP || err == ENOSYS)) {
        // A file system without hard links: check, then rename (only this check-then-act is not atomic).
        struct stat st;
        if (::lstat(path.c_str(), &st) == 0) {
            err = EEXIST;
        } else {
            rc = std::rename(tmp.c_str(), path.c_str());
            err = errno;
            if (rc == 0) return true;
        }
    }
    ::unlink(tmp.c_str());
    if (rc == 0) return true;
    if (err == EEXIST) return false;
    throw std::runtime_error(path.string() + ": cannot move the PNG into place (" + std::strerror(err) + ")");
}

}  // namespace vit
