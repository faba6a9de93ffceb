// .npz archives: stored, deflated and numpy-style members; hostile and corrupt zip structures.
#include <gtest/gtest.h>

#include <cstring>

#include "fixtures.h"
#include "ptq/core/error.h"
#include "ptq/data/npz.h"
#include "testutil.h"

namespace ptq::data {
namespace {

using data::test::ZipEntry;

// read_npz must fail with an IoError that names the file and contains `needle`.
void expect_bad(const std::string& path, const std::string& needle) {
  try {
    read_npz(path);
    ADD_FAILURE() << "read_npz accepted a bad archive (expected '" << needle << "')";
  } catch (const IoError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos) << m;
    EXPECT_NE(m.find(needle), std::string::npos) << m;
    EXPECT_EQ(e.code(), ExitCode::kDataOrIo);
  }
}

std::string two_members(bool deflate, bool zip64_local) {
  return data::test::zip_bytes(
      {ZipEntry{"x.npy", data::test::npy_f32({2, 2}, {1, 2, 3, 4}), deflate, zip64_local},
       ZipEntry{"ids.npy", data::test::npy_i64({3}, {7, 8, 9}), deflate, zip64_local}});
}

TEST(Npz, StoredDeflatedAndNumpyStyle) {
  ptq::test::TempDir dir;
  int k = 0;
  for (bool deflate : {false, true})
    for (bool zip64_local : {false, true}) {
      const std::string path = dir.file("a" + std::to_string(k++) + ".npz");
      ptq::test::write_file(path, two_members(deflate, zip64_local));
      const std::vector<NamedTensor> ts = read_npz(path);
      ASSERT_EQ(ts.size(), 2u);
      EXPECT_EQ(ts[0].name, "x");
      EXPECT_EQ(ts[0].tensor.dims(), (Dims{2, 2}));
      EXPECT_EQ(ts[0].tensor.data<float>()[3], 4.0f);
      EXPECT_EQ(ts[1].name, "ids");
      EXPECT_EQ(ts[1].tensor.dtype(), DType::kInt64);
      EXPECT_EQ(ts[1].tensor.data<int64_t>()[2], 9);
    }
}

TEST(Npz, CorruptAndHostileArchives) {
  ptq::test::TempDir dir;
  const auto write = [&](const std::string& name, const std::string& bytes) {
    ptq::test::write_file(dir.file(name), bytes);
    return dir.file(name);
  };
  const std::string good = two_members(true, false);
  const size_t cd = data::test::central_dir_offset(good);
  ASSERT_NE(cd, std::string::npos);
  const size_t eocd = good.size() - 22;

  expect_bad(write("text.npz", "just some text, not a zip archive at all"), "not a zip");
  expect_bad(write("short.npz", "PK"), "not a zip");
  expect_bad(write("truncated.npz", good.substr(0, good.size() - 30)), "not a zip");

  std::string b = good;  // zip64 marker in the end record
  data::test::patch_u16(b, eocd + 10, 0xFFFF);
  expect_bad(write("zip64.npz", b), "zip64");
  b = good;  // zip64 marker in a member's sizes
  data::test::patch_u32(b, cd + 24, 0xFFFFFFFF);
  expect_bad(write("zip64m.npz", b), "zip64");
  b = good;  // central directory offset past the end
  data::test::patch_u32(b, eocd + 16, 0x7FFFFFF0);
  expect_bad(write("cdoff.npz", b), "central directory");
  b = good;  // more members declared than the directory can hold
  data::test::patch_u16(b, eocd + 8, 500);
  data::test::patch_u16(b, eocd + 10, 500);
  expect_bad(write("count.npz", b), "members");
  b = good;  // a member's local header offset beyond its data area
  data::test::patch_u32(b, cd + 42, 0x00FFFFFF);
  expect_bad(write("lho.npz", b), "offset");
  b = good;  // 4 GB declared from a few compressed bytes: refused before allocating
  data::test::patch_u32(b, cd + 24, 0xFFFFFFF0);
  expect_bad(write("bomb.npz", b), "deflate");
  b = good;  // unknown compression method
  data::test::patch_u16(b, cd + 10, 12);
  expect_bad(write("bzip2.npz", b), "compression method 12");
  b = good;  // encrypted
  data::test::patch_u16(b, cd + 8, 1);
  expect_bad(write("enc.npz", b), "encrypted");

  std::string stored = two_members(false, false);  // flip one data byte: CRC mismatch
  stored[stored.find(std::string("\x93NUMPY", 6)) + 130] ^= 0x55;  // in x.npy data
  expect_bad(write("crc.npz", stored), "CRC");

  expect_bad(write("notnpy.npz", data::test::zip_bytes({ZipEntry{"readme.txt", "hello"}})),
             "not a .npy");
  expect_bad(write("empty.npz", data::test::zip_bytes({})), "no arrays");
  expect_bad(write("dup.npz", data::test::zip_bytes({ZipEntry{"x.npy", data::test::npy_f32({1}, {1})},
                                                     ZipEntry{"x.npy", data::test::npy_f32({1}, {2})}})),
             "twice");
  // A member whose .npy header declares a huge shape over 4 bytes of data.
  const float one = 1;
  const std::string huge =
      data::test::npy_bytes("<f4", "(1000000000000, 1000000)", &one, sizeof(one));
  expect_bad(write("huge.npz", data::test::zip_bytes({ZipEntry{"x.npy", huge, true}})), "x.npy");
}

}  // namespace
}  // namespace ptq::data
