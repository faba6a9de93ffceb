// Internal: little-endian integers read from bytes (zip headers, BMP headers).
#pragma once

#include <cstdint>

namespace ptq::data::detail {

inline uint16_t u16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
inline uint32_t u32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

}  // namespace ptq::data::detail
