// Window geometry shared by Conv and the pooling ops: pads, auto_pad, strides, dilations, ceil_mode.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ptq/ir/node.h"

namespace ptq::runtime {

struct WindowAttrs {
  std::string auto_pad = "NOTSET";
  std::vector<int64_t> kernel;     // may be empty for Conv (taken from W)
  std::vector<int64_t> strides;    // empty: all 1
  std::vector<int64_t> dilations;  // empty: all 1
  std::vector<int64_t> pads;       // [b0, b1, ..., e0, e1, ...]; empty: all 0
  bool ceil_mode = false;
  // Reads and validates the attributes (ModelError on bad values).
  static WindowAttrs from_node(const ir::Node& node, bool has_ceil_mode);
};

// The resolved geometry for one input: per spatial axis.
struct Window {
  std::vector<int64_t> in, out, kernel, stride, dilation, pad_begin, pad_end;
};

// Resolves a window for input spatial dims `in` and kernel dims `kernel`.
Window resolve_window(const WindowAttrs& a, const std::vector<int64_t>& in,
                      const std::vector<int64_t>& kernel);

}  // namespace ptq::runtime
