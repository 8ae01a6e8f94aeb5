// Read one section of a 64-bit ELF library without loading it: the metadata
// record lives in `.tvmopt_metadata` (tvmopt/artifact.py), so a library can be
// checked (that it is whole, that its bytes are as written, that this CPU runs
// its code) before dlopen runs any of it. The same checks, in the same words, as
// tvmopt's Python API.
#ifndef TVMOPT_ELF_H_
#define TVMOPT_ELF_H_

#include <tvmopt/error.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace tvmopt {

inline constexpr const char kMetadataSection[] = ".tvmopt_metadata";
inline constexpr char kElfMagic[] = {0x7f, 'E', 'L', 'F'};

namespace detail {

struct ElfSection {
  uint32_t name_at;
  uint32_t type;
  uint64_t offset;
  uint64_t size;
};

constexpr uint32_t kNoBits = 8;  // SHT_NOBITS (.bss): no bytes in the file

template <typename T>
T ReadAt(const std::string& bytes, size_t at) {
  T value;
  std::memcpy(&value, bytes.data() + at, sizeof(T));  // little-endian: x86_64 and aarch64
  return value;
}

inline std::string ReadRange(std::ifstream& stream, uint64_t offset, uint64_t size) {
  std::string bytes(size, '\0');
  stream.seekg(static_cast<std::streamoff>(offset));
  stream.read(bytes.data(), static_cast<std::streamsize>(size));
  return bytes;
}

inline std::vector<ElfSection> ReadSections(std::ifstream& stream, const std::string& header,
                                            uint64_t file_size, const std::string& path) {
  const auto table_at = ReadAt<uint64_t>(header, 0x28);
  const auto entry = ReadAt<uint16_t>(header, 0x3A), count = ReadAt<uint16_t>(header, 0x3C);
  if (table_at + uint64_t{entry} * count > file_size) {
    throw Error(path + " is truncated: " + std::to_string(file_size) +
                " bytes, where its section table ends at " +
                std::to_string(table_at + uint64_t{entry} * count));
  }
  const std::string table = ReadRange(stream, table_at, uint64_t{entry} * count);
  std::vector<ElfSection> sections;
  for (size_t i = 0; i < count; ++i) {
    const size_t at = i * entry;
    ElfSection section{ReadAt<uint32_t>(table, at), ReadAt<uint32_t>(table, at + 4),
                       ReadAt<uint64_t>(table, at + 24), ReadAt<uint64_t>(table, at + 32)};
    if (section.type != kNoBits && section.offset + section.size > file_size) {
      throw Error(path + " is truncated: a section ends past its " + std::to_string(file_size) +
                  " bytes");
    }
    sections.push_back(section);
  }
  return sections;
}

}  // namespace detail

// The bytes of section `name`, or nothing where the library has none; throws
// tvmopt::Error for a file that is not a 64-bit ELF library or is cut short,
// naming it as `shown` (the path as the user gave it).
inline std::optional<std::string> ReadElfSection(const std::string& path, const std::string& name,
                                                 const std::string& shown) {
  std::ifstream stream(path, std::ios::binary | std::ios::ate);
  const auto file_size = static_cast<uint64_t>(stream.tellg());
  stream.seekg(0);
  std::string header(64, '\0');
  stream.read(header.data(), 64);
  if (!stream || std::memcmp(header.data(), kElfMagic, 4) != 0 || header[4] != 2) {
    throw Error(shown + " is not a tvmopt artifact: not a 64-bit ELF library");
  }
  const auto sections = detail::ReadSections(stream, header, file_size, shown);
  const auto names_index = detail::ReadAt<uint16_t>(header, 0x3E);
  const auto& names = sections.at(names_index);
  const std::string table = detail::ReadRange(stream, names.offset, names.size);
  for (const detail::ElfSection& section : sections) {
    if (std::strcmp(table.c_str() + section.name_at, name.c_str()) == 0) {
      return detail::ReadRange(stream, section.offset, section.size);
    }
  }
  return std::nullopt;
}

namespace detail {

// The CRC-32 (IEEE, as zlib's) of `size` bytes, continuing from `crc`.
inline uint32_t Crc32(const char* data, size_t size, uint32_t crc) {
  static const auto table = [] {
    std::array<uint32_t, 256> entries{};
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      entries[n] = c;
    }
    return entries;
  }();
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) {
    crc = table[(crc ^ static_cast<uint8_t>(data[i])) & 0xFF] ^ (crc >> 8);
  }
  return ~crc;
}

}  // namespace detail

// The checksum a library ends with (tvmopt/artifact.py: append_checksum): "\ntvmopt-crc32 ",
// 8 hex digits, "\n". Throws tvmopt::Error where the bytes before it changed since; says
// nothing of a library written before the checksum existed.
inline void VerifyChecksum(const std::string& path, const std::string& shown) {
  static const std::string tag = "\ntvmopt-crc32 ";
  const size_t trailer = tag.size() + 9;
  std::ifstream stream(path, std::ios::binary | std::ios::ate);
  const auto size = static_cast<uint64_t>(stream.tellg());
  if (!stream || size < trailer) return;
  const std::string tail = detail::ReadRange(stream, size - trailer, trailer);
  if (tail.compare(0, tag.size(), tag) != 0) return;
  const auto written = static_cast<uint32_t>(std::stoul(tail.substr(tag.size(), 8), nullptr, 16));
  uint32_t crc = 0;
  std::vector<char> chunk(1 << 20);
  stream.seekg(0);
  for (uint64_t left = size - trailer; left > 0;) {
    const auto n = static_cast<std::streamsize>(std::min<uint64_t>(left, chunk.size()));
    if (!stream.read(chunk.data(), n)) break;
    crc = detail::Crc32(chunk.data(), static_cast<size_t>(n), crc);
    left -= static_cast<uint64_t>(n);
  }
  if (crc != written) {
    char text[64];
    std::snprintf(text, sizeof(text), "(CRC-32 %08x, written %08x)", crc, written);
    throw Error(shown + " is corrupt: its bytes changed after tvmopt wrote it " + text);
  }
}

}  // namespace tvmopt

#endif  // TVMOPT_ELF_H_
