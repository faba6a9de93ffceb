// The fuzz harnesses as plain functions: libFuzzer mains and the regression test both call them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ptq::fuzz {

// Each feeds `data` to one reader. A ptq::Error (the documented refusal of bad input) is
// swallowed; anything else (InternalError, another exception, an abort, a sanitizer report)
// escapes as a crash.
void onnx_loader(const uint8_t* data, size_t size);  // ModelProto -> IR -> ir::verify
void npy(const uint8_t* data, size_t size);          // read_npy_bytes
void npz(const uint8_t* data, size_t size);          // read_npz_bytes
void tensor_pb(const uint8_t* data, size_t size);    // read_tensor_bytes (TensorProto .pb)
void image(const uint8_t* data, size_t size);        // 8 control bytes, then an encoded image
void calib_table(const uint8_t* data, size_t size);  // parse_calib_table (JSON)
// The whole quantize pipeline on a model: a small generated calibration set (for models whose
// runtime inputs are float with small shapes), prepare -> calibrate -> emit -> save; the output
// must load again, verify, and every Q/DQ scale be finite and > 0 (else InternalError escapes).
void pipeline(const uint8_t* data, size_t size);

struct Target {
  const char* name;
  void (*run)(const uint8_t*, size_t);
};
const std::vector<Target>& targets();

}  // namespace ptq::fuzz
