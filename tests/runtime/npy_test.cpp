// .npy reading and writing: round trips, hand-written headers, and hostile or malformed files.
#include <gtest/gtest.h>

#include <cstring>

#include "ptq/core/error.h"
#include "ptq/core/npy.h"
#include "testutil.h"

namespace ptq {
namespace {

// A .npy file built by hand from the format spec (not by the code under test).
std::string npy_bytes(const std::string& dict, const std::string& data, int major = 1) {
  std::string header = dict;
  const size_t pre = major == 1 ? 10 : 12;
  while ((pre + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::string s = std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0';
  const size_t n = header.size();
  s += static_cast<char>(n & 0xff);
  s += static_cast<char>(n >> 8);
  if (major != 1) s += std::string(2, '\0');
  return s + header + data;
}

template <typename T>
std::string raw(std::vector<T> v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

TEST(Npy, ReadsHandWrittenFloatFile) {
  const std::string b = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                                  raw<float>({1, 2, 3, 4, 5, 6.5f}));
  Tensor t = read_npy_bytes(b.data(), b.size(), "mem");
  EXPECT_EQ(t.dtype(), DType::kFloat);
  EXPECT_EQ(t.dims(), (Dims{2, 3}));
  EXPECT_EQ(t.data<float>()[5], 6.5f);
}

TEST(Npy, ReadsVersions2And3AndScalarsAndOneDim) {
  for (int major : {2, 3}) {
    const std::string b = npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }",
                                    raw<int64_t>({-1, 0, 7}), major);
    Tensor t = read_npy_bytes(b.data(), b.size(), "mem");
    EXPECT_EQ(t.dims(), (Dims{3}));
    EXPECT_EQ(t.data<int64_t>()[0], -1);
  }
  const std::string s = npy_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (), }", "\x05");
  Tensor t = read_npy_bytes(s.data(), s.size(), "mem");
  EXPECT_EQ(t.rank(), 0u);
  EXPECT_EQ(t.data<uint8_t>()[0], 5);
}

TEST(Npy, RoundTripsEverySupportedDtype) {
  test::TempDir dir;
  const std::vector<Tensor> cases = {
      Tensor::from_vector<float>({2, 2}, {1.5f, -2, 3, 4}),
      Tensor::from_vector<double>({1}, {3.25}),
      Tensor::from_vector<int8_t>({3}, {-128, 0, 127}),
      Tensor::from_vector<uint8_t>({0}, {}),
      Tensor::from_vector<int16_t>({2}, {-300, 300}),
      Tensor::from_vector<uint16_t>({1, 1}, {65535}),
      Tensor::from_vector<int32_t>({2, 1, 1}, {-7, 9}),
      Tensor::from_vector<uint32_t>({1}, {4000000000u}),
      Tensor::from_vector<int64_t>({}, {42}),
      Tensor::from_vector<uint64_t>({2}, {1, 2}),
      Tensor::from_bytes(DType::kBool, {3}, "\x01\x00\x01", 3),
  };
  for (const Tensor& t : cases) {
    const std::string path = dir.file("t.npy");
    write_npy(path, t);
    const std::string bytes = test::read_file(path);
    EXPECT_EQ((bytes.size() - t.nbytes()) % 64, 0u) << "data is 64-byte aligned";
    Tensor back = read_npy(path);
    EXPECT_TRUE(back.bit_equal(t)) << dtype_name(t.dtype());
  }
}

void expect_io_error(const std::string& bytes, const std::string& needle) {
  test::TempDir dir;
  const std::string path = dir.file("bad.npy");
  test::write_file(path, bytes);
  try {
    read_npy(path);
    ADD_FAILURE() << "no error for " << needle;
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Npy, RejectsMalformedAndHostileFiles) {
  const std::string f6 = raw<float>({1, 2, 3, 4, 5, 6});
  expect_io_error(npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", f6),
                  "fortran_order");
  expect_io_error(npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", f6),
                  "little-endian");
  expect_io_error(npy_bytes("{'descr': '<c8', 'fortran_order': False, 'shape': (2, 3), }", f6),
                  "descr");
  expect_io_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }", f6),
                  "declares");
  expect_io_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }", f6),
                  "declares");
  // Terabytes declared in a tiny file: must fail on the size check, not on allocation.
  expect_io_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }", f6),
                  "declares");
  expect_io_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 2), }", f6),
                  "overflow");
  expect_io_error(npy_bytes("{'descr': '<f4', 'fortran_order': False}", f6), "shape");
  expect_io_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 3), }", f6), "shape");
  expect_io_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", f6),
                  "unknown key");
  expect_io_error("\x93NUMPZ\x01\x00", "magic");
  expect_io_error(std::string("\x93NUMPY\x04\x00\x10\x00", 10) + std::string(16, ' '), "version");
  // A header length pointing past the end of the file.
  expect_io_error(std::string("\x93NUMPY\x01\x00\xff\xff", 10) + "{}", "truncated");
  expect_io_error(npy_bytes("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", "\x01\x02"),
                  "bool");
}

TEST(Npy, MissingFileIsIoError) {
  EXPECT_THROW(read_npy("/nonexistent/dir/x.npy"), IoError);
}

}  // namespace
}  // namespace ptq
