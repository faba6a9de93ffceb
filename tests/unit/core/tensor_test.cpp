// Tensor storage, shape arithmetic and copy-on-write.
#include <gtest/gtest.h>

#include "ptq/core/error.h"
#include "ptq/core/tensor.h"

namespace ptq {

TEST(Tensor, FromVectorKeepsValuesAndShape) {
  Tensor t = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(t.dtype(), DType::kFloat);
  EXPECT_EQ(t.numel(), 6u);
  EXPECT_EQ(t.nbytes(), 24u);
  EXPECT_EQ(t.data<float>()[5], 6.f);
}

TEST(Tensor, SizeMismatchIsAModelError) {
  float v[3] = {1, 2, 3};
  EXPECT_THROW(Tensor::from_bytes(DType::kFloat, {2, 2}, v, sizeof(v)), ModelError);
}

TEST(Tensor, HostileDimsAreRejectedBeforeAllocating) {
  EXPECT_THROW(checked_numel({1LL << 40, 1LL << 40}), ModelError);
  EXPECT_THROW(checked_numel({-1, 3}), ModelError);
  EXPECT_EQ(checked_numel({0, 1LL << 62}), 0u);
  EXPECT_EQ(checked_numel({}), 1u);
}

TEST(Tensor, CopiesShareStorageUntilWritten) {
  Tensor a = Tensor::from_vector<int32_t>({2}, {7, 8});
  Tensor b = a;
  b.mutable_data<int32_t>()[0] = 9;
  EXPECT_EQ(a.data<int32_t>()[0], 7);
  EXPECT_EQ(b.data<int32_t>()[0], 9);
  EXPECT_FALSE(a.bit_equal(b));
  b.mutable_data<int32_t>()[0] = 7;
  EXPECT_TRUE(a.bit_equal(b));
}

TEST(Tensor, PackedFourBitStorage) {
  EXPECT_EQ(dtype_storage_bytes(DType::kInt4, 5), 3u);
  EXPECT_EQ(dtype_name(DType::kUint8), "uint8");
  EXPECT_EQ(dtype_name(static_cast<DType>(99)), "dtype(99)");
}

TEST(Tensor, Strings) {
  Tensor s = Tensor::from_strings({2}, {"a", "b"});
  EXPECT_TRUE(s.is_string());
  EXPECT_THROW(Tensor::from_strings({3}, {"a"}), ModelError);
}

}  // namespace ptq
