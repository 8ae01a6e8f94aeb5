// tvmopt-run MODEL.so [--inputs DIR] [--output DIR] [--repeat N] [--warmup N]
//
// Runs a tvmopt library with no Python: inputs come from DIR/<input>.npy (or
// are generated), outputs go to DIR/<output>.npy, latencies go to stdout.
// Every problem is one line on stderr and exit status 2.
#include <tvmopt/model.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

constexpr const char kUsage[] =
    "usage: tvmopt-run MODEL.so [--inputs DIR_OF_NPY] [--output DIR] [--repeat N] [--warmup N]";

struct Options {
  std::string model;
  std::string inputs;
  std::string output;
  int repeat = 10;
  int warmup = 2;
};

int PositiveInt(const std::string& flag, const std::string& text, int minimum) {
  size_t used = 0;
  int value = -1;
  try {
    value = std::stoi(text, &used);
  } catch (const std::exception&) {
  }
  if (used != text.size() || value < minimum) {
    throw tvmopt::Error(flag + " takes an integer >= " + std::to_string(minimum) + ", got '" +
                        text + "'");
  }
  return value;
}

Options ParseOptions(int argc, char** argv) {
  Options options;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage << "\n";
      std::exit(0);
    }
    bool takes_value =
        arg == "--inputs" || arg == "--output" || arg == "--repeat" || arg == "--warmup";
    if (takes_value && i + 1 == args.size()) throw tvmopt::Error(arg + " needs a value");
    if (arg == "--inputs") {
      options.inputs = args[++i];
    } else if (arg == "--output") {
      options.output = args[++i];
    } else if (arg == "--repeat") {
      options.repeat = PositiveInt(arg, args[++i], 1);
    } else if (arg == "--warmup") {
      options.warmup = PositiveInt(arg, args[++i], 0);
    } else if (arg.rfind("-", 0) == 0 || !options.model.empty()) {
      throw tvmopt::Error("unexpected argument '" + arg + "'; " + kUsage);
    } else {
      options.model = arg;
    }
  }
  if (options.model.empty()) throw tvmopt::Error(std::string("no model given; ") + kUsage);
  return options;
}

// An input or output's file name: its name with anything but [A-Za-z0-9._-] as '_'
// (ONNX names may hold '/' or ':'); tvmopt.deploy.npy_file_name says the same.
std::string FileName(const std::string& tensor_name) {
  std::string name = tensor_name;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') c = '_';
  }
  return name + ".npy";
}

std::string ListInputs(const tvmopt::Metadata& metadata) {
  std::string text;
  for (const auto& info : metadata.inputs) text += (text.empty() ? "" : ", ") + info.Describe();
  return text;
}

std::vector<tvmopt::HostArray> ReadInputs(const tvmopt::Metadata& metadata,
                                          const std::string& dir) {
  if (!fs::is_directory(dir)) throw tvmopt::Error("inputs directory not found: " + dir);
  std::vector<std::string> expected;
  for (const auto& info : metadata.inputs) expected.push_back(FileName(info.name));
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (entry.path().extension() == ".npy" &&
        std::find(expected.begin(), expected.end(), name) == expected.end()) {
      throw tvmopt::Error("unknown input file " + entry.path().string() +
                          "; the model's inputs are: " + ListInputs(metadata));
    }
  }
  std::vector<tvmopt::HostArray> arrays;
  for (size_t i = 0; i < expected.size(); ++i) {
    fs::path path = fs::path(dir) / expected[i];
    if (!fs::is_regular_file(path)) {
      throw tvmopt::Error("missing input '" + metadata.inputs[i].name + "': no file " +
                          path.string());
    }
    arrays.push_back(tvmopt::ReadNpy(path.string()));
  }
  return arrays;
}

// Like tvmopt's random_inputs: normal floats, bools, small non-negative ints (seeded).
template <typename T>
void Fill(tvmopt::HostArray* array, std::mt19937* rng) {
  std::normal_distribution<double> normal;
  std::uniform_int_distribution<int> small(0, std::strcmp(array->dtype.c_str(), "bool") ? 3 : 1);
  T* data = reinterpret_cast<T*>(array->bytes.data());
  bool is_float = std::is_floating_point_v<T>;
  for (int64_t i = 0; i < array->NumElements(); ++i) {
    data[i] = static_cast<T>(is_float ? normal(*rng) : small(*rng));
  }
}

tvmopt::HostArray Generate(const tvmopt::TensorInfo& info, std::mt19937* rng) {
  if (!info.IsStatic()) {
    throw tvmopt::Error("input " + info.Describe() +
                        " has a symbolic shape; give its values with --inputs");
  }
  tvmopt::HostArray array{info.dtype, info.shape, {}};
  const std::string& t = info.dtype;
  int bytes = tvmopt::detail::TypeOfDtype(t).bytes;
  array.bytes.resize(array.NumElements() * bytes);
  if (t == "float32") {
    Fill<float>(&array, rng);
  } else if (t == "float64") {
    Fill<double>(&array, rng);
  } else if (t == "int64") {
    Fill<int64_t>(&array, rng);
  } else if (t == "int32") {
    Fill<int32_t>(&array, rng);
  } else if (bytes == 1) {
    Fill<uint8_t>(&array, rng);
  } else {
    throw tvmopt::Error("cannot generate " + info.Describe() + "; give it with --inputs");
  }
  return array;
}

void WriteOutputs(const tvmopt::Metadata& metadata, const std::vector<tvmopt::HostArray>& arrays,
                  const std::string& dir) {
  fs::create_directories(dir);
  for (size_t i = 0; i < arrays.size(); ++i) {
    fs::path path = fs::path(dir) / FileName(metadata.outputs[i].name);
    tvmopt::WriteNpy(path.string(), arrays[i]);
    std::cout << "wrote " << path.string() << "\n";
  }
}

// ", mean 0.1" for float32 outputs, the quick sanity check `tvmopt run` prints too.
std::string MeanText(const tvmopt::HostArray& array) {
  if (array.dtype != "float32" || array.NumElements() == 0) return "";
  const float* data = reinterpret_cast<const float*>(array.bytes.data());
  double sum = 0;
  for (int64_t i = 0; i < array.NumElements(); ++i) sum += data[i];
  std::ostringstream text;
  text << ", mean " << sum / array.NumElements();
  return text.str();
}

void PrintLatency(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  size_t n = ms.size();
  double median = n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
  std::printf("latency: median %.3f ms, min %.3f ms, max %.3f ms (%zu runs)\n", median, ms[0],
              ms[n - 1], n);
}

std::vector<double> Time(tvmopt::Model* model, const Options& options) {
  for (int i = 0; i < options.warmup; ++i) model->Invoke();
  std::vector<double> ms;
  for (int i = 0; i < options.repeat; ++i) {
    auto start = std::chrono::steady_clock::now();
    model->Invoke();
    std::chrono::duration<double, std::milli> elapsed = std::chrono::steady_clock::now() - start;
    ms.push_back(elapsed.count());
  }
  return ms;
}

int Run(const Options& options) {
  tvmopt::Model model(options.model);
  const tvmopt::Metadata& metadata = model.metadata();
  std::cout << "model " << options.model << ": target " << metadata.target_kind << ", tvmopt "
            << metadata.tvmopt_version << ", TVM " << metadata.tvm_version;
  if (metadata.cpu) std::cout << ", code for " << metadata.cpu->mcpu << " (" << metadata.cpu->isa << ")";
  std::cout << "\n";
  std::mt19937 rng(0);
  std::vector<tvmopt::HostArray> inputs;
  if (!options.inputs.empty()) inputs = ReadInputs(metadata, options.inputs);
  for (const auto& info : metadata.inputs) {
    if (options.inputs.empty()) inputs.push_back(Generate(info, &rng));
    std::cout << "input " << info.Describe() << (options.inputs.empty() ? ": generated\n" : "\n");
  }
  model.SetInputs(inputs);
  if (!metadata.buckets.empty()) std::cout << "function " << model.EntryName() << "\n";
  model.Invoke();
  std::vector<tvmopt::HostArray> outputs = model.Outputs();
  for (size_t i = 0; i < outputs.size(); ++i) {
    std::cout << "output " << metadata.outputs[i].Describe() << MeanText(outputs[i]) << "\n";
  }
  if (!options.output.empty()) WriteOutputs(metadata, outputs, options.output);
  PrintLatency(Time(&model, options));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(ParseOptions(argc, argv));
  } catch (const tvmopt::Error& err) {
    std::cerr << "tvmopt-run: error: " << err.what() << "\n";
  } catch (const tvm::ffi::Error& err) {  // a TVM problem the library did not anticipate
    std::cerr << "tvmopt-run: error: " << err.kind() << ": "
              << err.message().substr(0, err.message().find('\n')) << "\n";
  } catch (const fs::filesystem_error& err) {
    std::cerr << "tvmopt-run: error: " << err.what() << "\n";
  }
  return 2;
}
