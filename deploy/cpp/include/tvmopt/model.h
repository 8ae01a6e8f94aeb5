// Load a library written by `tvmopt compile` and run it, with no Python.
//
//   tvmopt::Model model("resnet.so");
//   std::vector<tvmopt::HostArray> outputs = model.Run({tvmopt::ReadNpy("image.npy")});
//
// Needs TVM's runtime libraries only (libtvm_runtime, libtvm_ffi); see
// `tvmopt config --cflags --libs` or find_package(tvmopt).
#ifndef TVMOPT_MODEL_H_
#define TVMOPT_MODEL_H_

#include <dlfcn.h>
#include <tvm/ffi/container/shape.h>
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/dtype.h>
#include <tvm/ffi/extra/module.h>
#include <tvm/ffi/function.h>
#include <tvmopt/cpu.h>
#include <tvmopt/elf.h>
#include <tvmopt/error.h>
#include <tvmopt/isa_variants.h>
#include <tvmopt/metadata.h>
#include <tvmopt/npy.h>
#include <tvmopt/padding.h>
#include <tvmopt/threads.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tvmopt {

namespace detail {

namespace ffi = tvm::ffi;

inline constexpr const char kMetadataSymbol[] = "tvmopt_metadata";
inline constexpr int kPooledAllocator = 2;

// dlerror's message, less the "PATH: " it starts with when it names a file.
inline std::string DlError(const std::string& path = "") {
  const char* message = dlerror();
  std::string text = message ? message : "unknown dlopen error";
  if (!path.empty() && text.rfind(path + ": ", 0) == 0) text.erase(0, path.size() + 2);
  return text;
}

// The library's metadata record, read from its ELF section without loading it
// (loading runs its code); a library written before the section existed is
// opened to ask its symbol. Either way before TVM touches the file, so a file
// that is not a tvmopt library is named as such.
inline std::string ReadMetadataRecord(const std::string& path, const std::string& shown) {
  if (auto section = ReadElfSection(path, kMetadataSection, shown)) {
    return section->substr(0, section->find('\0'));
  }
  void* handle = dlopen(path.c_str(), RTLD_LAZY | RTLD_LOCAL);
  if (!handle) throw Error("cannot load " + path + ": " + DlError(path));
  auto getter = reinterpret_cast<const char* (*)()>(dlsym(handle, kMetadataSymbol));
  std::string record = getter ? getter() : "";
  dlclose(handle);  // TVM opens the file again; the loader keeps one copy
  if (!getter) {
    throw Error(path + " is not a tvmopt artifact: it has no " + kMetadataSymbol + " record");
  }
  return record;
}

inline DLDevice DeviceFor(const std::string& target_kind) {
  if (target_kind == "llvm" || target_kind == "c") return DLDevice{kDLCPU, 0};
  if (target_kind == "cuda") {
    if (!dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL)) {
      throw Error("the model runs on an NVIDIA GPU, and there is no NVIDIA driver here (" +
                  DlError() + ")");
    }
    // CUDA's device API lives in its own runtime library, found beside libtvm_runtime.
    if (!dlopen("libtvm_runtime_cuda.so", RTLD_NOW | RTLD_GLOBAL)) {
      throw Error("the model targets CUDA but libtvm_runtime_cuda.so cannot be loaded: " +
                  DlError());
    }
    return DLDevice{kDLCUDA, 0};
  }
  throw Error("the model targets '" + target_kind + "', which this runtime cannot run");
}

inline std::string ShapeText(const TensorInfo& info) {
  std::string text = "(";
  for (size_t i = 0; i < info.shape.size(); ++i) {
    text +=
        (i ? ", " : "") + (info.shape[i] < 0 ? info.dim_names[i] : std::to_string(info.shape[i]));
  }
  return text + (info.shape.size() == 1 ? ",)" : ")");
}

// A symbolic dim's size: in the range compiled for, and the same in every input naming it
// (`bound`: dim -> its size and the input that set it, filled in input by input).
using BoundDims = std::map<std::string, std::pair<int64_t, std::string>>;

inline void CheckDim(const Metadata& metadata, const TensorInfo& info, size_t axis, int64_t size,
                     BoundDims* bound) {
  const std::string& dim = info.dim_names[axis];
  const std::string where = "input '" + info.name + "' axis " + std::to_string(axis) + " (" + dim +
                            ") is " + std::to_string(size);
  const DimRange allowed = metadata.RangeOf(dim);
  if (!allowed.Holds(size)) {
    throw Error(where + ", outside the range " + allowed.Describe() + " it was compiled for");
  }
  auto [seen, fresh] = bound->emplace(dim, std::make_pair(size, info.name));
  if (!fresh && seen->second.first != size) {
    throw Error(where + ", but input '" + seen->second.second + "' has " + dim + " = " +
                std::to_string(seen->second.first));
  }
}

// The same checks, in the same words, as tvmopt's Python API (tvmopt/inputs.py, dims.py).
inline void CheckInput(const Metadata& metadata, const TensorInfo& info, const HostArray& array,
                       BoundDims* bound) {
  if (array.dtype != info.dtype) {
    throw Error("input '" + info.name + "' must have dtype " + info.dtype + ", got " + array.dtype);
  }
  bool same = array.shape.size() == info.shape.size();
  for (size_t i = 0; same && i < info.shape.size(); ++i) {
    same = info.shape[i] < 0 || info.shape[i] == array.shape[i];
  }
  if (!same) {
    throw Error("input '" + info.name + "' must have shape " + ShapeText(info) + ", got " +
                ShapeTuple(array.shape));
  }
  for (size_t i = 0; i < info.shape.size(); ++i) {
    if (info.shape[i] < 0) CheckDim(metadata, info, i, array.shape[i], bound);
  }
}

// A file removed when this goes, also when a constructor throws after making it.
struct TemporaryFile {
  std::string path;
  TemporaryFile() = default;
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile(TemporaryFile&& other) noexcept : path(std::exchange(other.path, {})) {}
  TemporaryFile& operator=(TemporaryFile&& other) noexcept {
    std::swap(path, other.path);
    return *this;
  }
  ~TemporaryFile() {
    if (!path.empty()) std::remove(path.c_str());
  }
};

inline void FlattenTensors(const ffi::Any& value, std::vector<ffi::Tensor>* leaves) {
  if (auto tensor = value.try_cast<ffi::Tensor>()) {
    leaves->push_back(*tensor);
    return;
  }
  for (const ffi::Any& item : value.cast<ffi::Array<ffi::Any>>()) FlattenTensors(item, leaves);
}

}  // namespace detail

class Model {
 public:
  // Load `path`; throws tvmopt::Error if it is missing or not a tvmopt library.
  explicit Model(const std::string& path) {
    namespace fs = std::filesystem;
    if (!fs::is_regular_file(path)) throw Error("model not found: " + path);
    // dlopen searches the library path for a bare file name; an absolute one it opens.
    const std::string resolved = fs::absolute(path).string();
    // the checksum first: a changed byte anywhere, the metadata record's included, says so
    VerifyChecksum(resolved, path);
    metadata_ = Metadata::FromJson(detail::ReadMetadataRecord(resolved, path));
    std::string loaded = resolved;  // the library, or its ISA variant for this CPU
    if (auto chosen = ChooseVariant(metadata_.isa_variants)) {
      loaded = ExtractVariant(resolved, metadata_.isa_variants[*chosen], path);
      private_copy_.path = loaded;
      VerifyChecksum(loaded, path);
      metadata_ = Metadata::FromJson(detail::ReadMetadataRecord(loaded, path));
    }
    if (metadata_.cpu) CheckRunsHere(*metadata_.cpu, path);  // before its code runs
    const auto& keys = metadata_.target_keys;
    if (std::find(keys.begin(), keys.end(), "vta") != keys.end()) {
      throw Error(path +
                  " offloads layers to VTA, whose simulator runs in Python: use `tvmopt run`");
    }
    device_ = detail::DeviceFor(metadata_.target_kind);
    detail::DefaultToPhysicalCores();
    try {
      Initialize(loaded);
    } catch (const tvm::ffi::Error& err) {
      throw Error("cannot start " + path + ": " + err.message());
    }
    private_copy_ = {};  // loaded: dlopen keeps what it mapped
  }

  const Metadata& metadata() const { return metadata_; }
  DLDevice device() const { return device_; }

  // Check the inputs (signature order) and copy them to the device.
  void SetInputs(const std::vector<HostArray>& inputs) {
    if (inputs.size() != metadata_.inputs.size()) {
      throw Error("expected " + std::to_string(metadata_.inputs.size()) + " inputs, got " +
                  std::to_string(inputs.size()));
    }
    detail::BoundDims bound;
    for (size_t i = 0; i < inputs.size(); ++i) {
      detail::CheckInput(metadata_, metadata_.inputs[i], inputs[i], &bound);
    }
    entry_ = BucketFor(bound);
    padded_ = entry_ < 0 ? PaddingFor(bound) : std::nullopt;
    if (padded_) entry_ = padded_->bucket;
    staged_.clear();
    for (size_t i = 0; i < inputs.size(); ++i) {
      staged_.push_back(ToDevice(padded_ ? PadToBucket(inputs[i], metadata_.inputs[i],
                                                       metadata_.buckets[entry_])
                                         : inputs[i]));
    }
  }

  // The VM function the next Invoke calls: "main", or a bucket's static function (where the
  // inputs have its sizes, or pad up to them).
  const std::string& EntryName() const {
    static const std::string kMain = "main";
    return entry_ < 0 ? kMain : metadata_.buckets[entry_].function;
  }

  // Run the model on the inputs set last and wait for the device to finish.
  void Invoke() {
    std::vector<tvm::ffi::AnyView> args(staged_.begin(), staged_.end());
    try {
      const tvm::ffi::Function& entry = entry_ < 0 ? main_ : bucket_functions_[entry_];
      entry.CallPacked(args.data(), static_cast<int32_t>(args.size()), &result_);
      if (device_.device_type != kDLCPU) sync_(device_, int64_t{0});  // 0: the default stream
    } catch (const tvm::ffi::Error& err) {
      throw Error("the model failed: " + err.kind() + ": " + FirstLine(err.message()));
    }
  }

  // The outputs of the last Invoke, in signature order, copied to host memory.
  std::vector<HostArray> Outputs() const {
    std::vector<tvm::ffi::Tensor> tensors;
    detail::FlattenTensors(result_, &tensors);
    std::vector<HostArray> arrays;
    for (const tvm::ffi::Tensor& tensor : tensors) arrays.push_back(ToHost(tensor));
    if (padded_) {
      for (size_t i = 0; i < arrays.size(); ++i) {
        arrays[i] = CutToRun(arrays[i], metadata_.outputs[i], *padded_);
      }
    }
    return arrays;
  }

  std::vector<HostArray> Run(const std::vector<HostArray>& inputs) {
    SetInputs(inputs);
    Invoke();
    return Outputs();
  }

  // Throw unless the library has the signature a generated header was made for.
  void CheckSignature(const std::string& expected) const {
    if (metadata_.Signature() != expected) {
      throw Error("the library's inputs and outputs changed since its header was generated: " +
                  metadata_.Signature() + " (header: " + expected + ")");
    }
  }

 private:
  void Initialize(const std::string& path) {
    library_ = tvm::ffi::Module::LoadFromFile(path);
    vm_ = (*library_)->GetFunction("vm_load_executable").value()().cast<tvm::ffi::Module>();
    tvm::ffi::Function init = (*vm_)->GetFunction("vm_initialization").value();
    if (device_.device_type == kDLCPU) {
      init(static_cast<int>(kDLCPU), 0, detail::kPooledAllocator);
    } else {  // shape computations run on the CPU
      init(static_cast<int>(device_.device_type), device_.device_id, detail::kPooledAllocator,
           static_cast<int>(kDLCPU), 0, detail::kPooledAllocator);
    }
    main_ = (*vm_)->GetFunction("main").value();
    for (const Bucket& bucket : metadata_.buckets) {
      bucket_functions_.push_back((*vm_)->GetFunction(bucket.function).value());
    }
    alloc_ = tvm::ffi::Function::GetGlobalRequired("runtime.TVMTensorAllocWithScope");
    copy_in_ = tvm::ffi::Function::GetGlobalRequired("runtime.TVMTensorCopyFromBytes");
    copy_out_ = tvm::ffi::Function::GetGlobalRequired("runtime.TVMTensorCopyToBytes");
    sync_ = tvm::ffi::Function::GetGlobalRequired("runtime.Device_StreamSync");
  }

  tvm::ffi::Tensor ToDevice(const HostArray& array) const {
    tvm::ffi::Shape shape(array.shape.begin(), array.shape.end());
    DLDataType dtype = tvm::ffi::StringToDLDataType(array.dtype);
    auto tensor = alloc_(shape, dtype, device_, nullptr).cast<tvm::ffi::Tensor>();
    copy_in_(tensor, static_cast<void*>(const_cast<char*>(array.bytes.data())),
             static_cast<int64_t>(array.bytes.size()));
    return tensor;
  }

  HostArray ToHost(const tvm::ffi::Tensor& tensor) const {
    HostArray array{std::string(tvm::ffi::DLDataTypeToString(tensor.dtype())),
                    std::vector<int64_t>(tensor.shape().begin(), tensor.shape().end()),
                    {}};
    array.bytes.resize(array.NumElements() * ((tensor.dtype().bits + 7) / 8));
    copy_out_(tensor, static_cast<void*>(array.bytes.data()),
              static_cast<int64_t>(array.bytes.size()));
    return array;
  }

  // The bucket whose sizes the inputs' dims have (`bound`), or -1 for main: static kernels
  // where a bucket was compiled for the run's shape, as the Python API chooses.
  int BucketFor(const detail::BoundDims& bound) const {
    for (size_t i = 0; i < metadata_.buckets.size(); ++i) {
      bool matches = true;
      for (const auto& [dim, size] : metadata_.buckets[i].dims) {
        auto found = bound.find(dim);
        matches = matches && found != bound.end() && found->second.first == size;
      }
      if (matches) return static_cast<int>(i);
    }
    return -1;
  }

  // The bucket a run pads up to where the library pads (--bucket-padding), else nullopt.
  std::optional<PaddedRun> PaddingFor(const detail::BoundDims& bound) const {
    if (!metadata_.pad_limit) return std::nullopt;
    std::map<std::string, int64_t> run;
    for (const auto& [dim, size_and_input] : bound) run[dim] = size_and_input.first;
    return ChoosePadding(metadata_.buckets, run, *metadata_.pad_limit);
  }

  static std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

  Metadata metadata_;
  DLDevice device_{kDLCPU, 0};
  std::optional<tvm::ffi::Module> library_;
  std::optional<tvm::ffi::Module> vm_;
  tvm::ffi::Function main_, alloc_, copy_in_, copy_out_, sync_;
  std::vector<tvm::ffi::Function> bucket_functions_;  // metadata_.buckets' VM functions
  int entry_ = -1;  // what Invoke calls: a bucket's function (its index), or main (-1)
  std::optional<PaddedRun> padded_;  // the run's sizes where its inputs were padded to entry_
  std::vector<tvm::ffi::Tensor> staged_;
  tvm::ffi::Any result_;
  detail::TemporaryFile private_copy_;  // an ISA variant copied out to be loaded
};

}  // namespace tvmopt

#endif  // TVMOPT_MODEL_H_
