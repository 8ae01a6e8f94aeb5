// One thread per physical core, as ONNX Runtime runs, unless the user chose: TVM's thread pool
// takes hardware_concurrency / 2 threads on x86 (it assumes two hyper-threads per core), so on a
// machine with one thread per core it used half of them (tvmopt/threads.py, the same in Python).
#pragma once

#include <sched.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace tvmopt {
namespace detail {

inline std::string ReadLine(const std::string& path) {
  std::ifstream stream(path);
  std::string line;
  std::getline(stream, line);
  return line;
}

// The physical cores this process may run on (its affinity), counted once per core.
inline int PhysicalCores() {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return 1;
  std::set<std::pair<std::string, std::string>> cores;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    const std::string topology = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    const std::string core = ReadLine(topology + "core_id");
    // no topology: each CPU a core of its own
    cores.emplace(core.empty() ? "cpu" : ReadLine(topology + "physical_package_id"),
                  core.empty() ? std::to_string(cpu) : core);
  }
  return cores.empty() ? 1 : static_cast<int>(cores.size());
}

// Before TVM's thread pool starts (at a model's first run); a choice in the environment stands.
inline void DefaultToPhysicalCores() {
  if (std::getenv("TVM_NUM_THREADS") != nullptr || std::getenv("OMP_NUM_THREADS") != nullptr) {
    return;
  }
  setenv("TVM_NUM_THREADS", std::to_string(PhysicalCores()).c_str(), 0);
}

}  // namespace detail
}  // namespace tvmopt
