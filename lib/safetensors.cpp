// Memory-mapped safetensors reader with every offset and size checked before any tensor byte is read.
#include "safetensors.hpp"

#include <cpuid.h>
#include <fcntl.h>
#include <immintrin.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "errors.hpp"
#include "json_util.hpp"

namespace vit {

std::string to_string(DType d) {
    switch (d) {
        case DType::F32: return "F32";
        case DType::F16: return "F16";
        case DType::BF16: return "BF16";
        case DType::F64: return "F64";
        case DType::I64: return "I64";
        case DType::I32: return "I32";
        case DType::I16: return "I16";
        case DType::I8: return "I8";
        case DType::U8: return "U8";
        case DType::BOOL: return "BOOL";
    }
    return "?";
}

std::size_t dtype_size(DType d) {
    switch (d) {
        case DType::F64:
        case DType::I64: return 8;
        case DType::F32:
        case DType::I32: return 4;
        case DType::F16:
        case DType::BF16:
        case DType::I16: return 2;
        case DType::I8:
        case DType::U8:
        case DType::BOOL: return 1;
    }
    return 0;
}

std::int64_t TensorView::numel() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
}

std::string TensorView::shape_str() const {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

namespace {

bool parse_dtype(const std::string& s, DType& d) {
    static const std::pair<const char*, DType> table[] = {
        {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"F64", DType::F64}, {"I64", DType::I64},
        {"I32", DType::I32}, {"I16", DType::I16}, {"I8", DType::I8},     {"U8", DType::U8},   {"BOOL", DType::BOOL}};
    for (const auto& [name, v] : table)
        if (s == name) {
            d = v;
            return true;
        }
    return false;
}

// The header schema is 3 levels deep (object -> tensor entry -> shape list) and no list is long (a shape,
// two offsets): hostile nesting or a 100 MB list would otherwise cost ~16 bytes of memory per byte.
constexpr JsonLimits kHeaderLimits{4, 64};

struct Fd {
    int fd;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : path_(path) {
    const std::string where = path.string() + ": ";
    // O_NONBLOCK: a FIFO with no writer must not hang the open; it is refused just below, as is any non-file.
    Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)};
    if (f.fd < 0) throw ModelError(where + "cannot open weights file: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) throw ModelError(where + "cannot stat weights file: " + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) throw ModelError(where + "is a directory, expected a .safetensors file");
    if (!S_ISREG(st.st_mode))
        throw ModelError(where + "not a regular file (a pipe or device?), expected a .safetensors file");
    const std::uint64_t file_size = static_cast<std::uint64_t>(st.st_size);
    if (file_size < 8)
        throw ModelError(where + "not a safetensors file: " + std::to_string(file_size) +
                         " bytes, shorter than the 8-byte header length");
    map_size_ = static_cast<std::size_t>(file_size);
    map_ = ::mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, f.fd, 0);
    if (map_ == MAP_FAILED) {
        map_ = nullptr;
        throw ModelError(where + "cannot map weights file: " + std::strerror(errno));
    }
    try {
        const auto* base = static_cast<const unsigned char*>(map_);
        std::uint64_t header_len = 0;
        for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | base[i];  // little-endian u64
        if (header_len > kMaxHeaderBytes)
            throw ModelError(where + "header length " + std::to_string(header_len) + " exceeds the limit of " +
                             std::to_string(kMaxHeaderBytes) + " bytes (not a safetensors file?)");
        if (header_len > file_size - 8)
            throw ModelError(where + "header length " + std::to_string(header_len) + " runs past the end of the " +
                             std::to_string(file_size) + "-byte file (truncated?)");
        const char* hbeg = reinterpret_cast<const char*>(base + 8);
        const std::uint64_t data_size = file_size - 8 - header_len;
        const unsigned char* data = base + 8 + header_len;

        nlohmann::json header;
        std::string duplicate;
        try {
            header = parse_bounded(hbeg, hbeg + header_len, kHeaderLimits, &duplicate);
        } catch (const ModelError& e) {
            throw ModelError(where + "malformed header: " + e.what());
        } catch (const nlohmann::json::exception& e) {
            throw ModelError(where + "malformed header JSON: " + e.what());
        }
        if (!duplicate.empty()) throw ModelError(where + "tensor \"" + duplicate + "\" appears more than once");
        if (!header.is_object()) throw ModelError(where + "malformed header: expected a JSON object");

        std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
        std::vector<const std::string*> range_names;
        for (auto it = header.begin(); it != header.end(); ++it) {
            const std::string& name = it.key();
            const auto& e = it.value();
            if (name == "__metadata__") {
                if (e.is_object())
                    for (auto m = e.begin(); m != e.end(); ++m)
                        if (m.value().is_string()) metadata_[m.key()] = m.value().get<std::string>();
                continue;
            }
            const std::string tw = where + "tensor \"" + name + "\": ";
            if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
                throw ModelError(tw + "header entry needs dtype, shape and data_offsets");
            TensorView t;
            t.name = name;
            if (!e["dtype"].is_string() || !parse_dtype(e["dtype"].get<std::string>(), t.dtype))
                throw ModelError(tw + "unknown dtype " + brief(e["dtype"]));
            if (!e["shape"].is_array()) throw ModelError(tw + "shape must be a list");
            std::uint64_t numel = 1;
            for (const auto& d : e["shape"]) {
                if (!d.is_number_integer() || d.get<std::int64_t>() < 0)
                    throw ModelError(tw + "shape " + brief(e["shape"]) + " has an invalid dimension");
                const auto v = d.get<std::uint64_t>();
                if (v != 0 && numel > std::numeric_limits<std::uint64_t>::max() / 16 / v)
                    throw ModelError(tw + "shape " + brief(e["shape"]) + " overflows");
                numel *= v;
                t.shape.push_back(static_cast<std::int64_t>(v));
            }
            const auto& off = e["data_offsets"];
            if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
                throw ModelError(tw + "data_offsets must be two non-negative integers, got " + brief(off));
            const auto b = off[0].get<std::uint64_t>(), en = off[1].get<std::uint64_t>();
            if (b > en || en > data_size)
                throw ModelError(tw + "data_offsets [" + std::to_string(b) + ", " + std::to_string(en) +
                                 "] lie outside the " + std::to_string(data_size) + "-byte data section");
            const std::uint64_t expect = numel * dtype_size(t.dtype);
            if (en - b != expect)
                throw ModelError(tw + "holds " + std::to_string(en - b) + " bytes, but " + to_string(t.dtype) + " " +
                                 t.shape_str() + " needs " + std::to_string(expect));
            t.data = data + b;
            t.nbytes = static_cast<std::size_t>(en - b);
            ranges.emplace_back(b, en);
            auto [pos, ok] = tensors_.emplace(name, std::move(t));
            range_names.push_back(&pos->first);
        }
        // Sorted by start, a non-empty range overlaps an earlier one iff it starts before the furthest end
        // seen so far (not just the previous range's: [0,100) hides [50,60) behind an empty [5,5)).
        std::vector<std::size_t> order(ranges.size());
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::sort(order.begin(), order.end(), [&](auto a, auto b) { return ranges[a] < ranges[b]; });
        std::size_t furthest = order.size();  // index of the non-empty range reaching furthest so far
        for (std::size_t i : order) {
            const auto& cur = ranges[i];
            if (cur.second == cur.first) continue;
            if (furthest != order.size() && cur.first < ranges[furthest].second)
                throw ModelError(where + "tensors \"" + *range_names[furthest] + "\" and \"" + *range_names[i] +
                                 "\" overlap in the data section");
            if (furthest == order.size() || cur.second > ranges[furthest].second) furthest = i;
        }
    } catch (...) {
        ::munmap(map_, map_size_);
        map_ = nullptr;
        throw;
    }
}

SafetensorsFile::~SafetensorsFile() {
    if (map_) ::munmap(map_, map_size_);
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
    auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : &it->second;
}

void SafetensorsFile::release(const TensorView& t) const {
    const long page = ::sysconf(_SC_PAGESIZE);
    auto begin = reinterpret_cast<std::uintptr_t>(t.data);
    auto end = begin + t.nbytes;
    begin = (begin + page - 1) / page * page;  // only whole pages that belong to this tensor alone
    end = end / page * page;
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

float half_to_float(std::uint16_t h) {
    const std::uint32_t sign = (h & 0x8000u) << 16;
    std::uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ffu, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else {  // subnormal: normalise
            exp = 127 - 15 + 1;
            while (!(man & 0x400u)) {
                man <<= 1;
                --exp;
            }
            bits = sign | (exp << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

float bf16_to_float(std::uint16_t b) {
    const std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

std::uint16_t float_to_bf16(float f) {
    std::uint32_t bits;
    std::memcpy(&bits, &f, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x40);  // quiet NaN
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return static_cast<std::uint16_t>(bits >> 16);
}

namespace {

// F16 -> F32 with the F16C instruction (8 values per vcvtph2ps; every x86-64 CPU with AVX2 has it). Exact like
// half_to_float, except that a signalling NaN comes out quieted (still a NaN). The built-in model is F16: the
// scalar loop was ~8% of a one-image `vit classify`.
__attribute__((target("avx,f16c"))) void half_to_float_f16c(const unsigned char* p, std::int64_t n, float* out) {
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i))));
    for (; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = half_to_float(h);
    }
}

// F16C is CPUID leaf 1, ECX bit 29 (clang 14's __builtin_cpu_supports does not know "f16c"); "avx" also checks that
// the OS saves the YMM registers.
bool have_f16c() {
    static const bool yes = [] {
        unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
        return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0 && __builtin_cpu_supports("avx");
    }();
    return yes;
}

// bfloat16 is the top half of a float32: a shift, which the compiler vectorises.
__attribute__((target_clones("avx2", "default"))) void bf16_to_float_n(const unsigned char* p, std::int64_t n,
                                                                       float* out) {
    for (std::int64_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        const std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
        std::memcpy(out + i, &bits, 4);
    }
}

}  // namespace

void convert_to_f32(const TensorView& t, float* out) {
    const std::int64_t n = t.numel();
    const unsigned char* p = t.data;
    switch (t.dtype) {
        case DType::F32: std::memcpy(out, p, n * 4); return;
        case DType::F16:
            if (have_f16c()) {
                half_to_float_f16c(p, n, out);
                return;
            }
            for (std::int64_t i = 0; i < n; ++i) {
                std::uint16_t h;
                std::memcpy(&h, p + 2 * i, 2);
                out[i] = half_to_float(h);
            }
            return;
        case DType::BF16: bf16_to_float_n(p, n, out); return;
        case DType::F64:
            for (std::int64_t i = 0; i < n; ++i) {
                double d;
                std::memcpy(&d, p + 8 * i, 8);
                out[i] = static_cast<float>(d);
            }
            return;
        default:
            throw ModelError("tensor \"" + t.name + "\": dtype " + to_string(t.dtype) +
                             " is not a floating-point type (expected F32, F16 or BF16)");
    }
}

std::vector<float> to_f32(const TensorView& t) {
    std::vector<float> v(static_cast<std::size_t>(t.numel()));
    convert_to_f32(t, v.data());
    return v;
}

}  // namespace vit
