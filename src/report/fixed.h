// Fixed-point number formatting shared by the report renderers.
#pragma once

#include <cstdio>
#include <string>

namespace ptq::report {

// v with exactly `digits` decimals ("%.*f": locale-independent in the "C" locale ptq runs in).
inline std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace ptq::report
