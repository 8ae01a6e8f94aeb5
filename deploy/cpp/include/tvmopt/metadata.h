// What a tvmopt library takes and returns: the JSON record behind its
// `tvmopt_metadata` symbol (written by tvmopt/artifact.py), parsed.
#ifndef TVMOPT_METADATA_H_
#define TVMOPT_METADATA_H_

#include <tvm/ffi/extra/json.h>
#include <tvmopt/error.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tvmopt {

inline constexpr const char kArtifactFormat[] = "tvmopt-artifact/1";

// One input or output. A symbolic dimension is -1 in `shape` and named in `dim_names`.
struct TensorInfo {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<std::string> dim_names;

  bool IsStatic() const {
    for (int64_t dim : shape) {
      if (dim < 0) return false;
    }
    return true;
  }

  // "image (float32[1,3,64,64])", as the Python API prints it.
  std::string Describe() const {
    std::string dims;
    for (size_t i = 0; i < shape.size(); ++i) {
      dims += (i ? "," : "") + (shape[i] < 0 ? dim_names[i] : std::to_string(shape[i]));
    }
    return name + " (" + dtype + "[" + dims + "])";
  }
};

// What the library's code needs of the CPU: its architecture and the features
// it was compiled with, in /proc/cpuinfo's words (cpu.h checks them).
struct CpuRecord {
  std::string arch;
  std::string mcpu;
  std::string isa;
  std::vector<std::string> features;
};

// A whole library for a newer CPU, in an ELF section of this one (isa_variants.h).
struct IsaVariant {
  std::string section;
  CpuRecord cpu;
};

// The sizes one symbolic dim may take, lo..hi inclusive; hi < 0: no upper limit.
struct DimRange {
  int64_t lo = 1;
  int64_t hi = -1;

  bool Holds(int64_t size) const { return lo <= size && (hi < 0 || size <= hi); }
  std::string Describe() const {
    return std::to_string(lo) + ".." + (hi < 0 ? "" : std::to_string(hi));
  }
};

// A static variant compiled beside the symbolic `main` (tvmopt/buckets.py): the VM function
// that runs inputs whose symbolic dims have exactly these sizes.
struct Bucket {
  std::string function;
  std::map<std::string, int64_t> dims;
};

struct Metadata {
  std::vector<TensorInfo> inputs;
  std::vector<TensorInfo> outputs;
  std::string target_kind;
  std::vector<std::string> target_keys;  // "vta" among them: layers run on tvmopt's simulator
  std::string tvmopt_version;
  std::string tvm_version;
  std::string json;
  std::optional<CpuRecord> cpu;          // absent in libraries written before the record
  std::map<std::string, DimRange> dims;  // the ranges compiled for; a dim not here: 1..
  std::vector<Bucket> buckets;           // --bucket's static variants; none: main only
  std::optional<double> pad_limit;       // --bucket-padding: runs pad up to a bucket (padding.h)
  std::vector<IsaVariant> isa_variants;  // --isa-variant: code for newer CPUs, best first

  // The range `dim` was compiled for (1.. when the model declared none).
  DimRange RangeOf(const std::string& dim) const {
    auto found = dims.find(dim);
    return found == dims.end() ? DimRange{} : found->second;
  }

  static Metadata FromJson(const std::string& text);

  // "image:float32[1,3,64,64];->probs:float32[1,10];", what a generated header
  // (tvmopt compile --emit-header) records to check it matches a library.
  std::string Signature() const {
    std::string text;
    for (const TensorInfo& info : inputs) text += SignatureOf(info);
    text += "->";
    for (const TensorInfo& info : outputs) text += SignatureOf(info);
    return text;
  }

 private:
  static std::string SignatureOf(const TensorInfo& info) {
    std::string dims;
    for (size_t i = 0; i < info.shape.size(); ++i) {
      dims += (i ? "," : "") + (info.shape[i] < 0 ? "?" : std::to_string(info.shape[i]));
    }
    return info.name + ":" + info.dtype + "[" + dims + "];";
  }
};

namespace detail {

namespace json = tvm::ffi::json;

inline std::string StringField(const json::Object& object, const char* key) {
  return std::string(object.at(key).cast<tvm::ffi::String>());
}

inline TensorInfo TensorInfoFromJson(const json::Object& record) {
  TensorInfo info{StringField(record, "name"), StringField(record, "dtype"), {}, {}};
  for (const tvm::ffi::Any& dim : record.at("shape").cast<json::Array>()) {
    if (auto size = dim.try_cast<int64_t>()) {
      info.shape.push_back(*size);
      info.dim_names.emplace_back();
    } else {
      info.shape.push_back(-1);
      info.dim_names.emplace_back(dim.cast<tvm::ffi::String>());
    }
  }
  return info;
}

inline std::vector<TensorInfo> TensorInfosFromJson(const json::Object& record, const char* key) {
  std::vector<TensorInfo> infos;
  for (const tvm::ffi::Any& item : record.at(key).cast<json::Array>()) {
    infos.push_back(TensorInfoFromJson(item.cast<json::Object>()));
  }
  return infos;
}

inline std::vector<std::string> Strings(const json::Object& record, const char* key) {
  std::vector<std::string> values;
  if (record.count(key)) {
    for (const tvm::ffi::Any& item : record.at(key).cast<json::Array>()) {
      values.emplace_back(item.cast<tvm::ffi::String>());
    }
  }
  return values;
}

inline CpuRecord CpuFromJson(const json::Object& cpu) {
  return CpuRecord{StringField(cpu, "arch"), StringField(cpu, "mcpu"), StringField(cpu, "isa"),
                   Strings(cpu, "features")};
}

inline std::optional<CpuRecord> CpuRecordFromJson(const json::Object& record) {
  if (!record.count("cpu")) return std::nullopt;
  return CpuFromJson(record.at("cpu").cast<json::Object>());
}

// [{"section": ".tvmopt.isa.0", "cpu": {...}}]: what tvmopt/isa_variants.py records.
inline std::vector<IsaVariant> IsaVariantsFromJson(const json::Object& record) {
  std::vector<IsaVariant> variants;
  if (!record.count("isa_variants")) return variants;
  for (const tvm::ffi::Any& item : record.at("isa_variants").cast<json::Array>()) {
    auto entry = item.cast<json::Object>();
    variants.push_back({StringField(entry, "section"), CpuFromJson(entry.at("cpu").cast<json::Object>())});
  }
  return variants;
}

// {"seq": [1, 128], "batch": [1, null]}: what tvmopt/artifact.py records of --dim.
inline std::map<std::string, DimRange> DimRangesFromJson(const json::Object& record) {
  std::map<std::string, DimRange> ranges;
  if (!record.count("dims")) return ranges;
  for (const auto& [name, bounds] : record.at("dims").cast<json::Object>()) {
    auto pair = bounds.cast<json::Array>();
    auto hi = pair[1].try_cast<int64_t>();
    ranges[std::string(name.cast<tvm::ffi::String>())] =
        DimRange{pair[0].cast<int64_t>(), hi ? *hi : -1};
  }
  return ranges;
}

// [{"function": "main__seq16", "dims": {"seq": 16}}]: what tvmopt/buckets.py records.
inline std::vector<Bucket> BucketsFromJson(const json::Object& record) {
  std::vector<Bucket> buckets;
  if (!record.count("buckets")) return buckets;
  for (const tvm::ffi::Any& item : record.at("buckets").cast<json::Array>()) {
    auto entry = item.cast<json::Object>();
    Bucket bucket{StringField(entry, "function"), {}};
    for (const auto& [name, size] : entry.at("dims").cast<json::Object>()) {
      bucket.dims[std::string(name.cast<tvm::ffi::String>())] = size.cast<int64_t>();
    }
    buckets.push_back(bucket);
  }
  return buckets;
}

// {"mask": "attention_mask", "limit": 1.25}: what tvmopt/bucket_padding.py records.
inline std::optional<double> PadLimitFromJson(const json::Object& record) {
  if (!record.count("bucket_padding")) return std::nullopt;
  return record.at("bucket_padding").cast<json::Object>().at("limit").cast<double>();
}

}  // namespace detail

inline Metadata Metadata::FromJson(const std::string& text) {
  tvm::ffi::String parse_error;
  tvm::ffi::Any value = detail::json::Parse(text, &parse_error);
  if (!parse_error.empty()) throw Error("unreadable metadata record: " + std::string(parse_error));
  try {
    auto record = value.cast<detail::json::Object>();
    if (detail::StringField(record, "format") != kArtifactFormat) {
      throw Error("unknown artifact format '" + detail::StringField(record, "format") +
                  "'; expected " + kArtifactFormat);
    }
    auto target = record.at("target").cast<detail::json::Object>();
    return Metadata{detail::TensorInfosFromJson(record, "inputs"),
                    detail::TensorInfosFromJson(record, "outputs"),
                    detail::StringField(target, "kind"),
                    detail::Strings(target, "keys"),
                    detail::StringField(record, "tvmopt_version"),
                    detail::StringField(record, "tvm_version"),
                    text,
                    detail::CpuRecordFromJson(record),
                    detail::DimRangesFromJson(record),
                    detail::BucketsFromJson(record),
                    detail::PadLimitFromJson(record),
                    detail::IsaVariantsFromJson(record)};
  } catch (const tvm::ffi::Error& err) {
    throw Error("malformed metadata record: " + err.message());
  }
}

}  // namespace tvmopt

#endif  // TVMOPT_METADATA_H_
