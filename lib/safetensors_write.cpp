// safetensors writer (see safetensors_write.hpp).
#include "safetensors_write.hpp"

#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace vit {

void write_safetensors(std::ostream& out, const std::map<std::string, F32Tensor>& tensors) {
    nlohmann::json header = nlohmann::json::object();
    std::uint64_t offset = 0;
    for (const auto& [name, t] : tensors) {
        std::int64_t n = 1;
        for (auto d : t.shape) n *= d;
        if (n != static_cast<std::int64_t>(t.data.size()))
            throw std::invalid_argument("tensor \"" + name + "\": " + std::to_string(t.data.size()) +
                                        " values do not fill its shape");
        const std::uint64_t bytes = static_cast<std::uint64_t>(n) * 4;
        header[name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    std::string h = header.dump();
    h.append((8 - h.size() % 8) % 8, ' ');
    const std::uint64_t len = h.size();
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((len >> (8 * i)) & 0xff));
    out << h;
    for (const auto& [name, t] : tensors) {
        for (float f : t.data) {  // little-endian hosts only (as the reader)
            char b[4];
            std::memcpy(b, &f, 4);
            out.write(b, 4);
        }
    }
}

}  // namespace vit
