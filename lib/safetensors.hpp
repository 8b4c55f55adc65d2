// Memory-mapped reader of the safetensors format: u64 header length, JSON header, raw little-endian data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace vit {

enum class DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL };

std::string to_string(DType d);
std::size_t dtype_size(DType d);

// One tensor inside the mapped file. `data` points into the mapping and is valid while the file lives.
struct TensorView {
    std::string name;
    DType dtype = DType::F32;
    std::vector<std::int64_t> shape;
    const unsigned char* data = nullptr;
    std::size_t nbytes = 0;

    std::int64_t numel() const;
    std::string shape_str() const;  // "[3, 192, 192]"
};

class SafetensorsFile {
public:
    // Largest accepted JSON header; real checkpoints need a few hundred KB.
    static constexpr std::uint64_t kMaxHeaderBytes = 100u << 20;

    // Maps the file and checks the header: every tensor's dtype, shape and offsets against the file size,
    // byte counts against shapes (overflow-checked), no overlaps, no duplicate names. Throws ModelError
    // naming the file and the tensor.
    explicit SafetensorsFile(const std::filesystem::path& path);
    ~SafetensorsFile();
    SafetensorsFile(const SafetensorsFile&) = delete;
    SafetensorsFile& operator=(const SafetensorsFile&) = delete;

    const std::filesystem::path& path() const { return path_; }
    const std::map<std::string, TensorView>& tensors() const { return tensors_; }
    const TensorView* find(const std::string& name) const;
    const std::map<std::string, std::string>& metadata() const { return metadata_; }

    // Drops the mapped pages of one tensor from memory once it has been copied elsewhere, so loading a model
    // never holds the file and the converted weights at the same time.
    void release(const TensorView& t) const;

private:
    std::filesystem::path path_;
    void* map_ = nullptr;
    std::size_t map_size_ = 0;
    std::map<std::string, TensorView> tensors_;
    std::map<std::string, std::string> metadata_;
};

// Converts a floating-point tensor (F32, F16, BF16, F64) to float32 into `out` (numel floats).
void convert_to_f32(const TensorView& t, float* out);
std::vector<float> to_f32(const TensorView& t);

// IEEE half / bfloat16 conversions (exact, handle inf/nan/subnormals).
float half_to_float(std::uint16_t h);
float bf16_to_float(std::uint16_t b);
std::uint16_t float_to_bf16(float f);  // round to nearest even

}  // namespace vit
