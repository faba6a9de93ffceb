// Error context stacking and exit-code mapping.
#include <gtest/gtest.h>

#include "ptq/core/error.h"

namespace ptq {

TEST(Error, ContextIsPrependedOutermostFirst) {
  try {
    with_context("model.onnx", [] {
      with_context("node 'conv1' (Conv)", [] { throw ModelError("weight has rank 3"); });
    });
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "model.onnx: node 'conv1' (Conv): weight has rank 3");
    EXPECT_EQ(e.code(), ExitCode::kInvalidModel);
  }
}

TEST(Error, KindsMapToDocumentedExitCodes) {
  EXPECT_EQ(static_cast<int>(UsageError("x").code()), 1);
  EXPECT_EQ(static_cast<int>(ModelError("x").code()), 2);
  EXPECT_EQ(static_cast<int>(UnsupportedError("x").code()), 3);
  EXPECT_EQ(static_cast<int>(IoError("x").code()), 5);
}

TEST(Error, CheckStreamsArguments) {
  try {
    PTQ_CHECK(1 + 1 == 3, IoError, "file '", "a.npy", "' has ", 3, " dims");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_STREQ(e.what(), "file 'a.npy' has 3 dims");
  }
  EXPECT_THROW(PTQ_ASSERT(false, "broken"), InternalError);
}

}  // namespace ptq
