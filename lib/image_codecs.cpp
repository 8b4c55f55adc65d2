// Loader of libvit_codecs.so (image_codecs.hpp): found next to the executable, in the installed library
// folder, or in the build tree; opened once, possibly on a background thread.
#include "image_codecs.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

namespace vit {

namespace {

using DecodeFn = void (*)(const std::vector<unsigned char>*, int, cv::Mat*);
using EncodeFn = bool (*)(const char*, const cv::Mat*, std::vector<unsigned char>*);

constexpr const char* kModule = "libvit_codecs.so";

std::string executable_dir() {
    char buf[4096];
    const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return {};
    std::string p(buf, static_cast<std::size_t>(n));
    const auto slash = p.rfind('/');
    return slash == std::string::npos ? std::string() : p.substr(0, slash);
}

class Codecs {
public:
    static Codecs& get() {
        static Codecs c;
        return c;
    }

    DecodeFn decode() {
        std::call_once(once_, [this] { open(); });
        if (!fn_) throw std::runtime_error(error_);
        return fn_;
    }

    EncodeFn encode() {
        std::call_once(once_, [this] { open(); });
        if (!fn_) throw std::runtime_error(error_);
        if (!encode_fn_)
            throw std::runtime_error(
                "the image decoding module has no vit_codecs_imencode (a mismatched libvit_codecs.so?)");
        return encode_fn_;
    }

    void preload() {
        std::lock_guard<std::mutex> lock(mu_);
        if (!preloader_.joinable()) preloader_ = std::thread([this] { std::call_once(once_, [this] { open(); }); });
    }

    bool loaded() {
        std::lock_guard<std::mutex> lock(mu_);
        return opened_.load();
    }

    void wait() {
        std::lock_guard<std::mutex> lock(mu_);
        if (preloader_.joinable()) preloader_.join();
    }

    ~Codecs() {
        if (preloader_.joinable()) preloader_.join();
    }

private:
    void open() {
        const std::string dir = executable_dir();
        const std::string candidates[] = {dir + "/" + kModule, dir + "/" VIT_CODECS_INSTALL_REL "/" + kModule,
                                          VIT_CODECS_BUILD_PATH};
        std::string tried;
        for (const auto& path : candidates) {
            if (::access(path.c_str(), F_OK) != 0) {
                tried += (tried.empty() ? "" : ", ") + path;
                continue;
            }
            void* h = ::dlopen(path.c_str(), RTLD_LAZY | RTLD_LOCAL);
            opened_ = h != nullptr;
            if (!h) {
                const char* e = ::dlerror();
                error_ = "cannot open the image decoding module " + path + ": " + (e ? e : "dlopen failed");
                return;
            }
            fn_ = reinterpret_cast<DecodeFn>(::dlsym(h, "vit_codecs_imdecode"));
            if (!fn_) error_ = path + ": no symbol vit_codecs_imdecode (a mismatched libvit_codecs.so?)";
            encode_fn_ = reinterpret_cast<EncodeFn>(::dlsym(h, "vit_codecs_imencode"));
            if (fn_) warm_up();
            return;
        }
        error_ = std::string("the image decoding module ") + kModule + " is not installed (looked for " + tried + ")";
    }

    // OpenCV builds its table of decoders on the first decode (GDAL registers its ~200 drivers then: ~2 ms). Done
    // here, on the loading thread, it is off a one-image run's critical path: four bytes no decoder claims.
    void warm_up() {
        const std::vector<unsigned char> nothing(4, 0);
        cv::Mat m;
        try {
            fn_(&nothing, -1 /* cv::IMREAD_UNCHANGED */, &m);
        } catch (...) {
            // a build of OpenCV that rejects it outright: the first real decode builds the table instead
        }
    }

    std::once_flag once_;
    std::atomic<bool> opened_{false};
    std::mutex mu_;
    std::thread preloader_;
    DecodeFn fn_ = nullptr;
    EncodeFn encode_fn_ = nullptr;
    std::string error_;
};

}  // namespace

cv::Mat imdecode(const std::vector<unsigned char>& bytes, int flags) {
    cv::Mat out;
    Codecs::get().decode()(&bytes, flags, &out);
    return out;
}

bool imencode(const char* ext, const cv::Mat& image, std::vector<unsigned char>& out) {
    return Codecs::get().encode()(ext, &image, &out);
}

void preload_image_codecs() { Codecs::get().preload(); }

void wait_image_codecs() { Codecs::get().wait(); }

bool image_codecs_loaded() { return Codecs::get().loaded(); }

}  // namespace vit
