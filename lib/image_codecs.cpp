// Loader of libvit_codecs.so (image_codecs.hpp): found next to the executable, in the installed library
// folder, or in the build tree; opened once, possibly on a background thread.
#include "image_codecs.hpp"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
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

#if defined(__x86_64__)
constexpr std::uint32_t kCopyReloc = R_X86_64_COPY;
#elif defined(__aarch64__)
constexpr std::uint32_t kCopyReloc = R_AARCH64_COPY;
#endif

// Whether the executable has copy relocations: its own copies of shared libraries' data (std::cerr,
// __libc_single_threaded, ...) that the libraries' code, bound through the global scope, uses instead of their
// own. A library opened with RTLD_DEEPBIND would bind to the originals (std::cerr never constructed, a
// __libc_single_threaded never cleared); CMakeLists.txt builds vit's executables with -fPIC so they have none.
bool executable_has_copy_relocations() {
#if defined(__x86_64__) || defined(__aarch64__)
    bool found = true;  // unless the scan below completes
    ::dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* out) {
            // The first object reported is the executable.
            const ElfW(Dyn)* dyn = nullptr;
            for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i)
                if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
                    dyn = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
            if (!dyn) return 1;
            ElfW(Addr) rela = 0;
            std::size_t size = 0, entry = sizeof(ElfW(Rela));
            for (; dyn->d_tag != DT_NULL; ++dyn) {
                if (dyn->d_tag == DT_RELA) rela = dyn->d_un.d_ptr;
                if (dyn->d_tag == DT_RELASZ) size = dyn->d_un.d_val;
                if (dyn->d_tag == DT_RELAENT) entry = dyn->d_un.d_val;
            }
            // glibc stores DT_RELA relocated in memory; a loader that leaves it as an offset gets the base added.
            if (rela != 0 && rela < info->dlpi_addr) rela += info->dlpi_addr;
            bool copies = false;
            for (std::size_t off = 0; rela != 0 && entry != 0 && off + entry <= size; off += entry)
                copies = copies || ELF64_R_TYPE(reinterpret_cast<const ElfW(Rela)*>(rela + off)->r_info) == kCopyReloc;
            *static_cast<bool*>(out) = copies;
            return 1;
        },
        &found);
    return found;
#else
    return true;
#endif
}

// RTLD_DEEPBIND makes the ~140 libraries resolve their symbols in their own dependency tree first instead of
// first walking the ~55 libraries vit loaded at start (those they need are among their own dependencies, the
// same objects): the dlopen takes 54-56 ms of CPU instead of 70-78 (a test program linked to vit's libraries),
// on a one-image run's critical path. Not where a library
// is interposed on purpose (LD_PRELOAD: an allocator, a profiler) or where the sanitizers' runtime is (it
// refuses RTLD_DEEPBIND), nor with copy relocations (above).
bool deep_binding_safe() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return false;
#else
    const char* preload = std::getenv("LD_PRELOAD");
    if (preload && *preload) return false;
    for (const char* runtime : {"__asan_init", "__tsan_init", "__msan_init"})  // a sanitized executable
        if (::dlsym(RTLD_DEFAULT, runtime)) return false;
    return !executable_has_copy_relocations();
#endif
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

    bool deep() { return deep_.load(); }

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
            const bool deep = deep_binding_safe();
            void* h = ::dlopen(path.c_str(), RTLD_LAZY | RTLD_LOCAL | (deep ? RTLD_DEEPBIND : 0));
            deep_ = h != nullptr && deep;
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
    std::atomic<bool> deep_{false};
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

bool image_codecs_deep_bound() { return Codecs::get().deep(); }

}  // namespace vit
