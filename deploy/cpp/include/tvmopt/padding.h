// Bucket padding (tvmopt/bucket_padding.py), as the Python API does it: a run whose symbolic
// dims are no bucket's own sizes takes the smallest bucket at least as large in every dim,
// where that bucket holds at most `limit` times the run's elements; its inputs are padded with
// zeros at the end of every dim the bucket enlarges and its outputs cut back to the run's sizes.
#ifndef TVMOPT_PADDING_H_
#define TVMOPT_PADDING_H_

#include <tvmopt/metadata.h>
#include <tvmopt/npy.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tvmopt {

// The bucket a run pads up to: its index in Metadata::buckets and each of its dims' run size.
struct PaddedRun {
  int bucket = -1;
  std::map<std::string, int64_t> run_sizes;  // dim -> the run's size (the bucket's is larger)
};

namespace detail {

inline double Volume(const std::map<std::string, int64_t>& dims) {
  double volume = 1;
  for (const auto& [dim, size] : dims) volume *= static_cast<double>(std::max<int64_t>(size, 1));
  return volume;
}

// `run` (dim -> size) fits `bucket` when no dim of the bucket is smaller than the run's.
inline bool Fits(const Bucket& bucket, const std::map<std::string, int64_t>& run) {
  for (const auto& [dim, size] : bucket.dims) {
    auto found = run.find(dim);
    if (found != run.end() && found->second > size) return false;
  }
  return true;
}

// The run's elements in the bucket's dims, as bucket_padding.choose measures the ratio.
inline double RunVolume(const Bucket& bucket, const std::map<std::string, int64_t>& run) {
  std::map<std::string, int64_t> sizes;
  for (const auto& [dim, size] : bucket.dims) {
    auto found = run.find(dim);
    sizes[dim] = found == run.end() ? 0 : found->second;
  }
  return Volume(sizes);
}

// Each dim's new size in `info`'s layout: the bucket's where the run was padded, else `shape`'s.
inline std::vector<int64_t> ResizedShape(const TensorInfo& info, const std::vector<int64_t>& shape,
                                         const std::map<std::string, int64_t>& sizes) {
  std::vector<int64_t> resized = shape;
  for (size_t i = 0; i < info.dim_names.size(); ++i) {
    auto found = sizes.find(info.dim_names[i]);
    if (info.shape[i] < 0 && found != sizes.end()) resized[i] = found->second;
  }
  return resized;
}

// Element offset of the row at `index` (the outer dims) in an array of `shape`.
inline int64_t RowOffset(const std::vector<int64_t>& index, const std::vector<int64_t>& shape) {
  int64_t offset = 0;
  for (size_t d = 0; d < index.size(); ++d) offset = (offset + index[d]) * shape[d + 1];
  return offset;
}

// Next row index over the outer dims both arrays hold (an odometer); false after the last.
inline bool NextRow(std::vector<int64_t>* index, const std::vector<int64_t>& extent) {
  for (size_t d = index->size(); d-- > 0;) {
    if (++(*index)[d] < extent[d]) return true;
    (*index)[d] = 0;
  }
  return false;
}

// The elements of `from` copied into a zero-filled array of `shape` where both overlap (the
// leading corner): padding where `shape` is larger, cutting where it is smaller.
inline HostArray Reshaped(const HostArray& from, const std::vector<int64_t>& shape) {
  const int64_t item = TypeOfDtype(from.dtype).bytes;
  HostArray to{from.dtype, shape, {}};
  to.bytes.assign(to.NumElements() * item, 0);
  if (shape.empty()) return from;
  std::vector<int64_t> extent(shape.size());
  for (size_t d = 0; d < shape.size(); ++d) extent[d] = std::min(from.shape[d], shape[d]);
  if (std::find(extent.begin(), extent.end(), 0) != extent.end()) return to;
  const int64_t row = extent.back() * item;
  std::vector<int64_t> index(shape.size() - 1, 0);
  do {
    std::memcpy(to.bytes.data() + RowOffset(index, shape) * item,
                from.bytes.data() + RowOffset(index, from.shape) * item, row);
  } while (NextRow(&index, extent));
  return to;
}

}  // namespace detail

// The padded run for `run` (each symbolic dim's size), or nullopt where no bucket holds it
// within `limit` times its elements.
inline std::optional<PaddedRun> ChoosePadding(const std::vector<Bucket>& buckets,
                                              const std::map<std::string, int64_t>& run,
                                              double limit) {
  int best = -1;
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (!detail::Fits(buckets[i], run)) continue;
    if (best < 0 || detail::Volume(buckets[i].dims) < detail::Volume(buckets[best].dims)) {
      best = static_cast<int>(i);
    }
  }
  if (best < 0 || detail::Volume(buckets[best].dims) >
                      limit * detail::RunVolume(buckets[best], run)) {
    return std::nullopt;
  }
  PaddedRun padded{best, {}};
  for (const auto& [dim, size] : buckets[best].dims) padded.run_sizes[dim] = run.at(dim);
  return padded;
}

// `array` (laid out as `info`) zero-padded to the bucket's sizes.
inline HostArray PadToBucket(const HostArray& array, const TensorInfo& info, const Bucket& bucket) {
  return detail::Reshaped(array, detail::ResizedShape(info, array.shape, bucket.dims));
}

// `array` (an output laid out as `info`) cut back to the run's sizes.
inline HostArray CutToRun(const HostArray& array, const TensorInfo& info, const PaddedRun& run) {
  return detail::Reshaped(array, detail::ResizedShape(info, array.shape, run.run_sizes));
}

}  // namespace tvmopt

#endif  // TVMOPT_PADDING_H_
