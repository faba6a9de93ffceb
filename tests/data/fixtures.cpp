// Fixture writers for the data tests (zip layout per PKWARE APPNOTE 4.3.7 / 4.3.12 / 4.3.16).
#include "fixtures.h"

#include <onnx/onnx_pb.h>
#include <stb/stb_image_write.h>
#include <zlib.h>

#include <cstring>
#include <stdexcept>

#include "ptq/onnx_io/load.h"

namespace ptq::data::test {
namespace {

void put16(std::string& s, uint16_t v) {
  s += char(v & 0xFF);
  s += char(v >> 8);
}
void put32(std::string& s, uint32_t v) {
  put16(s, uint16_t(v & 0xFFFF));
  put16(s, uint16_t(v >> 16));
}
void put64(std::string& s, uint64_t v) {
  put32(s, uint32_t(v & 0xFFFFFFFF));
  put32(s, uint32_t(v >> 32));
}

std::string raw_deflate(const std::string& in) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2");
  std::string out(deflateBound(&zs, uLong(in.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = uInt(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = uInt(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate");
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace

std::string npy_bytes(const std::string& descr, const std::string& shape_tuple, const void* data,
                      size_t nbytes, bool fortran_order) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': " +
                     (fortran_order ? "True" : "False") + ", 'shape': " + shape_tuple + ", }";
  // magic(6) + version(2) + header_len(2) + dict + padding + '\n' is a multiple of 64.
  const size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  std::string s("\x93NUMPY\x01\x00", 8);
  put16(s, uint16_t(dict.size()));
  s += dict;
  s.append(static_cast<const char*>(data), nbytes);
  return s;
}

static std::string shape_tuple(const Dims& dims) {
  std::string t = "(";
  for (int64_t d : dims) t += std::to_string(d) + ",";
  if (dims.size() > 1) t.pop_back();
  return t + ")";
}

std::string npy_f32(const Dims& dims, const std::vector<float>& values) {
  return npy_bytes("<f4", shape_tuple(dims), values.data(), values.size() * 4);
}

std::string npy_i64(const Dims& dims, const std::vector<int64_t>& values) {
  return npy_bytes("<i8", shape_tuple(dims), values.data(), values.size() * 8);
}

std::string zip_bytes(const std::vector<ZipEntry>& entries) {
  std::string out, central;
  for (const ZipEntry& e : entries) {
    const std::string body = e.deflate ? raw_deflate(e.data) : e.data;
    const uint32_t crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(e.data.data()),
                                        uInt(e.data.size())));
    const uint32_t offset = uint32_t(out.size());
    const uint16_t method = e.deflate ? 8 : 0;
    std::string extra;
    if (e.zip64_local) {
      put16(extra, 1);
      put16(extra, 16);
      put64(extra, e.data.size());
      put64(extra, body.size());
    }
    put32(out, 0x04034b50);
    put16(out, e.zip64_local ? 45 : 20);
    put16(out, 0);
    put16(out, method);
    put16(out, 0);
    put16(out, 0x21);
    put32(out, crc);
    put32(out, e.zip64_local ? 0xFFFFFFFF : uint32_t(body.size()));
    put32(out, e.zip64_local ? 0xFFFFFFFF : uint32_t(e.data.size()));
    put16(out, uint16_t(e.name.size()));
    put16(out, uint16_t(extra.size()));
    out += e.name + extra + body;

    put32(central, 0x02014b50);
    put16(central, 20);
    put16(central, 20);
    put16(central, 0);
    put16(central, method);
    put16(central, 0);
    put16(central, 0x21);
    put32(central, crc);
    put32(central, uint32_t(body.size()));
    put32(central, uint32_t(e.data.size()));
    put16(central, uint16_t(e.name.size()));
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put32(central, 0);
    put32(central, offset);
    central += e.name;
  }
  const uint32_t cd_offset = uint32_t(out.size());
  out += central;
  put32(out, 0x06054b50);
  put16(out, 0);
  put16(out, 0);
  put16(out, uint16_t(entries.size()));
  put16(out, uint16_t(entries.size()));
  put32(out, uint32_t(central.size()));
  put32(out, cd_offset);
  put16(out, 0);
  return out;
}

size_t central_dir_offset(const std::string& zip) { return zip.find(std::string("PK\x01\x02", 4)); }

void patch_u16(std::string& bytes, size_t offset, uint16_t v) {
  bytes[offset] = char(v & 0xFF);
  bytes[offset + 1] = char(v >> 8);
}

void patch_u32(std::string& bytes, size_t offset, uint32_t v) {
  patch_u16(bytes, offset, uint16_t(v & 0xFFFF));
  patch_u16(bytes, offset + 2, uint16_t(v >> 16));
}

std::string tensor_proto_f32(const std::string& name, const Dims& dims,
                             const std::vector<float>& values) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(values.data(), values.size() * sizeof(float));
  return t.SerializeAsString();
}

void write_png(const std::string& path, int w, int h, int comps, const std::vector<uint8_t>& px) {
  if (!stbi_write_png(path.c_str(), w, h, comps, px.data(), w * comps))
    throw std::runtime_error("stbi_write_png " + path);
}

void write_bmp(const std::string& path, int w, int h, int comps, const std::vector<uint8_t>& px) {
  if (!stbi_write_bmp(path.c_str(), w, h, comps, px.data()))
    throw std::runtime_error("stbi_write_bmp " + path);
}

ir::Model model_with_inputs(const std::string& inputs, const std::string& first) {
  return onnx_io::parse_model_text("<ir_version: 8, opset_import: [\"\" : 13]>\ng (" + inputs +
                                   ") => (float out_) { out_ = Identity(" + first + ") }");
}

}  // namespace ptq::data::test
