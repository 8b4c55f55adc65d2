// The op timing table of op_profile.hpp.
#include "op_profile.hpp"

#include <map>
#include <mutex>

namespace vit::op_profile {

namespace {

std::mutex mutex;
std::vector<Entry> entries;
std::map<std::string, std::size_t> index;  // op -> its entry

}  // namespace

void detail::record(Kind kind, const std::string& op, double ms) {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = index.find(op);
    if (it == index.end()) {
        it = index.emplace(op, entries.size()).first;
        entries.push_back({op, kind, 0, 0});
    }
    Entry& e = entries[it->second];
    e.ms += ms;
    ++e.calls;
}

std::vector<Entry> take() {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<Entry> out;
    out.swap(entries);
    index.clear();
    return out;
}

}  // namespace vit::op_profile
