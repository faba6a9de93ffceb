// Test fixtures written by hand: .npy/.npz bytes, TensorProto files, PNG/BMP images, tiny models.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ptq/core/tensor.h"
#include "ptq/ir/model.h"

namespace ptq::data::test {

// A version 1.0 .npy file: header dict padded to a multiple of 64 bytes, then the raw data.
std::string npy_bytes(const std::string& descr, const std::string& shape_tuple, const void* data,
                      size_t nbytes, bool fortran_order = false);
std::string npy_f32(const Dims& dims, const std::vector<float>& values);
std::string npy_i64(const Dims& dims, const std::vector<int64_t>& values);

struct ZipEntry {
  std::string name;
  std::string data;
  bool deflate = false;
  // Like numpy's np.savez: a zip64 local header (sizes 0xFFFFFFFF plus a zip64 extra field)
  // while the central directory holds plain 32-bit sizes.
  bool zip64_local = false;
};
std::string zip_bytes(const std::vector<ZipEntry>& entries);
// Offset of the first central-directory header ("PK\1\2") in zip bytes.
size_t central_dir_offset(const std::string& zip);
void patch_u16(std::string& bytes, size_t offset, uint16_t v);
void patch_u32(std::string& bytes, size_t offset, uint32_t v);

// A serialized onnx.TensorProto holding float data.
std::string tensor_proto_f32(const std::string& name, const Dims& dims,
                             const std::vector<float>& values);

// Images from interleaved 8-bit pixels (comps 1 or 3).
void write_png(const std::string& path, int w, int h, int comps, const std::vector<uint8_t>& px);
void write_bmp(const std::string& path, int w, int h, int comps, const std::vector<uint8_t>& px);

// A one-node model whose graph inputs are `inputs`, in ONNX text syntax, e.g.
// "float[1,3,4,4] x, int64[N,5] ids"; input `first` feeds an Identity.
ir::Model model_with_inputs(const std::string& inputs, const std::string& first);

}  // namespace ptq::data::test
