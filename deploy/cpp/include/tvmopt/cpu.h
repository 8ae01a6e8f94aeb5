// Whether this CPU runs a library's code: the features its metadata record
// names (tvmopt/backends/cpu_features.py, in /proc/cpuinfo's words) against
// /proc/cpuinfo, before the library is loaded. A library built for another CPU
// is refused in one line, never with SIGILL.
#ifndef TVMOPT_CPU_H_
#define TVMOPT_CPU_H_

#include <sys/utsname.h>
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif
#include <tvmopt/error.h>
#include <tvmopt/metadata.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace tvmopt {

namespace detail {

// The x86-64 levels a fleet can target, newest first, with what each needs.
inline const std::vector<std::pair<std::string, std::vector<std::string>>>& X86Levels() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> levels = {
      {"x86-64-v4", {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}},
      {"x86-64-v3", {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe"}},
      {"x86-64-v2", {"pni", "ssse3", "sse4_1", "sse4_2", "popcnt"}},
  };
  return levels;
}

inline std::string Joined(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& word : words) text += (text.empty() ? "" : ", ") + word;
  return text;
}

// A target that runs here: this CPU, or the newest x86-64 level it has.
inline std::string Suggestion(const std::string& arch, const std::set<std::string>& have) {
  const std::string here = "--target llvm (this CPU)";
  if (arch != "x86_64") return here;
  for (const auto& [level, needs] : X86Levels()) {
    if (std::all_of(needs.begin(), needs.end(), [&](const auto& f) { return have.count(f); })) {
      return here + ", or --target " + level + " for any CPU with its features";
    }
  }
  return here;
}

}  // namespace detail

inline std::string HostArch() {
  utsname name{};
  uname(&name);
  const std::string machine = name.machine;
  return machine == "arm64" ? "aarch64" : machine;
}

#if defined(__aarch64__) && defined(__linux__)
// The kernel's names for the AT_HWCAP and AT_HWCAP2 bits, in bit order (asm/hwcap.h), as
// /proc/cpuinfo prints them. The auxiliary vector describes the CPU this process runs on, also
// under an emulator (qemu-user), where /proc/cpuinfo describes the host's.
inline std::set<std::string> HostFeatures() {
  static const char* const hwcap[] = {
      "fp",      "asimd", "evtstrm", "aes",   "pmull",    "sha1",   "sha2", "crc32",
      "atomics", "fphp",  "asimdhp", "cpuid", "asimdrdm", "jscvt",  "fcma", "lrcpc",
      "dcpop",   "sha3",  "sm3",     "sm4",   "asimddp",  "sha512", "sve",  "asimdfhm",
      "dit",     "uscat", "ilrcpc",  "flagm", "ssbs",     "sb",     "paca", "pacg"};
  static const char* const hwcap2[] = {"dcpodp",   "sve2",     "sveaes",  "svepmull", "svebitperm",
                                       "svesha3",  "svesm4",   "flagm2",  "frint",    "svei8mm",
                                       "svef32mm", "svef64mm", "svebf16", "i8mm",     "bf16",
                                       "dgh",      "rng",      "bti",     "mte"};
  std::set<std::string> features;
  const unsigned long bits = getauxval(AT_HWCAP), bits2 = getauxval(AT_HWCAP2);
  for (unsigned i = 0; i < std::size(hwcap); ++i) {
    if (bits & (1UL << i)) features.insert(hwcap[i]);
  }
  for (unsigned i = 0; i < std::size(hwcap2); ++i) {
    if (bits2 & (1UL << i)) features.insert(hwcap2[i]);
  }
  return features;
}
#else
// This CPU's features as /proc/cpuinfo lists them; nothing where it cannot be read.
inline std::optional<std::set<std::string>> HostFeatures() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    const std::string key = line.substr(0, line.find(':'));
    if (key.rfind("flags", 0) == 0 || key.rfind("Features", 0) == 0) {
      std::istringstream words(line.substr(line.find(':') + 1));
      return std::set<std::string>(std::istream_iterator<std::string>(words), {});
    }
  }
  return std::nullopt;
}
#endif

// Throws tvmopt::Error naming what this CPU lacks of what `record` needs.
inline void CheckRunsHere(const CpuRecord& record, const std::string& path) {
  const std::string arch = HostArch();
  if (record.arch != arch) {
    throw Error(path + " was compiled for " + record.arch + " (" + record.isa +
                "); this machine is " + arch);
  }
  const std::optional<std::set<std::string>> have = HostFeatures();
  if (!have) return;
  std::vector<std::string> missing;
  for (const std::string& feature : record.features) {
    if (!have->count(feature)) missing.push_back(feature);
  }
  if (!missing.empty()) {
    throw Error(path + " needs CPU features this CPU lacks: " + detail::Joined(missing) +
                " (it was built for " + record.mcpu + "); compile it with " +
                detail::Suggestion(arch, *have));
  }
}

}  // namespace tvmopt

#endif  // TVMOPT_CPU_H_
