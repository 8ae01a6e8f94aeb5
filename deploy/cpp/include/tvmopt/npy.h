// Host arrays and the .npy file format (version 1.0 written; 1.0-3.0 read).
//
// Only little-endian, C-ordered arrays of the dtypes a tvmopt model takes or
// returns are supported; anything else is a one-line tvmopt::Error.
#ifndef TVMOPT_NPY_H_
#define TVMOPT_NPY_H_

#include <tvmopt/error.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace tvmopt {

// A dense array in host memory: a numpy dtype name, a shape and its bytes.
struct HostArray {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<char> bytes;

  int64_t NumElements() const {
    int64_t count = 1;
    for (int64_t dim : shape) count *= dim;
    return count;
  }
};

namespace detail {

struct NpyType {
  const char* dtype;
  const char* descr;
  int bytes;
};

// numpy writes '|' for one-byte types and '<' for the rest on little-endian.
inline const std::vector<NpyType>& NpyTypes() {
  static const std::vector<NpyType> types = {
      {"float16", "<f2", 2}, {"float32", "<f4", 4}, {"float64", "<f8", 8}, {"int8", "|i1", 1},
      {"uint8", "|u1", 1},   {"int16", "<i2", 2},   {"uint16", "<u2", 2},  {"int32", "<i4", 4},
      {"uint32", "<u4", 4},  {"int64", "<i8", 8},   {"uint64", "<u8", 8},  {"bool", "|b1", 1}};
  return types;
}

inline const NpyType& TypeOfDtype(const std::string& dtype) {
  for (const NpyType& type : NpyTypes()) {
    if (dtype == type.dtype) return type;
  }
  throw Error("dtype " + dtype + " has no .npy encoding here");
}

inline const NpyType* TypeOfDescr(std::string descr, const std::string& path) {
  if (descr.size() == 3 && descr[0] == '=') descr[0] = '<';
  for (const NpyType& type : NpyTypes()) {
    std::string alias = type.descr;
    alias[0] = alias[0] == '|' ? '<' : '|';  // numpy accepts either for 1-byte types
    if (descr == type.descr || (type.bytes == 1 && descr == alias)) return &type;
  }
  throw Error(path + ": unsupported .npy dtype '" + descr + "' (big-endian or not a tensor type)");
}

// The value of `key` in a header such as {'descr': '<f4', 'shape': (1, 3), }.
inline std::string HeaderField(const std::string& header, const std::string& key,
                               const std::string& path) {
  size_t at = header.find("'" + key + "'");
  size_t colon = header.find(':', at);
  if (at == std::string::npos || colon == std::string::npos) {
    throw Error(path + ": .npy header has no '" + key + "'");
  }
  size_t start = header.find_first_not_of(' ', colon + 1);
  char open = header[start];
  char close = open == '(' ? ')' : open == '\'' ? '\'' : ',';
  size_t end = header.find(close, start + 1);
  if (end == std::string::npos) throw Error(path + ": malformed .npy header");
  if (open == '(' || open == '\'') return header.substr(start + 1, end - start - 1);
  return header.substr(start, end - start);
}

inline std::vector<int64_t> ParseShape(const std::string& text, const std::string& path) {
  std::vector<int64_t> shape;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    if (item.find_first_not_of(' ') == std::string::npos) continue;  // "(3,)"
    try {
      shape.push_back(std::stoll(item));
    } catch (const std::exception&) {
      throw Error(path + ": bad .npy shape (" + text + ")");
    }
  }
  return shape;
}

inline std::string ShapeTuple(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (int64_t dim : shape) text += std::to_string(dim) + ", ";
  if (shape.size() > 1) text.resize(text.size() - 2);
  if (shape.size() == 1) text.pop_back();  // numpy's "(3,)"
  return text + ")";
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw Error("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(file), {});
}

}  // namespace detail

// Read a .npy file; throws tvmopt::Error naming the file on any problem.
inline HostArray ReadNpy(const std::string& path) {
  const std::string data = detail::ReadFile(path);
  if (data.size() < 10 || data.compare(0, 6, "\x93NUMPY") != 0) {
    throw Error(path + " is not a .npy file");
  }
  const bool v1 = data[6] == 1;
  const size_t prefix = v1 ? 10 : 12;
  size_t header_size = static_cast<unsigned char>(data[8]) | static_cast<unsigned char>(data[9])
                                                                 << 8;
  if (!v1 && data.size() >= 12) {
    header_size |= static_cast<size_t>(static_cast<unsigned char>(data[10])) << 16 |
                   static_cast<size_t>(static_cast<unsigned char>(data[11])) << 24;
  }
  if (data.size() < prefix + header_size) throw Error(path + ": truncated .npy header");
  const std::string header = data.substr(prefix, header_size);
  if (detail::HeaderField(header, "fortran_order", path) != "False") {
    throw Error(path + ": Fortran-ordered arrays are not supported; save a C-ordered copy");
  }
  HostArray array;
  array.dtype = detail::TypeOfDescr(detail::HeaderField(header, "descr", path), path)->dtype;
  array.shape = detail::ParseShape(detail::HeaderField(header, "shape", path), path);
  const size_t expected = array.NumElements() * detail::TypeOfDtype(array.dtype).bytes;
  if (data.size() - prefix - header_size != expected) {
    throw Error(path + ": holds " + std::to_string(data.size() - prefix - header_size) +
                " data bytes, its header says " + std::to_string(expected));
  }
  array.bytes.assign(data.begin() + prefix + header_size, data.end());
  return array;
}

// Write a .npy file (format 1.0) through a temporary file, so a failure leaves none.
inline void WriteNpy(const std::string& path, const HostArray& array) {
  std::string header = "{'descr': '" + std::string(detail::TypeOfDtype(array.dtype).descr) +
                       "', 'fortran_order': False, 'shape': " + detail::ShapeTuple(array.shape) +
                       ", }";
  header.append(63 - (10 + header.size()) % 64, ' ');  // data starts 64-byte aligned
  header += '\n';
  std::string prefix = "\x93NUMPY\x01";
  prefix += '\0';
  prefix += static_cast<char>(header.size() & 0xff);
  prefix += static_cast<char>(header.size() >> 8);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream file(tmp, std::ios::binary);
    file << prefix << header;
    file.write(array.bytes.data(), static_cast<std::streamsize>(array.bytes.size()));
    if (!file.flush()) {
      std::remove(tmp.c_str());
      throw Error("cannot write " + path);
    }
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace tvmopt

#endif  // TVMOPT_NPY_H_
