// Window geometry (see spatial.h); the output-size formulas follow the ONNX operator docs.
#include "spatial.h"

#include "common.h"

namespace ptq::runtime {

WindowAttrs WindowAttrs::from_node(const ir::Node& n, bool has_ceil_mode) {
  WindowAttrs a;
  a.auto_pad = n.attr_string("auto_pad", "NOTSET");
  PTQ_CHECK(a.auto_pad == "NOTSET" || a.auto_pad == "SAME_UPPER" || a.auto_pad == "SAME_LOWER" ||
                a.auto_pad == "VALID",
            ModelError, "auto_pad '", a.auto_pad, "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
  a.kernel = n.attr_ints("kernel_shape");
  a.strides = n.attr_ints("strides");
  a.dilations = n.attr_ints("dilations");
  a.pads = n.attr_ints("pads");
  a.ceil_mode = has_ceil_mode && n.attr_int("ceil_mode", 0) != 0;
  for (int64_t k : a.kernel) PTQ_CHECK(k > 0, ModelError, "kernel_shape must be positive");
  for (int64_t s : a.strides) PTQ_CHECK(s > 0, ModelError, "strides must be positive");
  for (int64_t d : a.dilations) PTQ_CHECK(d > 0, ModelError, "dilations must be positive");
  for (int64_t p : a.pads) PTQ_CHECK(p >= 0, ModelError, "pads must be non-negative");
  PTQ_CHECK(a.pads.size() % 2 == 0, ModelError, "pads must have an even length");
  return a;
}

Window resolve_window(const WindowAttrs& a, const std::vector<int64_t>& in,
                      const std::vector<int64_t>& kernel) {
  const size_t r = in.size();
  auto get = [&](const std::vector<int64_t>& v, size_t i, int64_t fallback, const char* what) {
    if (v.empty()) return fallback;
    PTQ_CHECK(v.size() == r, ModelError, what, " has ", v.size(), " values for ", r, " spatial axes");
    return v[i];
  };
  PTQ_CHECK(kernel.size() == r, ModelError, "kernel has ", kernel.size(), " dims for ", r,
            " spatial axes");
  PTQ_CHECK(a.pads.empty() || a.pads.size() == 2 * r, ModelError, "pads has ", a.pads.size(),
            " values for ", r, " spatial axes");
  Window w;
  w.in = in;
  w.kernel = kernel;
  for (size_t i = 0; i < r; ++i) {
    const int64_t s = get(a.strides, i, 1, "strides");
    const int64_t d = get(a.dilations, i, 1, "dilations");
    // Effective kernel extent; huge attributes must fail, not overflow (UBSan found these).
    const int64_t ek = checked_add(checked_mul(d, kernel[i] - 1, "dilations"), 1, "kernel extent");
    int64_t pb = a.pads.empty() ? 0 : a.pads[i], pe = a.pads.empty() ? 0 : a.pads[i + r];
    int64_t o = 0;
    if (a.auto_pad == "VALID") {
      pb = pe = 0;
      o = checked_add(in[i], -ek, "VALID window") / s + 1;
    } else if (a.auto_pad == "SAME_UPPER" || a.auto_pad == "SAME_LOWER") {
      o = checked_add(in[i], s - 1, "strides") / s;
      const int64_t total =
          std::max<int64_t>(0, checked_add(checked_add(checked_mul(o - 1, s, "strides"), ek, "SAME padding"), -in[i]));
      pb = a.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      pe = total - pb;
    } else {
      const int64_t padded = checked_add(checked_add(in[i], pb, "pads"), pe, "pads");
      const int64_t span = padded - ek;
      PTQ_CHECK(span >= 0, ModelError, "window (extent ", ek, ") larger than padded input ", padded);
      if (a.ceil_mode) {
        o = checked_add(span, s - 1, "strides") / s + 1;
        // The last window must start inside the input or its leading padding.
        if ((o - 1) * s >= in[i] + pb) --o;  // (o - 1) * s <= span + s - 1: no overflow
      } else {
        o = span / s + 1;
      }
    }
    PTQ_CHECK(o > 0, ModelError, "output size ", o, " on spatial axis ", i, " (input ", in[i],
              ", kernel extent ", ek, ")");
    w.out.push_back(o);
    w.stride.push_back(s);
    w.dilation.push_back(d);
    w.pad_begin.push_back(pb);
    w.pad_end.push_back(pe);
  }
  return w;
}

}  // namespace ptq::runtime
