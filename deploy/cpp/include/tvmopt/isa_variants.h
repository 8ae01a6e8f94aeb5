// A library holding code for several CPUs (tvmopt/isa_variants.py): the baseline's code is the
// library itself, each ISA variant a whole tvmopt library in an ELF section of it, best first.
// The loader takes the first variant this CPU runs, copied out to a private file, else the
// baseline. TVMOPT_MAX_CPU_ISA=x86-64-v3 (or v2) chooses as if the CPU stopped at that level.
#ifndef TVMOPT_ISA_VARIANTS_H_
#define TVMOPT_ISA_VARIANTS_H_

#include <stdlib.h>
#include <unistd.h>

#include <tvmopt/cpu.h>
#include <tvmopt/elf.h>
#include <tvmopt/error.h>
#include <tvmopt/metadata.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace tvmopt {

namespace detail {

// Whether `feature` is past the x86-64 level `level` (TVMOPT_MAX_CPU_ISA): a newer level's, or
// AVX-512's or AMX's below v4, as isa_variants.py decides.
inline bool Beyond(const std::string& feature, const std::string& level) {
  const auto& levels = X86Levels();
  auto at = std::find_if(levels.begin(), levels.end(),
                         [&](const auto& entry) { return entry.first == level; });
  if (at == levels.end()) {
    throw Error("TVMOPT_MAX_CPU_ISA=" + level + " is not one of x86-64-v4, x86-64-v3, x86-64-v2");
  }
  for (auto newer = levels.begin(); newer != at; ++newer) {
    const auto& needs = newer->second;
    if (std::find(needs.begin(), needs.end(), feature) != needs.end()) return true;
  }
  const bool wide = feature.rfind("avx512", 0) == 0 || feature.rfind("amx", 0) == 0;
  return at != levels.begin() && wide;
}

inline bool RunsHere(const CpuRecord& record) {
  if (record.arch != HostArch()) return false;
  const std::optional<std::set<std::string>> have = HostFeatures();  // a set on aarch64
  const char* cap = std::getenv("TVMOPT_MAX_CPU_ISA");
  for (const std::string& feature : record.features) {
    if (have && !have->count(feature)) return false;
    if (cap && *cap && Beyond(feature, cap)) return false;
  }
  return true;
}

}  // namespace detail

// The first of `variants` this CPU runs (under TVMOPT_MAX_CPU_ISA), or nullopt.
inline std::optional<size_t> ChooseVariant(const std::vector<IsaVariant>& variants) {
  for (size_t i = 0; i < variants.size(); ++i) {
    if (detail::RunsHere(variants[i].cpu)) return i;
  }
  return std::nullopt;
}

// A variant's library, copied out of its section into a private file (TVM loads files); the
// caller removes it once the library is loaded (dlopen keeps what it mapped).
inline std::string ExtractVariant(const std::string& path, const IsaVariant& variant,
                                  const std::string& shown) {
  std::optional<std::string> bytes = ReadElfSection(path, variant.section, shown);
  if (!bytes) throw Error(shown + " is corrupt: its ISA variant section " + variant.section +
                          " is missing");
  const char* tmpdir = std::getenv("TMPDIR");
  std::string name = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/tvmopt-isa-XXXXXX.so";
  const int fd = mkstemps(name.data(), 3);
  if (fd < 0) throw Error("cannot write a private copy of " + shown + "'s ISA variant in " + name);
  close(fd);
  std::ofstream(name, std::ios::binary).write(bytes->data(), bytes->size());
  return name;
}

}  // namespace tvmopt

#endif  // TVMOPT_ISA_VARIANTS_H_
